package policy

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/golden"
)

// TestRolesGolden lists every role's data actions in both modes and control permissions, and
// ParseMode's answers, against testdata/roles.golden (-update rewrites it).
func TestRolesGolden(t *testing.T) {
	var b strings.Builder
	for _, r := range Roles {
		fmt.Fprintf(&b, "%s\n  rbac: %v\n  rbac-abac: %v\n  control: %v\n", r.Name, r.DataActions(ModeRBAC), r.DataActions(ModeRBACABAC), r.Control())
	}
	for _, m := range []string{"rbac", "RBAC", "rbac-abac", "LegacyRegistryPermissions", "AbacRepositoryPermissions", "abac", ""} {
		mode, ok := ParseMode(m)
		fmt.Fprintf(&b, "ParseMode(%q) = %s %v\n", m, mode, ok)
	}
	golden.Compare(t, "testdata/roles.golden", b.String())
}

func TestAddressList(t *testing.T) {
	l, err := ParseAddressList([]string{"10.0.0.0/8", " ", "", "192.0.2.7", "2001:db8::/32"})
	if err != nil || len(l) != 3 {
		t.Fatalf("ParseAddressList = %v, %v", l, err)
	}
	for _, tc := range []struct {
		ip   string
		want bool
	}{
		{"10.1.2.3", true}, {"11.0.0.1", false}, {"192.0.2.7", true}, {"192.0.2.8", false},
		{"::ffff:10.0.0.1", true}, // a mapped IPv4 address is that address
		{"2001:db8::1", true}, {"2001:db9::1", false},
	} {
		if got := l.Contains(netip.MustParseAddr(tc.ip)); got != tc.want {
			t.Errorf("Contains(%s) = %v, want %v", tc.ip, got, tc.want)
		}
	}
	if (AddressList{}).Contains(netip.MustParseAddr("10.0.0.1")) {
		t.Error("an empty list contains an address")
	}
	if _, err := ParseAddressList([]string{"10.0.0.0/8", "not-an-address"}); err == nil {
		t.Error("a bad entry is accepted")
	}
}

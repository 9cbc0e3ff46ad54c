package webhook

import (
	"net/netip"
	"strings"
	"testing"
)

func TestDialerCheck(t *testing.T) {
	d := Dialer{Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.9.0.0/16")}}
	for _, tc := range []struct {
		addr string
		want string // "" allowed, else part of the refusal
	}{
		{"93.184.216.34", ""},
		{"2606:4700::1111", ""},
		{"127.0.0.1", ""},
		{"10.9.1.2", ""},
		{"10.1.2.3", "private"},
		{"192.168.1.1", "private"},
		{"172.16.0.1", "private"},
		{"::1", "private or loopback"},
		{"fd12::1", "private"},
		{"169.254.169.254", "link-local"},
		{"::ffff:169.254.169.254", "link-local"},
		{"fe80::1", "link-local"},
		{"fd00:ec2::254", "metadata"},
		{"100.100.100.200", "metadata"},
		{"0.0.0.0", "unicast"},
		{"239.1.1.1", "unicast"},
	} {
		err := d.Check(netip.MustParseAddr(tc.addr))
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Check(%s) = %v, want %q", tc.addr, err, tc.want)
		}
	}
	// Even listed, link-local stays refused.
	all := Dialer{Allowed: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}
	if err := all.Check(netip.MustParseAddr("169.254.169.254")); err == nil {
		t.Error("a listed link-local address was allowed")
	}
}

func TestCheckHeaderAndURI(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		ok          bool
	}{
		{"Authorization", "Bearer x", true},
		{"X-Custom", "v", true},
		{"Host", "evil", false},
		{"content-type", "text/plain", false},
		{"X-Berth-Signature-256", "forged", false},
		{"Bad Name", "v", false},
		{"X-Split", "a\r\nX-Injected: 1", false},
		{"", "v", false},
		{"X-Long", strings.Repeat("a", 4097), false},
	} {
		if err := CheckHeader(tc.name, tc.value); (err == nil) != tc.ok {
			t.Errorf("CheckHeader(%q) = %v", tc.name, err)
		}
	}
	for _, tc := range []struct {
		uri string
		ok  bool
	}{
		{"https://hooks.example/x?y=1", true},
		{"http://10.0.0.1:8080/", true}, // refused at delivery, not here
		{"ftp://x/", false},
		{"https://user:pw@x/", false},
		{"https:///nohost", false},
		{"https://x/" + strings.Repeat("a", 2050), false},
	} {
		if err := CheckURI(tc.uri); (err == nil) != tc.ok {
			t.Errorf("CheckURI(%q) = %v", tc.uri, err)
		}
	}
}

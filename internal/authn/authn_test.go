package authn

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/store"
)

func TestResolveClientIP(t *testing.T) {
	trusted := func(ip netip.Addr) bool {
		return netip.MustParsePrefix("10.0.0.0/8").Contains(ip) || ip == netip.MustParseAddr("192.0.2.1")
	}
	many := make([]string, 40)
	for i := range many {
		many[i] = "10.0.0.1"
	}
	for _, tc := range []struct {
		peer, xff string
		trusted   func(netip.Addr) bool
		want      string
	}{
		{"198.51.100.7:1234", "1.2.3.4", trusted, "198.51.100.7"}, // untrusted peer: its header is not believed
		{"10.1.1.1:1234", "1.2.3.4", nil, "10.1.1.1"},             // no trusted proxies at all
		{"10.1.1.1:1234", "1.2.3.4", trusted, "1.2.3.4"},
		{"10.1.1.1:1234", "6.6.6.6, 1.2.3.4, 192.0.2.1", trusted, "1.2.3.4"}, // spoofed left part ignored
		{"10.1.1.1:1234", "", trusted, "10.1.1.1"},
		{"10.1.1.1:1234", "garbage, 1.2.3.4", trusted, "1.2.3.4"},
		{"10.1.1.1:1234", "1.2.3.4, garbage", trusted, "10.1.1.1"},
		{"10.1.1.1:1234", "10.2.2.2, 10.3.3.3", trusted, "10.2.2.2"}, // every hop a proxy: the leftmost
		{"[::ffff:10.1.1.1]:1234", "2001:db8::5", trusted, "2001:db8::5"},
		{"10.1.1.1:1234", "[fe80::1%eth0]", trusted, "10.1.1.1"},
		{"10.1.1.1:1234", "1.2.3.4, " + strings.Join(many, ","), trusted, "10.0.0.1"}, // only the nearest 32 hops are read
		{"10.1.1.1:1234", "5.6.7.8, " + strings.Join(many[:31], ","), trusted, "5.6.7.8"},
		{"not-an-address", "1.2.3.4", trusted, "invalid IP"},
	} {
		r := httptest.NewRequest("GET", "/v2/", nil)
		r.RemoteAddr = tc.peer
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := ResolveClientIP(r, tc.trusted); got.String() != tc.want {
			t.Errorf("peer %s, X-Forwarded-For %q: %s, want %s", tc.peer, tc.xff, got, tc.want)
		}
	}
}

func TestBearerTokenAndAudience(t *testing.T) {
	for _, tc := range []struct {
		h, token string
		ok       bool
	}{{"Bearer abc", "abc", true}, {"bearer  abc ", "abc", true}, {"BEARER x", "x", true}, {"Bearer  ", "", true},
		{"Bearer ", "", false}, {"Bearer", "", false}, {"Basic abc", "", false}, {"", "", false}} {
		r := httptest.NewRequest("GET", "/v2/", nil)
		if tc.h != "" {
			r.Header.Set("Authorization", tc.h)
		}
		if got, ok := BearerToken(r); got != tc.token || ok != tc.ok {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", tc.h, got, ok, tc.token, tc.ok)
		}
	}
	if a := Audience(store.Registry{Name: "r", LoginServer: "r.example"}); a != "r.example" {
		t.Errorf("Audience with a login server = %q", a)
	}
	if a := Audience(store.Registry{Name: "r"}); a != "r" {
		t.Errorf("Audience without a login server = %q", a)
	}
	if m := (&Service{}).Mode(store.Registry{Name: "r"}); m != "" {
		t.Errorf("Mode without a mode source = %q", m)
	}
}

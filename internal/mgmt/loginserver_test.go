package mgmt

import (
	"strings"
	"testing"
)

func TestCanonicalLoginServer(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"Registry.Example.COM", "registry.example.com"},
		{"registry.example.com:443", "registry.example.com"},
		{"registry.example.com:80", "registry.example.com"},
		{"registry.example.com:5000", "registry.example.com:5000"},
		{"localhost:5000", "localhost:5000"},
		{"10.0.0.5", "10.0.0.5"},
		{"10.0.0.5:5000", "10.0.0.5:5000"},
		{"[2001:DB8::1]:5000", "[2001:db8::1]:5000"},
		{"2001:db8::1", "[2001:db8::1]"},
		{"a", "a"},
		{strings.Repeat("a", 63) + ".example", strings.Repeat("a", 63) + ".example"},
	} {
		got, err := canonicalLoginServer(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("canonicalLoginServer(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{
		"https://registry.example.com", "registry.example.com/v2", "user@registry.example.com",
		"registry example", "registry.example.com:0", "registry.example.com:65536", "registry.example.com:05000",
		"registry.example.com:", "registry.example.com:x", "-registry.example.com", "registry-.example.com",
		"registry_1.example.com", strings.Repeat("a", 64) + ".example", "[::1", "fe80::1%eth0", "a..b",
		"registry.example.com?x", "reg\\istry", strings.Repeat("a.", 140),
	} {
		if got, err := canonicalLoginServer(bad); err == nil {
			t.Errorf("canonicalLoginServer(%q) = %q, want an error", bad, got)
		}
	}
}

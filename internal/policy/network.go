package policy

import (
	"fmt"
	"net/netip"
	"strings"
)

type networkPolicy struct {
	public      bool
	defaultDeny bool
	rules       []netRule
}

type netRule struct {
	prefix netip.Prefix
	desc   string
}

// ParseNetworkRule reads an IPv4 or IPv6 address or CIDR and returns its canonical CIDR
// ("203.0.113.7" → "203.0.113.7/32", "10.1.2.3/8" → "10.0.0.0/8").
func ParseNetworkRule(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR range (e.g. 203.0.113.0/24 or 2001:db8::/32)", s)
		}
		if p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q: zoned addresses are not allowed", s)
		}
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapBits(p.Addr())).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR range (e.g. 203.0.113.0/24 or 2001:db8::/32)", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func unmapBits(a netip.Addr) int {
	if a.Is4In6() {
		return 96
	}
	return 0
}

// Network answers whether a client at ip may reach registry at all. It runs before any
// authentication: a refused client learns nothing else.
func (s *Snapshot) Network(registry string, ip netip.Addr) Decision {
	return s.network(registry, ip, nil)
}

func (s *Snapshot) network(registry string, ip netip.Addr, tr *trace) Decision {
	reg, ok := s.registries[registry]
	if !ok {
		return deny(CodeNoRegistry, "registry %q does not exist", registry)
	}
	n := &reg.network
	ip = ip.Unmap()
	if !n.public {
		d := deny(CodePublicAccessOff, "client with IP '%s' is not allowed access: public network access is disabled on registry %q", ip, registry)
		tr.add("network", "public network access", false, "disabled: every client is refused")
		return d
	}
	tr.add("network", "public network access", true, "enabled")
	if !n.defaultDeny {
		tr.add("network", "default action", true, "Allow: every address may connect")
		return Decision{Allow: true, Code: CodeNetworkAllowed, Reason: "default action Allow"}
	}
	for i := range n.rules {
		if r := &n.rules[i]; r.prefix.Contains(ip) {
			tr.add("network rule", r.prefix.String(), true, r.desc)
			return Decision{Allow: true, Code: CodeNetworkAllowed, Reason: r.desc}
		}
	}
	if tr != nil {
		tr.add("network", "default action", false, fmt.Sprintf("Deny, and none of the %d network rules contains %s", len(n.rules), ip))
	}
	return deny(CodeIPDenied, "client with IP '%s' is not allowed access: no network rule of registry %q allows it (default action Deny)", ip, registry)
}

// AddressList is a set of CIDRs: the server's trusted proxies, or who may use the management API.
type AddressList []netip.Prefix

// ParseAddressList reads addresses and CIDRs.
func ParseAddressList(items []string) (AddressList, error) {
	var out AddressList
	for _, it := range items {
		if strings.TrimSpace(it) == "" {
			continue
		}
		p, err := ParseNetworkRule(it)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Contains reports whether ip is in the list.
func (l AddressList) Contains(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range l {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ManagementAccess answers whether a client at ip may use the management API (and /metrics):
// the server's allow-list (network.management_allow), where an empty list lets every address in.
// Like the registries' network rules, it is decided before any authentication.
func ManagementAccess(allow AddressList, ip netip.Addr) Decision {
	switch {
	case len(allow) == 0:
		return Decision{Allow: true, Code: CodeNetworkAllowed, Reason: "network.management_allow is empty: every address may use the management API"}
	case allow.Contains(ip):
		return Decision{Allow: true, Code: CodeNetworkAllowed, Reason: fmt.Sprintf("network.management_allow contains %s", ip.Unmap())}
	}
	return deny(CodeManagementDenied, "client with IP '%s' is not allowed to use the management API (network.management_allow)", ip.Unmap())
}

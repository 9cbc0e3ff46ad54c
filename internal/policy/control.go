package policy

import (
	"github.com/berth-registry/berth/internal/authn"
)

// ServerScope is the scope of the whole server; a registry's scope is "/registries/NAME".
const ServerScope = "/"

// RegistryScope is the scope of one registry.
func RegistryScope(name string) string { return "/registries/" + name }

// DecideControl answers whether p holds permission perm at a registry ("" for the server scope
// "/", which only assignments at "/" cover). Conditions do not apply to the control plane.
func DecideControl(s *Snapshot, p authn.Principal, perm Permission, registry string) Decision {
	if p.Kind != authn.KindUser && p.Kind != authn.KindSP {
		return deny(CodeNoAssignment, "%s cannot use the management API: sign in with 'berth auth login' as a user or service principal", p)
	}
	if !s.exists(p) {
		return deny(CodeIdentityGone, "%s no longer exists", p)
	}
	if registry != "" {
		if _, ok := s.registries[registry]; !ok {
			return deny(CodeNoRegistry, "registry %q does not exist", registry)
		}
	}
	var found *assignment
	s.eachAssignment(p, func(as *assignment) bool {
		if as.role != nil && as.role.has(perm) && (as.registry == "" || as.registry == registry) {
			found = as
		}
		return found != nil
	})
	if found != nil {
		return Decision{Allow: true, Code: CodeControlPermission, Reason: found.desc}
	}
	return deny(CodeNoAssignment, "%s has no role that gives %s at %s", p, perm, scopeOf(registry))
}

func scopeOf(registry string) string {
	if registry == "" {
		return ServerScope
	}
	return RegistryScope(registry)
}

// eachAssignment calls fn with the assignments that speak for p (its own, then its groups'),
// until fn returns true.
func (s *Snapshot) eachAssignment(p authn.Principal, fn func(*assignment) bool) {
	for _, as := range s.assignments[principalKey{string(p.Kind), p.ID}] {
		if fn(as) {
			return
		}
	}
	if p.Kind != authn.KindUser {
		return
	}
	for _, g := range s.groups[p.ID] {
		for _, as := range s.assignments[principalKey{"group", g}] {
			if fn(as) {
				return
			}
		}
	}
}

// Permissions lists the control-plane permissions p holds at a registry ("" for "/").
func Permissions(s *Snapshot, p authn.Principal, registry string) []Permission {
	var out []Permission
	for _, perm := range AllPermissions {
		if DecideControl(s, p, perm, registry).Allow {
			out = append(out, perm)
		}
	}
	return out
}

// HasAnyRole reports whether p holds any role assignment that covers registry ("" for the
// server's scope only), which is what listing it needs.
func HasAnyRole(s *Snapshot, p authn.Principal, registry string) bool {
	found := false
	s.eachAssignment(p, func(as *assignment) bool {
		found = as.registry == "" || as.registry == registry
		return found
	})
	return found && s.exists(p)
}

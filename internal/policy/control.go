package policy

import (
	"fmt"

	"github.com/berth-registry/berth/internal/access"
)

// ServerScope is the scope of the whole server; a registry's scope is "/registries/NAME".
const ServerScope = "/"

// RegistryScope is the scope of one registry.
func RegistryScope(name string) string { return "/registries/" + name }

// DecideControl answers whether p holds permission perm at a registry ("" for the server scope
// "/", which only assignments at "/" cover). Conditions do not apply to the control plane.
func DecideControl(s *Snapshot, p access.Principal, perm Permission, registry string) Decision {
	if p.Kind != access.KindUser && p.Kind != access.KindSP {
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
func (s *Snapshot) eachAssignment(p access.Principal, fn func(*assignment) bool) {
	for _, as := range s.assignments[principalKey{string(p.Kind), p.ID}] {
		if fn(as) {
			return
		}
	}
	if p.Kind != access.KindUser {
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
func Permissions(s *Snapshot, p access.Principal, registry string) []Permission {
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
func HasAnyRole(s *Snapshot, p access.Principal, registry string) bool {
	found := false
	s.eachAssignment(p, func(as *assignment) bool {
		found = as.registry == "" || as.registry == registry
		return found
	})
	return found && s.exists(p)
}

// CodeWouldGrantMore refuses a change to an identity that holds more than the caller may assign.
const CodeWouldGrantMore = "would_grant_more"

// DecideManage answers whether caller may change what an identity can do or who can act as it:
// reset its password or secret, add or remove a group's members, or delete it. Whoever resets a
// password gets the target's roles, and deleting or removing takes them from whoever relies on
// them, so at every scope where the target holds one (itself, or for a user through its groups)
// caller must be able to assign roles: no permission grants another. kind is access.KindUser,
// access.KindSP or "group"; a target without roles needs nothing more than the route's own
// permission. Assignments at a registry that no longer exists grant nothing and are skipped.
func DecideManage(s *Snapshot, caller access.Principal, kind access.Kind, id int64, name string) Decision {
	var short *assignment
	check := func(as *assignment) bool {
		if as.registry != "" {
			if _, ok := s.registries[as.registry]; !ok {
				return false
			}
		}
		if !DecideControl(s, caller, PermAssignmentsWrite, as.registry).Allow {
			short = as
			return true
		}
		return false
	}
	if kind == "group" {
		for _, as := range s.assignments[principalKey{"group", id}] {
			if check(as) {
				break
			}
		}
	} else {
		s.eachAssignment(access.Principal{Kind: kind, ID: id}, check)
	}
	if short != nil {
		role := short.roleName
		if short.role != nil {
			role = short.role.Name
		}
		return deny(CodeWouldGrantMore, "%s %q holds %s at %s (%s); changing, deleting or changing the members of it needs the right to assign roles there (Owner or Role Based Access Control Administrator), which %s does not have",
			kind, name, role, scopeOf(short.registry), short.desc, caller)
	}
	return Decision{Allow: true, Code: CodeControlPermission, Reason: fmt.Sprintf("%s may assign every role %s %q holds", caller, kind, name)}
}

// IdentityExists reports whether the user or service principal a directory token names is still
// the one it was issued to (same id and name; ids are never reused).
func IdentityExists(s *Snapshot, p access.Principal) bool { return s.exists(p) }

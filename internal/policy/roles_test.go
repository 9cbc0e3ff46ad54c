package policy

import (
	"regexp"
	"strings"
	"testing"
)

// TestRoleIDs: every built-in role has ACR's published role definition id (a GUID, each its
// own), and its replacement in the other mode names existing roles.
func TestRoleIDs(t *testing.T) {
	guid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	seen := map[string]string{}
	for _, r := range Roles {
		if !guid.MatchString(r.ID) {
			t.Errorf("role %q has id %q; want ACR's GUID", r.Name, r.ID)
		}
		if other, dup := seen[r.ID]; dup {
			t.Errorf("roles %q and %q share the id %s", r.Name, other, r.ID)
		}
		seen[r.ID] = r.Name
		if r.Replacement != "" {
			for _, name := range strings.Split(r.Replacement, "' and '") {
				if _, ok := RoleByName(name); !ok {
					t.Errorf("role %q's replacement names %q, not a role", r.Name, name)
				}
			}
		}
	}
}

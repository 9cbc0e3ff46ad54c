package policy

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/policy/policytest"
)

func readExpected(t *testing.T) policytest.Table {
	t.Helper()
	e, err := policytest.Read("testdata/decisions.txt")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

const nameAttr = policytest.NameAttribute

var conditionTexts = policytest.ConditionTexts

var (
	everyAction = []Action{ActionPull, ActionPush, ActionDelete, ActionMetadataRead, ActionMetadataWrite, ActionCatalog}
	testRepos   = []string{"team-a/x", "team-b/x"}
)

// fixture is the directory every cell runs in: registry r (and other), user alice (1), user bob
// (2) in group devs (7), service principal (3), tokens.
func fixture(mode string, anonymous string) Input {
	r := Registry{ID: 1, Name: "r", AdminEnabled: true, RoleAssignmentMode: mode, PublicNetworkAccess: true, DefaultAction: DefaultActionAllow}
	switch anonymous {
	case "anonymous-pull":
		r.AnonymousPullEnabled = true
	case "anonymous-prefix":
		r.AnonymousPullRepositories = []string{"team-a/*"}
	}
	return Input{
		Version:    1,
		Registries: []Registry{r, {ID: 2, Name: "other", RoleAssignmentMode: mode, PublicNetworkAccess: true, DefaultAction: DefaultActionAllow}},
		ScopeMaps: []ScopeMap{
			{ID: 10, RegistryID: 1, Name: "team-a-map", Rules: []ScopeRule{{Repository: "team-a/*", Action: "content/read"},
				{Repository: "team-a/*", Action: "content/write"}, {Repository: "team-a/*", Action: "metadata/read"}}},
			{ID: 11, RegistryID: 1, Name: "_repositories_admin", Rules: []ScopeRule{{Repository: "*", Action: "content/read"},
				{Repository: "*", Action: "content/write"}, {Repository: "*", Action: "content/delete"},
				{Repository: "*", Action: "metadata/read"}, {Repository: "*", Action: "metadata/write"}}},
		},
		Tokens: []Token{{ID: 20, RegistryID: 1, Name: "ci", ScopeMapID: 10, ScopeMap: "team-a-map", Status: "enabled"},
			{ID: 21, RegistryID: 1, Name: "ci-admin", ScopeMapID: 11, ScopeMap: "_repositories_admin", Status: "enabled"}},
		Memberships:       map[int64][]int64{2: {7}},
		Users:             []User{{ID: 1, Name: "alice"}, {ID: 2, Name: "bob"}},
		Groups:            []Group{{ID: 7, Name: "devs"}},
		ServicePrincipals: []ServicePrincipal{{ID: 3, AppID: "11111111-2222-4333-8444-555555555555"}},
	}
}

// holder is an identity kind that roles are assigned to: who gets the assignment, who asks.
type holder struct {
	name      string
	kind      string
	id        int64
	principal access.Principal
}

var holders = []holder{
	{"user", AssigneeUser, 1, access.Principal{Kind: access.KindUser, Name: "alice", ID: 1}},
	{"group member", AssigneeGroup, 7, access.Principal{Kind: access.KindUser, Name: "bob", ID: 2}},
	{"service principal", AssigneeSP, 3, access.Principal{Kind: access.KindSP, Name: "11111111-2222-4333-8444-555555555555", ID: 3}},
}

// actionName is an action as the table spells it.
func actionName(a Action) string {
	if a == ActionCatalog {
		return "catalog"
	}
	return string(a)
}

// want is the expected outcome of one cell: "allow", "deny" or, for the catalog, "filtered".
func cell(allow bool, filtered bool) string {
	switch {
	case filtered:
		return "filtered"
	case allow:
		return "allow"
	}
	return "deny"
}

func TestDecisionTable(t *testing.T) {
	e := readExpected(t)
	if len(e.Roles) != len(Roles) {
		t.Errorf("the table has %d roles, berth %d", len(e.Roles), len(Roles))
	}
	cells, mismatches := 0, 0
	check := func(what string, got Decision, want string) {
		cells++
		if g := cell(got.Allow, got.Filtered); g != want {
			mismatches++
			if mismatches <= 30 {
				t.Errorf("%s: got %s (%s), want %s", what, g, got.Reason, want)
			}
		}
	}
	for _, mode := range []string{"rbac", "rbac-abac"} {
		mi := map[string]int{"rbac": 0, "rbac-abac": 1}[mode]
		for _, roleName := range e.RoleOrder {
			conds := []string{"none"}
			if e.Conditional[roleName] {
				conds = []string{"none", "equals", "prefix", "like", "idiom"}
			}
			for scope, covers := range e.Scopes {
				for _, cond := range conds {
					for _, h := range holders {
						in := fixture(mode, "")
						in.Assignments = []RoleAssignment{{ID: "ra", PrincipalKind: h.kind, PrincipalID: h.id, Role: roleName, Scope: scope,
							Condition: conditionTexts[cond], ConditionVersion: map[bool]string{true: "2.0"}[cond != "none"]}}
						s := Compile(in)
						roleActions := e.Roles[roleName][mi]
						for _, a := range everyAction {
							given := covers && slices.Contains(roleActions, actionName(a))
							if a == ActionCatalog {
								what := fmt.Sprintf("%s %s/%s/%s/%s catalog", mode, h.name, roleName, scope, cond)
								check(what, Decide(s, h.principal, a, Resource{Registry: "r", Type: TypeRegistry, Name: "catalog"}),
									cell(given, !given))
								continue
							}
							for _, repo := range testRepos {
								want := given && slices.Contains(e.Conditions[cond][string(a)], repo)
								what := fmt.Sprintf("%s %s/%s/%s/%s %s %s", mode, h.name, roleName, scope, cond, a, repo)
								check(what, Decide(s, h.principal, a, Resource{Registry: "r", Type: TypeRepository, Name: repo}), cell(want, false))
							}
						}
					}
				}
			}
		}
		for name, rows := range e.Fixed {
			row := rows[mi]
			anonymous := ""
			var p access.Principal
			switch name {
			case "admin":
				p = access.Principal{Kind: access.KindAdmin, Name: "r", ID: 1, Registry: "r"}
			case "token":
				p = access.Principal{Kind: access.KindToken, Name: "ci", ID: 20, Registry: "r"}
			case "token-admin":
				p = access.Principal{Kind: access.KindToken, Name: "ci-admin", ID: 21, Registry: "r"}
			default:
				p, anonymous = access.Anonymous, name
			}
			s := Compile(fixture(mode, anonymous))
			for _, a := range everyAction {
				given := slices.Contains(row.Actions, actionName(a))
				if a == ActionCatalog {
					// Authenticated identities without the catalog see it filtered; anonymous ones do not.
					check(fmt.Sprintf("%s %s catalog", mode, name), Decide(s, p, a, Resource{Registry: "r", Type: TypeRegistry, Name: "catalog"}),
						cell(given, !given && !p.IsAnonymous()))
					continue
				}
				for _, repo := range testRepos {
					want := given && slices.Contains(row.Repos, repo)
					check(fmt.Sprintf("%s %s %s %s", mode, name, a, repo), Decide(s, p, a, Resource{Registry: "r", Type: TypeRepository, Name: repo}), cell(want, false))
				}
			}
		}
	}
	// Control plane: each role at "/" and at its registry gives its permissions there; at
	// another registry, nothing here.
	for roleName, perms := range e.Control {
		for scope, covers := range e.Scopes {
			in := fixture("rbac", "")
			in.Assignments = []RoleAssignment{{ID: "ra", PrincipalKind: AssigneeUser, PrincipalID: 1, Role: roleName, Scope: scope}}
			s := Compile(in)
			alice := holders[0].principal
			for _, perm := range AllPermissions {
				want := covers && slices.Contains(perms, string(perm))
				if strings.HasPrefix(string(perm), "directory/") && scope != "/" {
					want = false // the directory is server-wide: only assignments at "/" cover it
				}
				registry := "r"
				if strings.HasPrefix(string(perm), "directory/") {
					registry = ""
				}
				check(fmt.Sprintf("control %s at %s: %s", roleName, scope, perm), DecideControl(s, alice, perm, registry), cell(want, false))
			}
		}
	}
	t.Logf("%d cells, %d mismatches", cells, mismatches)
	if cells < 2000 {
		t.Errorf("only %d cells were checked", cells)
	}
}

package policy

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/authn"
	"github.com/berth-registry/berth/internal/store"
)

// expected is testdata/decisions.txt, read.
type expected struct {
	roles       map[string][2][]string // role → per mode (rbac, rbac-abac) → actions
	conditional map[string]bool
	conditions  map[string]map[string][]string // name → action → repositories
	scopes      map[string]bool                // scope → covers r
	fixed       map[string][2]fixedRow
	control     map[string][]string
	roleOrder   []string
}

type fixedRow struct{ actions, repos []string }

func fields(s string) []string {
	f := strings.Fields(s)
	if len(f) == 1 && f[0] == "-" {
		return nil
	}
	return f
}

func readExpected(t *testing.T) expected {
	t.Helper()
	f, err := os.Open("testdata/decisions.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e := expected{roles: map[string][2][]string{}, conditional: map[string]bool{}, conditions: map[string]map[string][]string{},
		scopes: map[string]bool{}, fixed: map[string][2]fixedRow{}, control: map[string][]string{}}
	modeIndex := func(s string) int {
		m, ok := ParseMode(s)
		if !ok {
			t.Fatalf("bad mode %q", s)
		}
		return int(m)
	}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kind, rest, _ := strings.Cut(line, " ")
		cols := strings.Split(rest, "|")
		for i := range cols {
			cols[i] = strings.TrimSpace(cols[i])
		}
		bad := func() { t.Fatalf("testdata/decisions.txt:%d: malformed %q", n, line) }
		switch kind {
		case "role":
			if len(cols) != 3 {
				bad()
			}
			r := e.roles[cols[0]]
			r[modeIndex(cols[1])] = fields(cols[2])
			if _, seen := e.roles[cols[0]]; !seen {
				e.roleOrder = append(e.roleOrder, cols[0])
			}
			e.roles[cols[0]] = r
		case "conditional":
			e.conditional[rest] = true
		case "condition":
			if len(cols) != 3 {
				bad()
			}
			if e.conditions[cols[0]] == nil {
				e.conditions[cols[0]] = map[string][]string{}
			}
			for _, a := range fields(cols[1]) {
				e.conditions[cols[0]][a] = fields(cols[2])
			}
		case "scope":
			if len(cols) != 2 {
				bad()
			}
			e.scopes[cols[0]] = cols[1] == "yes"
		case "fixed":
			if len(cols) != 4 {
				bad()
			}
			r := e.fixed[cols[0]]
			r[modeIndex(cols[1])] = fixedRow{fields(cols[2]), fields(cols[3])}
			e.fixed[cols[0]] = r
		case "control":
			if len(cols) != 2 {
				bad()
			}
			e.control[cols[0]] = fields(cols[1])
		default:
			bad()
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return e
}

const nameAttr = "@Request[Microsoft.ContainerRegistry/registries/repositories:name]"

var conditionTexts = map[string]string{
	"none":   "",
	"equals": nameAttr + " StringEqualsIgnoreCase 'TEAM-A/X'",
	"prefix": nameAttr + " StringStartsWithIgnoreCase 'team-a/'",
	"like":   nameAttr + " StringLike 'team-?/x' AND !(" + nameAttr + " StringStartsWith 'team-b')",
	"idiom": `(
 (
  !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'})
  AND
  !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'})
 )
 OR
 (
  ` + nameAttr + ` StringEqualsIgnoreCase 'team-a/x'
 )
)`,
}

var (
	everyAction = []Action{ActionPull, ActionPush, ActionDelete, ActionMetadataRead, ActionMetadataWrite, ActionCatalog}
	testRepos   = []string{"team-a/x", "team-b/x"}
)

// fixture is the directory every cell runs in: registry r (and other), user alice (1), user bob
// (2) in group devs (7), service principal (3), tokens.
func fixture(mode string, anonymous string) Input {
	r := store.Registry{ID: 1, Name: "r", AdminEnabled: true, RoleAssignmentMode: mode, PublicNetworkAccess: true, DefaultAction: store.ActionAllow}
	switch anonymous {
	case "anonymous-pull":
		r.AnonymousPullEnabled = true
	case "anonymous-prefix":
		r.AnonymousPullRepositories = []string{"team-a/*"}
	}
	return Input{
		Version:    1,
		Registries: []store.Registry{r, {ID: 2, Name: "other", RoleAssignmentMode: mode, PublicNetworkAccess: true, DefaultAction: store.ActionAllow}},
		ScopeMaps: []store.ScopeMap{
			{ID: 10, RegistryID: 1, Name: "team-a-map", Rules: []store.ScopeRule{{Repository: "team-a/*", Action: "content/read"},
				{Repository: "team-a/*", Action: "content/write"}, {Repository: "team-a/*", Action: "metadata/read"}}},
			{ID: 11, RegistryID: 1, Name: "_repositories_admin", Rules: []store.ScopeRule{{Repository: "*", Action: "content/read"},
				{Repository: "*", Action: "content/write"}, {Repository: "*", Action: "content/delete"},
				{Repository: "*", Action: "metadata/read"}, {Repository: "*", Action: "metadata/write"}}},
		},
		Tokens: []store.Token{{ID: 20, RegistryID: 1, Name: "ci", ScopeMapID: 10, ScopeMap: "team-a-map", Status: "enabled"},
			{ID: 21, RegistryID: 1, Name: "ci-admin", ScopeMapID: 11, ScopeMap: "_repositories_admin", Status: "enabled"}},
		Memberships:       map[int64][]int64{2: {7}},
		Users:             []store.User{{ID: 1, Name: "alice"}, {ID: 2, Name: "bob"}},
		Groups:            []store.Group{{ID: 7, Name: "devs"}},
		ServicePrincipals: []store.ServicePrincipal{{ID: 3, AppID: "11111111-2222-4333-8444-555555555555"}},
	}
}

// holder is an identity kind that roles are assigned to: who gets the assignment, who asks.
type holder struct {
	name      string
	kind      string
	id        int64
	principal authn.Principal
}

var holders = []holder{
	{"user", store.KindUser, 1, authn.Principal{Kind: authn.KindUser, Name: "alice", ID: 1}},
	{"group member", store.KindGroup, 7, authn.Principal{Kind: authn.KindUser, Name: "bob", ID: 2}},
	{"service principal", store.KindSP, 3, authn.Principal{Kind: authn.KindSP, Name: "11111111-2222-4333-8444-555555555555", ID: 3}},
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
	if len(e.roles) != len(Roles) {
		t.Errorf("the table has %d roles, berth %d", len(e.roles), len(Roles))
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
		for _, roleName := range e.roleOrder {
			conds := []string{"none"}
			if e.conditional[roleName] {
				conds = []string{"none", "equals", "prefix", "like", "idiom"}
			}
			for scope, covers := range e.scopes {
				for _, cond := range conds {
					for _, h := range holders {
						in := fixture(mode, "")
						in.Assignments = []store.RoleAssignment{{ID: "ra", PrincipalKind: h.kind, PrincipalID: h.id, Role: roleName, Scope: scope,
							Condition: conditionTexts[cond], ConditionVersion: map[bool]string{true: "2.0"}[cond != "none"]}}
						s := Compile(in)
						roleActions := e.roles[roleName][mi]
						for _, a := range everyAction {
							given := covers && slices.Contains(roleActions, actionName(a))
							if a == ActionCatalog {
								what := fmt.Sprintf("%s %s/%s/%s/%s catalog", mode, h.name, roleName, scope, cond)
								check(what, Decide(s, h.principal, a, Resource{Registry: "r", Type: TypeRegistry, Name: "catalog"}),
									cell(given, !given))
								continue
							}
							for _, repo := range testRepos {
								want := given && slices.Contains(e.conditions[cond][string(a)], repo)
								what := fmt.Sprintf("%s %s/%s/%s/%s %s %s", mode, h.name, roleName, scope, cond, a, repo)
								check(what, Decide(s, h.principal, a, Resource{Registry: "r", Type: TypeRepository, Name: repo}), cell(want, false))
							}
						}
					}
				}
			}
		}
		for name, rows := range e.fixed {
			row := rows[mi]
			anonymous := ""
			var p authn.Principal
			switch name {
			case "admin":
				p = authn.Principal{Kind: authn.KindAdmin, Name: "r", ID: 1, Registry: "r"}
			case "token":
				p = authn.Principal{Kind: authn.KindToken, Name: "ci", ID: 20, Registry: "r"}
			case "token-admin":
				p = authn.Principal{Kind: authn.KindToken, Name: "ci-admin", ID: 21, Registry: "r"}
			default:
				p, anonymous = authn.Anonymous, name
			}
			s := Compile(fixture(mode, anonymous))
			for _, a := range everyAction {
				given := slices.Contains(row.actions, actionName(a))
				if a == ActionCatalog {
					// Authenticated identities without the catalog see it filtered; anonymous ones do not.
					check(fmt.Sprintf("%s %s catalog", mode, name), Decide(s, p, a, Resource{Registry: "r", Type: TypeRegistry, Name: "catalog"}),
						cell(given, !given && !p.IsAnonymous()))
					continue
				}
				for _, repo := range testRepos {
					want := given && slices.Contains(row.repos, repo)
					check(fmt.Sprintf("%s %s %s %s", mode, name, a, repo), Decide(s, p, a, Resource{Registry: "r", Type: TypeRepository, Name: repo}), cell(want, false))
				}
			}
		}
	}
	// Control plane: each role at "/" and at its registry gives its permissions there; at
	// another registry, nothing here.
	for roleName, perms := range e.control {
		for scope, covers := range e.scopes {
			in := fixture("rbac", "")
			in.Assignments = []store.RoleAssignment{{ID: "ra", PrincipalKind: store.KindUser, PrincipalID: 1, Role: roleName, Scope: scope}}
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

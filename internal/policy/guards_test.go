package policy

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/berth-registry/berth/internal/access"
)

// TestStalePrincipals checks that a principal carried by a token (an id and a name) speaks only
// for the identity that still has both: an id reused by a new identity of another name, or a
// name with another id, gets nothing — on the data plane and on the control plane.
func TestStalePrincipals(t *testing.T) {
	in := fixture("rbac", "")
	in.Assignments = []RoleAssignment{
		{ID: "a-owner", PrincipalKind: AssigneeUser, PrincipalID: 1, Role: RoleOwner, Scope: "/"},
		{ID: "sp-owner", PrincipalKind: AssigneeSP, PrincipalID: 3, Role: RoleOwner, Scope: "/"},
	}
	s := Compile(in)
	sp := holders[2].principal
	alice := holders[0].principal
	ci := access.Principal{Kind: access.KindToken, Name: "ci", ID: 20, Registry: "r"}
	rename := func(p access.Principal, name string) access.Principal { p.Name = name; return p }
	reid := func(p access.Principal, id int64) access.Principal { p.ID = id; return p }
	for _, tc := range []struct {
		name string
		p    access.Principal
		code string
	}{
		{"token id of another token's name", rename(ci, "ci-admin"), CodeTokenGone},
		{"token id reused under a new name", rename(ci, "ghost"), CodeTokenGone},
		{"token name with another id", reid(ci, 99), CodeTokenGone},
		{"user id reused under a new name", rename(alice, "mallory"), CodeIdentityGone},
		{"user name with another id", reid(alice, 2), CodeIdentityGone},
		{"service principal id reused", rename(sp, "99999999-2222-4333-8444-555555555555"), CodeIdentityGone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(s, tc.p, ActionPull, repo("team-a/x"))
			if d.Allow || d.Code != tc.code {
				t.Errorf("pull: %+v; want a denial with code %s", d, tc.code)
			}
			if tc.p.Kind == access.KindToken {
				return // tokens never reach the control plane
			}
			for _, perm := range AllPermissions {
				registry := "r"
				if strings.HasPrefix(string(perm), "directory/") {
					registry = ""
				}
				if d := DecideControl(s, tc.p, perm, registry); d.Allow || d.Code != CodeIdentityGone {
					t.Errorf("control %s: %+v; want a denial with code %s", perm, d, CodeIdentityGone)
				}
			}
			if HasAnyRole(s, tc.p, "r") {
				t.Error("HasAnyRole is true for a principal that no longer exists")
			}
			if ps := Permissions(s, tc.p, ""); len(ps) != 0 {
				t.Errorf("Permissions = %v; want none", ps)
			}
		})
	}
	// The genuine principals are allowed, so the denials above are about identity alone.
	for _, p := range []access.Principal{alice, sp, ci} {
		if d := Decide(s, p, ActionPull, repo("team-a/x")); !d.Allow {
			t.Errorf("%s: %+v", p, d)
		}
	}
	for _, p := range []access.Principal{alice, sp} {
		if d := DecideControl(s, p, PermAssignmentsWrite, ""); !d.Allow {
			t.Errorf("%s control: %+v", p, d)
		}
	}
}

// bigSnapshot is the snapshot of BenchmarkDecide and TestDecideAllocations: 10 000 role
// assignments with conditions and 1 000 scope maps with tokens.
func bigSnapshot() *Snapshot {
	in := fixture("rbac-abac", "anonymous-prefix")
	for i := 0; i < 1000; i++ {
		id := int64(100 + i)
		in.ScopeMaps = append(in.ScopeMaps, ScopeMap{ID: id, RegistryID: 1, Name: fmt.Sprintf("map-%d", i), Rules: []ScopeRule{
			{Repository: fmt.Sprintf("team-%d/*", i), Action: "content/read"}, {Repository: fmt.Sprintf("team-%d/app", i), Action: "content/write"}}})
		in.Tokens = append(in.Tokens, Token{ID: id, RegistryID: 1, Name: fmt.Sprintf("tok-%d", i), ScopeMapID: id, ScopeMap: fmt.Sprintf("map-%d", i), Status: "enabled"})
	}
	for i := 0; i < 10000; i++ {
		uid := int64(1000 + i)
		in.Users = append(in.Users, User{ID: uid, Name: fmt.Sprintf("user-%d", i)})
		in.Assignments = append(in.Assignments, RoleAssignment{ID: fmt.Sprintf("ra-%d", i), PrincipalKind: AssigneeUser, PrincipalID: uid,
			Role: RoleRepositoryWriter, Scope: "/registries/r", Condition: nameAttr + fmt.Sprintf(" StringStartsWithIgnoreCase 'team-%d/'", i%1000), ConditionVersion: "2.0"})
	}
	return Compile(in)
}

// decideCase is one allowed decision on bigSnapshot.
type decideCase struct {
	name string
	p    access.Principal
	a    Action
	res  Resource
}

var decideCases = []decideCase{
	{"user-condition", access.Principal{Kind: access.KindUser, Name: "user-4242", ID: 1000 + 4242}, ActionPush, repo("team-242/app")},
	{"token-scope-map", access.Principal{Kind: access.KindToken, Name: "tok-242", ID: 100 + 242, Registry: "r"}, ActionPull, repo("team-242/app")},
	{"token-catalog-filtered", access.Principal{Kind: access.KindToken, Name: "tok-242", ID: 100 + 242, Registry: "r"}, ActionCatalog,
		Resource{Registry: "r", Type: TypeRegistry, Name: "catalog"}},
	{"admin", access.Principal{Kind: access.KindAdmin, Name: "r", ID: 1, Registry: "r"}, ActionPush, repo("x")},
	{"anonymous-pull", access.Anonymous, ActionPull, repo("team-a/x")},
	// A request with a bearer access token: the policy and the token's grant.
	{"token-bearer", access.Principal{Kind: access.KindToken, Name: "tok-242", ID: 100 + 242, Registry: "r", Scoped: true,
		Grant: access.Grant{{Type: TypeRepository, Name: "team-241/app", Actions: []string{"pull"}}, {Type: TypeRepository, Name: "team-242/app", Actions: []string{"pull", "push"}}}},
		ActionPull, repo("team-242/app")},
}

// TestDecideAllocations holds Decide to what its comment and docs/benchmarks.md promise: an
// allowing decision allocates nothing.
func TestDecideAllocations(t *testing.T) {
	s := bigSnapshot()
	for _, c := range decideCases {
		if d := Decide(s, c.p, c.a, c.res); !d.Allow {
			t.Fatalf("%s: denied: %s", c.name, d.Reason)
		}
		if n := testing.AllocsPerRun(200, func() { Decide(s, c.p, c.a, c.res) }); n != 0 {
			t.Errorf("%s: %.1f allocations per decision; want 0", c.name, n)
		}
	}
}

// FuzzLike checks StringLike's matcher against the regular expression the pattern stands for.
func FuzzLike(f *testing.F) {
	for _, seed := range [][2]string{{"a/b/b/c", "a/*/c"}, {"a/bb/c", "a/?/c"}, {"", "*"}, {"aXbYbZc", "a*b*c"},
		{"aXbYbZ", "a*b*c"}, {"é/x", "?/x"}, {"ab", "a**b"}, {"team-a/x", "team-?/*"}} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, s, pattern string) {
		// Conditions are valid UTF-8 (ParseCondition refuses others) and so are repository names.
		if len(pattern) > 64 || len(s) > 256 || !utf8.ValidString(s) || !utf8.ValidString(pattern) {
			return
		}
		var re strings.Builder
		re.WriteString(`(?s)\A`)
		for _, r := range pattern {
			switch r {
			case '*':
				re.WriteString(".*")
			case '?':
				re.WriteString(".")
			default:
				re.WriteString(regexp.QuoteMeta(string(r)))
			}
		}
		re.WriteString(`\z`)
		want := regexp.MustCompile(re.String()).MatchString(s)
		if got := like(s, pattern); got != want {
			t.Fatalf("like(%q, %q) = %v; the pattern as %s says %v", s, pattern, got, re.String(), want)
		}
	})
}

// TestDecideManage: changing who can act as an identity (a password, a secret, a group's
// members) needs the right to assign every role it holds, where it holds it: no permission
// grants another.
func TestDecideManage(t *testing.T) {
	in := fixture("rbac", "")
	in.Users = append(in.Users, User{ID: 5, Name: "dave"}, User{ID: 10, Name: "rbac-r"}, User{ID: 11, Name: "contrib"}, User{ID: 12, Name: "plain"},
		User{ID: 13, Name: "erin"}, User{ID: 14, Name: "frank"}, User{ID: 15, Name: "gina"})
	in.Groups = append(in.Groups, Group{ID: 8, Name: "mixed"})
	in.Assignments = []RoleAssignment{
		// Every one of a target's roles counts, whichever comes first: erin's first is at a
		// registry that is gone, frank's and the group mixed's first is one rbac-r may assign.
		{ID: "e1", PrincipalKind: AssigneeUser, PrincipalID: 13, Role: "Reader", Scope: "/registries/gone"},
		{ID: "e2", PrincipalKind: AssigneeUser, PrincipalID: 13, Role: RoleOwner, Scope: "/"},
		{ID: "f1", PrincipalKind: AssigneeUser, PrincipalID: 14, Role: "AcrPush", Scope: "/registries/r"},
		{ID: "f2", PrincipalKind: AssigneeUser, PrincipalID: 14, Role: RoleOwner, Scope: "/"},
		{ID: "m1", PrincipalKind: AssigneeGroup, PrincipalID: 8, Role: "AcrPush", Scope: "/registries/r"},
		{ID: "m2", PrincipalKind: AssigneeGroup, PrincipalID: 8, Role: RoleOwner, Scope: "/"},
		// A role berth does not know (stored by an older or newer berth) still counts.
		{ID: "g1", PrincipalKind: AssigneeUser, PrincipalID: 15, Role: "Legacy Registry Role", Scope: "/"},
		{ID: "1", PrincipalKind: AssigneeUser, PrincipalID: 1, Role: RoleOwner, Scope: "/"},
		{ID: "2", PrincipalKind: AssigneeGroup, PrincipalID: 7, Role: "AcrPush", Scope: "/registries/r"},
		{ID: "3", PrincipalKind: AssigneeSP, PrincipalID: 3, Role: "Reader", Scope: "/registries/other"},
		{ID: "4", PrincipalKind: AssigneeUser, PrincipalID: 5, Role: "Reader", Scope: "/registries/gone"},
		{ID: "5", PrincipalKind: AssigneeUser, PrincipalID: 10, Role: "Role Based Access Control Administrator", Scope: "/registries/r"},
		{ID: "6", PrincipalKind: AssigneeUser, PrincipalID: 11, Role: "Contributor", Scope: "/"},
	}
	s := Compile(in)
	user := func(id int64, name string) access.Principal {
		return access.Principal{Kind: access.KindUser, ID: id, Name: name}
	}
	alice, rbacR, contrib := user(1, "alice"), user(10, "rbac-r"), user(11, "contrib")
	type target struct {
		kind access.Kind
		id   int64
		name string
	}
	var (
		tAlice = target{access.KindUser, 1, "alice"}
		tBob   = target{access.KindUser, 2, "bob"} // through the group devs
		tDevs  = target{"group", 7, "devs"}
		tSP    = target{access.KindSP, 3, "11111111-2222-4333-8444-555555555555"}
		tDave  = target{access.KindUser, 5, "dave"} // only at a registry that is gone
		tPlain = target{access.KindUser, 12, "plain"}
	)
	for _, tc := range []struct {
		caller access.Principal
		target target
		allow  bool
	}{
		{contrib, tAlice, false}, {contrib, tBob, false}, {contrib, tDevs, false}, {contrib, tSP, false},
		{contrib, tDave, true}, {contrib, tPlain, true},
		{rbacR, tBob, true}, {rbacR, tDevs, true}, {rbacR, tAlice, false}, {rbacR, tSP, false}, {rbacR, tPlain, true},
		{alice, tAlice, true}, {alice, tBob, true}, {alice, tDevs, true}, {alice, tSP, true}, {alice, tDave, true},
		{contrib, target{access.KindUser, 13, "erin"}, false},
		{rbacR, target{access.KindUser, 14, "frank"}, false},
		{rbacR, target{"group", 8, "mixed"}, false},
		{contrib, target{access.KindUser, 15, "gina"}, false},
		{alice, target{access.KindUser, 14, "frank"}, true},
	} {
		d := DecideManage(s, tc.caller, tc.target.kind, tc.target.id, tc.target.name)
		if d.Allow != tc.allow {
			t.Errorf("%s manages %s %s: %+v; want allow %v", tc.caller.Name, tc.target.kind, tc.target.name, d, tc.allow)
		}
		if !d.Allow && (d.Code != CodeWouldGrantMore || !strings.Contains(d.Reason, tc.target.name) || !strings.Contains(d.Reason, "Owner or Role Based Access Control Administrator")) {
			t.Errorf("%s manages %s: the refusal %+v does not name the target and what it needs", tc.caller.Name, tc.target.name, d)
		}
	}
	if d := DecideManage(s, contrib, access.KindUser, 1, "alice"); !strings.Contains(d.Reason, "Owner at /") {
		t.Errorf("the refusal does not say which role where: %s", d.Reason)
	}
	if d := DecideManage(s, contrib, access.KindUser, 15, "gina"); !strings.Contains(d.Reason, "Legacy Registry Role at /") {
		t.Errorf("the refusal does not name the unknown role: %s", d.Reason)
	}
}

// TestAdminOfARecreatedRegistry: the admin user's credentials belong to one registry row; a
// registry deleted and created again under the same name (a new id) does not honour them.
func TestAdminOfARecreatedRegistry(t *testing.T) {
	s := Compile(fixture("rbac", ""))
	admin := access.Principal{Kind: access.KindAdmin, Name: "r", ID: 1, Registry: "r"}
	if d := Decide(s, admin, ActionPush, repo("x")); !d.Allow {
		t.Fatalf("the admin user of r: %+v", d)
	}
	admin.ID = 9
	if d := Decide(s, admin, ActionPull, repo("x")); d.Allow || d.Code != CodeIdentityGone {
		t.Errorf("the admin user of an earlier registry r: %+v; want %s", d, CodeIdentityGone)
	}
}

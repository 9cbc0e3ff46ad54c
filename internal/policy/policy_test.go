package policy

import (
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/authn"
	"github.com/berth-registry/berth/internal/store"
)

func snapshot() *Snapshot {
	rules := func(rs ...store.ScopeRule) []rule {
		var out []rule
		for _, r := range rs {
			out = append(out, compileRule(r))
		}
		return out
	}
	return &Snapshot{
		Version:    7,
		registries: map[string]registryPolicy{"default": {id: 1, adminEnabled: true}, "team": {id: 2}},
		tokens: map[int64]tokenPolicy{
			10: {name: "ci", registry: "default", enabled: true, scopeMap: "ci-map", rules: rules(
				store.ScopeRule{Repository: "sample/*", Action: "content/read"},
				store.ScopeRule{Repository: "sample/teama/*", Action: "content/write"},
				store.ScopeRule{Repository: "sample/teama/projectb", Action: "content/delete"})},
			11: {name: "off", registry: "default", enabled: false, scopeMap: "_repositories_pull", rules: rules(store.ScopeRule{Repository: "*", Action: "content/read"})},
			12: {name: "all", registry: "default", enabled: true, scopeMap: "_repositories_pull", rules: rules(store.ScopeRule{Repository: "*", Action: "content/read"})},
			13: {name: "bare", registry: "default", enabled: true},
		},
		assignments: map[string][]assignment{
			"user:1":  {{id: "a1", role: RoleOwner, scope: "/"}},
			"group:5": {{id: "a2", role: RoleOwner, scope: "/registries/team"}},
			"sp:3":    {{id: "a3", role: "AcrPull", scope: "/"}},
		},
		groups: map[int64][]int64{2: {5}},
		users:  map[int64]string{1: "owner", 2: "alice", 4: "bob"},
		sps:    map[int64]string{3: "11111111-2222-4333-8444-555555555555"},
	}
}

func TestDecide(t *testing.T) {
	s := snapshot()
	repo := func(reg, name string) Resource { return Resource{Registry: reg, Type: TypeRepository, Name: name} }
	catalog := func(reg string) Resource { return Resource{Registry: reg, Type: TypeRegistry, Name: "catalog"} }
	admin := authn.Principal{Kind: authn.KindAdmin, Name: "default", ID: 1, Registry: "default"}
	teamAdmin := authn.Principal{Kind: authn.KindAdmin, Name: "team", ID: 2, Registry: "team"}
	tok := func(id int64, name string) authn.Principal {
		return authn.Principal{Kind: authn.KindToken, Name: name, ID: id, Registry: "default"}
	}
	owner := authn.Principal{Kind: authn.KindUser, Name: "owner", ID: 1}
	alice := authn.Principal{Kind: authn.KindUser, Name: "alice", ID: 2}
	bob := authn.Principal{Kind: authn.KindUser, Name: "bob", ID: 4}
	ghost := authn.Principal{Kind: authn.KindUser, Name: "mallory", ID: 1} // a deleted user's id reused
	sp := authn.Principal{Kind: authn.KindSP, Name: "11111111-2222-4333-8444-555555555555", ID: 3}
	for _, tc := range []struct {
		name   string
		p      authn.Principal
		a      Action
		res    Resource
		allow  bool
		reason string
	}{
		{"anonymous", authn.Anonymous, ActionPull, repo("default", "x"), false, "anonymous access is not enabled"},
		{"admin pushes", admin, ActionPush, repo("default", "x"), true, "admin user"},
		{"admin deletes", admin, ActionDelete, repo("default", "x"), true, ""},
		{"admin lists the catalog", admin, ActionCatalog, catalog("default"), true, ""},
		{"admin on another registry", admin, ActionPull, repo("team", "x"), false, "no rights on registry"},
		{"disabled admin", teamAdmin, ActionPull, repo("team", "x"), false, "admin user is disabled"},
		{"unknown registry", admin, ActionPull, repo("nope", "x"), false, "does not exist"},
		{"token reads under wildcard", tok(10, "ci"), ActionPull, repo("default", "sample/x"), true, "content/read on 'sample/*'"},
		{"token writes in teama", tok(10, "ci"), ActionPush, repo("default", "sample/teama/new"), true, "content/write"},
		{"token cannot write outside teama", tok(10, "ci"), ActionPush, repo("default", "sample/teamb/x"), false, "does not grant content/write"},
		{"token deletes projectb only", tok(10, "ci"), ActionDelete, repo("default", "sample/teama/projectb"), true, ""},
		{"token cannot delete projectc", tok(10, "ci"), ActionDelete, repo("default", "sample/teama/projectc"), false, ""},
		{"prefix needs the slash", tok(10, "ci"), ActionPull, repo("default", "samplex"), false, ""},
		{"token without '*' and the catalog", tok(10, "ci"), ActionCatalog, catalog("default"), false, "whole registry"},
		{"token with '*' lists the catalog", tok(12, "all"), ActionCatalog, catalog("default"), true, ""},
		{"disabled token", tok(11, "off"), ActionPull, repo("default", "x"), false, "token is disabled"},
		{"token without a scope map", tok(13, "bare"), ActionPull, repo("default", "x"), false, "no scope map"},
		{"deleted token", tok(99, "gone"), ActionPull, repo("default", "x"), false, "no longer exists"},
		{"token on another registry", tok(12, "all"), ActionPull, repo("team", "x"), false, "belongs to registry"},
		{"owner at /", owner, ActionDelete, repo("team", "x"), true, "role Owner at scope /"},
		{"owner through a group, on its registry", alice, ActionPush, repo("team", "x"), true, "a2"},
		{"owner through a group, elsewhere", alice, ActionPush, repo("default", "x"), false, "no role assignment"},
		{"no assignment", bob, ActionPull, repo("default", "x"), false, "no role assignment"},
		{"id reused by another name", ghost, ActionPull, repo("default", "x"), false, "no longer exists"},
		{"roles not honoured yet", sp, ActionPull, repo("default", "x"), false, "no role assignment"},
	} {
		d := Decide(s, tc.p, tc.a, tc.res)
		if d.Allow != tc.allow || !strings.Contains(d.Reason, tc.reason) {
			t.Errorf("%s: %+v; want allow=%v with %q", tc.name, d, tc.allow, tc.reason)
		}
	}
	if !IsServerOwner(s, owner) || IsServerOwner(s, alice) || IsServerOwner(s, ghost) || IsServerOwner(s, admin) {
		t.Error("IsServerOwner answers wrongly")
	}
}

func BenchmarkDecide(b *testing.B) {
	s := snapshot()
	p := authn.Principal{Kind: authn.KindToken, Name: "ci", ID: 10, Registry: "default"}
	res := Resource{Registry: "default", Type: TypeRepository, Name: "sample/teama/projectb"}
	for b.Loop() {
		Decide(s, p, ActionDelete, res)
	}
}

package policy

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/access"
)

// TestAccessTokenGrant: a request with an access token is bounded by the token's grant as well
// as by the policy, in Decide itself; listings (DecideVisible) and mounts that name no source
// are bounded by the policy alone; a named mount source needs both.
func TestAccessTokenGrant(t *testing.T) {
	in := fixture("rbac", "")
	in.Assignments = []RoleAssignment{{ID: "a-push", PrincipalKind: AssigneeUser, PrincipalID: 1, Role: RoleAcrPush, Scope: "/"}}
	s := Compile(in)
	pullA := access.Grant{{Type: TypeRepository, Name: "team-a/x", Actions: []string{"pull"}}}
	scoped := func(p access.Principal, g access.Grant) access.Principal { p.Scoped, p.Grant = true, g; return p }
	alice := holders[0].principal
	ci := access.Principal{Kind: access.KindToken, Name: "ci", ID: 20, Registry: "r"}
	catalog := Resource{Registry: "r", Type: TypeRegistry, Name: "catalog"}
	const (
		decide = iota
		visible
		mountNamed
		mountAny
	)
	for _, tc := range []struct {
		name  string
		ask   int
		p     access.Principal
		a     Action
		res   Resource
		allow bool
		code  string
	}{
		{"no token: the policy alone", decide, alice, ActionPush, repo("team-b/x"), true, CodeRoleAssignment},
		{"grant and policy agree", decide, scoped(alice, pullA), ActionPull, repo("team-a/x"), true, CodeRoleAssignment},
		{"grant lacks the action", decide, scoped(alice, pullA), ActionPush, repo("team-a/x"), false, CodeInsufficientScope},
		{"grant lacks the repository", decide, scoped(alice, pullA), ActionPull, repo("team-b/x"), false, CodeInsufficientScope},
		{"empty grant", decide, scoped(alice, nil), ActionPull, repo("team-a/x"), false, CodeInsufficientScope},
		{"star in the grant", decide, scoped(alice, access.Grant{{Type: TypeRepository, Name: "team-a/x", Actions: []string{"*"}}}), ActionDelete, repo("team-a/x"), false, CodeNoAssignment},
		{"the policy's refusal comes first", decide, scoped(ci, nil), ActionDelete, repo("team-a/x"), false, CodeNotInScopeMap},
		{"scope map and grant", decide, scoped(ci, pullA), ActionPull, repo("team-a/x"), true, CodeScopeMap},
		{"catalog needs registry:catalog:*", decide, scoped(alice, pullA), ActionCatalog, catalog, false, CodeInsufficientScope},
		{"catalog granted", decide, scoped(alice, access.Grant{{Type: TypeRegistry, Name: "catalog", Actions: []string{"*"}}}), ActionCatalog, catalog, true, CodeRoleAssignment},
		{"grant of another type", decide, scoped(alice, access.Grant{{Type: TypeRegistry, Name: "team-a/x", Actions: []string{"pull"}}}), ActionPull, repo("team-a/x"), false, CodeInsufficientScope},
		{"listing: the policy alone", visible, scoped(ci, nil), ActionPull, repo("team-a/x"), true, CodeScopeMap},
		{"listing: still the policy", visible, scoped(ci, pullA), ActionPull, repo("team-b/x"), false, CodeNotInScopeMap},
		{"named mount source outside the grant", mountNamed, scoped(alice, pullA), ActionPull, repo("team-b/x"), false, CodeInsufficientScope},
		{"named mount source in the grant", mountNamed, scoped(alice, pullA), ActionPull, repo("team-a/x"), true, CodeRoleAssignment},
		{"mount without a source: the policy alone", mountAny, scoped(alice, pullA), ActionPull, repo("team-b/x"), true, CodeRoleAssignment},
		{"mount without a source, not pullable", mountAny, scoped(ci, nil), ActionPull, repo("team-b/x"), false, CodeNotInScopeMap},
	} {
		var d Decision
		switch tc.ask {
		case decide:
			d = Decide(s, tc.p, tc.a, tc.res)
		case visible:
			d = DecideVisible(s, tc.p, tc.res)
		case mountNamed:
			d = DecideMount(s, tc.p, tc.res, true)
		case mountAny:
			d = DecideMount(s, tc.p, tc.res, false)
		}
		if d.Allow != tc.allow || d.Code != tc.code {
			t.Errorf("%s: got %+v; want allow=%v code=%s", tc.name, d, tc.allow, tc.code)
		}
	}
}

// TestExplainNamesTheGrant: explain says what the token holds and what the request needs.
func TestExplainNamesTheGrant(t *testing.T) {
	in := fixture("rbac", "")
	in.Assignments = []RoleAssignment{{ID: "a-push", PrincipalKind: AssigneeUser, PrincipalID: 1, Role: RoleAcrPush, Scope: "/"}}
	s := Compile(in)
	p := holders[0].principal
	p.Scoped, p.Grant = true, access.Grant{{Type: TypeRepository, Name: "samples/app", Actions: []string{"pull"}}}
	e := Explain(s, p, ActionPush, repo("samples/app"), netip.Addr{})
	last := e.Steps[len(e.Steps)-1]
	if e.Allowed || e.Decision.Code != CodeInsufficientScope || last.Source != "access token" || last.Matched ||
		last.Detail != `the access token grants pull on repository "samples/app"; this request needs push` {
		t.Errorf("explanation: %+v", e)
	}
	e = Explain(s, p, ActionPull, repo("other/app"), netip.Addr{})
	if last := e.Steps[len(e.Steps)-1]; e.Allowed || !strings.Contains(last.Detail, "grants only repository:samples/app:pull") {
		t.Errorf("explanation: %+v", e)
	}
	if e = Explain(s, p, ActionPull, repo("samples/app"), netip.Addr{}); !e.Allowed || !e.Steps[len(e.Steps)-1].Matched {
		t.Errorf("explanation: %+v", e)
	}
}

package policy

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/golden"
)

// goldenInput is a directory where every kind of rule is present: conditions that hold and do
// not, a role not honoured in the mode, an unknown role, a broken stored condition, scopes at
// "/", at the registry and at another, group membership, tokens with and without a map,
// disabled, anonymous pull on a prefix, network rules.
func goldenInput(mode string) Input {
	in := fixture(mode, "anonymous-prefix")
	in.Registries[0].DefaultAction = DefaultActionDeny
	in.Registries[0].NetworkRules = []NetworkRule{{Value: "203.0.113.0/24"}, {Value: "2001:db8::/32"}, {Value: "bogus"}}
	in.Registries[1].PublicNetworkAccess = false
	in.Registries[1].AnonymousPullEnabled = true
	in.Registries = append(in.Registries, Registry{ID: 3, Name: "third", RoleAssignmentMode: mode, PublicNetworkAccess: true, DefaultAction: DefaultActionAllow})
	in.ScopeMaps = append(in.ScopeMaps, ScopeMap{ID: 12, RegistryID: 1, Name: "catalog-map",
		Rules: []ScopeRule{{Repository: "*", Action: "content/read"}, {Repository: "team-b/x", Action: "content/delete"}}})
	in.Tokens = append(in.Tokens,
		Token{ID: 22, RegistryID: 1, Name: "off", ScopeMapID: 10, ScopeMap: "team-a-map", Status: "disabled"},
		Token{ID: 23, RegistryID: 1, Name: "nomap", Status: "enabled"},
		Token{ID: 24, RegistryID: 1, Name: "reader", ScopeMapID: 12, ScopeMap: "catalog-map", Status: "enabled"})
	in.Assignments = []RoleAssignment{
		{ID: "alice-reader", PrincipalKind: AssigneeUser, PrincipalID: 1, Role: RoleRepositoryReader, Scope: "/registries/r",
			Condition: conditionTexts["prefix"], ConditionVersion: "2.0"},
		{ID: "alice-push-other", PrincipalKind: AssigneeUser, PrincipalID: 1, Role: RoleAcrPush, Scope: "/registries/other"},
		{ID: "alice-broken", PrincipalKind: AssigneeUser, PrincipalID: 1, Role: RoleRepositoryWriter, Scope: "/",
			Condition: "@Request[nope] StringEquals 'x'", ConditionVersion: "2.0"},
		{ID: "devs-pull", PrincipalKind: AssigneeGroup, PrincipalID: 7, Role: RoleAcrPull, Scope: "/"},
		{ID: "devs-lister", PrincipalKind: AssigneeGroup, PrincipalID: 7, Role: RoleCatalogLister, Scope: "/registries/r"},
		{ID: "sp-bogus", PrincipalKind: AssigneeSP, PrincipalID: 3, Role: "Superuser", Scope: "/"},
		{ID: "sp-writer", PrincipalKind: AssigneeSP, PrincipalID: 3, Role: RoleRepositoryWriter, Scope: "/registries/r",
			Condition: conditionTexts["like"], ConditionVersion: "2.0"},
		{ID: "sp-delete", PrincipalKind: AssigneeSP, PrincipalID: 3, Role: RoleAcrDelete, Scope: "/registries/r"},
		{ID: "sp-owner", PrincipalKind: AssigneeSP, PrincipalID: 3, Role: RoleOwner, Scope: "/registries/other"},
	}
	return in
}

var goldenPrincipals = []access.Principal{
	holders[0].principal, holders[1].principal, holders[2].principal,
	{Kind: access.KindUser, Name: "mallory", ID: 1},
	{Kind: access.KindAdmin, Name: "r", ID: 1, Registry: "r"},
	{Kind: access.KindAdmin, Name: "other", ID: 2, Registry: "other"},
	{Kind: access.KindToken, Name: "ci", ID: 20, Registry: "r"},
	{Kind: access.KindToken, Name: "ci-admin", ID: 21, Registry: "r"},
	{Kind: access.KindToken, Name: "off", ID: 22, Registry: "r"},
	{Kind: access.KindToken, Name: "nomap", ID: 23, Registry: "r"},
	{Kind: access.KindToken, Name: "reader", ID: 24, Registry: "r"},
	{Kind: access.KindToken, Name: "ghost", ID: 20, Registry: "r"},
	access.Anonymous,
}

// TestExplainGolden explains every principal, action and resource of goldenInput in both modes
// (and the network from several addresses) and compares the whole text — decisions, reasons and
// every step — with testdata/explain.golden. `go test ./internal/policy -run ExplainGolden
// -update` rewrites the file; its diff is then the change to review.
func TestExplainGolden(t *testing.T) {
	var b strings.Builder
	resources := []Resource{repo("team-a/x"), repo("team-b/x"), {Registry: "r", Type: TypeRegistry, Name: "catalog"},
		{Registry: "other", Type: TypeRepository, Name: "team-a/x"}, {Registry: "nope", Type: TypeRepository, Name: "x"}}
	for _, mode := range []string{"rbac", "rbac-abac"} {
		s := Compile(goldenInput(mode))
		for _, p := range goldenPrincipals {
			for _, a := range everyAction {
				for _, res := range resources {
					if (a == ActionCatalog) != (res.Type == TypeRegistry) {
						continue
					}
					writeExplanation(&b, mode, Explain(s, p, a, res, netip.Addr{}))
					// Decide answers as Explain does, without the steps.
					if d, e := Decide(s, p, a, res), Explain(s, p, a, res, netip.Addr{}); d != e.Decision {
						t.Errorf("%s %s %s %s: Decide %+v, Explain %+v", mode, p, a, res.Name, d, e.Decision)
					}
				}
			}
		}
		for _, ip := range []string{"203.0.113.9", "::ffff:203.0.113.9", "2001:db8::7", "198.51.100.1"} {
			for _, reg := range []string{"r", "other", "third", "nope"} {
				addr := netip.MustParseAddr(ip)
				writeExplanation(&b, mode, Explain(s, access.Anonymous, ActionPull, Resource{Registry: reg, Type: TypeRepository, Name: "team-a/x"}, addr))
				if n, e := s.Network(reg, addr), Explain(s, access.Anonymous, ActionPull, Resource{Registry: reg, Type: TypeRepository, Name: "team-a/x"}, addr); e.Network == nil || n != *e.Network {
					t.Errorf("%s from %s: Network %+v, Explain %+v", reg, ip, n, e.Network)
				}
			}
		}
	}
	golden.Compare(t, "testdata/explain.golden", b.String())
}

// TestControlGolden decides every control-plane permission for every principal at "/", at each
// registry and at one that does not exist, with Permissions and HasAnyRole beside, and compares
// with testdata/control.golden (-update rewrites it). The service principal's id is also a
// user's (3) in a group: group assignments speak for users only.
func TestControlGolden(t *testing.T) {
	var b strings.Builder
	in := goldenInput("rbac")
	in.Users = append(in.Users, User{ID: 3, Name: "carol"}, User{ID: 4, Name: "dave"})
	in.Memberships[3] = []int64{7}
	// A service principal with bob's id (bob is in devs) and no role of its own.
	in.ServicePrincipals = append(in.ServicePrincipals, ServicePrincipal{ID: 2, AppID: "22222222-2222-4333-8444-555555555555"})
	in.Assignments = append(in.Assignments,
		RoleAssignment{ID: "bob-reader", PrincipalKind: AssigneeUser, PrincipalID: 2, Role: RoleReader, Scope: "/registries/r"},
		RoleAssignment{ID: "devs-contributor", PrincipalKind: AssigneeGroup, PrincipalID: 7, Role: RoleContributor, Scope: "/registries/other"},
		RoleAssignment{ID: "alice-owner", PrincipalKind: AssigneeUser, PrincipalID: 1, Role: RoleOwner, Scope: "/"},
		RoleAssignment{ID: "dave-reader", PrincipalKind: AssigneeUser, PrincipalID: 4, Role: RoleReader, Scope: "/registries/r"})
	s := Compile(in)
	principals := append(goldenPrincipals[:len(goldenPrincipals):len(goldenPrincipals)], access.Principal{Kind: access.KindUser, Name: "carol", ID: 3},
		access.Principal{Kind: access.KindUser, Name: "dave", ID: 4}, access.Principal{Kind: access.KindSP, Name: "22222222-2222-4333-8444-555555555555", ID: 2})
	for _, p := range principals {
		for _, registry := range []string{"", "r", "other", "nope"} {
			fmt.Fprintf(&b, "%s at %q: any role %v; permissions %v\n", p, registry, HasAnyRole(s, p, registry), Permissions(s, p, registry))
			for _, perm := range AllPermissions {
				d := DecideControl(s, p, perm, registry)
				fmt.Fprintf(&b, "  %s: %v %s: %s\n", perm, d.Allow, d.Code, d.Reason)
			}
		}
	}
	golden.Compare(t, "testdata/control.golden", b.String())
}

func writeExplanation(b *strings.Builder, mode string, e Explanation) {
	fmt.Fprintf(b, "[%s] %s %s (%s) on %s of %q", mode, e.Identity, e.Action, e.DataAction, e.Resource, e.Registry)
	if e.IP != "" {
		fmt.Fprintf(b, " from %s", e.IP)
	}
	fmt.Fprintf(b, " [mode %s]: allowed=%v\n", e.Mode, e.Allowed)
	if e.Network != nil {
		fmt.Fprintf(b, "  network: %v %s: %s\n", e.Network.Allow, e.Network.Code, e.Network.Reason)
	}
	fmt.Fprintf(b, "  decision: %v filtered=%v %s: %s\n", e.Decision.Allow, e.Decision.Filtered, e.Decision.Code, e.Decision.Reason)
	for _, st := range e.Steps {
		fmt.Fprintf(b, "  - %s [%s] %v: %s\n", st.Source, st.Ref, st.Matched, st.Detail)
	}
}

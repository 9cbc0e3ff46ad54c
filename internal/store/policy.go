package store

import (
	"context"
	"fmt"

	"github.com/berth-registry/berth/internal/policy"
)

// PolicyInput reads what the policy is compiled from, in the policy's terms (policy.Source).
// The version is read first, so a change made while reading leaves the input older than the
// store, and the next refresh reads again.
func (s *Store) PolicyInput(ctx context.Context) (policy.Input, error) {
	var in policy.Input
	var err error
	if in.Version, err = s.PolicyVersion(ctx); err != nil {
		return in, err
	}
	var (
		regs   []Registry
		maps   []ScopeMap
		toks   []Token
		asgs   []RoleAssignment
		users  []User
		groups []Group
		sps    []ServicePrincipal
	)
	for _, step := range []func() error{
		func() (err error) { regs, err = s.Registries(ctx); return },
		func() (err error) { maps, err = s.ScopeMaps(ctx, 0); return },
		func() (err error) { toks, err = s.Tokens(ctx, 0); return },
		func() (err error) { asgs, err = s.RoleAssignments(ctx); return },
		func() (err error) { in.Memberships, err = s.Memberships(ctx); return },
		func() (err error) { users, err = s.Users(ctx); return },
		func() (err error) { groups, err = s.Groups(ctx); return },
		func() (err error) { sps, err = s.ServicePrincipals(ctx); return },
	} {
		if err := step(); err != nil {
			return in, fmt.Errorf("store: policy input: %w", err)
		}
	}
	for _, r := range regs {
		pr := policy.Registry{ID: r.ID, Name: r.Name, AdminEnabled: r.AdminEnabled, RoleAssignmentMode: r.RoleAssignmentMode,
			AnonymousPullEnabled: r.AnonymousPullEnabled, AnonymousPullRepositories: r.AnonymousPullRepositories,
			PublicNetworkAccess: r.PublicNetworkAccess, DefaultAction: r.DefaultAction}
		for _, nr := range r.NetworkRules {
			pr.NetworkRules = append(pr.NetworkRules, policy.NetworkRule{Value: nr.Value})
		}
		in.Registries = append(in.Registries, pr)
	}
	for _, m := range maps {
		pm := policy.ScopeMap{ID: m.ID, RegistryID: m.RegistryID, Name: m.Name}
		for _, r := range m.Rules {
			pm.Rules = append(pm.Rules, policy.ScopeRule{Repository: r.Repository, Action: r.Action})
		}
		in.ScopeMaps = append(in.ScopeMaps, pm)
	}
	for _, t := range toks {
		in.Tokens = append(in.Tokens, policy.Token{ID: t.ID, RegistryID: t.RegistryID, Name: t.Name, ScopeMapID: t.ScopeMapID, ScopeMap: t.ScopeMap, Status: t.Status})
	}
	for _, a := range asgs {
		in.Assignments = append(in.Assignments, policy.RoleAssignment{ID: a.ID, PrincipalKind: a.PrincipalKind, PrincipalID: a.PrincipalID,
			Role: a.Role, Scope: a.Scope, Condition: a.Condition, ConditionVersion: a.ConditionVersion})
	}
	for _, u := range users {
		in.Users = append(in.Users, policy.User{ID: u.ID, Name: u.Name})
	}
	for _, g := range groups {
		in.Groups = append(in.Groups, policy.Group{ID: g.ID, Name: g.Name})
	}
	for _, sp := range sps {
		in.ServicePrincipals = append(in.ServicePrincipals, policy.ServicePrincipal{ID: sp.ID, AppID: sp.AppID})
	}
	return in, nil
}

package policy

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"
)

// Load compiles a snapshot from src. The version is read first, so a change made while loading
// leaves the snapshot older than the source, and the next Refresh loads again.
func Load(ctx context.Context, src Source) (*Snapshot, error) {
	in, err := src.PolicyInput(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: load: %w", err)
	}
	return Compile(in), nil
}

// Compile builds the snapshot of in. It never fails: a stored rule that no longer compiles
// grants nothing, and Explain says why.
func Compile(in Input) *Snapshot {
	s := &Snapshot{
		Version:     in.Version,
		registries:  make(map[string]*registryPolicy, len(in.Registries)),
		tokens:      make(map[int64]*tokenPolicy, len(in.Tokens)),
		assignments: make(map[principalKey][]*assignment),
		groups:      in.Memberships,
		users:       make(map[int64]string, len(in.Users)),
		sps:         make(map[int64]string, len(in.ServicePrincipals)),
		groupNames:  make(map[int64]string, len(in.Groups)),
	}
	if s.groups == nil {
		s.groups = map[int64][]int64{}
	}
	for _, u := range in.Users {
		s.users[u.ID] = u.Name
	}
	for _, sp := range in.ServicePrincipals {
		s.sps[sp.ID] = sp.AppID
	}
	for _, g := range in.Groups {
		s.groupNames[g.ID] = g.Name
	}
	regName := make(map[int64]string, len(in.Registries))
	for _, r := range in.Registries {
		s.registries[r.Name] = compileRegistry(r)
		regName[r.ID] = r.Name
	}
	rules := make(map[int64][]rule, len(in.ScopeMaps))
	for _, m := range in.ScopeMaps {
		for _, r := range m.Rules {
			rules[m.ID] = append(rules[m.ID], compileRule(r, fmt.Sprintf("scope map %q grants %s on '%s'", m.Name, r.Action, r.Repository)))
		}
	}
	for _, t := range in.Tokens {
		tp := &tokenPolicy{name: t.Name, registry: regName[t.RegistryID], enabled: t.Status == "enabled", scopeMap: t.ScopeMap, rules: rules[t.ScopeMapID]}
		for i := range tp.rules {
			if r := &tp.rules[i]; r.all && (r.action == "content/read" || r.action == "metadata/read") {
				tp.catalogRule = r
				break
			}
		}
		s.tokens[t.ID] = tp
	}
	for _, a := range in.Assignments {
		k := principalKey{a.PrincipalKind, a.PrincipalID}
		s.assignments[k] = append(s.assignments[k], s.compileAssignment(a))
	}
	return s
}

func compileRegistry(r Registry) *registryPolicy {
	rp := &registryPolicy{id: r.ID, name: r.Name, adminEnabled: r.AdminEnabled,
		adminReason: fmt.Sprintf("the admin user of registry %q may do everything in it", r.Name),
		anonAll:     r.AnonymousPullEnabled,
		anonReason:  fmt.Sprintf("anonymous pull is enabled for every repository of registry %q", r.Name),
		network:     networkPolicy{public: r.PublicNetworkAccess, defaultDeny: r.DefaultAction == DefaultActionDeny}}
	if m, ok := ParseMode(r.RoleAssignmentMode); ok {
		rp.mode = m
	}
	for _, p := range r.AnonymousPullRepositories {
		rp.anonRules = append(rp.anonRules, compileRule(ScopeRule{Repository: p, Action: "content/read"},
			fmt.Sprintf("anonymous pull is enabled for '%s' on registry %q", p, r.Name)))
	}
	for _, nr := range r.NetworkRules {
		p, err := netip.ParsePrefix(nr.Value)
		if err != nil {
			continue // validated when added; an unreadable rule allows nothing
		}
		rp.network.rules = append(rp.network.rules, netRule{prefix: p, desc: fmt.Sprintf("network rule %s allows it", nr.Value)})
	}
	return rp
}

func (s *Snapshot) compileAssignment(a RoleAssignment) *assignment {
	as := &assignment{id: a.ID, principal: principalKey{a.PrincipalKind, a.PrincipalID}, roleName: a.Role, scope: a.Scope}
	if a.Scope != ServerScope {
		as.registry = strings.TrimPrefix(a.Scope, "/registries/")
	}
	as.desc = fmt.Sprintf("role assignment %s (%s for %s at %s", a.ID, a.Role, s.principalName(as.principal), a.Scope)
	if a.Condition != "" {
		as.desc += ", with a condition"
	}
	as.desc += ")"
	role, ok := RoleByName(a.Role)
	if !ok {
		as.condErr = fmt.Sprintf("role %q is not a built-in role and grants nothing", a.Role)
		return as
	}
	if a.Condition != "" {
		c, err := ParseCondition(a.Condition, a.ConditionVersion)
		if err != nil {
			as.condErr = fmt.Sprintf("its condition no longer compiles and grants nothing: %v", err)
			return as
		}
		as.cond = c
	}
	as.role = role
	return as
}

func (s *Snapshot) principalName(k principalKey) string {
	switch k.kind {
	case AssigneeUser:
		return fmt.Sprintf("user %q", s.users[k.id])
	case AssigneeGroup:
		return fmt.Sprintf("group %q", s.groupNames[k.id])
	case AssigneeSP:
		return fmt.Sprintf("service principal %q", s.sps[k.id])
	}
	return k.kind
}

func compileRule(r ScopeRule, desc string) rule {
	out := rule{pattern: r.Repository, action: r.Action, desc: desc}
	switch {
	case r.Repository == "*":
		out.all = true
	case strings.HasSuffix(r.Repository, "/*"):
		out.prefix = strings.TrimSuffix(r.Repository, "*")
	}
	return out
}

// Refresh reloads the snapshot if the source's policy version moved.
func (e *Engine) Refresh(ctx context.Context, src Source) error {
	v, err := src.PolicyVersion(ctx)
	if err != nil {
		return err
	}
	if cur := e.snap.Load(); cur != nil && cur.Version == v {
		return nil
	}
	s, err := Load(ctx, src)
	if err != nil {
		return err
	}
	// Two refreshes may overlap (the watcher's and a change's): an older load that ends last must
	// not replace a newer snapshot, or the change just made would vanish until the next tick.
	for {
		cur := e.snap.Load()
		if cur != nil && cur.Version >= s.Version {
			return nil
		}
		if e.snap.CompareAndSwap(cur, s) {
			break
		}
	}
	if e.OnReload != nil {
		e.OnReload()
	}
	return nil
}

// Watch refreshes every interval until ctx ends, so that a change made through another replica
// is enforced here within the interval.
func (e *Engine) Watch(ctx context.Context, src Source, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.Refresh(ctx, src); err != nil && ctx.Err() == nil {
				log.WarnContext(ctx, "policy refresh failed", "err", err)
			}
		}
	}
}

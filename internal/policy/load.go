package policy

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/store"
)

// Load compiles a snapshot from the store. The version is read first, so a change made while
// loading leaves the snapshot older than the store, and the next Refresh loads again.
func Load(ctx context.Context, st *store.Store) (*Snapshot, error) {
	v, err := st.PolicyVersion(ctx)
	if err != nil {
		return nil, err
	}
	regs, err := st.Registries(ctx)
	if err != nil {
		return nil, err
	}
	maps, err := st.ScopeMaps(ctx, 0)
	if err != nil {
		return nil, err
	}
	toks, err := st.Tokens(ctx, 0)
	if err != nil {
		return nil, err
	}
	ras, err := st.RoleAssignments(ctx)
	if err != nil {
		return nil, err
	}
	groups, err := st.Memberships(ctx)
	if err != nil {
		return nil, err
	}
	users, err := st.Users(ctx)
	if err != nil {
		return nil, err
	}
	sps, err := st.ServicePrincipals(ctx)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{users: make(map[int64]string, len(users)), sps: make(map[int64]string, len(sps)), Version: v, registries: make(map[string]registryPolicy, len(regs)), tokens: make(map[int64]tokenPolicy, len(toks)),
		assignments: make(map[string][]assignment), groups: groups}
	for _, u := range users {
		s.users[u.ID] = u.Name
	}
	for _, sp := range sps {
		s.sps[sp.ID] = sp.AppID
	}
	regName := make(map[int64]string, len(regs))
	for _, r := range regs {
		s.registries[r.Name] = registryPolicy{id: r.ID, adminEnabled: r.AdminEnabled}
		regName[r.ID] = r.Name
	}
	rules := make(map[int64][]rule, len(maps))
	for _, m := range maps {
		for _, r := range m.Rules {
			rules[m.ID] = append(rules[m.ID], compileRule(r))
		}
	}
	for _, t := range toks {
		s.tokens[t.ID] = tokenPolicy{name: t.Name, registry: regName[t.RegistryID], enabled: t.Status == "enabled",
			scopeMap: t.ScopeMap, rules: rules[t.ScopeMapID]}
	}
	for _, a := range ras {
		k := fmt.Sprintf("%s:%d", a.PrincipalKind, a.PrincipalID)
		s.assignments[k] = append(s.assignments[k], assignment{id: a.ID, role: a.Role, scope: a.Scope})
	}
	return s, nil
}

func compileRule(r store.ScopeRule) rule {
	out := rule{pattern: r.Repository, action: r.Action}
	switch {
	case r.Repository == "*":
		out.all = true
	case strings.HasSuffix(r.Repository, "/*"):
		out.prefix = strings.TrimSuffix(r.Repository, "*")
	}
	return out
}

// Refresh reloads the snapshot if the store's policy version moved.
func (e *Engine) Refresh(ctx context.Context, st *store.Store) error {
	v, err := st.PolicyVersion(ctx)
	if err != nil {
		return err
	}
	if cur := e.snap.Load(); cur != nil && cur.Version == v {
		return nil
	}
	s, err := Load(ctx, st)
	if err != nil {
		return err
	}
	e.snap.Store(s)
	return nil
}

// Watch refreshes every interval until ctx ends, so that a change made through another replica
// is enforced here within the interval.
func (e *Engine) Watch(ctx context.Context, st *store.Store, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.Refresh(ctx, st); err != nil && ctx.Err() == nil {
				log.WarnContext(ctx, "policy refresh failed", "err", err)
			}
		}
	}
}

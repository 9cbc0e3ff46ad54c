package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/store"
)

// runIdentities tests users, groups, service principals, secrets, tokens, scope maps, role
// assignments, signing keys, sign-in failures and the policy version.
func runIdentities(t *testing.T, setup func(t *testing.T) (*store.Store, store.Registry)) {
	ctx := context.Background()
	version := func(t *testing.T, s *store.Store) int64 {
		v, err := s.PolicyVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	t.Run("Directory", func(t *testing.T) {
		s, _ := setup(t)
		v0 := version(t, s)
		u, err := s.CreateUser(ctx, "alice", "hash-a")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateUser(ctx, "alice", "x"); !errors.Is(err, store.ErrExists) {
			t.Errorf("duplicate user err = %v; want ErrExists", err)
		}
		if version(t, s) <= v0 {
			t.Error("creating a user did not bump the policy version")
		}
		secs, err := s.Secrets(ctx, store.KindUser, u.ID)
		if err != nil || len(secs) != 1 || secs[0].Hash != "hash-a" || !secs[0].ExpiresAt.IsZero() {
			t.Errorf("user secrets = %+v, %v", secs, err)
		}
		g, err := s.CreateGroup(ctx, "devs", "developers")
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if err := s.AddGroupMember(ctx, g.ID, u.ID); err != nil {
				t.Fatal(err)
			}
		}
		if m, err := s.GroupMembers(ctx, g.ID); err != nil || len(m) != 1 || m[0] != "alice" {
			t.Errorf("members = %v, %v", m, err)
		}
		exp := time.UnixMilli(time.Now().Add(time.Hour).UnixMilli())
		sp, err := s.CreateServicePrincipal(ctx, "11111111-2222-4333-8444-555555555555", "ci", store.Secret{Name: "k1", Hash: "h1", ExpiresAt: exp})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.ServicePrincipalByAppID(ctx, "11111111-2222-4333-8444-555555555555"); err != nil || got.ID != sp.ID {
			t.Errorf("ServicePrincipalByAppID = %+v, %v", got, err)
		}
		if err := s.PutSecret(ctx, store.KindSP, sp.ID, store.Secret{Name: "k2", Hash: "h2"}); err != nil {
			t.Fatal(err)
		}
		if secs, _ := s.Secrets(ctx, store.KindSP, sp.ID); len(secs) != 2 || !secs[0].ExpiresAt.Equal(exp) {
			t.Errorf("sp secrets = %+v", secs)
		}
		if err := s.ReplaceSecrets(ctx, store.KindSP, sp.ID, store.Secret{Name: "k3", Hash: "h3"}); err != nil {
			t.Fatal(err)
		}
		if secs, _ := s.Secrets(ctx, store.KindSP, sp.ID); len(secs) != 1 || secs[0].Name != "k3" {
			t.Errorf("after replace = %+v", secs)
		}
		if err := s.CreateRoleAssignment(ctx, store.RoleAssignment{ID: "ra1", PrincipalKind: store.KindUser, PrincipalID: u.ID, Role: "Reader", Scope: "/"}); err != nil {
			t.Fatal(err)
		}
		// Deleting the user takes its secrets, memberships and assignments along.
		if err := s.DeleteUser(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UserByName(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted user err = %v", err)
		}
		ras, _ := s.RoleAssignments(ctx)
		secs, _ = s.Secrets(ctx, store.KindUser, u.ID)
		members, _ := s.GroupMembers(ctx, g.ID)
		if len(ras) != 0 || len(secs) != 0 || len(members) != 0 {
			t.Errorf("left behind: assignments %v, secrets %v, members %v", ras, secs, members)
		}
		if err := s.DeleteUser(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second delete err = %v", err)
		}
	})

	// Nobody can take the last Owner at "/" away, by whichever route: deleting the user, the
	// service principal or the group that holds it, a membership, or the assignment.
	t.Run("LastOwner", func(t *testing.T) {
		s, _ := setup(t)
		a, _ := s.CreateUser(ctx, "ann", "h")
		b, _ := s.CreateUser(ctx, "bob", "h")
		g, _ := s.CreateGroup(ctx, "admins", "")
		sp, err := s.CreateServicePrincipal(ctx, "21111111-2222-4333-8444-555555555555", "robot", store.Secret{Name: "k", Hash: "h"})
		if err != nil {
			t.Fatal(err)
		}
		// With no Owner at "/" yet, nothing is held back.
		if err := s.DeleteUser(ctx, "bob"); err != nil {
			t.Fatalf("delete on a server without an Owner: %v", err)
		}
		b, _ = s.CreateUser(ctx, "bob", "h")
		if err := s.AddGroupMember(ctx, g.ID, a.ID); err != nil {
			t.Fatal(err)
		}
		for _, ra := range []store.RoleAssignment{
			{ID: "own-g", PrincipalKind: store.KindGroup, PrincipalID: g.ID, Role: "Owner", Scope: "/"},
			{ID: "own-sp", PrincipalKind: store.KindSP, PrincipalID: sp.ID, Role: "Owner", Scope: "/"},
			{ID: "own-bob-reg", PrincipalKind: store.KindUser, PrincipalID: b.ID, Role: "Owner", Scope: "/registries/default"},
		} {
			if err := s.CreateRoleAssignment(ctx, ra); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.DeleteServicePrincipal(ctx, sp.AppID); err != nil {
			t.Fatalf("deleting one of two Owners: %v", err)
		}
		for name, del := range map[string]func() error{
			"remove the member":     func() error { return s.RemoveGroupMember(ctx, g.ID, a.ID) },
			"delete the user":       func() error { return s.DeleteUser(ctx, "ann") },
			"delete the group":      func() error { return s.DeleteGroup(ctx, "admins") },
			"delete the assignment": func() error { return s.DeleteRoleAssignment(ctx, "own-g") },
		} {
			if err := del(); !errors.Is(err, store.ErrLastOwner) || !errors.Is(err, store.ErrConflict) {
				t.Errorf("%s, the last Owner at /: %v; want ErrLastOwner", name, err)
			}
		}
		if m, _ := s.GroupMembers(ctx, g.ID); len(m) != 1 {
			t.Errorf("a refused change was half made: members %v", m)
		}
		// An Owner at a registry does not count; one at "/" does.
		if err := s.CreateRoleAssignment(ctx, store.RoleAssignment{ID: "own-bob", PrincipalKind: store.KindUser, PrincipalID: b.ID, Role: "Owner", Scope: "/"}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteGroup(ctx, "admins"); err != nil {
			t.Errorf("deleting the group with another Owner left: %v", err)
		}
		if err := s.DeleteUser(ctx, "bob"); !errors.Is(err, store.ErrLastOwner) {
			t.Errorf("delete bob, now the last Owner: %v", err)
		}
	})

	// An id is never given twice: a token or a policy that names a deleted row must not speak for
	// a new one of the same name (SQLite reuses the id of a deleted last row by itself).
	t.Run("IDsNeverReused", func(t *testing.T) {
		s, reg := setup(t)
		type made struct {
			what string
			make func() (int64, error)
			del  func() error
		}
		for _, m := range []made{
			{"user", func() (int64, error) { u, err := s.CreateUser(ctx, "again", "h"); return u.ID, err },
				func() error { return s.DeleteUser(ctx, "again") }},
			{"group", func() (int64, error) { g, err := s.CreateGroup(ctx, "again", ""); return g.ID, err },
				func() error { return s.DeleteGroup(ctx, "again") }},
			{"service principal", func() (int64, error) {
				sp, err := s.CreateServicePrincipal(ctx, "31111111-2222-4333-8444-555555555555", "again", store.Secret{Name: "k", Hash: "h"})
				return sp.ID, err
			}, func() error { return s.DeleteServicePrincipal(ctx, "31111111-2222-4333-8444-555555555555") }},
			{"registry", func() (int64, error) { r, err := s.CreateRegistry(ctx, "again", ""); return r.ID, err },
				func() error { return s.DeleteRegistry(ctx, "again") }},
			{"token", func() (int64, error) {
				tk, err := s.CreateToken(ctx, reg.ID, store.Token{Name: "again", ScopeMap: "_repositories_pull", Status: "enabled"}, nil, nil)
				return tk.ID, err
			}, func() error { return s.DeleteToken(ctx, reg.ID, "again") }},
		} {
			seen := map[int64]bool{}
			for round := range 3 {
				id, err := m.make()
				if err != nil {
					t.Fatalf("%s, round %d: %v", m.what, round, err)
				}
				if seen[id] {
					t.Errorf("%s: id %d given again after its row was deleted", m.what, id)
				}
				seen[id] = true
				if err := m.del(); err != nil {
					t.Fatalf("delete %s: %v", m.what, err)
				}
			}
		}
	})

	t.Run("TokensAndScopeMaps", func(t *testing.T) {
		s, reg := setup(t)
		maps, err := s.ScopeMaps(ctx, reg.ID)
		if err != nil || len(maps) != len(store.SystemScopeMaps) || !maps[0].System {
			t.Fatalf("system maps = %+v, %v", maps, err)
		}
		if _, err := s.UpdateScopeMap(ctx, reg.ID, "_repositories_pull", nil, nil); !errors.Is(err, store.ErrSystemScopeMap) {
			t.Errorf("update of a system map err = %v", err)
		}
		m := &store.ScopeMap{Name: "ci-map", Rules: []store.ScopeRule{{Repository: "samples/*", Action: "content/read"}}}
		tok, err := s.CreateToken(ctx, reg.ID, store.Token{Name: "ci", Status: "enabled"}, m, []store.Secret{{Name: "password1", Hash: "p1"}})
		if err != nil || tok.ScopeMap != "ci-map" || tok.Status != "enabled" {
			t.Fatalf("CreateToken = %+v, %v", tok, err)
		}
		if _, err := s.CreateToken(ctx, reg.ID, store.Token{Name: "ci2", Status: "enabled", ScopeMap: "nope"}, nil, nil); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("token with an unknown map err = %v", err)
		}
		v := version(t, s)
		if _, err := s.UpdateScopeMap(ctx, reg.ID, "ci-map", nil, []store.ScopeRule{{Repository: "samples/*", Action: "content/write"}}); err != nil {
			t.Fatal(err)
		}
		if version(t, s) <= v {
			t.Error("a scope-map change did not bump the policy version")
		}
		if got, _ := s.ScopeMap(ctx, reg.ID, "ci-map"); len(got.Rules) != 1 || got.Rules[0].Action != "content/write" {
			t.Errorf("rules after update = %+v", got.Rules)
		}
		if err := s.DeleteScopeMap(ctx, reg.ID, "ci-map"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("delete of a map in use err = %v", err)
		}
		off := "disabled"
		if got, err := s.UpdateToken(ctx, reg.ID, "ci", store.TokenUpdate{Status: &off}); err != nil || got.Status != "disabled" {
			t.Errorf("UpdateToken = %+v, %v", got, err)
		}
		if err := s.DeleteToken(ctx, reg.ID, "ci"); err != nil {
			t.Fatal(err)
		}
		if secs, _ := s.Secrets(ctx, store.KindToken, tok.ID); len(secs) != 0 {
			t.Errorf("a deleted token's secrets remain: %v", secs)
		}
		if err := s.DeleteScopeMap(ctx, reg.ID, "ci-map"); err != nil {
			t.Errorf("delete of an unused map: %v", err)
		}
	})

	t.Run("SigningKeys", func(t *testing.T) {
		s, _ := setup(t)
		now := time.UnixMilli(time.Now().UnixMilli())
		for i, k := range []store.SigningKey{
			{KID: "old", Algorithm: "ES256", PrivateKey: []byte{1}, CreatedAt: now.Add(-2 * time.Hour), RetireAt: now.Add(-time.Minute)},
			{KID: "cur", Algorithm: "ES256", PrivateKey: []byte{2}, CreatedAt: now.Add(-time.Hour), RetireAt: now.Add(time.Hour)},
			{KID: "new", Algorithm: "ES256", PrivateKey: []byte{3}, CreatedAt: now, RetireAt: now.Add(2 * time.Hour)},
		} {
			if err := s.AddSigningKey(ctx, k); err != nil {
				t.Fatalf("key %d: %v", i, err)
			}
		}
		keys, err := s.SigningKeys(ctx, now)
		if err != nil || len(keys) != 2 || keys[0].KID != "new" || keys[1].KID != "cur" {
			t.Errorf("SigningKeys = %+v, %v", keys, err)
		}
		if err := s.DeleteRetiredSigningKeys(ctx, now); err != nil {
			t.Fatal(err)
		}
		if keys, _ := s.SigningKeys(ctx, now.Add(-time.Hour)); len(keys) != 2 {
			t.Errorf("the retired key was not deleted: %+v", keys)
		}
	})

	t.Run("SigninFailures", func(t *testing.T) {
		s, _ := setup(t)
		now := time.UnixMilli(time.Now().UnixMilli())
		rule := store.ThrottleRule{Max: 3, Window: time.Minute, Lockout: 30 * time.Second}
		for i := 1; i <= 3; i++ {
			until, err := s.RecordSigninFailure(ctx, "id:x", now, rule)
			if err != nil {
				t.Fatal(err)
			}
			if blocked := !until.IsZero(); blocked != (i == 3) {
				t.Errorf("failure %d: blocked until %v", i, until)
			}
		}
		if st, err := s.SigninStates(ctx, "ip:1", "id:x"); err != nil || len(st) != 1 || !st["id:x"].BlockedUntil.Equal(now.Add(30*time.Second)) {
			t.Errorf("SigninStates = %+v, %v", st, err)
		}
		if st, _ := s.SigninStates(ctx); len(st) != 0 {
			t.Errorf("SigninStates of no key = %+v", st)
		}
		// Blocked again soon after the block ended: twice as long, then four times, up to
		// MaxLockout; blocked again long after: the first lockout again.
		rule.MaxLockout = 100 * time.Second
		at := now.Add(31 * time.Second)
		for _, want := range []time.Duration{60 * time.Second, 100 * time.Second, 100 * time.Second} {
			var until time.Time
			for range 3 {
				until, _ = s.RecordSigninFailure(ctx, "id:x", at, rule)
			}
			if !until.Equal(at.Add(want)) {
				t.Errorf("blocked again: until %v, want %v after %v", until, want, at)
			}
			at = until.Add(time.Second)
		}
		at = at.Add(2 * time.Minute)
		var until time.Time
		for range 3 {
			until, _ = s.RecordSigninFailure(ctx, "id:x", at, rule)
		}
		if !until.Equal(at.Add(30 * time.Second)) {
			t.Errorf("blocked long after: until %v, want 30s after %v", until, at)
		}
		// The purge keeps a key until a window after its block ended, and remembered sign-ins for
		// their own time.
		if err := s.RememberSignin(ctx, "ok:id:x@1", now); err != nil {
			t.Fatal(err)
		}
		if err := s.PurgeSigninFailures(ctx, until.Add(30*time.Second), time.Minute, "ok:", time.Hour); err != nil {
			t.Fatal(err)
		}
		if st, _ := s.SigninStates(ctx, "id:x", "ok:id:x@1"); len(st) != 2 || !st["ok:id:x@1"].WindowStart.Equal(now) {
			t.Errorf("purged too soon: %+v", st)
		}
		if err := s.PurgeSigninFailures(ctx, now.Add(2*time.Hour), time.Minute, "ok:", time.Hour); err != nil {
			t.Fatal(err)
		}
		if st, _ := s.SigninStates(ctx, "id:x", "ok:id:x@1"); len(st) != 0 {
			t.Errorf("not purged: %+v", st)
		}
		// Failures outside the window do not add up.
		s.RecordSigninFailure(ctx, "id:y", now, rule)
		s.RecordSigninFailure(ctx, "id:y", now.Add(2*time.Minute), rule)
		if until, _ := s.RecordSigninFailure(ctx, "id:y", now.Add(2*time.Minute), rule); !until.IsZero() {
			t.Error("failures from an old window counted")
		}
		if err := s.ClearSigninFailures(ctx, "id:y", now); err != nil {
			t.Fatal(err)
		}
		if until, _ := s.RecordSigninFailure(ctx, "id:y", now.Add(2*time.Minute), rule); !until.IsZero() {
			t.Error("cleared failures still counted")
		}
	})
}

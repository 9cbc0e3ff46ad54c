package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// RoleAssignment gives a principal a role at a scope ("/" or "/registries/NAME").
type RoleAssignment struct {
	ID               string
	PrincipalKind    string // user, group or sp
	PrincipalID      int64
	Role             string
	Scope            string
	Condition        string
	ConditionVersion string
	CreatedAt        time.Time
}

// CreateRoleAssignment records an assignment.
func (s *Store) CreateRoleAssignment(ctx context.Context, a RoleAssignment) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO role_assignments (id, principal_kind, principal_id, role, scope, condition, condition_version, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), a.ID, a.PrincipalKind, a.PrincipalID, a.Role, a.Scope, a.Condition, a.ConditionVersion, s.millis()); err != nil {
			return err
		}
		return s.bump(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("store: create role assignment: %w", s.classify(err))
	}
	return nil
}

// RoleAssignments lists every assignment, oldest first.
func (s *Store) RoleAssignments(ctx context.Context) ([]RoleAssignment, error) {
	return queryAll(ctx, s.r, `SELECT id, principal_kind, principal_id, role, scope, condition, condition_version, created_at
		FROM role_assignments ORDER BY created_at, id`, nil, scanRoleAssignment)
}

func scanRoleAssignment(sc scanner) (RoleAssignment, error) {
	var a RoleAssignment
	var created int64
	err := sc.Scan(&a.ID, &a.PrincipalKind, &a.PrincipalID, &a.Role, &a.Scope, &a.Condition, &a.ConditionVersion, &created)
	a.CreatedAt = time.UnixMilli(created)
	return a, err
}

// Memberships maps each user id to the ids of its groups.
func (s *Store) Memberships(ctx context.Context) (map[int64][]int64, error) {
	type pair struct{ user, group int64 }
	pairs, err := queryAll(ctx, s.r, `SELECT user_id, group_id FROM group_members ORDER BY user_id, group_id`, nil, func(sc scanner) (pair, error) {
		var p pair
		return p, sc.Scan(&p.user, &p.group)
	})
	if err != nil {
		return nil, err
	}
	out := make(map[int64][]int64)
	for _, p := range pairs {
		out[p.user] = append(out[p.user], p.group)
	}
	return out, nil
}

// SigningKey is a private key that signs berth's JWTs. It verifies until RetireAt.
type SigningKey struct {
	KID        string
	Algorithm  string
	PrivateKey []byte // PKCS #8 DER
	CreatedAt  time.Time
	RetireAt   time.Time
}

// AddSigningKey stores a new key.
func (s *Store) AddSigningKey(ctx context.Context, k SigningKey) error {
	_, err := s.wdb.ExecContext(ctx, s.q(`INSERT INTO signing_keys (kid, algorithm, private_key, created_at, retire_at) VALUES (?, ?, ?, ?, ?)`),
		k.KID, k.Algorithm, k.PrivateKey, k.CreatedAt.UnixMilli(), k.RetireAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("store: add signing key: %w", err)
	}
	return nil
}

// SigningKeys lists the keys not retired at now, newest first.
func (s *Store) SigningKeys(ctx context.Context, now time.Time) ([]SigningKey, error) {
	return queryAll(ctx, s.r, s.q(`SELECT kid, algorithm, private_key, created_at, retire_at FROM signing_keys WHERE retire_at > ? ORDER BY created_at DESC, kid`),
		[]any{now.UnixMilli()}, func(sc scanner) (SigningKey, error) {
			var k SigningKey
			var created, retire int64
			err := sc.Scan(&k.KID, &k.Algorithm, &k.PrivateKey, &created, &retire)
			k.CreatedAt, k.RetireAt = time.UnixMilli(created), time.UnixMilli(retire)
			return k, err
		})
}

// DeleteRetiredSigningKeys removes keys retired before now.
func (s *Store) DeleteRetiredSigningKeys(ctx context.Context, now time.Time) error {
	if _, err := s.wdb.ExecContext(ctx, s.q(`DELETE FROM signing_keys WHERE retire_at <= ?`), now.UnixMilli()); err != nil {
		return fmt.Errorf("store: delete retired keys: %w", err)
	}
	return nil
}

// SigninBlockedUntil returns the latest time until which any of keys is blocked (zero if none
// is) and which of the keys have failures on record, in one query: a good sign-in needs to clear
// only those, so the common case writes nothing.
func (s *Store) SigninBlockedUntil(ctx context.Context, now time.Time, keys ...string) (until time.Time, recorded []string, err error) {
	if len(keys) == 0 {
		return time.Time{}, nil, nil
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(keys)), ", ")
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	type row struct {
		key     string
		blocked int64
	}
	rows, err := queryAll(ctx, s.r, s.q(`SELECT key, blocked_until FROM signin_failures WHERE key IN (`+marks+`)`), args, func(sc scanner) (row, error) {
		var r row
		return r, sc.Scan(&r.key, &r.blocked)
	})
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("store: signin failures: %w", err)
	}
	for _, r := range rows {
		recorded = append(recorded, r.key)
		if t := time.UnixMilli(r.blocked); r.blocked > 0 && t.After(now) && t.After(until) {
			until = t
		}
	}
	return until, recorded, nil
}

// ThrottleRule says how many failures within Window block a key, and for how long.
type ThrottleRule struct {
	Max     int
	Window  time.Duration
	Lockout time.Duration
}

// RecordSigninFailure counts a failure against key under rule, and returns until when the key
// is blocked (zero if it is not).
func (s *Store) RecordSigninFailure(ctx context.Context, key string, now time.Time, rule ThrottleRule) (time.Time, error) {
	var blocked int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var failures int
		var start int64
		err := tx.QueryRowContext(ctx, s.q(`SELECT failures, window_start, blocked_until FROM signin_failures WHERE key = ?`), key).Scan(&failures, &start, &blocked)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			failures, start, blocked = 0, now.UnixMilli(), 0
		case err != nil:
			return err
		}
		if now.Sub(time.UnixMilli(start)) > rule.Window {
			failures, start = 0, now.UnixMilli()
		}
		failures++
		if rule.Max > 0 && failures >= rule.Max {
			blocked = now.Add(rule.Lockout).UnixMilli()
			failures, start = 0, now.UnixMilli()
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO signin_failures (key, failures, window_start, blocked_until) VALUES (?, ?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, window_start = excluded.window_start, blocked_until = excluded.blocked_until`),
			key, failures, start, blocked)
		return err
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("store: record signin failure: %w", err)
	}
	if t := time.UnixMilli(blocked); blocked > 0 && t.After(now) {
		return t, nil
	}
	return time.Time{}, nil
}

// ClearSigninFailures forgets the failures of key (after a good sign-in).
func (s *Store) ClearSigninFailures(ctx context.Context, key string, now time.Time) error {
	if _, err := s.wdb.ExecContext(ctx, s.q(`DELETE FROM signin_failures WHERE key = ? AND blocked_until <= ?`), key, now.UnixMilli()); err != nil {
		return fmt.Errorf("store: clear signin failures: %w", err)
	}
	return nil
}

// PurgeSigninFailures drops counters whose window and block ended before now.
func (s *Store) PurgeSigninFailures(ctx context.Context, now time.Time, window time.Duration) error {
	_, err := s.wdb.ExecContext(ctx, s.q(`DELETE FROM signin_failures WHERE window_start < ? AND blocked_until < ?`), now.Add(-window).UnixMilli(), now.UnixMilli())
	if err != nil {
		return fmt.Errorf("store: purge signin failures: %w", err)
	}
	return nil
}

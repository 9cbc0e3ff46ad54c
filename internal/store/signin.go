package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SigninState is what the store holds for one sign-in key: until when it is blocked (zero if it
// is not) and when its current window began (for a familiar-address key, the last success).
type SigninState struct {
	BlockedUntil time.Time
	WindowStart  time.Time
}

// SigninStates returns the state of each of keys that has one, in one query: a good sign-in
// needs to clear only the keys on record, so the common case writes nothing.
func (s *Store) SigninStates(ctx context.Context, keys ...string) (map[string]SigninState, error) {
	out := map[string]SigninState{}
	if len(keys) == 0 {
		return out, nil
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(keys)), ", ")
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	type row struct {
		key            string
		start, blocked int64
	}
	rows, err := queryAll(ctx, s.r, s.q(`SELECT key, window_start, blocked_until FROM signin_failures WHERE key IN (`+marks+`)`), args, func(sc scanner) (row, error) {
		var r row
		return r, sc.Scan(&r.key, &r.start, &r.blocked)
	})
	if err != nil {
		return nil, fmt.Errorf("store: signin failures: %w", err)
	}
	for _, r := range rows {
		st := SigninState{WindowStart: time.UnixMilli(r.start)}
		if r.blocked > 0 {
			st.BlockedUntil = time.UnixMilli(r.blocked)
		}
		out[r.key] = st
	}
	return out, nil
}

// ThrottleRule says how many failures within Window block a key, and for how long: Lockout the
// first time, twice as long each time the key is blocked again within Window of the last block's
// end, up to MaxLockout (0: no ceiling but 2^16 × Lockout).
type ThrottleRule struct {
	Max        int
	Window     time.Duration
	Lockout    time.Duration
	MaxLockout time.Duration
}

// lockout is how long the n-th consecutive block (n ≥ 1) lasts.
func (r ThrottleRule) lockout(n int) time.Duration {
	d := r.Lockout << min(n-1, 16)
	if r.MaxLockout > 0 && d > r.MaxLockout {
		d = r.MaxLockout
	}
	return d
}

// RecordSigninFailure counts a failure against key under rule, and returns until when the key
// is blocked (zero if it is not).
func (s *Store) RecordSigninFailure(ctx context.Context, key string, now time.Time, rule ThrottleRule) (time.Time, error) {
	var blocked int64
	err := s.txOn(ctx, []lockKey{signinKey(key)}, func(tx *sql.Tx) error {
		var failures, lockouts int
		var start int64
		err := tx.QueryRowContext(ctx, s.q(`SELECT failures, window_start, blocked_until, lockouts FROM signin_failures WHERE key = ?`), key).Scan(&failures, &start, &blocked, &lockouts)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			failures, start, blocked, lockouts = 0, now.UnixMilli(), 0, 0
		case err != nil:
			return err
		}
		if now.Sub(time.UnixMilli(start)) > rule.Window {
			failures, start = 0, now.UnixMilli()
		}
		failures++
		if rule.Max > 0 && failures >= rule.Max {
			// Blocked again soon after the last block ended: the lockout grows.
			if blocked > 0 && now.Sub(time.UnixMilli(blocked)) <= rule.Window {
				lockouts++
			} else {
				lockouts = 1
			}
			blocked = now.Add(rule.lockout(lockouts)).UnixMilli()
			failures, start = 0, now.UnixMilli()
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO signin_failures (key, failures, window_start, blocked_until, lockouts) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, window_start = excluded.window_start, blocked_until = excluded.blocked_until, lockouts = excluded.lockouts`),
			key, failures, start, blocked, lockouts)
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

// RememberSignin records a successful sign-in under key (its WindowStart is the time), which
// makes the address it names familiar to the identity (authn's identity-wide ceiling spares it).
func (s *Store) RememberSignin(ctx context.Context, key string, now time.Time) error {
	_, err := s.wdb.ExecContext(ctx, s.q(`INSERT INTO signin_failures (key, failures, window_start, blocked_until, lockouts) VALUES (?, 0, ?, 0, 0)
		ON CONFLICT (key) DO UPDATE SET window_start = excluded.window_start`), key, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("store: remember signin: %w", err)
	}
	return nil
}

// PurgeSigninFailures drops counters whose window ended, and whose last block ended, more than
// window ago (so that a key blocked again soon after still has its lockout count), and the
// remembered sign-ins (keys starting with remembered) older than keep.
func (s *Store) PurgeSigninFailures(ctx context.Context, now time.Time, window time.Duration, remembered string, keep time.Duration) error {
	old := now.Add(-window).UnixMilli()
	_, err := s.wdb.ExecContext(ctx, s.q(`DELETE FROM signin_failures WHERE window_start < ? AND blocked_until < ? AND key NOT LIKE ?`), old, old, remembered+"%")
	if err == nil {
		_, err = s.wdb.ExecContext(ctx, s.q(`DELETE FROM signin_failures WHERE key LIKE ? AND window_start < ?`), remembered+"%", now.Add(-keep).UnixMilli())
	}
	if err != nil {
		return fmt.Errorf("store: purge signin failures: %w", err)
	}
	return nil
}

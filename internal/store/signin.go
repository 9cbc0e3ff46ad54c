package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

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

package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Results of an event.
const (
	ResultSuccess = "success"
	ResultFailure = "failure"
)

// LoginEvent is one sign-in attempt (the management API shows it as client.LoginEvent).
type LoginEvent struct {
	ID            int64
	Time          time.Time
	Registry      string
	LoginServer   string
	Operation     string
	Identity      string
	IdentityKind  string
	IP            string
	UserAgent     string
	Status        int
	Result        string
	Reason        string
	Message       string
	Granted       []string
	Refused       []string
	Duration      Millis
	CorrelationID string
	TokenID       string
	// Attempts is how many sign-in attempts the event stands for (0 is read as 1): failures that
	// name no verified identity are written once per address, reason and interval.
	Attempts int
	// Issuer and Subject name the external token of a federated sign-in.
	Issuer, Subject string
}

// RepositoryEvent is one push, pull, delete or untag of a manifest.
type RepositoryEvent struct {
	ID            int64
	Time          time.Time
	Registry      string
	LoginServer   string
	Operation     string
	Repository    string
	Tag           string
	Digest        string
	MediaType     string
	ArtifactType  string
	Size          int64
	Identity      string
	IdentityKind  string
	IP            string
	UserAgent     string
	Status        int
	Result        string
	Reason        string
	Message       string
	Duration      Millis
	CorrelationID string
}

// Millis is a duration kept in milliseconds (with microseconds) in the events tables.
type Millis time.Duration

// EventFilter selects events. Zero fields match everything.
type EventFilter struct {
	// Registries limits the events to these registry names ("" names directory sign-ins); nil
	// means every registry.
	Registries    []string
	Identity      string // case-insensitive
	Result        string
	Reason        string
	IP            string
	Operation     string
	Repository    string // repository events only
	CorrelationID string
	Subject       string // login events only: the external token's (federated and single sign-on sign-ins)
	Since, Until  time.Time
	// Before returns only events with a smaller id (the next page of a newest-first listing).
	Before int64
	// Limit caps the number of events; 0 means 100.
	Limit int
}

// insertChunk is how many rows one INSERT of insertRows writes: few statement texts to prepare
// (one per chunk size), few round trips.
const insertChunk = 32

// insertRows inserts one row per item with as few statements as insertChunk allows; prefix is
// the INSERT up to VALUES, and args gives an item's values in its columns' order.
func insertRows[T any](ctx context.Context, tx *sql.Tx, s *Store, prefix string, items []T, args func(T) []any) error {
	for len(items) > 0 {
		n := min(len(items), insertChunk)
		var b strings.Builder
		b.WriteString(prefix)
		var vals []any
		for i, it := range items[:n] {
			row := args(it)
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?" + strings.Repeat(", ?", len(row)-1) + ")")
			vals = append(vals, row...)
		}
		if _, err := tx.ExecContext(ctx, s.q(b.String()), vals...); err != nil {
			return err
		}
		items = items[n:]
	}
	return nil
}

// MaxEventPage bounds one page of events.
const MaxEventPage = 10_000

// InsertEvents writes a batch of events in one transaction.
func (s *Store) InsertEvents(ctx context.Context, logins []LoginEvent, repos []RepositoryEvent) error {
	// Events are only appended: batches of several replicas are written side by side.
	err := s.txOn(ctx, nil, func(tx *sql.Tx) error {
		err := insertRows(ctx, tx, s, `INSERT INTO login_events (time, registry, login_server, operation, identity, identity_kind, ip,
				user_agent, status, result, reason, message, granted, refused, duration_us, correlation_id, token_id, attempts, issuer, subject) VALUES `,
			logins, func(e LoginEvent) []any {
				return []any{e.Time.UnixMilli(), e.Registry, e.LoginServer, e.Operation, e.Identity, e.IdentityKind, e.IP,
					e.UserAgent, e.Status, e.Result, e.Reason, e.Message, strings.Join(e.Granted, " "), strings.Join(e.Refused, " "),
					time.Duration(e.Duration).Microseconds(), e.CorrelationID, e.TokenID, max(e.Attempts, 1), e.Issuer, e.Subject}
			})
		if err != nil {
			return err
		}
		return insertRows(ctx, tx, s, `INSERT INTO repository_events (time, registry, login_server, operation, repository, tag, digest,
				media_type, artifact_type, size, identity, identity_kind, ip, user_agent, status, result, reason, message, duration_us, correlation_id) VALUES `,
			repos, func(e RepositoryEvent) []any {
				return []any{e.Time.UnixMilli(), e.Registry, e.LoginServer, e.Operation, e.Repository, e.Tag, e.Digest,
					e.MediaType, e.ArtifactType, e.Size, e.Identity, e.IdentityKind, e.IP, e.UserAgent, e.Status, e.Result, e.Reason, e.Message,
					time.Duration(e.Duration).Microseconds(), e.CorrelationID}
			})
	})
	if err != nil {
		return fmt.Errorf("store: insert events: %w", err)
	}
	return nil
}

// where builds the WHERE clause of an event query.
func (f EventFilter) where(repository bool) (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, v any) {
		conds = append(conds, cond)
		args = append(args, v)
	}
	if f.Registries != nil {
		if len(f.Registries) == 0 {
			conds = append(conds, "1 = 0")
		} else {
			conds = append(conds, "registry IN (?"+strings.Repeat(", ?", len(f.Registries)-1)+")")
			for _, r := range f.Registries {
				args = append(args, r)
			}
		}
	}
	for _, c := range []struct {
		col, v string
	}{{"result", f.Result}, {"reason", f.Reason}, {"ip", f.IP}, {"operation", f.Operation}, {"correlation_id", f.CorrelationID}} {
		if c.v != "" {
			add(c.col+" = ?", c.v)
		}
	}
	if f.Identity != "" {
		add("LOWER(identity) = ?", strings.ToLower(f.Identity))
	}
	if repository && f.Repository != "" {
		add("repository = ?", f.Repository)
	}
	if !repository && f.Subject != "" {
		add("subject = ?", f.Subject)
	}
	if !f.Since.IsZero() {
		add("time >= ?", f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		add("time < ?", f.Until.UnixMilli())
	}
	if f.Before > 0 {
		add("id < ?", f.Before)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

func (f EventFilter) limit() int {
	switch {
	case f.Limit <= 0:
		return 100
	case f.Limit > MaxEventPage:
		return MaxEventPage
	}
	return f.Limit
}

// LoginEvents lists the login events f selects, newest first.
func (s *Store) LoginEvents(ctx context.Context, f EventFilter) ([]LoginEvent, error) {
	where, args := f.where(false)
	return queryAll(ctx, s.r, s.q(`SELECT id, time, registry, login_server, operation, identity, identity_kind, ip, user_agent, status, result,
		reason, message, granted, refused, duration_us, correlation_id, token_id, attempts, issuer, subject FROM login_events`+where+
		fmt.Sprintf(" ORDER BY id DESC LIMIT %d", f.limit())), args, func(sc scanner) (LoginEvent, error) {
		var e LoginEvent
		var t, us int64
		var granted, refused string
		err := sc.Scan(&e.ID, &t, &e.Registry, &e.LoginServer, &e.Operation, &e.Identity, &e.IdentityKind, &e.IP, &e.UserAgent, &e.Status,
			&e.Result, &e.Reason, &e.Message, &granted, &refused, &us, &e.CorrelationID, &e.TokenID, &e.Attempts, &e.Issuer, &e.Subject)
		e.Time, e.Duration = time.UnixMilli(t).UTC(), Millis(time.Duration(us)*time.Microsecond)
		e.Granted, e.Refused = fields(granted), fields(refused)
		return e, err
	})
}

// RepositoryEvents lists the repository events f selects, newest first.
func (s *Store) RepositoryEvents(ctx context.Context, f EventFilter) ([]RepositoryEvent, error) {
	where, args := f.where(true)
	return queryAll(ctx, s.r, s.q(`SELECT id, time, registry, login_server, operation, repository, tag, digest, media_type, artifact_type, size,
		identity, identity_kind, ip, user_agent, status, result, reason, message, duration_us, correlation_id FROM repository_events`+where+
		fmt.Sprintf(" ORDER BY id DESC LIMIT %d", f.limit())), args, func(sc scanner) (RepositoryEvent, error) {
		var e RepositoryEvent
		var t, us int64
		err := sc.Scan(&e.ID, &t, &e.Registry, &e.LoginServer, &e.Operation, &e.Repository, &e.Tag, &e.Digest, &e.MediaType, &e.ArtifactType,
			&e.Size, &e.Identity, &e.IdentityKind, &e.IP, &e.UserAgent, &e.Status, &e.Result, &e.Reason, &e.Message, &us, &e.CorrelationID)
		e.Time, e.Duration = time.UnixMilli(t).UTC(), Millis(time.Duration(us)*time.Microsecond)
		return e, err
	})
}

// CountEvents counts the login and repository events, for tests and metrics.
func (s *Store) CountEvents(ctx context.Context) (logins, repos int64, err error) {
	if err := s.r.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM login_events), (SELECT COUNT(*) FROM repository_events)`).Scan(&logins, &repos); err != nil {
		return 0, 0, fmt.Errorf("store: count events: %w", err)
	}
	return logins, repos, nil
}

// purgeBatch bounds one purge transaction, so that writers are not held up for long.
const purgeBatch = 5000

// PurgeEvents deletes the events older than before and returns how many it deleted.
func (s *Store) PurgeEvents(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for _, table := range []string{"login_events", "repository_events"} {
		for {
			var n int64
			err := s.tx(ctx, func(tx *sql.Tx) error {
				res, err := tx.ExecContext(ctx, s.q(`DELETE FROM `+table+` WHERE id IN (SELECT id FROM `+table+` WHERE time < ? ORDER BY id LIMIT ?)`),
					before.UnixMilli(), purgeBatch)
				if err != nil {
					return err
				}
				n, err = res.RowsAffected()
				return err
			})
			if err != nil {
				return total, fmt.Errorf("store: purge events: %w", err)
			}
			total += n
			if n < purgeBatch {
				break
			}
		}
	}
	return total, nil
}

func fields(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Fields(s)
}

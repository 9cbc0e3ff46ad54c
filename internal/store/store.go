// Package store keeps berth's metadata in SQL: registries, repositories, manifests, tags,
// referrers and upload sessions. It is written against database/sql with one schema per dialect
// (SQLite embedded by default; PostgreSQL for scale-out), so callers never see which one runs.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"
)

// Errors callers branch on with errors.Is.
var (
	ErrNotFound = errors.New("store: not found")
	// ErrConflict means a conditional update lost a race (the row changed meanwhile).
	ErrConflict = errors.New("store: conflict")
	// ErrSchemaTooNew means the database was migrated by a newer berth.
	ErrSchemaTooNew = errors.New("store: database schema is newer than this berth")
)

//go:embed migrations
var migrationFS embed.FS

// dialect is what differs between SQL engines.
type dialect struct {
	name       string
	migrations string // folder in migrationFS
	// rebind turns '?' placeholders into the engine's form.
	rebind func(string) string
}

var sqliteDialect = dialect{name: "sqlite", migrations: "migrations/sqlite", rebind: func(q string) string { return q }}

// Store is the SQL metadata store.
type Store struct {
	d   dialect
	rdb *sql.DB // reads
	wdb *sql.DB // writes (one connection for SQLite, so writers queue in Go, not in busy loops)
	now func() time.Time
}

// Options configure Open.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Open connects to the database named by dsn: "sqlite:PATH" (or a bare path). It applies
// pending migrations and refuses a schema newer than it knows.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	var s *Store
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return nil, fmt.Errorf("store: PostgreSQL is not built into this version of berth yet (database %q)", redactDSN(dsn))
	default:
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" {
			return nil, errors.New("store: empty SQLite path")
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		q := url.Values{}
		for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)"} {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", "immediate")
		u := "file:" + path + "?" + q.Encode()
		wdb, err := sql.Open("sqlite", u)
		if err != nil {
			return nil, fmt.Errorf("store: open %s: %w", path, err)
		}
		wdb.SetMaxOpenConns(1)
		rdb, err := sql.Open("sqlite", u)
		if err != nil {
			wdb.Close()
			return nil, fmt.Errorf("store: open %s: %w", path, err)
		}
		rdb.SetMaxOpenConns(8)
		rdb.SetMaxIdleConns(8)
		s = &Store{d: sqliteDialect, rdb: rdb, wdb: wdb, now: now}
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the database.
func (s *Store) Close() error {
	return errors.Join(s.wdb.Close(), s.rdb.Close())
}

// Ping checks that the database answers, for readiness probes.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.rdb.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

func (s *Store) millis() int64 { return s.now().UnixMilli() }

func (s *Store) q(query string) string { return s.d.rebind(query) }

// migrate applies the embedded migrations not yet recorded in schema_migrations.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.wdb.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	entries, err := fs.ReadDir(migrationFS, s.d.migrations)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	type mig struct {
		version int
		name    string
	}
	var migs []mig
	for _, e := range entries {
		v, _, ok := strings.Cut(e.Name(), "_")
		n, err := strconv.Atoi(v)
		if !ok || err != nil {
			return fmt.Errorf("store: migration file %q is not named NNNN_name.sql", e.Name())
		}
		migs = append(migs, mig{n, e.Name()})
	}
	sort.Slice(migs, func(i, j int) bool { return migs[i].version < migs[j].version })
	var current int
	if err := s.wdb.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	if len(migs) > 0 && current > migs[len(migs)-1].version {
		return fmt.Errorf("%w: schema version %d, this berth knows up to %d", ErrSchemaTooNew, current, migs[len(migs)-1].version)
	}
	for _, m := range migs {
		if m.version <= current {
			continue
		}
		body, err := fs.ReadFile(migrationFS, s.d.migrations+"/"+m.name)
		if err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
		err = s.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("apply %s: %w", m.name, err)
			}
			_, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`), m.version, s.millis())
			return err
		})
		if err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
	}
	return nil
}

// tx runs fn in a write transaction, committing if it returns nil.
func (s *Store) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	return tx.Commit()
}

func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

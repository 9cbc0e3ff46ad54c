// Package store keeps berth's metadata in SQL: registries, repositories, manifests, tags,
// referrers, upload sessions, identities, policy and events. It is written against database/sql
// with one schema per dialect (SQLite embedded by default; PostgreSQL through pgx for several
// replicas), so callers never see which one runs.
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
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL through database/sql, registered as "pgx"
	_ "modernc.org/sqlite"             // the pure-Go SQLite driver, registered as "sqlite"
)

// Errors callers branch on with errors.Is.
var (
	ErrNotFound = errors.New("store: not found")
	// ErrConflict means a conditional update lost a race (the row changed meanwhile).
	ErrConflict = errors.New("store: conflict")
	// ErrSchemaTooNew means the database was migrated by a newer berth.
	ErrSchemaTooNew = errors.New("store: database schema is newer than this berth")
	// ErrSchemaOld means migrations are pending and Open was told not to apply them.
	ErrSchemaOld = errors.New("store: database schema is older than this berth: run 'berth migrate'")
)

//go:embed migrations
var migrationFS embed.FS

// dialect is what differs between SQL engines.
type dialect struct {
	name       string
	migrations string // folder in migrationFS
	// rebind turns '?' placeholders into the engine's form.
	rebind func(string) string
	// advisory: the engine runs writers side by side (PostgreSQL), and write transactions take
	// transaction-scoped advisory locks (see tx and txOn) so that on every replica the store's
	// check-then-write transactions keep their meaning. SQLite has one writer at a time anyway.
	advisory bool
}

var sqliteDialect = dialect{name: "sqlite", migrations: "migrations/sqlite", rebind: func(q string) string { return q }}

var postgresDialect = dialect{name: "postgres", migrations: "migrations/postgres", rebind: reboundOnce, advisory: true}

// rebound remembers queries turned into PostgreSQL's form (the store's queries are mostly
// constants; at most maxRebound are kept, so built ones cannot fill memory).
var (
	rebound  sync.Map
	reboundN atomic.Int64
)

const maxRebound = 4096

func reboundOnce(q string) string {
	if v, ok := rebound.Load(q); ok {
		return v.(string)
	}
	r := dollarPlaceholders(q)
	if reboundN.Load() < maxRebound {
		if _, loaded := rebound.LoadOrStore(q, r); !loaded {
			reboundN.Add(1)
		}
	}
	return r
}

// dollarPlaceholders turns the '?' placeholders of a query into PostgreSQL's $1, $2, …; berth's
// queries have no '?' in literals.
func dollarPlaceholders(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// Store is the SQL metadata store.
type Store struct {
	d      dialect
	lockNS lockKey // PostgreSQL: the namespace of its advisory locks (lockNamespace)
	rdb    *sql.DB // reads
	r      *reader // reads through rdb, prepared once on SQLite
	wdb    *sql.DB // writes (one connection for SQLite, so writers queue in Go, not in busy loops)
	now    func() time.Time
}

// Options configure Open.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// NoMigrate refuses a database with pending migrations (ErrSchemaOld) instead of applying
	// them: replicas over a shared database leave migrations to 'berth migrate'.
	NoMigrate bool
	// MaxConns bounds the connections to PostgreSQL; 0 means DefaultMaxConns. SQLite keeps one
	// writer and eight readers whatever it says.
	MaxConns int
}

// DefaultMaxConns is Options.MaxConns when it is 0.
const DefaultMaxConns = 32

// IsPostgres reports whether dsn names a PostgreSQL database.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open connects to the database named by dsn: "sqlite:PATH" (or a bare path), or
// "postgres://USER@HOST:PORT/DB?…". It applies pending migrations (unless opts.NoMigrate) and
// refuses a schema newer than it knows.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	var s *Store
	switch {
	case IsPostgres(dsn):
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("store: open %s: %w", redactDSN(dsn), err)
		}
		// As many idle connections kept as may be open: fewer, and a burst of more than that
		// many requests closes and reopens connections (a new server process each) all along.
		conns := opts.MaxConns
		if conns <= 0 {
			conns = DefaultMaxConns
		}
		db.SetMaxOpenConns(conns)
		db.SetMaxIdleConns(conns)
		db.SetConnMaxIdleTime(5 * time.Minute)
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("store: connect to %s: %w", redactDSN(dsn), err)
		}
		var schema string
		if err := db.QueryRowContext(ctx, "SELECT COALESCE(current_schema(), '')").Scan(&schema); err != nil {
			db.Close()
			return nil, fmt.Errorf("store: %s: current schema: %w", redactDSN(dsn), err)
		}
		s = &Store{d: postgresDialect, rdb: db, wdb: db, r: newReader(db, false), now: now, lockNS: lockNamespace(schema)}
	default:
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" {
			return nil, errors.New("store: empty SQLite path")
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		// The database holds the signing keys and every secret's hash: only berth's user reads
		// it. SQLite gives its -wal and -shm files the database file's mode.
		if err := privateFiles(path, path+"-wal", path+"-shm"); err != nil {
			return nil, err
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
		s = &Store{d: sqliteDialect, rdb: rdb, wdb: wdb, r: newReader(rdb, true), now: now}
	}
	if _, err := s.Migrate(ctx, !opts.NoMigrate); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Dialect names the SQL engine: sqlite or postgres.
func (s *Store) Dialect() string { return s.d.name }

// Close releases the database.
func (s *Store) Close() error {
	serr := s.r.Close()
	if s.rdb == s.wdb {
		return errors.Join(serr, s.wdb.Close())
	}
	return errors.Join(serr, s.wdb.Close(), s.rdb.Close())
}

// Ping checks that the database answers, for readiness probes.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// ConnectionRoom is how many connections PostgreSQL lets this store's role open to its database
// at most, with nobody else connected: max_connections less the reserved ones, then the role's
// and the database's own limits (none of which bind a superuser but max_connections). It is -1
// on SQLite.
func (s *Store) ConnectionRoom(ctx context.Context) (int, error) {
	if s.d.name != postgresDialect.name {
		return -1, nil
	}
	var maxConns, reserved, roleLimit, dbLimit int
	var super bool
	err := s.r.QueryRowContext(ctx, `SELECT current_setting('max_connections')::int,
		current_setting('superuser_reserved_connections')::int + COALESCE(NULLIF(current_setting('reserved_connections', true), '')::int, 0),
		r.rolconnlimit, r.rolsuper, d.datconnlimit
		FROM pg_roles r, pg_database d WHERE r.rolname = current_user AND d.datname = current_database()`).
		Scan(&maxConns, &reserved, &roleLimit, &super, &dbLimit)
	if err != nil {
		return 0, fmt.Errorf("store: connection limits: %w", err)
	}
	if super {
		return maxConns, nil
	}
	room := maxConns - reserved
	for _, l := range []int{roleLimit, dbLimit} {
		if l >= 0 { // -1: no limit
			room = min(room, l)
		}
	}
	return room, nil
}

func (s *Store) millis() int64 { return s.now().UnixMilli() }

func (s *Store) q(query string) string { return s.d.rebind(query) }

type migration struct {
	version int
	name    string
}

// migrations lists the dialect's embedded migrations in order.
func (s *Store) migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, s.d.migrations)
	if err != nil {
		return nil, fmt.Errorf("store: migrate: %w", err)
	}
	var migs []migration
	for _, e := range entries {
		v, _, ok := strings.Cut(e.Name(), "_")
		n, err := strconv.Atoi(v)
		if !ok || err != nil {
			return nil, fmt.Errorf("store: migration file %q is not named NNNN_name.sql", e.Name())
		}
		migs = append(migs, migration{n, e.Name()})
	}
	sort.Slice(migs, func(i, j int) bool { return migs[i].version < migs[j].version })
	return migs, nil
}

// Migrate applies the embedded migrations not yet recorded in schema_migrations, in one
// transaction (one replica migrates; the others wait, then find nothing to do), and returns the
// versions it applied. With apply false it only checks: pending migrations are ErrSchemaOld.
// A schema newer than this berth knows is ErrSchemaTooNew either way.
func (s *Store) Migrate(ctx context.Context, apply bool) ([]int, error) {
	migs, err := s.migrations()
	if err != nil {
		return nil, err
	}
	var applied []int
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
			return err
		}
		var current int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return err
		}
		if len(migs) > 0 && current > migs[len(migs)-1].version {
			return fmt.Errorf("%w: schema version %d, this berth knows up to %d", ErrSchemaTooNew, current, migs[len(migs)-1].version)
		}
		for _, m := range migs {
			if m.version <= current {
				continue
			}
			if !apply {
				return fmt.Errorf("%w (schema version %d, this berth needs %d)", ErrSchemaOld, current, migs[len(migs)-1].version)
			}
			body, err := fs.ReadFile(migrationFS, s.d.migrations+"/"+m.name)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("apply %s: %w", m.name, err)
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`), m.version, s.millis()); err != nil {
				return err
			}
			applied = append(applied, m.version)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrSchemaTooNew) || errors.Is(err, ErrSchemaOld) {
			return nil, err
		}
		return nil, fmt.Errorf("store: migrate: %w", err)
	}
	return applied, nil
}

// tx runs fn in a write transaction that waits for, and holds off, every other write
// transaction on every replica (PostgreSQL's writer lock, taken exclusively), committing if fn
// returns nil. It is for writes that read or change what many others touch: configuration,
// garbage collection, whole repositories. The frequent writes use txOn.
func (s *Store) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.run(ctx, lockAll, nil, fn)
}

// txOn runs fn in a write transaction that holds the locks of keys — everything fn reads to
// decide what to write belongs to one of them — and the writer lock shared: transactions on
// other keys run beside it; one of tx waits for it to end. SQLite runs it as tx.
func (s *Store) txOn(ctx context.Context, keys []lockKey, fn func(tx *sql.Tx) error) error {
	return s.run(ctx, lockShared, keys, fn)
}

func (s *Store) run(ctx context.Context, mode lockMode, keys []lockKey, fn func(tx *sql.Tx) error) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if s.d.advisory {
		if _, err := tx.ExecContext(ctx, lockQuery(mode, keys), lockArgs(s.lockNS, keys)...); err != nil {
			return errors.Join(err, tx.Rollback())
		}
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	return tx.Commit()
}

// Redact returns dsn without its password, for logs and messages.
func Redact(dsn string) string {
	if IsPostgres(dsn) {
		return redactDSN(dsn)
	}
	return dsn
}

func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// privateFiles makes the database file (created empty if missing) and its companions that exist
// readable by their owner only, whatever the folder's or the umask's mode.
func privateFiles(db string, others ...string) error {
	f, err := os.OpenFile(db, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	f.Close()
	for _, p := range append([]string{db}, others...) {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("store: %w", err)
		}
	}
	return nil
}

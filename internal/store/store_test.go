package store_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/berth-registry/berth/internal/store"
	"github.com/berth-registry/berth/internal/store/pgtest"
	"github.com/berth-registry/berth/internal/store/storetest"
)

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) *store.Store {
		s, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "berth.db"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestPostgres(t *testing.T) {
	storetest.Run(t, func(t *testing.T) *store.Store {
		s, err := store.Open(context.Background(), pgtest.DSN(t), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestMigrationsAlike: the dialects have the same migrations, by number and name.
func TestMigrationsAlike(t *testing.T) {
	list := func(dir string) []string {
		entries, err := os.ReadDir(filepath.Join("migrations", dir))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	if a, b := list("sqlite"), list("postgres"); !slices.Equal(a, b) {
		t.Errorf("sqlite migrations %v, postgres %v", a, b)
	}
}

// TestPostgresMigrations: a second Open applies nothing; NoMigrate refuses pending migrations;
// a newer schema is refused; concurrent Opens (replicas starting together) migrate once.
func TestPostgresMigrations(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	if _, err := store.Open(ctx, dsn, store.Options{NoMigrate: true}); !errors.Is(err, store.ErrSchemaOld) {
		t.Errorf("NoMigrate on an empty database: %v, want ErrSchemaOld", err)
	}
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := store.Open(ctx, dsn, store.Options{})
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent open: %v", err)
		}
	}
	s, err := store.Open(ctx, dsn, store.Options{NoMigrate: true})
	if err != nil {
		t.Fatalf("NoMigrate on a current schema: %v", err)
	}
	if applied, err := s.Migrate(ctx, true); err != nil || len(applied) != 0 {
		t.Errorf("Migrate again applied %v, %v", applied, err)
	}
	s.Close()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)`); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Open(ctx, dsn, store.Options{}); !errors.Is(err, store.ErrSchemaTooNew) {
		t.Errorf("open of a newer schema err = %v; want ErrSchemaTooNew", err)
	}
}

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "berth.db")
	for i := 0; i < 2; i++ { // reopening applies nothing twice
		s, err := store.Open(ctx, "sqlite:"+path, store.Options{})
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		s.Close()
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := store.Open(ctx, "sqlite:"+path, store.Options{}); !errors.Is(err, store.ErrSchemaTooNew) {
		t.Errorf("open of a newer schema err = %v; want ErrSchemaTooNew", err)
	}
}

// TestConnectionRoom: SQLite has no connection limit to read (-1); on PostgreSQL the room of the
// tests' role, a superuser, is the server's max_connections. (A role with its own CONNECTION LIMIT: test/faults TestConnectionLimit.)
func TestConnectionRoom(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "berth.db"), store.Options{MaxConns: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if room, err := s.ConnectionRoom(ctx); room != -1 || err != nil {
		t.Errorf("SQLite: room %d, %v; want -1", room, err)
	}
	dsn := pgtest.DSN(t)
	p, err := store.Open(ctx, dsn, store.Options{MaxConns: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	room, err := p.ConnectionRoom(ctx)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var max int
	var super bool
	if err := db.QueryRow("SELECT current_setting('max_connections')::int, rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&max, &super); err != nil {
		t.Fatal(err)
	}
	if !super {
		t.Skip("the tests' PostgreSQL role is not a superuser")
	}
	if room != max {
		t.Errorf("room %d, want max_connections %d", room, max)
	}
}

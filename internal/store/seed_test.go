package store

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/berth-registry/berth/internal/store/pgtest"
)

// TestSeed: the data set of berth-bench scale has the rows its documentation counts, on both
// dialects, and the store's own reads find them.
func TestSeed(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct{ name, dsn string }{{"sqlite", ""}, {"postgres", "postgres"}} {
		t.Run(c.name, func(t *testing.T) {
			dsn := "sqlite:" + filepath.Join(t.TempDir(), "berth.db")
			if c.dsn != "" {
				dsn = pgtest.DSN(t)
			}
			s, err := Open(ctx, dsn, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			const n = 2
			if err := s.Seed(ctx, Seed{Scale: n}); err != nil {
				t.Fatal(err)
			}
			for _, w := range []struct {
				query string
				want  int
			}{
				{`SELECT COUNT(*) FROM repositories`, (SeedRepositories+0)*n + 1},
				{`SELECT COUNT(*) FROM manifests`, (SeedRepositories + SeedBigTags + SeedUntagged) * n},
				{`SELECT COUNT(*) FROM tags`, (SeedRepositories + SeedBigTags) * n},
				{`SELECT COUNT(*) FROM repository_blobs`, (SeedRepositories + SeedBigTags + SeedUntagged) * n},
				{`SELECT COUNT(*) FROM role_assignments`, SeedIdentities * n},
				{`SELECT COUNT(*) FROM tokens`, SeedIdentities * n},
				{`SELECT COUNT(*) FROM login_events`, SeedEvents * n},
				{`SELECT COUNT(*) FROM deleted_manifests`, SeedDeleted * n},
				// Correlation ids sort as the events' times do, as berth's own.
				{`SELECT COUNT(*) FROM login_events a JOIN login_events b ON a.id + 1 = b.id WHERE NOT (a.correlation_id < b.correlation_id AND a.time < b.time)`, 0},
			} {
				var got int
				if err := s.rdb.QueryRowContext(ctx, w.query).Scan(&got); err != nil || got != w.want {
					t.Errorf("%s = %d (%v), want %d", w.query, got, err, w.want)
				}
			}
			reg, err := s.RegistryByName(ctx, "default")
			if err != nil {
				t.Fatal(err)
			}
			if m, err := s.Tag(ctx, reg.ID, SeedRepository(7), "v1"); err != nil || string(m.Digest) == "" {
				t.Errorf("Tag(%s:v1) = %+v, %v", SeedRepository(7), m, err)
			}
			if evs, err := s.LoginEvents(ctx, EventFilter{CorrelationID: SeedCorrelationID(SeedEvents*n - 1), Limit: 10}); err != nil || len(evs) != 1 {
				t.Errorf("login events of %s = %d (%v), want 1", SeedCorrelationID(SeedEvents*n-1), len(evs), err)
			}
			if names, more, err := s.Catalog(ctx, reg.ID, "", 10); err != nil || len(names) != 10 || !more {
				t.Errorf("Catalog = %v, %v, %v", names, more, err)
			}
			if err := s.Seed(ctx, Seed{Scale: 0}); err == nil {
				t.Error("a scale of 0 was seeded")
			}
		})
	}
}

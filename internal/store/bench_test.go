package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// BenchmarkCatalogPage reads a page of 100 repository names after a random one, among 100 000
// repositories (SQLite, the embedded default).
func BenchmarkCatalogPage(b *testing.B) {
	const repos, n = 100_000, 100
	ctx := context.Background()
	s, err := Open(ctx, "sqlite:"+filepath.Join(b.TempDir(), "berth.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	reg, err := s.CreateRegistry(ctx, "bench", "")
	if err != nil {
		b.Fatal(err)
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	ins, err := tx.PrepareContext(ctx, s.q(`INSERT INTO repositories (registry_id, name, created_at) VALUES (?, ?, ?)`))
	if err != nil {
		b.Fatal(err)
	}
	for i := range repos {
		if _, err := ins.ExecContext(ctx, reg.ID, fmt.Sprintf("team%03d/app%06d", i%500, i), s.millis()); err != nil {
			b.Fatal(err)
		}
	}
	// The catalog lists repositories that hold a manifest: each gets one.
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO manifests (repository_id, digest, media_type, size, created_at)
		SELECT id, 'sha256:0000', 'application/vnd.oci.image.manifest.v1+json', 1, 0 FROM repositories WHERE registry_id = ?`), reg.ID); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for b.Loop() {
		i := rnd.IntN(repos)
		names, _, err := s.Catalog(ctx, reg.ID, fmt.Sprintf("team%03d/app%06d", i%500, i), n)
		if err != nil || len(names) == 0 {
			b.Fatalf("catalog: %d names, %v", len(names), err)
		}
	}
}

// BenchmarkRegistryUsage is az acr show-usage over a registry of 100 000 manifests in 1 000
// repositories, each referencing two blobs (issue 19's target: at most 200 ms).
func BenchmarkRegistryUsage(b *testing.B) {
	const repos, perRepo = 1_000, 100
	ctx := context.Background()
	s, err := Open(ctx, "sqlite:"+filepath.Join(b.TempDir(), "berth.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	reg, err := s.CreateRegistry(ctx, "bench", "")
	if err != nil {
		b.Fatal(err)
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range repos {
		var id int64
		if err := tx.QueryRowContext(ctx, s.q(`INSERT INTO repositories (registry_id, name, created_at) VALUES (?, ?, 0) RETURNING id`), reg.ID, fmt.Sprintf("team/app%04d", i)).Scan(&id); err != nil {
			b.Fatal(err)
		}
		for j := range perRepo {
			d := fmt.Sprintf("sha256:%064d", i*perRepo+j)
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO manifests (repository_id, digest, media_type, size, created_at) VALUES (?, ?, 'x', 500, 0)`), id, d); err != nil {
				b.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO repository_blobs (repository_id, digest, size, created_at) VALUES (?, ?, 1000, 0), (?, ?, 2000, 0)`), id, d+"a", id, d+"b"); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		u, err := s.RegistryUsage(ctx, reg.ID)
		if err != nil || u.Manifests != repos*perRepo {
			b.Fatalf("usage %+v, %v", u, err)
		}
	}
}

package store

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/store/pgtest"
)

// writesPerPush is what one push of a one-layer image writes to the store below: an upload
// opened, two checkpoints, the upload closed, the layer and the config linked, the manifest put
// with its tag moved, and a batch of its events (a sign-in and the push).
const writesPerPush = 8

// BenchmarkMetadataWrites measures the metadata writes of 64 clients each pushing to a
// repository of its own, through one store or several over the same database (replicas), as
// writes per second: the figure the global writer lock capped (issue 23).
//
//	go test -run '^$' -bench BenchmarkMetadataWrites ./internal/store  (PostgreSQL: BERTH_TEST_POSTGRES)
func BenchmarkMetadataWrites(b *testing.B) {
	for _, c := range []struct {
		name     string
		replicas int
		postgres bool
	}{{"sqlite", 1, false}, {"postgres/replicas=1", 1, true}, {"postgres/replicas=3", 3, true}} {
		b.Run(c.name, func(b *testing.B) {
			dsn := "sqlite:" + filepath.Join(b.TempDir(), "berth.db")
			if c.postgres {
				dsn = pgtest.DSN(b)
			}
			benchWrites(b, dsn, c.replicas)
		})
	}
}

func benchWrites(b *testing.B, dsn string, replicas int) {
	ctx := context.Background()
	stores := make([]*Store, replicas)
	for i := range stores {
		s, err := Open(ctx, dsn, Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	reg, err := stores[0].EnsureDefaultRegistry(ctx, "default")
	if err != nil {
		b.Fatal(err)
	}
	var clients, pushes atomic.Int64
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := clients.Add(1)
		s := stores[int(c)%len(stores)]
		repo := fmt.Sprintf("team/app%03d", c)
		for i := 0; pb.Next(); i++ {
			if err := pushOnce(ctx, s, reg, repo, i); err != nil {
				b.Error(err)
				return
			}
			pushes.Add(1)
		}
	})
	b.StopTimer()
	elapsed := time.Since(start).Seconds()
	b.ReportMetric(float64(pushes.Load()*writesPerPush)/elapsed, "writes/s")
	b.ReportMetric(float64(clients.Load()), "clients")
}

// pushOnce writes what a push of image i of repo writes.
func pushOnce(ctx context.Context, s *Store, reg Registry, repo string, i int) error {
	id := fmt.Sprintf("%s-%d-%d", repo, i, time.Now().UnixNano())
	if err := s.CreateUpload(ctx, Upload{ID: id, RegistryID: reg.ID, Repository: repo, HashAlgorithm: "sha256", Owner: "user:1"}); err != nil {
		return err
	}
	for _, to := range []int64{1 << 20, 2 << 20} {
		if err := s.CheckpointUpload(ctx, id, to-(1<<20), to, []byte("state"), ""); err != nil {
			return err
		}
	}
	if err := s.DeleteUpload(ctx, id); err != nil {
		return err
	}
	layer := oci.FromBytes(oci.SHA256, []byte(id))
	config := oci.FromBytes(oci.SHA256, []byte("config "+id))
	for _, d := range []oci.Digest{layer, config} {
		if err := s.LinkBlob(ctx, reg.ID, repo, d, 2<<20); err != nil {
			return err
		}
	}
	m := Manifest{Digest: oci.FromBytes(oci.SHA256, []byte("manifest "+id)), MediaType: oci.MediaTypeImageManifest, Size: 400}
	if err := s.PutManifest(ctx, reg.ID, repo, m, []oci.Digest{layer, config}, nil, []string{"latest"}); err != nil {
		return err
	}
	now := time.Now()
	return s.InsertEvents(ctx,
		[]LoginEvent{{Time: now, Registry: reg.Name, Operation: "login", Identity: "ci", Result: "success"}},
		[]RepositoryEvent{{Time: now, Registry: reg.Name, Operation: "push", Repository: repo, Tag: "latest", Digest: string(m.Digest), Result: "success"}})
}

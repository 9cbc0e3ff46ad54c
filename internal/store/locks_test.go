package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/store/pgtest"
)

func TestLockQuery(t *testing.T) {
	a, b := repoKey(1, "a"), repoKey(1, "b")
	if a == b || a == repoKey(2, "a") || a == signinKey("a") {
		t.Fatal("different things share a lock key")
	}
	if repoKey(1, "a") != a {
		t.Fatal("a repository's key changes")
	}
	if lockNamespace("public") != 0 || lockNamespace("") != 0 || lockNamespace("t_1") == 0 || lockNamespace("t_1") == lockNamespace("t_2") {
		t.Error("the public schema keeps its keys; every other schema has a namespace of its own")
	}
	ns := lockNamespace("t_1")
	if got, want := fmt.Sprint(lockArgs(ns, []lockKey{b, a})), fmt.Sprint([]any{int64(writerLock ^ ns), int64(min(a^ns, b^ns)), int64(max(a^ns, b^ns))}); got != want {
		t.Errorf("lockArgs in a namespace = %s, want %s", got, want)
	}
	lo, hi := min(a, b), max(a, b)
	for _, c := range []struct {
		mode  lockMode
		keys  []lockKey
		query string
		args  []any
	}{
		{lockAll, nil, "SELECT pg_advisory_xact_lock($1)", []any{int64(writerLock)}},
		{lockShared, nil, "SELECT pg_advisory_xact_lock_shared($1)", []any{int64(writerLock)}},
		{lockShared, []lockKey{hi, lo, hi}, "SELECT pg_advisory_xact_lock_shared($1), pg_advisory_xact_lock($2), pg_advisory_xact_lock($3)",
			[]any{int64(writerLock), int64(lo), int64(hi)}},
	} {
		if q := lockQuery(c.mode, c.keys); q != c.query {
			t.Errorf("lockQuery(%v, %v) = %q, want %q", c.mode, c.keys, q, c.query)
		}
		if c.mode == lockShared {
			if args := lockArgs(0, c.keys); fmt.Sprint(args) != fmt.Sprint(c.args) {
				t.Errorf("lockArgs(%v) = %v, want %v", c.keys, args, c.args)
			}
		}
	}
}

// TestWritersSideBySide (PostgreSQL): while another transaction holds a repository's lock,
// writes to other repositories, uploads and events go through, and writes to that repository
// wait for it; a configuration change waits for every write in flight, and they for it.
func TestWritersSideBySide(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	s, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	reg, err := s.EnsureDefaultRegistry(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	// hold begins a transaction elsewhere holding what query locks, until the returned func.
	hold := func(query string, args ...any) func() {
		t.Helper()
		tx, err := other.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tx.Rollback() }) // also when the test fails while it holds them
		if _, err := tx.ExecContext(ctx, query, args...); err != nil {
			t.Fatal(err)
		}
		return func() { tx.Rollback() }
	}
	// The store's keys as it locks them (its schema's namespace).
	writer := int64(writerLock ^ s.lockNS)
	repoA := int64(repoKey(reg.ID, "a") ^ s.lockNS)
	// waiting reports whether a session waits for an advisory lock (a row in pg_locks not granted).
	waiting := func() bool {
		var n int
		if err := other.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	// waits runs write, asserts it waits on a lock until release, then that it succeeds.
	waits := func(name string, release func(), write func(context.Context) error) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- write(ctx) }()
		for deadline := time.Now().Add(10 * time.Second); !waiting(); time.Sleep(5 * time.Millisecond) {
			select {
			case err := <-done:
				t.Fatalf("%s finished (%v) while the lock it needs was held", name, err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s neither waits nor finishes", name)
			}
		}
		release()
		if err := <-done; err != nil {
			t.Fatalf("%s after the lock was released: %v", name, err)
		}
	}
	// passes runs write while the lock is held: it must not wait for it.
	passes := func(name string, write func(context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := write(ctx); err != nil {
			t.Fatalf("%s while another repository's lock is held: %v", name, err)
		}
	}
	dg := func(s string) oci.Digest { return oci.FromBytes(oci.SHA256, []byte(s)) }
	push := func(repo, name string) func(context.Context) error {
		return func(ctx context.Context) error {
			if err := s.LinkBlob(ctx, reg.ID, repo, dg(name+"layer"), 5); err != nil {
				return err
			}
			m := Manifest{Digest: dg(name), MediaType: oci.MediaTypeImageManifest, Size: 3}
			return s.PutManifest(ctx, reg.ID, repo, m, []oci.Digest{dg(name + "layer")}, nil, []string{"latest"})
		}
	}

	// A writer of repository a (on another replica, say) holds its lock.
	release := hold(`SELECT pg_advisory_xact_lock_shared($1), pg_advisory_xact_lock($2)`, writer, repoA)
	passes("a push to b", push("b", "b1"))
	passes("an upload's checkpoints", func(ctx context.Context) error {
		if err := s.CreateUpload(ctx, Upload{ID: "u1", RegistryID: reg.ID, Repository: "a", HashAlgorithm: "sha256"}); err != nil {
			return err
		}
		return s.CheckpointUpload(ctx, "u1", 0, 10, []byte("h"), "")
	})
	passes("a batch of events", func(ctx context.Context) error {
		return s.InsertEvents(ctx, []LoginEvent{{Time: time.Now(), Registry: "default", Identity: "x"}}, nil)
	})
	passes("a sign-in failure", func(ctx context.Context) error {
		_, err := s.RecordSigninFailure(ctx, "ip:192.0.2.1", time.Now(), ThrottleRule{Max: 5, Window: time.Minute, Lockout: time.Minute})
		return err
	})
	passes("a tag of b deleted", func(ctx context.Context) error { _, err := s.DeleteTag(ctx, reg.ID, "b", "latest"); return err })
	waits("a push to a", release, push("a", "a1"))

	release = hold(`SELECT pg_advisory_xact_lock_shared($1), pg_advisory_xact_lock($2)`, writer, repoA)
	waits("a manifest of a deleted", release, func(ctx context.Context) error { _, err := s.DeleteManifest(ctx, reg.ID, "a", dg("a1")); return err })

	// A write in flight anywhere holds off a configuration change…
	release = hold(`SELECT pg_advisory_xact_lock_shared($1)`, writer)
	waits("a registry created", release, func(ctx context.Context) error { _, err := s.CreateRegistry(ctx, "team", ""); return err })
	// …and a configuration change holds off every write.
	release = hold(`SELECT pg_advisory_xact_lock($1)`, writer)
	waits("a push to c", release, push("c", "c1"))
	release = hold(`SELECT pg_advisory_xact_lock($1)`, writer)
	waits("a batch of events", release, func(ctx context.Context) error {
		return s.InsertEvents(ctx, nil, []RepositoryEvent{{Time: time.Now(), Registry: "default", Repository: "c"}})
	})

	// A store in another schema of the same database (another installation) is not held off
	// by this one's configuration change.
	elsewhere, err := Open(ctx, pgtest.DSN(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer elsewhere.Close()
	if elsewhere.lockNS == s.lockNS {
		t.Fatal("two schemas share a lock namespace")
	}
	release = hold(`SELECT pg_advisory_xact_lock($1)`, writer)
	passes("a registry created in another schema", func(ctx context.Context) error {
		_, err := elsewhere.CreateRegistry(ctx, "team2", "")
		return err
	})
	release()
}

// TestReplicasRace (PostgreSQL): three stores over one database (replicas) move one tag and
// count sign-in failures at once; what each transaction read to decide still holds: the tag
// ends on one manifest, every other is marked untagged, and no failure is lost.
func TestReplicasRace(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	var stores []*Store
	for range 3 {
		s, err := Open(ctx, dsn, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores = append(stores, s)
	}
	reg, err := stores[0].EnsureDefaultRegistry(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	const workers, pushes = 12, 10
	rule := ThrottleRule{Max: 1 << 20, Window: time.Hour, Lockout: time.Minute}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[w%len(stores)]
			for i := range pushes {
				layer := oci.FromBytes(oci.SHA256, fmt.Appendf(nil, "layer %d %d", w, i))
				m := Manifest{Digest: oci.FromBytes(oci.SHA256, fmt.Appendf(nil, "m %d %d", w, i)), MediaType: oci.MediaTypeImageManifest, Size: 3}
				err := s.LinkBlob(ctx, reg.ID, "shared", layer, 1)
				if err == nil {
					err = s.PutManifest(ctx, reg.ID, "shared", m, []oci.Digest{layer}, nil, []string{"latest"})
				}
				if err == nil {
					_, err = s.RecordSigninFailure(ctx, "user:ci", time.Now(), rule)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s := stores[0]
	var tagged, untagged, zero int
	if err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM tags`).Scan(&tagged); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM manifests WHERE untagged_at > 0`).Scan(&untagged); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM manifests m WHERE untagged_at = 0
		AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id AND t.digest = m.digest)`).Scan(&zero); err != nil {
		t.Fatal(err)
	}
	if tagged != 1 || untagged != workers*pushes-1 || zero != 0 {
		t.Errorf("after %d pushes: %d tags, %d manifests marked untagged, %d untagged but not marked; want 1, %d, 0",
			workers*pushes, tagged, untagged, zero, workers*pushes-1)
	}
	var failures int
	if err := s.rdb.QueryRowContext(ctx, `SELECT failures FROM signin_failures WHERE key = 'user:ci'`).Scan(&failures); err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	if failures != workers*pushes {
		t.Errorf("%d sign-in failures counted, want %d", failures, workers*pushes)
	}
}

package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/blob"
	"github.com/berth-registry/berth/internal/gc"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/policy"
	"github.com/berth-registry/berth/internal/store"
)

// ScaleConfig is a run of the scale section: how each operation's cost grows with the data.
type ScaleConfig struct {
	// Databases to measure: "sqlite" (a file in Dir) and/or a PostgreSQL DSN (each scale in a
	// schema of its own, dropped afterwards).
	Databases []string
	// Scales multiply the base data set (store.Seed); each is seeded fresh.
	Scales []int
	// Reps is how many times each fast operation runs per scale (its median is reported).
	Reps int
	// Dir holds the SQLite files.
	Dir string
	Log *slog.Logger
}

// ScalePoint is one operation's cost at one scale.
type ScalePoint struct {
	Database string  `json:"database"` // sqlite or postgres
	Scale    int     `json:"scale"`
	Op       string  `json:"op"`
	Millis   float64 `json:"ms"`   // median
	Rows     int64   `json:"rows"` // what it had to touch, where that is the point (GC, purges)
}

// The operations of the scale section; flat ones must cost the same at every scale.
var (
	scaleFlat = []string{"catalog page (n=100)", "tag page (n=100, biggest repository)", "tag details page (n=100, biggest repository)",
		"manifest HEAD (tag lookup)", "Decide", "login events by correlation id", "login events by identity (newest 100)",
		"retention candidates (first 100)"}
	scaleLinear = []string{"policy reload after a change", "registry usage (show-usage)", "GC dry run, every stored blob", "purge of expired soft-deleted manifests",
		"purge of events older than the first 1%", "seed"}
)

// Scale seeds and measures every database at every scale.
func Scale(ctx context.Context, cfg ScaleConfig) ([]ScalePoint, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Scales) == 0 || slices.Min(cfg.Scales) < 1 {
		return nil, fmt.Errorf("bench: scales must be one or more multipliers of at least 1, not %v", cfg.Scales)
	}
	if cfg.Reps < 1 {
		return nil, fmt.Errorf("bench: reps must be at least 1, not %d", cfg.Reps)
	}
	var out []ScalePoint
	for _, db := range cfg.Databases {
		for _, n := range cfg.Scales {
			cfg.Log.Info("scale", "database", store.Redact(db), "scale", n)
			pts, err := scaleOnce(ctx, cfg, db, n)
			if err != nil {
				return out, err
			}
			out = append(out, pts...)
		}
	}
	return out, nil
}

// scaleOnce seeds a fresh database at scale n and measures it.
func scaleOnce(ctx context.Context, cfg ScaleConfig, db string, n int) ([]ScalePoint, error) {
	dsn, dialect, drop, err := freshDatabase(ctx, cfg.Dir, db, n)
	if err != nil {
		return nil, err
	}
	defer drop()
	s, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var pts []ScalePoint
	add := func(op string, d time.Duration, rows int64) {
		pts = append(pts, ScalePoint{Database: dialect, Scale: n, Op: op, Millis: float64(d.Nanoseconds()) / 1e6, Rows: rows})
	}
	start := time.Now()
	if err := s.Seed(ctx, store.Seed{Scale: n}); err != nil {
		return nil, err
	}
	add("seed", time.Since(start), int64(n))
	reg, err := s.RegistryByName(ctx, "default")
	if err != nil {
		return nil, err
	}
	on := true
	days := 7
	if _, err := s.UpdateRegistry(ctx, "default", store.RegistryUpdate{RetentionEnabled: &on, RetentionDays: &days}); err != nil {
		return nil, err
	}
	rnd := mrand.New(mrand.NewPCG(uint64(n), 7))
	repos, big, ids, events := store.SeedRepositories*n, store.SeedBigTags*n, store.SeedIdentities*n, store.SeedEvents*n
	bigTag := func(i int) string { return fmt.Sprintf("v%063d", i) }
	reps := cfg.Reps
	fast := []struct {
		op   string
		reps int
		f    func() error
	}{
		{"catalog page (n=100)", reps, func() error {
			_, _, err := s.Catalog(ctx, reg.ID, store.SeedRepository(rnd.IntN(repos)), 100)
			return err
		}},
		{"tag page (n=100, biggest repository)", reps, func() error {
			_, _, err := s.Tags(ctx, reg.ID, store.SeedBigRepository, bigTag(rnd.IntN(big)), 100)
			return err
		}},
		{"tag details page (n=100, biggest repository)", max(1, reps/4), func() error {
			_, _, err := s.TagInfos(ctx, reg.ID, store.SeedBigRepository, store.ByName, bigTag(rnd.IntN(big)), 100)
			return err
		}},
		{"manifest HEAD (tag lookup)", reps, func() error {
			_, err := s.Tag(ctx, reg.ID, store.SeedRepository(rnd.IntN(repos)), "v1")
			return err
		}},
		{"login events by correlation id", reps, func() error {
			_, err := s.LoginEvents(ctx, store.EventFilter{CorrelationID: store.SeedCorrelationID(rnd.IntN(events)), Limit: 100})
			return err
		}},
		{"login events by identity (newest 100)", max(1, reps/4), func() error {
			_, err := s.LoginEvents(ctx, store.EventFilter{Identity: "user" + strconv.Itoa(rnd.IntN(ids)), Limit: 100})
			return err
		}},
		{"retention candidates (first 100)", max(1, reps/10), func() error {
			_, err := s.RetentionCandidates(ctx, time.Now(), 100)
			return err
		}},
	}
	for _, o := range fast {
		d, err := medianOf(o.reps, o.f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.op, err)
		}
		add(o.op, d, 0)
	}
	// A change to the policy, then the reload every replica does: read it all, compile it.
	var snap *policy.Snapshot
	d, err := medianOf(max(1, reps/20), func() error {
		if _, err := s.UpdateRegistry(ctx, "default", store.RegistryUpdate{RetentionDays: &days}); err != nil {
			return err
		}
		snap, err = policy.Load(ctx, s)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("policy reload: %w", err)
	}
	add("policy reload after a change", d, int64(ids))
	users, err := s.Users(ctx)
	if err != nil {
		return nil, err
	}
	d, err = medianBatch(reps, 1000, func() error {
		u := users[rnd.IntN(len(users))]
		p := access.Principal{Kind: access.KindUser, Name: u.Name, ID: u.ID}
		policy.Decide(snap, p, policy.ActionPull, policy.Resource{Registry: "default", Type: "repository", Name: store.SeedRepository(rnd.IntN(repos))})
		return nil
	})
	if err != nil {
		return nil, err
	}
	add("Decide", d, 0)
	// The registry's usage sums its manifests' and blobs' sizes: it reads an index entry each.
	d, err = medianOf(max(1, reps/20), func() error {
		_, err := s.RegistryUsage(ctx, reg.ID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	add("registry usage (show-usage)", d, int64(2400*n))
	// Garbage collection over every stored blob (the seeded manifests and layers, and a tenth
	// more that nothing references), as a dry run: it reads and decides, and deletes nothing.
	stored, err := s.SeededBlobs(ctx)
	if err != nil {
		return nil, err
	}
	for i := range len(stored) / 10 {
		stored = append(stored, store.SeedDigest("x", i))
	}
	start = time.Now()
	rep, err := gc.Run(ctx, s, &listedBlobs{digests: stored}, gc.Options{Grace: time.Hour, DryRun: true})
	if err != nil {
		return nil, err
	}
	add("GC dry run, every stored blob", time.Since(start), int64(rep.Scanned))
	if want := len(stored) / 11; len(rep.Deleted) < want-1 || len(rep.Deleted) > want+1 {
		return nil, fmt.Errorf("GC found %d unreferenced blobs of %d, want about %d", len(rep.Deleted), len(stored), want)
	}
	start = time.Now()
	purged, err := s.PurgeDeleted(ctx, time.Now())
	if err != nil {
		return nil, err
	}
	add("purge of expired soft-deleted manifests", time.Since(start), purged)
	first, err := s.LoginEvents(ctx, store.EventFilter{Limit: 1})
	if err != nil || len(first) == 0 {
		return nil, fmt.Errorf("events: %v", err)
	}
	// Seeded events are 7 ms apart, the newest last: the oldest 1% end at events/100 × 7 ms.
	cut := first[0].Time.Add(-time.Duration(events-events/100) * 7 * time.Millisecond)
	start = time.Now()
	deleted, err := s.PurgeEvents(ctx, cut)
	if err != nil {
		return nil, err
	}
	add("purge of events older than the first 1%", time.Since(start), deleted)
	return pts, nil
}

// medianOf runs f reps times and returns the median duration.
func medianOf(reps int, f func() error) (time.Duration, error) {
	ds := make([]time.Duration, 0, reps)
	for range reps {
		start := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return ds[len(ds)/2], nil
}

// medianBatch is medianOf for operations too fast to time one by one: reps batches of batch
// calls, the median batch divided by batch.
func medianBatch(reps, batch int, f func() error) (time.Duration, error) {
	d, err := medianOf(reps, func() error {
		for range batch {
			if err := f(); err != nil {
				return err
			}
		}
		return nil
	})
	return d / time.Duration(batch), err
}

// listedBlobs is a blob store that only lists: the digests given, all stored long ago.
type listedBlobs struct {
	blob.Store
	digests []string
}

func (l *listedBlobs) Blobs(ctx context.Context, fn func(blob.Stored) error) error {
	old := time.Now().Add(-48 * time.Hour)
	for _, d := range l.digests {
		if err := fn(blob.Stored{Digest: oci.Digest(d), Size: 1000, ModTime: old}); err != nil {
			return err
		}
	}
	return nil
}

func (l *listedBlobs) DeleteBlob(ctx context.Context, d oci.Digest) error {
	return fmt.Errorf("a dry run deleted %s", d)
}

// freshDatabase returns the DSN of an empty database for scale n of db ("sqlite", or a
// PostgreSQL DSN: a schema of its own) and how to remove it.
func freshDatabase(ctx context.Context, dir, db string, n int) (dsn, dialect string, drop func(), err error) {
	if db == "sqlite" {
		path := filepath.Join(dir, fmt.Sprintf("scale-%d.db", n))
		drop := func() { // gigabytes at 1 000×
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				os.Remove(p)
			}
		}
		drop()
		return "sqlite:" + path, "sqlite", drop, nil
	}
	if !store.IsPostgres(db) {
		return "", "", nil, fmt.Errorf("bench: a database is sqlite or a postgres:// DSN, not %q", store.Redact(db))
	}
	conn, err := sql.Open("pgx", db)
	if err != nil {
		return "", "", nil, err
	}
	var b [6]byte
	rand.Read(b[:])
	schema := fmt.Sprintf("berth_scale_%d_%s", n, hex.EncodeToString(b[:]))
	if _, err := conn.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		conn.Close()
		return "", "", nil, fmt.Errorf("bench: create schema: %w", err)
	}
	drop = func() {
		conn.ExecContext(context.WithoutCancel(ctx), "DROP SCHEMA "+schema+" CASCADE")
		conn.Close()
	}
	u, err := url.Parse(db)
	if err != nil {
		drop()
		return "", "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), "postgres", drop, nil
}

// WriteScaleTable writes the points as a Markdown table: each operation's cost at each scale
// and how much it grew from the smallest scale to the largest, for each database.
func WriteScaleTable(w io.Writer, pts []ScalePoint) error {
	type key struct{ db, op string }
	byKey := map[key]map[int]ScalePoint{}
	var dbs []string
	var scales []int
	for _, p := range pts {
		k := key{p.Database, p.Op}
		if byKey[k] == nil {
			byKey[k] = map[int]ScalePoint{}
		}
		byKey[k][p.Scale] = p
		if !slices.Contains(dbs, p.Database) {
			dbs = append(dbs, p.Database)
		}
		if !slices.Contains(scales, p.Scale) {
			scales = append(scales, p.Scale)
		}
	}
	if len(scales) == 0 {
		return nil
	}
	sort.Ints(scales)
	var b strings.Builder
	b.WriteString("| database | operation |")
	for _, n := range scales {
		fmt.Fprintf(&b, " ×%d |", n)
	}
	fmt.Fprintf(&b, " growth ×%d → ×%d | expected |\n|---|---|", scales[0], scales[len(scales)-1])
	b.WriteString(strings.Repeat("---:|", len(scales)) + "---:|---|\n")
	for _, db := range dbs {
		for _, group := range [][]string{scaleFlat, scaleLinear} {
			for _, op := range group {
				row := byKey[key{db, op}]
				if row == nil {
					continue
				}
				fmt.Fprintf(&b, "| %s | %s |", db, op)
				for _, n := range scales {
					if p, ok := row[n]; ok {
						fmt.Fprintf(&b, " %s ms |", formatMillis(p.Millis))
					} else {
						b.WriteString(" — |")
					}
				}
				lo, hi := row[scales[0]], row[scales[len(scales)-1]]
				growth := "—"
				if lo.Millis > 0 && hi.Millis > 0 {
					growth = fmt.Sprintf("×%.2f", hi.Millis/lo.Millis)
				}
				kind := "flat"
				if slices.Contains(scaleLinear, op) {
					kind = "with the data it touches"
				}
				fmt.Fprintf(&b, " %s | %s |\n", growth, kind)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func formatMillis(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	case v >= 0.01:
		return fmt.Sprintf("%.3f", v)
	}
	return fmt.Sprintf("%.5f", v)
}

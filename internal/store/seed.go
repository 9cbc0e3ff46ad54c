package store

import (
	"context"
	"fmt"
	"time"
)

// Seed is a synthetic data set for measuring how costs grow with data (berth-bench scale):
// Scale times a base of 100 repositories with a tagged manifest and a layer each, one
// repository of 1 000 tags, 10 users with a role assignment each, 10 scope maps with a token
// each, 10 000 login events, 100 soft-deleted manifests and 100 untagged ones.
type Seed struct {
	Scale int
}

// The base data set, multiplied by Seed.Scale.
const (
	SeedRepositories = 100
	SeedBigTags      = 1000
	SeedIdentities   = 10
	SeedEvents       = 10_000
	SeedDeleted      = 100
	SeedUntagged     = 100
)

// SeedBigRepository is the repository holding the most tags.
const SeedBigRepository = "big/app"

// SeedRepository names the i-th seeded repository.
func SeedRepository(i int) string { return fmt.Sprintf("team%03d/app%d", i%100, i) }

// SeedDigest is the digest string of the i-th seeded manifest or layer of a kind ("m", "l", …):
// unique, though not the hash of anything.
func SeedDigest(kind string, i int) string { return fmt.Sprintf("sha256:%s%063d", kind, i) }

// series is a FROM item of the integers 0 … n-1 as column i, in the store's dialect.
func (s *Store) series(n int) string {
	if s.d.name == "postgres" {
		return fmt.Sprintf("generate_series(0, %d) AS seq(i)", n-1)
	}
	return fmt.Sprintf("(WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < %d) SELECT i FROM seq) AS seq", n-1)
}

// pad is the SQL expression of integer column i zero-padded to width digits.
func (s *Store) pad(col string, width int) string {
	if s.d.name == "postgres" {
		return fmt.Sprintf("lpad(%s::text, %d, '0')", col, width)
	}
	return fmt.Sprintf("printf('%%0%dd', %s)", width, col)
}

// seedCorrelationDigits pads the seeded events' numbers, so that their correlation ids sort as
// their times do.
const seedCorrelationDigits = 12

// SeedCorrelationID is the correlation id of the seeded login event number i.
func SeedCorrelationID(i int) string { return fmt.Sprintf("corr-%0*d", seedCorrelationDigits, i) }

// Seed fills the default registry of an empty store with the data set of sd, in bulk (set-based
// statements, not the checks of the write paths): for benchmarks only.
func (s *Store) Seed(ctx context.Context, sd Seed) error {
	if sd.Scale < 1 {
		return fmt.Errorf("store: seed scale must be at least 1, not %d", sd.Scale)
	}
	reg, err := s.EnsureDefaultRegistry(ctx, "default")
	if err != nil {
		return err
	}
	repos, big := SeedRepositories*sd.Scale, SeedBigTags*sd.Scale
	ids, events := SeedIdentities*sd.Scale, SeedEvents*sd.Scale
	now := s.now().UnixMilli()
	old := s.now().Add(-30 * 24 * time.Hour).UnixMilli()
	r := reg.ID
	digest := func(kind, col string) string { return fmt.Sprintf("'sha256:%s' || %s", kind, s.pad(col, 63)) }
	steps := []struct {
		what, query string
	}{
		{"repositories", fmt.Sprintf(`INSERT INTO repositories (registry_id, name, created_at)
			SELECT %d, 'team' || %s || '/app' || i, %d FROM %s`, r, s.pad("(i % 100)", 3), now, s.series(repos))},
		{"the big repository", fmt.Sprintf(`INSERT INTO repositories (registry_id, name, created_at) VALUES (%d, '%s', %d)`, r, SeedBigRepository, now)},
		// One manifest per repository, and the big repository's manifests (one per tag), and the
		// untagged ones retention finds.
		{"manifests", fmt.Sprintf(`INSERT INTO manifests (repository_id, digest, media_type, size, created_at)
			SELECT id, %s, 'application/vnd.oci.image.manifest.v1+json', 500, %d FROM repositories WHERE registry_id = %d AND name <> '%s'`,
			digest("m", "id"), now, r, SeedBigRepository)},
		{"the big repository's manifests", fmt.Sprintf(`INSERT INTO manifests (repository_id, digest, media_type, size, created_at)
			SELECT (SELECT id FROM repositories WHERE registry_id = %d AND name = '%s'), %s, 'application/vnd.oci.image.manifest.v1+json', 500, %d FROM %s`,
			r, SeedBigRepository, digest("b", "i"), now, s.series(big))},
		{"untagged manifests", fmt.Sprintf(`INSERT INTO manifests (repository_id, digest, media_type, size, created_at, untagged_at)
			SELECT (SELECT id FROM repositories WHERE registry_id = %d AND name = '%s'), %s, 'application/vnd.oci.image.manifest.v1+json', 500, %d, %d FROM %s`,
			r, SeedBigRepository, digest("u", "i"), old, old, s.series(SeedUntagged*sd.Scale))},
		{"tags", fmt.Sprintf(`INSERT INTO tags (repository_id, name, digest, updated_at, created_at)
			SELECT repository_id, 'v1', digest, %d, %d FROM manifests WHERE digest LIKE 'sha256:m%%'`, now, now)},
		{"the big repository's tags", fmt.Sprintf(`INSERT INTO tags (repository_id, name, digest, updated_at, created_at)
			SELECT repository_id, 'v' || substr(digest, 9), digest, %d, %d FROM manifests WHERE digest LIKE 'sha256:b%%'`, now, now)},
		// A layer per manifest: linked, and referenced by its manifest.
		{"layers", fmt.Sprintf(`INSERT INTO repository_blobs (repository_id, digest, size, created_at)
			SELECT repository_id, 'sha256:l' || substr(digest, 8), 1000, %d FROM manifests`, old)},
		{"references", `INSERT INTO manifest_references (repository_id, digest, child)
			SELECT repository_id, digest, 'sha256:l' || substr(digest, 8) FROM manifests`},
		{"users", fmt.Sprintf(`INSERT INTO users (name, created_at) SELECT 'user' || i, %d FROM %s`, now, s.series(ids))},
		{"role assignments", fmt.Sprintf(`INSERT INTO role_assignments (id, principal_kind, principal_id, role, scope, created_at)
			SELECT 'seed-' || id, 'user', id, 'AcrPull', '/registries/default', %d FROM users WHERE name LIKE 'user%%'`, now)},
		{"scope maps", fmt.Sprintf(`INSERT INTO scope_maps (registry_id, name, created_at) SELECT %d, 'map' || i, %d FROM %s`, r, now, s.series(ids))},
		{"scope map rules", fmt.Sprintf(`INSERT INTO scope_map_rules (scope_map_id, repository, action)
			SELECT id, 'team' || %s || '/*', 'content/read' FROM scope_maps WHERE registry_id = %d AND name LIKE 'map%%'`, s.pad("(id % 100)", 3), r)},
		{"tokens", fmt.Sprintf(`INSERT INTO tokens (registry_id, name, scope_map_id, status, created_at)
			SELECT %d, 'token' || id, id, 'enabled', %d FROM scope_maps WHERE registry_id = %d AND name LIKE 'map%%'`, r, now, r)},
		// Login events over the last 30 days, of 10·Scale identities, each with a correlation id
		// that sorts by time, as berth's own do (SeedCorrelationID).
		{"login events", fmt.Sprintf(`INSERT INTO login_events (time, registry, login_server, operation, identity, identity_kind, ip, user_agent,
				status, result, reason, message, granted, refused, duration_us, correlation_id, token_id, attempts)
			SELECT %d + i * 7, 'default', '', 'token', 'user' || (i %% %d), 'user', '192.0.2.1', 'docker/27',
				200, 'success', '', '', 'repository:team/app:pull', '', 1000, 'corr-' || %s, '', 1 FROM %s`,
			old, ids, s.pad("i", seedCorrelationDigits), s.series(events))},
		{"soft-deleted manifests", fmt.Sprintf(`INSERT INTO deleted_manifests (registry_id, repository, digest, media_type, size, created_at, deleted_at, purge_at)
			SELECT %d, '%s', %s, 'application/vnd.oci.image.manifest.v1+json', 500, %d, %d, %d FROM %s`,
			r, SeedBigRepository, digest("d", "i"), old, old, old, s.series(SeedDeleted*sd.Scale))},
	}
	if s.d.name == "postgres" {
		// The statistics autovacuum gathers soon after a bulk load, so that what is measured
		// is a server's usual plans, not a fresh table's guesses.
		steps = append(steps, struct{ what, query string }{"statistics", `ANALYZE`})
	}
	for _, st := range steps {
		if _, err := s.wdb.ExecContext(ctx, st.query); err != nil {
			return fmt.Errorf("store: seed %s: %w", st.what, err)
		}
	}
	return nil
}

// SeededBlobs lists the digests of every manifest and linked blob, as a blob store would list
// what it holds.
func (s *Store) SeededBlobs(ctx context.Context) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT digest FROM repository_blobs UNION SELECT digest FROM manifests`)
	if err != nil {
		return nil, fmt.Errorf("store: seeded blobs: %w", err)
	}
	out, err := scanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("store: seeded blobs: %w", err)
	}
	return out, nil
}

package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/berth-registry/berth/internal/oci"
)

// softDelete keeps the manifests about to be deleted from the repository (with their tags and
// what they reference) as soft-deleted, when the registry's soft-delete policy is on; it is
// called in the deleting transaction, before the rows go.
func (s *Store) softDelete(ctx context.Context, tx *sql.Tx, registryID, repoID int64, repo string, digests []string) error {
	var on, days int64
	if err := tx.QueryRowContext(ctx, s.q(`SELECT soft_delete_enabled, soft_delete_days FROM registries WHERE id = ?`), registryID).Scan(&on, &days); err != nil {
		return err
	}
	if on == 0 || len(digests) == 0 {
		return nil
	}
	now := s.millis()
	purge := now + days*int64(24*time.Hour/time.Millisecond)
	for _, d := range digests {
		rows, err := tx.QueryContext(ctx, s.q(`SELECT name FROM tags WHERE repository_id = ? AND digest = ? ORDER BY name`), repoID, d)
		if err != nil {
			return err
		}
		tags, err := scanStrings(rows)
		if err != nil {
			return err
		}
		if tags == nil {
			tags = []string{}
		}
		tagsJSON, _ := json.Marshal(tags)
		// A manifest deleted again replaces its earlier soft-deleted copy.
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM deleted_manifests WHERE registry_id = ? AND repository = ? AND digest = ?`), registryID, repo, d); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO deleted_manifests (registry_id, repository, digest, media_type, artifact_type, size, subject, annotations, tags, created_at, deleted_at, purge_at,
				config_media_type, architecture, os)
			SELECT ?, ?, digest, media_type, artifact_type, size, subject, annotations, ?, created_at, ?, ?, config_media_type, architecture, os FROM manifests WHERE repository_id = ? AND digest = ?`),
			registryID, repo, string(tagsJSON), now, purge, repoID, d); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO deleted_manifest_references (registry_id, repository, digest, child, blob_size)
			SELECT ?, ?, mr.digest, mr.child, b.size FROM manifest_references mr
			LEFT JOIN repository_blobs b ON b.repository_id = mr.repository_id AND b.digest = mr.child
			WHERE mr.repository_id = ? AND mr.digest = ?`), registryID, repo, repoID, d); err != nil {
			return err
		}
	}
	return nil
}

// DeletedManifest is a soft-deleted manifest.
type DeletedManifest struct {
	Manifest
	Repository string
	Tags       []string // it had when deleted
	DeletedAt  time.Time
	PurgeAt    time.Time // when it goes for good
}

// DeletedRepositories lists the repositories that hold soft-deleted manifests.
func (s *Store) DeletedRepositories(ctx context.Context, registryID int64) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT DISTINCT repository FROM deleted_manifests WHERE registry_id = ? ORDER BY repository`), registryID)
	if err != nil {
		return nil, fmt.Errorf("store: deleted repositories: %w", err)
	}
	out, err := scanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("store: deleted repositories: %w", err)
	}
	return out, nil
}

// DeletedManifests lists a repository's soft-deleted manifests, the most recently deleted first
// (at most limit).
func (s *Store) DeletedManifests(ctx context.Context, registryID int64, repo string, limit int) ([]DeletedManifest, error) {
	out, err := queryAll(ctx, s.r, s.q(`SELECT digest, media_type, artifact_type, size, COALESCE(subject, ''), tags, created_at, deleted_at, purge_at
		FROM deleted_manifests WHERE registry_id = ? AND repository = ? ORDER BY deleted_at DESC, digest LIMIT ?`), []any{registryID, repo, limit},
		func(sc scanner) (DeletedManifest, error) {
			var m DeletedManifest
			var d, subject, tags string
			var created, deleted, purge int64
			if err := sc.Scan(&d, &m.MediaType, &m.ArtifactType, &m.Size, &subject, &tags, &created, &deleted, &purge); err != nil {
				return m, err
			}
			m.Repository, m.Digest, m.Subject = repo, oci.Digest(d), oci.Digest(subject)
			m.CreatedAt, m.DeletedAt, m.PurgeAt = time.UnixMilli(created), time.UnixMilli(deleted), time.UnixMilli(purge)
			if err := json.Unmarshal([]byte(tags), &m.Tags); err != nil {
				return m, err
			}
			return m, nil
		})
	if err != nil {
		return nil, fmt.Errorf("store: deleted manifests of %s: %w", repo, err)
	}
	return out, nil
}

// ErrTagTaken is a restore that would move a tag now pointing at another manifest (force moves
// it).
var ErrTagTaken = errors.New("the tag points at another manifest")

// RestoreManifest brings a soft-deleted manifest back into its repository (recreating the
// repository and its blob links if they went), tagged tag if given; force moves a tag that now
// points elsewhere. ErrNotFound if there is no such soft-deleted manifest; a *MissingError if
// a manifest it names (an index's child) is not in the repository; a *LockedError if a lock
// refuses the write.
func (s *Store) RestoreManifest(ctx context.Context, registryID int64, repo string, d oci.Digest, tag string, force bool) (Manifest, error) {
	var m Manifest
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var subject, ann sql.NullString
		var created int64
		err := tx.QueryRowContext(ctx, s.q(`SELECT media_type, artifact_type, size, subject, annotations, created_at, config_media_type, architecture, os FROM deleted_manifests
			WHERE registry_id = ? AND repository = ? AND digest = ?`), registryID, repo, string(d)).
			Scan(&m.MediaType, &m.ArtifactType, &m.Size, &subject, &ann, &created, &m.ConfigMediaType, &m.Architecture, &m.OS)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		m.Digest, m.Subject, m.CreatedAt = d, oci.Digest(subject.String), time.UnixMilli(created)
		if err := s.checkTombstone(ctx, tx, d); err != nil {
			return err
		}
		id, err := s.ensureRepo(ctx, tx, registryID, repo)
		if err != nil {
			return err
		}
		if err := s.repoLock(ctx, tx, id, repo, false); err != nil {
			return err
		}
		refs, err := tx.QueryContext(ctx, s.q(`SELECT child, blob_size FROM deleted_manifest_references WHERE registry_id = ? AND repository = ? AND digest = ?`), registryID, repo, string(d))
		if err != nil {
			return err
		}
		type ref struct {
			child string
			size  sql.NullInt64
		}
		var children []ref
		for refs.Next() {
			var r ref
			if err := refs.Scan(&r.child, &r.size); err != nil {
				refs.Close()
				return err
			}
			children = append(children, r)
		}
		refs.Close()
		if err := refs.Err(); err != nil {
			return err
		}
		now := s.millis()
		for _, c := range children {
			if c.size.Valid { // a blob: linked again
				if err := s.checkTombstone(ctx, tx, oci.Digest(c.child)); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO repository_blobs (repository_id, digest, size, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`),
					id, c.child, c.size.Int64, now); err != nil {
					return err
				}
				continue
			}
			var one int
			err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM manifests WHERE repository_id = ? AND digest = ?`), id, c.child).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return &MissingError{Digest: oci.Digest(c.child), Manifest: true}
			}
			if err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO manifests (repository_id, digest, media_type, artifact_type, size, subject, annotations, created_at,
				config_media_type, architecture, os)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repository_id, digest) DO NOTHING`),
			id, string(d), m.MediaType, m.ArtifactType, m.Size, subject, ann, created, m.ConfigMediaType, m.Architecture, m.OS); err != nil {
			return err
		}
		for _, c := range children {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO manifest_references (repository_id, digest, child) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`), id, string(d), c.child); err != nil {
				return err
			}
		}
		if tag != "" {
			var cur string
			err := tx.QueryRowContext(ctx, s.q(`SELECT digest FROM tags WHERE repository_id = ? AND name = ?`), id, tag).Scan(&cur)
			switch {
			case err == nil && cur != string(d) && !force:
				return ErrTagTaken
			case err != nil && !errors.Is(err, sql.ErrNoRows):
				return err
			}
			if err := s.lockOf(ctx, tx, "tag %s of repository "+repo, `SELECT name, write_enabled, 1 FROM tags WHERE repository_id = ? AND name = ? AND digest <> ?`, false, id, tag, string(d)); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO tags (repository_id, name, digest, updated_at, created_at) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (repository_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`), id, tag, string(d), now, now); err != nil {
				return err
			}
			if cur != "" && cur != string(d) {
				if err := s.markUntagged(ctx, tx, id, cur, now); err != nil {
					return err
				}
			}
		}
		_, err = tx.ExecContext(ctx, s.q(`DELETE FROM deleted_manifests WHERE registry_id = ? AND repository = ? AND digest = ?`), registryID, repo, string(d))
		return err
	})
	var me *MissingError
	var le *LockedError
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrTagTaken) || errors.As(err, &me) || errors.As(err, &le) || errors.Is(err, ErrBlobCollecting) {
		return m, err
	}
	if err != nil {
		return m, fmt.Errorf("store: restore %s in %s: %w", d, repo, err)
	}
	return m, nil
}

// markUntagged records when a manifest lost its last tag (retention counts from then).
func (s *Store) markUntagged(ctx context.Context, tx *sql.Tx, repoID int64, digest string, now int64) error {
	_, err := tx.ExecContext(ctx, s.q(`UPDATE manifests SET untagged_at = ? WHERE repository_id = ? AND digest = ?
		AND NOT EXISTS (SELECT 1 FROM tags WHERE repository_id = ? AND digest = ?)`), now, repoID, digest, repoID, digest)
	return err
}

// PurgeDeleted removes the soft-deleted manifests whose time is up (garbage collection then
// takes what only they referenced) and returns how many.
func (s *Store) PurgeDeleted(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM deleted_manifests WHERE purge_at <= ?`), now.UnixMilli())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: purge soft-deleted manifests: %w", err)
	}
	return n, nil
}

// RetentionCandidate is an untagged manifest a retention policy deletes.
type RetentionCandidate struct {
	RegistryID int64
	Registry   string
	Repository string
	Digest     oci.Digest
}

// RetentionCandidates lists (at most limit) the manifests whose registry's retention policy is
// on and that lost their last tag more than its days ago: not locked (the manifest or its
// repository), not named by another manifest (an index's children), not the referrer of a
// manifest still there (a signature, an SBOM), oldest first.
//
// The query walks the index of untagged manifests in order and checks each one with index
// lookups until it has limit of them, whatever the statistics say: every check is a correlated
// subquery that "OFFSET 0" keeps PostgreSQL from turning into a join. Planned as joins, it drove
// from the repositories and read a repository's every tag, or every untagged manifest per
// repository (issue 23, docs/benchmarks.md "Costs as data grows").
func (s *Store) RetentionCandidates(ctx context.Context, now time.Time, limit int) ([]RetentionCandidate, error) {
	day := int64(24 * time.Hour / time.Millisecond)
	out, err := queryAll(ctx, s.r, s.q(`SELECT g.id, g.name, r.name, c.digest FROM (
		SELECT m.repository_id, m.digest, m.untagged_at FROM manifests m
		WHERE m.untagged_at > 0 AND m.untagged_at <= ? AND m.write_enabled = 1 AND m.delete_enabled = 1
		AND EXISTS (SELECT 1 FROM repositories r JOIN registries g ON g.id = r.registry_id
			WHERE r.id = m.repository_id AND r.write_enabled = 1 AND r.delete_enabled = 1
			AND g.retention_enabled = 1 AND m.untagged_at <= ? - g.retention_days * ? LIMIT 1 OFFSET 0)
		AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id AND t.digest = m.digest LIMIT 1 OFFSET 0)
		AND NOT EXISTS (SELECT 1 FROM manifest_references c WHERE c.repository_id = m.repository_id AND c.child = m.digest LIMIT 1 OFFSET 0)
		AND NOT (m.subject IS NOT NULL AND EXISTS (SELECT 1 FROM manifests s WHERE s.repository_id = m.repository_id AND s.digest = m.subject LIMIT 1 OFFSET 0))
		ORDER BY m.untagged_at LIMIT ?) c
		JOIN repositories r ON r.id = c.repository_id
		JOIN registries g ON g.id = r.registry_id
		ORDER BY c.untagged_at`), []any{now.UnixMilli(), now.UnixMilli(), day, limit},
		func(sc scanner) (RetentionCandidate, error) {
			var c RetentionCandidate
			var d string
			err := sc.Scan(&c.RegistryID, &c.Registry, &c.Repository, &d)
			c.Digest = oci.Digest(d)
			return c, err
		})
	if err != nil {
		return nil, fmt.Errorf("store: retention candidates: %w", err)
	}
	return out, nil
}

// TryLease takes (or renews) the lease of a background job for holder until now+ttl, unless
// another holder's lease still runs; it reports whether holder has it.
func (s *Store) TryLease(ctx context.Context, job, holder string, now time.Time, ttl time.Duration) (bool, error) {
	var got string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO job_leases (name, holder, until) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
			WHERE job_leases.until < ? OR job_leases.holder = excluded.holder`), job, holder, now.Add(ttl).UnixMilli(), now.UnixMilli()); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, s.q(`SELECT holder FROM job_leases WHERE name = ?`), job).Scan(&got)
	})
	if err != nil {
		return false, fmt.Errorf("store: lease %s: %w", job, err)
	}
	return got == holder, nil
}

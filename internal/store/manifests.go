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

// Manifest is what the store keeps of a manifest; its bytes live in the blob store.
type Manifest struct {
	Digest       oci.Digest
	MediaType    string
	ArtifactType string
	Size         int64
	Subject      oci.Digest // empty when the manifest has no subject
	Annotations  map[string]string
	CreatedAt    time.Time
	// ConfigMediaType, Architecture and OS describe an image manifest's config (the platform read
	// from it at push); empty for an index or an artifact.
	ConfigMediaType  string
	Architecture, OS string
	// Unreadable, set by Manifest and Tag, names what makes the manifest read-disabled here
	// (the repository, the manifest, or the tag asked for); "" when it may be pulled.
	Unreadable string
}

// MissingError reports a manifest that points at content the repository does not hold.
type MissingError struct {
	Digest   oci.Digest
	Manifest bool // a manifest (listed by an index) rather than a blob
}

func (e *MissingError) Error() string {
	if e.Manifest {
		return fmt.Sprintf("manifest %s is not in the repository", e.Digest)
	}
	return fmt.Sprintf("blob %s is not in the repository", e.Digest)
}

// PutManifest stores m in the repository and points tags at it, in one transaction. Every digest
// in blobs must be a blob of the repository and every digest in children a manifest of it, or
// PutManifest returns a *MissingError and changes nothing.
func (s *Store) PutManifest(ctx context.Context, registryID int64, repo string, m Manifest, blobs, children []oci.Digest, tags []string) error {
	// The repository's lock covers what is read to decide: its locks, tags, blobs and manifests;
	// the registry's webhooks and tombstones change only under the writer lock.
	err := s.txOn(ctx, []lockKey{repoKey(registryID, repo)}, func(tx *sql.Tx) error {
		if err := s.checkTombstone(ctx, tx, m.Digest); err != nil {
			return err
		}
		id, err := s.ensureRepo(ctx, tx, registryID, repo)
		if err != nil {
			return err
		}
		// Locks, checked in the transaction that writes: a lock set a moment ago holds.
		if err := s.repoLock(ctx, tx, id, repo, false); err != nil {
			return err
		}
		// Where each tag points now; a write-disabled tag may not move (pushing its own digest
		// again changes nothing).
		old := make([]string, len(tags))
		for i, t := range tags {
			var write int64
			err := tx.QueryRowContext(ctx, s.q(`SELECT digest, write_enabled FROM tags WHERE repository_id = ? AND name = ?`), id, t).Scan(&old[i], &write)
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return err
			case write == 0 && old[i] != string(m.Digest):
				return &LockedError{What: "tag " + t + " of repository " + repo, Attribute: "write"}
			}
		}
		seen := make(map[oci.Digest]bool, len(blobs)+len(children))
		for _, list := range []struct {
			digests  []oci.Digest
			query    string
			manifest bool
		}{
			{blobs, `SELECT 1 FROM repository_blobs WHERE repository_id = ? AND digest = ?`, false},
			{children, `SELECT 1 FROM manifests WHERE repository_id = ? AND digest = ?`, true},
		} {
			for _, d := range list.digests {
				if seen[d] {
					continue
				}
				seen[d] = true
				var one int
				err := tx.QueryRowContext(ctx, s.q(list.query), id, string(d)).Scan(&one)
				if errors.Is(err, sql.ErrNoRows) {
					return &MissingError{Digest: d, Manifest: list.manifest}
				}
				if err != nil {
					return err
				}
			}
		}
		var ann any
		if len(m.Annotations) > 0 {
			b, err := json.Marshal(m.Annotations)
			if err != nil {
				return err
			}
			ann = string(b)
		}
		var subject any
		if m.Subject != "" {
			subject = string(m.Subject)
		}
		now := s.millis()
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO manifests (repository_id, digest, media_type, artifact_type, size, subject, annotations, created_at,
				config_media_type, architecture, os)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repository_id, digest) DO NOTHING`),
			id, string(m.Digest), m.MediaType, m.ArtifactType, m.Size, subject, ann, now, m.ConfigMediaType, m.Architecture, m.OS)
		if err != nil {
			return err
		}
		inserted, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if inserted > 0 {
			for d := range seen {
				if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO manifest_references (repository_id, digest, child) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`),
					id, string(m.Digest), string(d)); err != nil {
					return err
				}
			}
		}
		for i, t := range tags {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO tags (repository_id, name, digest, updated_at, created_at) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (repository_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`),
				id, t, string(m.Digest), now, now); err != nil {
				return err
			}
			if old[i] != "" && old[i] != string(m.Digest) { // the tag moved: its old manifest may be untagged now
				if err := s.markUntagged(ctx, tx, id, old[i], now); err != nil {
					return err
				}
			}
		}
		if len(tags) > 0 && inserted == 0 { // a new manifest is not untagged
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE manifests SET untagged_at = 0 WHERE repository_id = ? AND digest = ?`), id, string(m.Digest)); err != nil {
				return err
			}
		}
		// The webhooks' deliveries, in this transaction: a push is never lost to them.
		target := WebhookTarget{MediaType: m.MediaType, Size: m.Size, Digest: string(m.Digest), Length: m.Size, Repository: repo}
		if len(tags) == 0 {
			return s.enqueueWebhooks(ctx, tx, registryID, WebhookPush, target, m.ArtifactType)
		}
		for _, t := range tags {
			target.Tag = t
			if err := s.enqueueWebhooks(ctx, tx, registryID, WebhookPush, target, m.ArtifactType); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		var me *MissingError
		var le *LockedError
		if errors.As(err, &me) || errors.As(err, &le) {
			return err
		}
		return fmt.Errorf("store: put manifest %s in %s: %w", m.Digest, repo, err)
	}
	return nil
}

const manifestColumns = `m.digest, m.media_type, m.artifact_type, m.size, COALESCE(m.subject, ''), COALESCE(m.annotations, ''), m.created_at,
	m.config_media_type, m.architecture, m.os`

// scanWith is a scanner that reads the manifest columns and then into extra.
func scanWith(sc scanner, extra ...any) scanner { return extraScanner{sc, extra} }

type extraScanner struct {
	sc    scanner
	extra []any
}

func (e extraScanner) Scan(dest ...any) error { return e.sc.Scan(append(dest, e.extra...)...) }

// unreadable names the first read-disabled of a repository, a manifest and a tag, or "".
func unreadable(repo string, repoRead int64, manifest string, manifestRead int64, tag string, tagRead int64) string {
	switch {
	case repoRead == 0:
		return "repository " + repo
	case manifestRead == 0:
		return manifest
	case tagRead == 0:
		return tag
	}
	return ""
}

func scanManifest(sc scanner) (Manifest, error) {
	var m Manifest
	var d, subject, ann string
	var created int64
	if err := sc.Scan(&d, &m.MediaType, &m.ArtifactType, &m.Size, &subject, &ann, &created, &m.ConfigMediaType, &m.Architecture, &m.OS); err != nil {
		return Manifest{}, err
	}
	m.Digest, m.Subject, m.CreatedAt = oci.Digest(d), oci.Digest(subject), time.UnixMilli(created)
	if ann != "" {
		if err := json.Unmarshal([]byte(ann), &m.Annotations); err != nil {
			return Manifest{}, fmt.Errorf("annotations of %s: %w", d, err)
		}
	}
	return m, nil
}

// Manifest returns manifest d of the repository, or ErrNotFound.
func (s *Store) Manifest(ctx context.Context, registryID int64, repo string, d oci.Digest) (Manifest, error) {
	var rr, mr int64
	m, err := scanManifest(scanWith(s.r.QueryRowContext(ctx, s.q(`SELECT `+manifestColumns+`, r.read_enabled, m.read_enabled FROM manifests m JOIN repositories r ON r.id = m.repository_id
		WHERE r.registry_id = ? AND r.name = ? AND m.digest = ?`), registryID, repo, string(d)), &rr, &mr))
	m.Unreadable = unreadable(repo, rr, "manifest "+string(d)+" of repository "+repo, mr, "", 1)
	if errors.Is(err, sql.ErrNoRows) {
		return Manifest{}, ErrNotFound
	}
	if err != nil {
		return Manifest{}, fmt.Errorf("store: manifest %s in %s: %w", d, repo, err)
	}
	return m, nil
}

// Tag returns the manifest a tag points at, or ErrNotFound.
func (s *Store) Tag(ctx context.Context, registryID int64, repo, tag string) (Manifest, error) {
	var rr, mr, tr int64
	m, err := scanManifest(scanWith(s.r.QueryRowContext(ctx, s.q(`SELECT `+manifestColumns+`, r.read_enabled, m.read_enabled, t.read_enabled FROM tags t
		JOIN repositories r ON r.id = t.repository_id
		JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.digest
		WHERE r.registry_id = ? AND r.name = ? AND t.name = ?`), registryID, repo, tag), &rr, &mr, &tr))
	m.Unreadable = unreadable(repo, rr, "manifest "+string(m.Digest)+" of repository "+repo, mr, "tag "+tag+" of repository "+repo, tr)
	if errors.Is(err, sql.ErrNoRows) {
		return Manifest{}, ErrNotFound
	}
	if err != nil {
		return Manifest{}, fmt.Errorf("store: tag %s in %s: %w", tag, repo, err)
	}
	return m, nil
}

// Tags lists up to n tags of the repository after last, in byte order (list-disabled ones left
// out); more reports whether others follow. It returns ErrNotFound for an unknown repository.
func (s *Store) Tags(ctx context.Context, registryID int64, repo, last string, n int) (tags []string, more bool, err error) {
	id, err := s.repoID(ctx, s.r, registryID, repo)
	if err != nil {
		return nil, false, err
	}
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT name FROM tags WHERE repository_id = ? AND name > ? AND list_enabled = 1 ORDER BY name LIMIT ?`), id, last, n+1)
	if err != nil {
		return nil, false, fmt.Errorf("store: tags of %s: %w", repo, err)
	}
	tags, err = scanStrings(rows)
	if err != nil {
		return nil, false, fmt.Errorf("store: tags of %s: %w", repo, err)
	}
	tags, more = page(tags, n)
	return tags, more, nil
}

// DeleteManifest removes manifest d and every tag pointing at it; ErrNotFound if absent.
// It returns the tags removed.
func (s *Store) DeleteManifest(ctx context.Context, registryID int64, repo string, d oci.Digest) ([]string, error) {
	var tags []string
	err := s.txOn(ctx, []lockKey{repoKey(registryID, repo)}, func(tx *sql.Tx) error {
		id, err := s.repoID(ctx, tx, registryID, repo)
		if err != nil {
			return err
		}
		if err := s.repoLock(ctx, tx, id, repo, true); err != nil {
			return err
		}
		if err := s.lockOf(ctx, tx, "manifest %s of repository "+repo, `SELECT digest, write_enabled, delete_enabled FROM manifests WHERE repository_id = ? AND digest = ?`, true, id, string(d)); err != nil {
			return err
		}
		if err := s.lockOf(ctx, tx, "tag %s of repository "+repo, `SELECT name, write_enabled, delete_enabled FROM tags WHERE repository_id = ? AND digest = ?`, true, id, string(d)); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, s.q(`SELECT name FROM tags WHERE repository_id = ? AND digest = ? ORDER BY name`), id, string(d))
		if err != nil {
			return err
		}
		if tags, err = scanStrings(rows); err != nil {
			return err
		}
		if err := s.softDelete(ctx, tx, registryID, id, repo, []string{string(d)}); err != nil {
			return err
		}
		if err := s.enqueueDelete(ctx, tx, registryID, id, repo, string(d), ""); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM tags WHERE repository_id = ? AND digest = ?`), id, string(d)); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM manifests WHERE repository_id = ? AND digest = ?`), id, string(d))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return ErrNotFound
		}
		return nil
	})
	var le *LockedError
	if errors.Is(err, ErrNotFound) || errors.As(err, &le) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("store: delete manifest %s from %s: %w", d, repo, err)
	}
	return tags, nil
}

// DeleteTag removes a tag, leaving its manifest; ErrNotFound if absent. It returns the digest
// the tag pointed at.
func (s *Store) DeleteTag(ctx context.Context, registryID int64, repo, tag string) (oci.Digest, error) {
	var d string
	err := s.txOn(ctx, []lockKey{repoKey(registryID, repo)}, func(tx *sql.Tx) error {
		id, err := s.repoID(ctx, tx, registryID, repo)
		if err != nil {
			return err
		}
		if err := s.repoLock(ctx, tx, id, repo, true); err != nil {
			return err
		}
		if err := s.lockOf(ctx, tx, "tag %s of repository "+repo, `SELECT name, write_enabled, delete_enabled FROM tags WHERE repository_id = ? AND name = ?`, true, id, tag); err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, s.q(`DELETE FROM tags WHERE repository_id = ? AND name = ? RETURNING digest`), id, tag).Scan(&d)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := s.enqueueDelete(ctx, tx, registryID, id, repo, d, tag); err != nil {
			return err
		}
		return s.markUntagged(ctx, tx, id, d, s.millis())
	})
	var le *LockedError
	if errors.Is(err, ErrNotFound) || errors.As(err, &le) {
		return "", err
	}
	if err != nil {
		return "", fmt.Errorf("store: delete tag %s from %s: %w", tag, repo, err)
	}
	return oci.Digest(d), nil
}

// Referrers lists up to n manifests of the repository whose subject is d, optionally only those
// of one artifact type, in digest order after last; more reports whether others follow. It stops
// early (more) once the annotations read pass maxBytes, always listing at least one: a manifest
// may carry megabytes of them, and a page of a hundred must not hold hundreds in memory.
func (s *Store) Referrers(ctx context.Context, registryID int64, repo string, d oci.Digest, artifactType, last string, n, maxBytes int) (list []Manifest, more bool, err error) {
	query := `SELECT ` + manifestColumns + ` FROM manifests m JOIN repositories r ON r.id = m.repository_id
		WHERE r.registry_id = ? AND r.name = ? AND m.subject = ? AND m.digest > ?`
	args := []any{registryID, repo, string(d), last}
	if artifactType != "" {
		query += ` AND m.artifact_type = ?`
		args = append(args, artifactType)
	}
	query += ` ORDER BY m.digest LIMIT ?`
	args = append(args, n+1)
	rows, err := s.r.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, false, fmt.Errorf("store: referrers of %s: %w", d, err)
	}
	defer rows.Close()
	size := 0
	for rows.Next() {
		m, err := scanManifest(rows)
		if err != nil {
			return nil, false, fmt.Errorf("store: referrers of %s: %w", d, err)
		}
		for k, v := range m.Annotations {
			size += len(k) + len(v)
		}
		if maxBytes > 0 && size > maxBytes && len(list) > 0 {
			return list, true, nil
		}
		list = append(list, m)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("store: referrers of %s: %w", d, err)
	}
	list, more = page(list, n)
	return list, more, nil
}

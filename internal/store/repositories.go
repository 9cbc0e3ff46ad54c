package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/berth-registry/berth/internal/oci"
)

// repoID finds a repository's id, or ErrNotFound.
func (s *Store) repoID(ctx context.Context, q querier, registryID int64, repo string) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, s.q(`SELECT id FROM repositories WHERE registry_id = ? AND name = ?`), registryID, repo).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	return id, err
}

// ensureRepo returns a repository's id, creating the repository if needed (one statement when it
// exists, as it mostly does).
func (s *Store) ensureRepo(ctx context.Context, tx *sql.Tx, registryID int64, repo string) (int64, error) {
	id, err := s.repoID(ctx, tx, registryID, repo)
	if !errors.Is(err, ErrNotFound) {
		return id, err
	}
	err = tx.QueryRowContext(ctx, s.q(`INSERT INTO repositories (registry_id, name, created_at) VALUES (?, ?, ?) ON CONFLICT (registry_id, name) DO NOTHING RETURNING id`),
		registryID, repo, s.millis()).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) { // created meanwhile by a writer that did not hold the repository's lock
		return s.repoID(ctx, tx, registryID, repo)
	}
	return id, err
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// RepositoryExists reports whether the repository has ever held content.
func (s *Store) RepositoryExists(ctx context.Context, registryID int64, repo string) (bool, error) {
	_, err := s.repoID(ctx, s.r, registryID, repo)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: repository %s: %w", repo, err)
	}
	return true, nil
}

// Catalog lists up to n repository names after last, in order; more reports whether others follow.
func (s *Store) Catalog(ctx context.Context, registryID int64, last string, n int) (names []string, more bool, err error) {
	// A repository is in the catalog while it holds a manifest (emptied, it disappears) and is
	// not list-disabled.
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT name FROM repositories WHERE registry_id = ? AND name > ? AND list_enabled = 1
		AND EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = repositories.id) ORDER BY name LIMIT ?`), registryID, last, n+1)
	if err != nil {
		return nil, false, fmt.Errorf("store: catalog: %w", err)
	}
	names, err = scanStrings(rows)
	if err != nil {
		return nil, false, fmt.Errorf("store: catalog: %w", err)
	}
	names, more = page(names, n)
	return names, more, nil
}

// LinkBlob records that blob d (of size) is part of the repository, creating the repository.
func (s *Store) LinkBlob(ctx context.Context, registryID int64, repo string, d oci.Digest, size int64) error {
	err := s.txOn(ctx, []lockKey{repoKey(registryID, repo)}, func(tx *sql.Tx) error {
		if err := s.checkTombstone(ctx, tx, d); err != nil {
			return err
		}
		id, err := s.ensureRepo(ctx, tx, registryID, repo)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO repository_blobs (repository_id, digest, size, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (repository_id, digest) DO UPDATE SET created_at = excluded.created_at`), // a new push renews the link's grace period
			id, string(d), size, s.millis())
		return err
	})
	if err != nil {
		return fmt.Errorf("store: link blob %s into %s: %w", d, repo, err)
	}
	return nil
}

// Blob returns the size of blob d in the repository, or ErrNotFound.
func (s *Store) Blob(ctx context.Context, registryID int64, repo string, d oci.Digest) (int64, error) {
	var size int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT b.size FROM repository_blobs b JOIN repositories r ON r.id = b.repository_id
		WHERE r.registry_id = ? AND r.name = ? AND b.digest = ?`), registryID, repo, string(d)).Scan(&size)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("store: blob %s in %s: %w", d, repo, err)
	}
	return size, nil
}

// UnlinkBlob removes blob d from the repository; ErrNotFound if it was not there.
func (s *Store) UnlinkBlob(ctx context.Context, registryID int64, repo string, d oci.Digest) error {
	res, err := s.wdb.ExecContext(ctx, s.q(`DELETE FROM repository_blobs WHERE digest = ? AND repository_id =
		(SELECT id FROM repositories WHERE registry_id = ? AND name = ?)`), string(d), registryID, repo)
	if err != nil {
		return fmt.Errorf("store: unlink blob %s from %s: %w", d, repo, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return ErrNotFound
	}
	return nil
}

// ReposWithBlob lists up to limit repositories of the registry that hold blob d.
func (s *Store) ReposWithBlob(ctx context.Context, registryID int64, d oci.Digest, limit int) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT r.name FROM repository_blobs b JOIN repositories r ON r.id = b.repository_id
		WHERE r.registry_id = ? AND b.digest = ? ORDER BY r.name LIMIT ?`), registryID, string(d), limit)
	if err != nil {
		return nil, fmt.Errorf("store: repositories with %s: %w", d, err)
	}
	names, err := scanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("store: repositories with %s: %w", d, err)
	}
	return names, nil
}

// page trims rows fetched with LIMIT n+1 to n, reporting whether more follow.
func page[T any](rows []T, n int) ([]T, bool) {
	if n <= 0 {
		return nil, false
	}
	if len(rows) > n {
		return rows[:n], true
	}
	return rows, false
}

func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

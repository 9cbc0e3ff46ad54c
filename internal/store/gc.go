package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/berth-registry/berth/internal/oci"
)

// ErrBlobCollecting means the digest is being garbage-collected: its blob may be gone in a
// moment, so it cannot be linked or referenced now. The client should push it again.
var ErrBlobCollecting = errors.New("store: the blob is being garbage-collected")

// checkTombstone refuses a digest that garbage collection is deleting.
func (s *Store) checkTombstone(ctx context.Context, tx *sql.Tx, d oci.Digest) error {
	var one int
	err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM blob_tombstones WHERE digest = ?`), string(d)).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return err
	}
	return fmt.Errorf("%w: %s", ErrBlobCollecting, d)
}

// referenced reports whether d is a manifest, or a blob a manifest references, in any
// repository of any registry, or was linked into a repository since linkedSince (a push in
// progress, whose manifest is yet to come), or is what an open upload holds so far (its blob
// store may keep those bytes at d already).
func (s *Store) referenced(ctx context.Context, q rowQuerier, d oci.Digest, linkedSince time.Time) (bool, error) {
	var one int
	// Soft-deleted manifests keep what they are and reference, until they are purged.
	err := q.QueryRowContext(ctx, s.q(`SELECT 1 WHERE EXISTS (SELECT 1 FROM manifests WHERE digest = ?)
		OR EXISTS (SELECT 1 FROM manifest_references WHERE child = ?)
		OR EXISTS (SELECT 1 FROM repository_blobs WHERE digest = ? AND created_at >= ?)
		OR EXISTS (SELECT 1 FROM deleted_manifests WHERE digest = ?)
		OR EXISTS (SELECT 1 FROM deleted_manifest_references WHERE child = ?)
		OR EXISTS (SELECT 1 FROM uploads WHERE digest = ?)`),
		string(d), string(d), string(d), linkedSince.UnixMilli(), string(d), string(d), string(d)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// MarkUnreferenced finds, among the candidates, the blobs that no manifest is or references and
// that were not linked since linkedSince, and in one transaction removes their (stale)
// repository links and tombstones them: from then on they cannot be linked or referenced until
// ClearTombstone. With dryRun nothing is written; the digests are returned all the same.
func (s *Store) MarkUnreferenced(ctx context.Context, candidates []oci.Digest, linkedSince time.Time, dryRun bool) ([]oci.Digest, error) {
	var out []oci.Digest
	find := func(q rowQuerier, mark func(oci.Digest) error) error {
		for _, d := range candidates {
			ref, err := s.referenced(ctx, q, d, linkedSince)
			if err != nil {
				return err
			}
			if ref {
				continue
			}
			if err := mark(d); err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	}
	var err error
	if dryRun {
		err = find(s.r, func(oci.Digest) error { return nil })
	} else {
		err = s.tx(ctx, func(tx *sql.Tx) error {
			return find(tx, func(d oci.Digest) error {
				if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM repository_blobs WHERE digest = ?`), string(d)); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx, s.q(`INSERT INTO blob_tombstones (digest, created_at) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING`), string(d), s.millis())
				return err
			})
		})
	}
	if err != nil {
		return nil, fmt.Errorf("store: mark unreferenced blobs: %w", err)
	}
	return out, nil
}

// Tombstones lists the digests being garbage-collected (left over if a collection stopped
// half-way).
func (s *Store) Tombstones(ctx context.Context) ([]oci.Digest, error) {
	return queryAll(ctx, s.r, `SELECT digest FROM blob_tombstones ORDER BY digest`, nil, func(sc scanner) (oci.Digest, error) {
		var d string
		err := sc.Scan(&d)
		return oci.Digest(d), err
	})
}

// ClearTombstone ends the collection of d: it may be linked again (and pushed again first).
func (s *Store) ClearTombstone(ctx context.Context, d oci.Digest) error {
	if _, err := s.wdb.ExecContext(ctx, s.q(`DELETE FROM blob_tombstones WHERE digest = ?`), string(d)); err != nil {
		return fmt.Errorf("store: clear tombstone %s: %w", d, err)
	}
	return nil
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/berth-registry/berth/internal/oci"
)

// Upload is a blob upload session. Size and HashState are the last checkpoint: the upload's data
// is durable up to Size and HashState is the digest state after exactly Size bytes.
type Upload struct {
	ID            string
	RegistryID    int64
	Repository    string
	Size          int64
	HashAlgorithm string
	HashState     []byte
	// Owner names who opened it ("user:7", "token:3" …), for the per-identity limit.
	Owner     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// CreateUpload records a new upload session.
func (s *Store) CreateUpload(ctx context.Context, u Upload) error {
	now := s.millis()
	_, err := s.wdb.ExecContext(ctx, s.q(`INSERT INTO uploads (id, registry_id, repository, size, hash_algorithm, hash_state, owner, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`), u.ID, u.RegistryID, u.Repository, u.Size, u.HashAlgorithm, u.HashState, u.Owner, now, now)
	if err != nil {
		return fmt.Errorf("store: create upload: %w", err)
	}
	return nil
}

// Upload returns upload id of the repository, or ErrNotFound.
func (s *Store) Upload(ctx context.Context, registryID int64, repo, id string) (Upload, error) {
	var u Upload
	var created, updated int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT id, registry_id, repository, size, hash_algorithm, hash_state, created_at, updated_at
		FROM uploads WHERE id = ? AND registry_id = ? AND repository = ?`), id, registryID, repo).
		Scan(&u.ID, &u.RegistryID, &u.Repository, &u.Size, &u.HashAlgorithm, &u.HashState, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return Upload{}, ErrNotFound
	}
	if err != nil {
		return Upload{}, fmt.Errorf("store: upload: %w", err)
	}
	u.CreatedAt, u.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	return u, nil
}

// CheckpointUpload moves upload id from size from to size to with the given hash state. held,
// when not empty, is the digest of a blob the upload's data holds (a blob store may keep an
// upload's first bytes where the blob of their digest belongs): garbage collection spares it
// while the upload is open; an empty held keeps the one recorded before. It returns ErrConflict
// if the upload is no longer at from (another request moved it), and ErrNotFound if it is gone.
func (s *Store) CheckpointUpload(ctx context.Context, id string, from, to int64, hashState []byte, held oci.Digest) error {
	var d any // NULL: keep the recorded one
	if held != "" {
		d = string(held)
	}
	res, err := s.wdb.ExecContext(ctx, s.q(`UPDATE uploads SET size = ?, hash_state = ?, digest = COALESCE(?, digest), updated_at = ? WHERE id = ? AND size = ?`),
		to, hashState, d, s.millis(), id, from)
	if err != nil {
		return fmt.Errorf("store: checkpoint upload: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return s.uploadMissed(ctx, id)
	}
	return nil
}

// DeleteUpload removes an upload session; ErrNotFound if it is unknown.
func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	res, err := s.wdb.ExecContext(ctx, s.q(`DELETE FROM uploads WHERE id = ?`), id)
	if err != nil {
		return fmt.Errorf("store: delete upload: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return ErrNotFound
	}
	return nil
}

// CountUploads returns the number of open upload sessions of a registry.
func (s *Store) CountUploads(ctx context.Context, registryID int64) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM uploads WHERE registry_id = ?`), registryID).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count uploads: %w", err)
	}
	return n, nil
}

// CountUploadsOf returns how many upload sessions owner has open in a registry.
func (s *Store) CountUploadsOf(ctx context.Context, registryID int64, owner string) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM uploads WHERE registry_id = ? AND owner = ?`), registryID, owner).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count uploads: %w", err)
	}
	return n, nil
}

// StaleUploads lists the ids of uploads not touched since before.
func (s *Store) StaleUploads(ctx context.Context, before time.Time, limit int) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT id FROM uploads WHERE updated_at < ? ORDER BY updated_at LIMIT ?`), before.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("store: stale uploads: %w", err)
	}
	ids, err := scanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("store: stale uploads: %w", err)
	}
	return ids, nil
}

// UploadExists reports whether upload id has a session.
func (s *Store) UploadExists(ctx context.Context, id string) (bool, error) {
	var one int
	err := s.r.QueryRowContext(ctx, s.q(`SELECT 1 FROM uploads WHERE id = ?`), id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: upload exists: %w", err)
	}
	return true, nil
}

// LeaseUpload gives upload id to holder until until: it fails with ErrConflict while another
// holder's lease runs (a request on this or another replica is writing it), and ErrNotFound if
// the upload is gone. The holder renews its lease by taking it again.
func (s *Store) LeaseUpload(ctx context.Context, id, holder string, now, until time.Time) error {
	res, err := s.wdb.ExecContext(ctx, s.q(`UPDATE uploads SET lease = ?, lease_until = ? WHERE id = ? AND (lease_until < ? OR lease = ?)`),
		holder, until.UnixMilli(), id, now.UnixMilli(), holder)
	if err != nil {
		return fmt.Errorf("store: lease upload: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return s.uploadMissed(ctx, id)
	}
	return nil
}

// ReleaseUpload ends holder's lease of upload id (nothing if it holds none).
func (s *Store) ReleaseUpload(ctx context.Context, id, holder string) error {
	if _, err := s.wdb.ExecContext(ctx, s.q(`UPDATE uploads SET lease = '', lease_until = 0 WHERE id = ? AND lease = ?`), id, holder); err != nil {
		return fmt.Errorf("store: release upload: %w", err)
	}
	return nil
}

// uploadMissed says why a conditional update of upload id changed nothing: ErrNotFound when the
// upload is gone, else ErrConflict (its condition no longer held).
func (s *Store) uploadMissed(ctx context.Context, id string) error {
	var one int
	if err := s.r.QueryRowContext(ctx, s.q(`SELECT 1 FROM uploads WHERE id = ?`), id).Scan(&one); errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return ErrConflict
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ImportRun is one import and how it goes.
type ImportRun struct {
	ID, Source, Target string
	RegistryID         int64
	Status             string // Running, Succeeded, Failed
	Error              string
	Manifests, Blobs   int
	Bytes              int64
	StartedAt, EndedAt time.Time
}

// CreateImport records an import that starts now.
func (s *Store) CreateImport(ctx context.Context, run ImportRun) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO imports (id, registry_id, source, target, status, started_at) VALUES (?, ?, ?, ?, 'Running', ?)`),
			run.ID, run.RegistryID, run.Source, run.Target, s.millis())
		return err
	})
	if err != nil {
		return fmt.Errorf("store: create import: %w", err)
	}
	return nil
}

// UpdateImport records an import's progress, or with status Succeeded or Failed, its end.
func (s *Store) UpdateImport(ctx context.Context, run ImportRun) error {
	var ended int64
	if run.Status != "Running" {
		ended = s.millis()
	}
	if len(run.Error) > 2048 {
		run.Error = run.Error[:2048]
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`UPDATE imports SET status = ?, error = ?, manifests = ?, blobs = ?, bytes = ?, ended_at = ? WHERE id = ?`),
			run.Status, run.Error, run.Manifests, run.Blobs, run.Bytes, ended, run.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: update import: %w", err)
	}
	return nil
}

// Import returns one import of a registry, or ErrNotFound.
func (s *Store) Import(ctx context.Context, registryID int64, id string) (ImportRun, error) {
	var r ImportRun
	var started, ended int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT id, registry_id, source, target, status, error, manifests, blobs, bytes, started_at, ended_at FROM imports
		WHERE registry_id = ? AND id = ?`), registryID, id).
		Scan(&r.ID, &r.RegistryID, &r.Source, &r.Target, &r.Status, &r.Error, &r.Manifests, &r.Blobs, &r.Bytes, &started, &ended)
	if errors.Is(err, sql.ErrNoRows) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("store: import %s: %w", id, err)
	}
	r.StartedAt = time.UnixMilli(started)
	if ended > 0 {
		r.EndedAt = time.UnixMilli(ended)
	}
	return r, nil
}

// PurgeImports removes the finished imports that ended before before.
func (s *Store) PurgeImports(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM imports WHERE status <> 'Running' AND ended_at < ?`), before.UnixMilli())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrRefreshReused is a directory refresh token used a second time: its family is revoked.
var ErrRefreshReused = errors.New("store: the refresh token was already used: every token of its sign-in is revoked")

// ErrRefreshRevoked is a directory refresh token revoked (sign-out, or a reuse).
var ErrRefreshRevoked = errors.New("store: the refresh token was revoked")

// DirectoryRefresh is one directory refresh token's record.
type DirectoryRefresh struct {
	ID, Family    string // ID: the SHA-256 of the token, in hex
	PrincipalKind string
	PrincipalName string
	PrincipalID   int64
	ExpiresAt     time.Time
}

// RecordDirectoryRefresh records a directory refresh token just issued.
func (s *Store) RecordDirectoryRefresh(ctx context.Context, r DirectoryRefresh) error {
	_, err := s.wdb.ExecContext(ctx, s.q(`INSERT INTO directory_refresh_tokens (id, family, principal_kind, principal_name, principal_id, expires_at) VALUES (?, ?, ?, ?, ?, ?)`),
		r.ID, r.Family, r.PrincipalKind, r.PrincipalName, r.PrincipalID, r.ExpiresAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("store: record refresh token: %w", err)
	}
	return nil
}

// UseDirectoryRefresh spends the refresh token id: the first use returns its record; a second
// use revokes its family and is ErrRefreshReused; a revoked one is ErrRefreshRevoked; an unknown
// or expired one ErrNotFound.
func (s *Store) UseDirectoryRefresh(ctx context.Context, id string, now time.Time) (DirectoryRefresh, error) {
	var r DirectoryRefresh
	var reused bool
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var expires, used int64
		var revoked int
		err := tx.QueryRowContext(ctx, s.q(`SELECT family, principal_kind, principal_name, principal_id, expires_at, used_at, revoked FROM directory_refresh_tokens WHERE id = ?`), id).
			Scan(&r.Family, &r.PrincipalKind, &r.PrincipalName, &r.PrincipalID, &expires, &used, &revoked)
		switch {
		case errors.Is(err, sql.ErrNoRows), err == nil && expires < now.UnixMilli():
			return ErrNotFound
		case err != nil:
			return err
		case revoked != 0:
			return ErrRefreshRevoked
		case used != 0:
			reused = true
			_, err := tx.ExecContext(ctx, s.q(`UPDATE directory_refresh_tokens SET revoked = 1 WHERE family = ?`), r.Family)
			return err
		}
		r.ID, r.ExpiresAt = id, time.UnixMilli(expires)
		_, err = tx.ExecContext(ctx, s.q(`UPDATE directory_refresh_tokens SET used_at = ? WHERE id = ?`), now.UnixMilli(), id)
		return err
	})
	if reused && err == nil {
		return DirectoryRefresh{}, ErrRefreshReused
	}
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrRefreshRevoked) {
		return DirectoryRefresh{}, fmt.Errorf("store: use refresh token: %w", err)
	}
	return r, err
}

// RevokeDirectoryRefresh revokes the family of the refresh token id (sign-out); an unknown id
// is no error.
func (s *Store) RevokeDirectoryRefresh(ctx context.Context, id string) error {
	_, err := s.wdb.ExecContext(ctx, s.q(`UPDATE directory_refresh_tokens SET revoked = 1
		WHERE family = (SELECT family FROM directory_refresh_tokens WHERE id = ?)`), id)
	if err != nil {
		return fmt.Errorf("store: revoke refresh token: %w", err)
	}
	return nil
}

// PurgeDirectoryRefresh drops the records of refresh tokens expired before now.
func (s *Store) PurgeDirectoryRefresh(ctx context.Context, now time.Time) error {
	if _, err := s.wdb.ExecContext(ctx, s.q(`DELETE FROM directory_refresh_tokens WHERE expires_at < ?`), now.UnixMilli()); err != nil {
		return fmt.Errorf("store: purge refresh tokens: %w", err)
	}
	return nil
}

package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// PortalSession is one signed-in browser of the portal.
type PortalSession struct {
	// ID is the SHA-256 (hex) of the cookie's secret.
	ID        string
	Principal string
	// TokensSealed are the user's directory tokens, sealed by the portal; TokenExpires is when the
	// access token among them expires.
	TokensSealed []byte
	TokenExpires time.Time
	CSRF         string
	ClientIP     string
	CreatedAt    time.Time
	SeenAt       time.Time
	ExpiresAt    time.Time
}

// MaxPortalSessions bounds the portal's sessions; MaxPortalSessionsPerPrincipal those of one
// identity (its oldest end when it signs in once more).
const (
	MaxPortalSessions             = 10_000
	MaxPortalSessionsPerPrincipal = 20
)

const portalColumns = `id, principal, tokens_sealed, token_expires, csrf, client_ip, created_at, seen_at, expires_at`

func scanPortal(sc scanner) (PortalSession, error) {
	var ps PortalSession
	var te, c, seen, exp int64
	err := sc.Scan(&ps.ID, &ps.Principal, &ps.TokensSealed, &te, &ps.CSRF, &ps.ClientIP, &c, &seen, &exp)
	ps.TokenExpires, ps.CreatedAt, ps.SeenAt, ps.ExpiresAt = time.UnixMilli(te), time.UnixMilli(c), time.UnixMilli(seen), time.UnixMilli(exp)
	return ps, err
}

// PutPortalSession records a new session, first forgetting those ended (past their absolute
// end, or idle for longer than idle) and, when its principal has too many, its oldest. ErrLimit
// when the server holds too many.
func (s *Store) PutPortalSession(ctx context.Context, ps PortalSession, idle time.Duration) error {
	now := s.now()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM portal_sessions WHERE expires_at < ? OR seen_at < ?`), now.UnixMilli(), now.Add(-idle).UnixMilli()); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM portal_sessions`).Scan(&n); err != nil {
			return err
		}
		if n >= MaxPortalSessions {
			return fmt.Errorf("%w: %d portal sessions are open", ErrLimit, n)
		}
		// The principal's oldest sessions beyond the bound end.
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM portal_sessions WHERE principal = ? AND id NOT IN
			(SELECT id FROM portal_sessions WHERE principal = ? ORDER BY created_at DESC, id LIMIT ?)`), ps.Principal, ps.Principal, MaxPortalSessionsPerPrincipal-1); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO portal_sessions (`+portalColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			ps.ID, ps.Principal, ps.TokensSealed, ps.TokenExpires.UnixMilli(), ps.CSRF, ps.ClientIP, ps.CreatedAt.UnixMilli(), ps.SeenAt.UnixMilli(), ps.ExpiresAt.UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("store: portal session: %w", err)
	}
	return nil
}

// PortalSession returns the session with id that has been seen within idle and has not reached
// its absolute end, or ErrNotFound.
func (s *Store) PortalSession(ctx context.Context, id string, idle time.Duration) (PortalSession, error) {
	now := s.now()
	ps, err := scanPortal(s.r.QueryRowContext(ctx, s.q(`SELECT `+portalColumns+` FROM portal_sessions WHERE id = ? AND expires_at >= ? AND seen_at >= ?`),
		id, now.UnixMilli(), now.Add(-idle).UnixMilli()))
	if err != nil {
		return ps, notFound("portal session", err)
	}
	return ps, nil
}

// TouchPortalSession records that the session was used at seen.
func (s *Store) TouchPortalSession(ctx context.Context, id string, seen time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`UPDATE portal_sessions SET seen_at = ? WHERE id = ? AND seen_at < ?`), seen.UnixMilli(), id, seen.UnixMilli())
		return err
	})
}

// ClaimPortalRenewal lets one request at a time (on any replica) renew the session's tokens for
// a while (until): false when another holds the claim.
func (s *Store) ClaimPortalRenewal(ctx context.Context, id string, until time.Time) (bool, error) {
	var claimed bool
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE portal_sessions SET renewing_until = ? WHERE id = ? AND renewing_until < ?`), until.UnixMilli(), id, s.millis())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		claimed = n == 1
		return err
	})
	return claimed, err
}

// SetPortalTokens stores the session's renewed tokens and releases the renewal's claim.
func (s *Store) SetPortalTokens(ctx context.Context, id string, sealed []byte, expires time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		return s.execOne(ctx, tx, `UPDATE portal_sessions SET tokens_sealed = ?, token_expires = ?, renewing_until = 0 WHERE id = ?`, sealed, expires.UnixMilli(), id)
	})
}

// DeletePortalSession ends a session (sign-out); ending one that is gone is no error.
func (s *Store) DeletePortalSession(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`DELETE FROM portal_sessions WHERE id = ?`), id)
		return err
	})
}

package authn

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/store"
)

// ReasonRefreshSpent is the reason of a directory refresh token used twice, revoked, expired
// or unknown.
const ReasonRefreshSpent = "refresh_token_spent"

// refreshPrefix starts every directory refresh token, so that one is recognised in a leak scan.
const refreshPrefix = "bdr_"

// refreshID is the store's key of a refresh token: its SHA-256 (the token is 32 random bytes, so
// no slow hash is needed; the token itself is never stored).
func refreshID(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// IssueDirectoryRefresh makes a directory refresh token for p, in family (a new family, a new
// sign-in, when empty), and records it; "" when refresh tokens are off (DirectoryRefreshTTL 0).
// The token is an opaque random string, not a JWT: it is only ever checked against the store,
// and signing keys need not outlive it.
func (s *Service) IssueDirectoryRefresh(ctx context.Context, p access.Principal, family string) (string, error) {
	if s.DirectoryRefreshTTL <= 0 {
		return "", nil
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	raw := refreshPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	if family == "" {
		family = refreshID(raw)[:32]
	}
	err := s.st.RecordDirectoryRefresh(ctx, store.DirectoryRefresh{ID: refreshID(raw), Family: family, PrincipalKind: string(p.Kind),
		PrincipalName: p.Name, PrincipalID: p.ID, ExpiresAt: s.now().Add(s.DirectoryRefreshTTL)})
	if err != nil {
		return "", err
	}
	return raw, nil
}

// DirectoryRefresh spends a directory refresh token: it returns the principal it was issued to
// (which must still exist) and its family. A token used before revokes its family: a stolen copy
// and the original both stop working.
func (s *Service) DirectoryRefresh(ctx context.Context, raw string) (access.Principal, string, error) {
	spent := func(msg string) error {
		return &Error{Reason: ReasonRefreshSpent, InvalidToken: true, Message: msg}
	}
	if !strings.HasPrefix(raw, refreshPrefix) || len(raw) > 128 {
		return access.Principal{}, "", spent("not a berth refresh token: sign in again")
	}
	rec, err := s.st.UseDirectoryRefresh(ctx, refreshID(raw), s.now())
	switch {
	case errors.Is(err, store.ErrRefreshReused):
		return access.Principal{}, "", spent("the refresh token was already used: every token of that sign-in is revoked; sign in again")
	case errors.Is(err, store.ErrRefreshRevoked):
		return access.Principal{}, "", spent("the refresh token was revoked (signed out): sign in again")
	case errors.Is(err, store.ErrNotFound):
		return access.Principal{}, "", spent("the refresh token has expired or is not known here: sign in again")
	case err != nil:
		return access.Principal{}, "", err
	}
	p := access.Principal{Kind: access.Kind(rec.PrincipalKind), Name: rec.PrincipalName, ID: rec.PrincipalID, Via: "refresh_token"}
	var exists bool
	switch p.Kind {
	case access.KindUser:
		u, err := s.st.UserByName(ctx, p.Name)
		exists = err == nil && u.ID == p.ID
	case access.KindSP:
		sp, err := s.st.ServicePrincipalByAppID(ctx, p.Name)
		exists = err == nil && sp.ID == p.ID
	}
	if !exists {
		return access.Principal{}, "", &Error{Reason: ReasonInvalidToken, Identity: p.Name, InvalidToken: true,
			Message: p.String() + " no longer exists"}
	}
	return p, rec.Family, nil
}

// RevokeDirectoryRefresh revokes the sign-in of a directory refresh token (berth auth logout).
func (s *Service) RevokeDirectoryRefresh(ctx context.Context, raw string) error {
	if !strings.HasPrefix(raw, refreshPrefix) || len(raw) > 128 {
		return nil
	}
	return s.st.RevokeDirectoryRefresh(ctx, refreshID(raw))
}

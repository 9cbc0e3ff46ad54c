package portal

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/authn"
	"github.com/berth-registry/berth/internal/store"
)

// Cookies: the session's (its secret, whose SHA-256 names the row) and, before a sign-in, the
// sign-in form's CSRF secret (a double submit). Both are HttpOnly, SameSite=Strict, on /portal/,
// Secure when the browser reached berth over HTTPS; there they carry the __Host- prefix.
const (
	sessionCookie = "berth_portal"
	signinCookie  = "berth_portal_signin"
)

// renewBefore: a session's directory token is renewed when it has less than this left.
const renewBefore = 10 * time.Minute

// touchEvery: a session's last use is written at most this often.
const touchEvery = 30 * time.Second

// session is a signed-in browser.
type session struct {
	store.PortalSession
	tokens sessionTokens
}

type sessionTokens struct {
	Access  string `json:"access"`
	Refresh string `json:"refresh"`
}

func (h *Handler) cookieName(r *http.Request, name string) string {
	if h.Secure(r) {
		return "__Host-" + name
	}
	return name
}

func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	c := &http.Cookie{Name: h.cookieName(r, name), Value: value, Path: "/", HttpOnly: true, Secure: h.Secure(r), SameSite: http.SameSiteStrictMode, MaxAge: maxAge}
	http.SetCookie(w, c)
}

func (h *Handler) cookie(r *http.Request, name string) string {
	c, err := r.Cookie(h.cookieName(r, name))
	if err != nil || len(c.Value) > 100 {
		return ""
	}
	return c.Value
}

func sessionID(secret string) string {
	sum := sha256.Sum256([]byte("berth portal session\x00" + secret))
	return hex.EncodeToString(sum[:])
}

func (h *Handler) sealTokens(id string, t sessionTokens) ([]byte, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	return h.Box.Seal(b, []byte("portal_sessions:"+id))
}

// startSession records a new session for a sign-in's tokens and sets its cookie. Whatever session
// cookie the browser had is ignored and replaced: a session id is never chosen by the browser.
func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, principal string, tok client.DirectoryToken) error {
	if old := h.cookie(r, sessionCookie); old != "" {
		_ = h.Store.DeletePortalSession(r.Context(), sessionID(old))
	}
	secret := rand.Text() + rand.Text()
	id := sessionID(secret)
	sealed, err := h.sealTokens(id, sessionTokens{Access: tok.AccessToken, Refresh: tok.RefreshToken})
	if err != nil {
		return err
	}
	now := h.Now()
	ps := store.PortalSession{ID: id, Principal: principal, TokensSealed: sealed, TokenExpires: now.Add(time.Duration(tok.ExpiresIn) * time.Second),
		CSRF: rand.Text(), ClientIP: authn.ClientIP(r), CreatedAt: now, SeenAt: now, ExpiresAt: now.Add(h.Absolute)}
	if err := h.Store.PutPortalSession(r.Context(), ps, h.Idle); err != nil {
		return err
	}
	h.setCookie(w, r, sessionCookie, secret, 0)
	h.setCookie(w, r, signinCookie, "", -1)
	return nil
}

// errNoSession: the browser is not signed in (or its session ended).
var errNoSession = errors.New("portal: not signed in")

// loadSession finds the request's session, renewing its directory token when it is close to its
// end (one request at a time, on any replica).
func (h *Handler) loadSession(ctx context.Context, r *http.Request) (*session, error) {
	secret := h.cookie(r, sessionCookie)
	if secret == "" {
		return nil, errNoSession
	}
	id := sessionID(secret)
	ps, err := h.Store.PortalSession(ctx, id, h.Idle)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, err
	}
	s := &session{PortalSession: ps}
	if err := h.openTokens(s); err != nil {
		return nil, err
	}
	now := h.Now()
	if now.Sub(ps.SeenAt) > touchEvery {
		if err := h.Store.TouchPortalSession(ctx, id, now); err != nil {
			return nil, err
		}
	}
	if now.Before(ps.TokenExpires.Add(-renewBefore)) {
		return s, nil
	}
	return h.renew(ctx, r, s)
}

func (h *Handler) openTokens(s *session) error {
	plain, err := h.Box.Open(s.TokensSealed, []byte("portal_sessions:"+s.ID))
	if err != nil {
		return fmt.Errorf("portal: session tokens: %w", err)
	}
	return json.Unmarshal(plain, &s.tokens)
}

// renew trades the session's refresh token for new tokens. Another request renewing at the same
// time holds the claim: this one uses the token it has while it lasts, or waits for the new one.
func (h *Handler) renew(ctx context.Context, r *http.Request, s *session) (*session, error) {
	for range 20 {
		now := h.Now()
		claimed, err := h.Store.ClaimPortalRenewal(ctx, s.ID, now.Add(30*time.Second))
		if err != nil {
			return nil, err
		}
		if claimed {
			// The row as it is now: another request may have renewed it since this one read it
			// (its refresh token is then spent: using it again would end the whole sign-in).
			ps, err := h.Store.PortalSession(ctx, s.ID, h.Idle)
			if err != nil {
				return nil, errNoSession
			}
			renewed := ps.TokenExpires.After(s.TokenExpires)
			s.PortalSession = ps
			if err := h.openTokens(s); err != nil {
				return nil, err
			}
			if renewed {
				return s, h.Store.SetPortalTokens(ctx, s.ID, ps.TokensSealed, ps.TokenExpires) // releases the claim
			}
			tok, err := h.api(r, "").RenewSignIn(ctx, s.tokens.Refresh)
			if err != nil {
				if client.IsStatus(err, http.StatusUnauthorized) || client.IsStatus(err, http.StatusBadRequest) {
					_ = h.Store.DeletePortalSession(ctx, s.ID)
					return nil, errNoSession
				}
				return nil, err
			}
			s.tokens = sessionTokens{Access: tok.AccessToken, Refresh: tok.RefreshToken}
			sealed, err := h.sealTokens(s.ID, s.tokens)
			if err != nil {
				return nil, err
			}
			s.TokenExpires = now.Add(time.Duration(tok.ExpiresIn) * time.Second)
			return s, h.Store.SetPortalTokens(ctx, s.ID, sealed, s.TokenExpires)
		}
		if now.Before(s.TokenExpires.Add(-time.Minute)) {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(150 * time.Millisecond):
		}
		ps, err := h.Store.PortalSession(ctx, s.ID, h.Idle)
		if err != nil {
			return nil, errNoSession
		}
		if ps.TokenExpires.After(s.TokenExpires) {
			s.PortalSession = ps
			return s, h.openTokens(s)
		}
	}
	return nil, fmt.Errorf("portal: the session's sign-in is being renewed elsewhere; try again")
}

// checkCSRF compares a form's token with the session's (or, for the sign-in form, with its
// cookie) in constant time.
func checkCSRF(got, want string) bool {
	return want != "" && len(got) == len(want) && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// Package sso signs people in with their organisation's OpenID Connect provider: berth is the
// relying party (a confidential client with the provider), and gives its own client — berth auth
// login --sso, the portal — a one-time code it redeems with PKCE at /mgmt/v1/token, or a device
// code to poll with. The provider's user maps to a directory user (created on first sign-in when
// the provider allows it), its groups claim to directory groups. Sign-ins in progress live in the
// database, so that any replica may take the provider's answer.
package sso

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/federation"
	"github.com/berth-registry/berth/internal/seal"
	"github.com/berth-registry/berth/internal/store"
)

// Lifetimes of a sign-in in progress, and of the one-time code a client redeems.
const (
	loginTTL = 10 * time.Minute
	codeTTL  = time.Minute
)

// Error is a refused single sign-on: Reason for the login event, Message for the person.
type Error struct {
	Reason, Message string
	Status          int // the HTTP status to answer
	// OAuth is the RFC 6749/8628 error code a token endpoint answers (authorization_pending …).
	OAuth string
	// Issuer and Subject name the external identity, once known.
	Issuer, Subject string
}

func (e *Error) Error() string { return e.Message }

func fail(status int, reason, oauth, format string, args ...any) *Error {
	return &Error{Reason: reason, OAuth: oauth, Status: status, Message: fmt.Sprintf(format, args...)}
}

// Reasons of refused single sign-ons.
const (
	ReasonProvider    = "sso_provider_error"
	ReasonNoUser      = "sso_no_user"
	ReasonNameTaken   = "sso_name_taken"
	ReasonBadCode     = "sso_bad_code"
	ReasonPending     = "sso_pending"
	ReasonIDToken     = "sso_id_token"
	ReasonBadUsername = "sso_bad_username"
)

// Service runs single sign-ons.
type Service struct {
	Store    *store.Store
	Box      *seal.Box
	Verifier *federation.Verifier
	Now      func() time.Time
	// Portal: the web console is served, and its own page (PortalPath on berth's host) is a
	// redirect a sign-in may be sent back to, beside a native client's loopback address.
	Portal bool
}

// PortalPath is where the portal takes a sign-in's one-time code.
const PortalPath = "/portal/sso/done"

// portalRedirect reports whether u is the portal's own page on the host of callback (berth's
// callback as the browser reached it).
func (s *Service) portalRedirect(u, callback string) bool {
	return s.Portal && u == strings.TrimSuffix(callback, "/mgmt/v1/sso/callback")+PortalPath
}

// Result is a completed sign-in: the directory user and the external identity.
type Result struct {
	User            store.SSOUser
	Issuer, Subject string
}

func random() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func s256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func hashCode(code string) string {
	h := sha256.Sum256([]byte(code))
	return hex.EncodeToString(h[:])
}

// LoopbackRedirect reports whether u is where a native client may be sent back to: http on a
// loopback address, any port (RFC 8252 §7.3).
func LoopbackRedirect(u string) bool {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "http" || p.User != nil || p.Fragment != "" {
		return false
	}
	if p.Hostname() == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(p.Hostname())
	return err == nil && a.IsLoopback()
}

// Provider returns the named identity provider, its client secret opened.
func (s *Service) provider(ctx context.Context, name string) (store.IdentityProvider, string, error) {
	p, err := s.Store.IdentityProvider(ctx, name)
	if err != nil {
		return p, "", err
	}
	secret, err := OpenSecret(s.Box, p)
	return p, secret, err
}

// SealSecret seals a provider's client secret, bound to its name.
func SealSecret(box *seal.Box, name, secret string) ([]byte, error) {
	if secret == "" {
		return nil, nil
	}
	if box == nil {
		return nil, errors.New("sso: no key-encryption key to seal the client secret with")
	}
	return box.Seal([]byte(secret), []byte("identity-provider:"+name))
}

// OpenSecret opens a provider's client secret.
func OpenSecret(box *seal.Box, p store.IdentityProvider) (string, error) {
	if p.SecretSealed == nil {
		return "", nil
	}
	if box == nil {
		return "", errors.New("sso: no key-encryption key to open the client secret with")
	}
	b, err := box.Open(p.SecretSealed, []byte("identity-provider:"+p.Name))
	return string(b), err
}

// StartCode begins an authorization code sign-in for a client that will be sent back to
// clientRedirect with clientState, and redeem its code with the verifier of clientChallenge
// (S256). callback is berth's own address the provider sends the browser to. It returns the
// provider's authorization URL.
func (s *Service) StartCode(ctx context.Context, idp, clientIP, clientRedirect, clientState, clientChallenge, callback string) (string, error) {
	switch {
	case !LoopbackRedirect(clientRedirect) && !s.portalRedirect(clientRedirect, callback):
		return "", fail(http.StatusBadRequest, ReasonBadCode, "invalid_request", "redirect_uri %q is not an http address on loopback (a native client's, RFC 8252)", trunc(clientRedirect))
	case !b64url.MatchString(clientChallenge) || len(clientChallenge) != 43:
		return "", fail(http.StatusBadRequest, ReasonBadCode, "invalid_request", "code_challenge must be a S256 challenge (43 base64url characters)")
	case len(clientState) > 512:
		return "", fail(http.StatusBadRequest, ReasonBadCode, "invalid_request", "state is longer than 512 characters")
	}
	p, _, err := s.provider(ctx, idp)
	if err != nil {
		return "", err
	}
	if err := s.Store.CheckSSOLoginRoom(ctx, clientIP); err != nil {
		return "", err
	}
	d, err := s.Verifier.Discover(ctx, p.Issuer)
	if err != nil || d.AuthorizationEndpoint == "" {
		return "", providerError(p, "discovery", err)
	}
	l := store.SSOLogin{ID: random(), IDPID: p.ID, Kind: "code", ClientIP: clientIP, ClientRedirect: clientRedirect, ClientState: clientState, ClientChallenge: clientChallenge,
		Nonce: random(), Verifier: random(), ExpiresAt: s.Now().Add(loginTTL)}
	if err := s.Store.PutSSOLogin(ctx, l); err != nil {
		return "", err
	}
	q := url.Values{"response_type": {"code"}, "client_id": {p.ClientID}, "redirect_uri": {redirectURI(p, callback)}, "scope": {p.Scopes},
		"state": {l.ID}, "nonce": {l.Nonce}, "code_challenge": {s256(l.Verifier)}, "code_challenge_method": {"S256"}}
	sep := "?"
	if strings.Contains(d.AuthorizationEndpoint, "?") {
		sep = "&"
	}
	return d.AuthorizationEndpoint + sep + q.Encode(), nil
}

var b64url = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func redirectURI(p store.IdentityProvider, callback string) string {
	if p.RedirectURI != "" {
		return p.RedirectURI
	}
	return callback
}

func providerError(p store.IdentityProvider, what string, err error) error {
	msg := fmt.Sprintf("identity provider %q: %s failed", p.Name, what)
	if err != nil {
		msg += ": " + err.Error()
	}
	return &Error{Reason: ReasonProvider, Status: http.StatusBadGateway, Message: msg, Issuer: p.Issuer}
}

// Callback takes the provider's answer (state, code, or error), signs the person in, and returns
// where to send the browser: the client's redirect with its one-time code and state.
func (s *Service) Callback(ctx context.Context, state, code, providerErr, callback string) (string, Result, error) {
	l, err := s.Store.SSOLogin(ctx, state)
	if err != nil || l.Kind != "code" || l.CodeHash != "" {
		return "", Result{}, fail(http.StatusBadRequest, ReasonBadCode, "invalid_request", "this sign-in is unknown, expired or already used: start again (berth auth login --sso)")
	}
	p, secret, err := s.providerByID(ctx, l.IDPID)
	if err != nil {
		return "", Result{}, err
	}
	back := func(q url.Values) string {
		q.Set("state", l.ClientState)
		sep := "?"
		if strings.Contains(l.ClientRedirect, "?") {
			sep = "&"
		}
		return l.ClientRedirect + sep + q.Encode()
	}
	if providerErr != "" {
		s.Store.DeleteSSOLogin(ctx, l.ID)
		e := providerError(p, "sign-in", errors.New(trunc(providerErr)))
		return back(url.Values{"error": {"access_denied"}, "error_description": {e.Error()}}), Result{}, e
	}
	tok, err := s.exchange(ctx, p, secret, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI(p, callback)},
		"code_verifier": {l.Verifier}})
	if err != nil {
		s.Store.DeleteSSOLogin(ctx, l.ID)
		return back(url.Values{"error": {"access_denied"}, "error_description": {err.Error()}}), Result{}, err
	}
	res, err := s.signIn(ctx, p, tok, l.Nonce)
	if err != nil {
		s.Store.DeleteSSOLogin(ctx, l.ID)
		return back(url.Values{"error": {"access_denied"}, "error_description": {err.Error()}}), res, err
	}
	one := random()
	if err := s.Store.CompleteSSOLogin(ctx, l.ID, hashCode(one), res.User.ID, res.Subject, s.Now().Add(codeTTL)); err != nil {
		return "", res, fail(http.StatusBadRequest, ReasonBadCode, "invalid_request", "this sign-in was already used")
	}
	return back(url.Values{"code": {one}}), res, nil
}

// Redeem trades a client's one-time code, with the PKCE verifier and the redirect it started
// with, for the user it signed in.
func (s *Service) Redeem(ctx context.Context, code, verifier, redirect string) (Result, error) {
	l, err := s.Store.RedeemSSOCode(ctx, hashCode(code))
	if err != nil {
		return Result{}, fail(http.StatusBadRequest, ReasonBadCode, "invalid_grant", "the code is unknown, expired or already used")
	}
	if s256(verifier) != l.ClientChallenge || (redirect != "" && redirect != l.ClientRedirect) {
		return Result{}, fail(http.StatusBadRequest, ReasonBadCode, "invalid_grant", "the code_verifier or redirect_uri does not match the sign-in's")
	}
	return s.result(ctx, l)
}

func (s *Service) result(ctx context.Context, l store.SSOLogin) (Result, error) {
	p, err := s.Store.IdentityProviderByID(ctx, l.IDPID)
	if err != nil {
		return Result{}, err
	}
	u, err := s.Store.UserByID(ctx, l.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return Result{}, fail(http.StatusBadRequest, ReasonNoUser, "invalid_grant", "the user signed in was deleted since")
	}
	if err != nil {
		return Result{}, err
	}
	return Result{User: store.SSOUser{User: u}, Issuer: p.Issuer, Subject: l.Subject}, nil
}

func (s *Service) providerByID(ctx context.Context, id int64) (store.IdentityProvider, string, error) {
	p, err := s.Store.IdentityProviderByID(ctx, id)
	if err != nil {
		return p, "", err
	}
	secret, err := OpenSecret(s.Box, p)
	return p, secret, err
}

// tokenReply is a provider's token endpoint answer.
type tokenReply struct {
	IDToken     string `json:"id_token"`
	AccessToken string `json:"access_token"`
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Interval    int    `json:"interval"`
}

// exchange calls the provider's token endpoint as the confidential client.
func (s *Service) exchange(ctx context.Context, p store.IdentityProvider, secret string, form url.Values) (tokenReply, error) {
	d, err := s.Verifier.Discover(ctx, p.Issuer)
	if err != nil || d.TokenEndpoint == "" {
		return tokenReply{}, providerError(p, "discovery", err)
	}
	var t tokenReply
	status, err := s.post(ctx, d.TokenEndpoint, p, secret, form, &t)
	if err != nil {
		return t, providerError(p, "the token request", err)
	}
	if status != http.StatusOK {
		if t.Error != "" {
			return t, &Error{Reason: ReasonProvider, OAuth: t.Error, Status: http.StatusBadRequest, Issuer: p.Issuer,
				Message: fmt.Sprintf("identity provider %q: %s %s", p.Name, trunc(t.Error), trunc(t.Description))}
		}
		return t, providerError(p, "the token request", fmt.Errorf("answered %d", status))
	}
	return t, nil
}

// post sends a form to a provider endpoint with the client's credentials (client_secret_basic),
// reading a JSON answer of at most 1 MiB.
func (s *Service) post(ctx context.Context, endpoint string, p store.IdentityProvider, secret string, form url.Values, out any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Verifier.Timeout())
	defer cancel()
	if secret == "" {
		form.Set("client_id", p.ClientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if secret != "" {
		req.SetBasicAuth(url.QueryEscape(p.ClientID), url.QueryEscape(secret))
	}
	resp, err := s.Verifier.HTTP().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, federation.MaxDocumentBytes+1))
	if err != nil {
		return 0, err
	}
	if len(b) > federation.MaxDocumentBytes {
		return 0, errors.New("the answer is larger than 1 MiB")
	}
	if err := json.Unmarshal(b, out); err != nil && resp.StatusCode == http.StatusOK {
		return 0, errors.New("the answer is not JSON")
	}
	return resp.StatusCode, nil
}

// signIn checks the provider's ID token (and nonce, for the code flow), reads the claims (the
// userinfo endpoint adds what the ID token lacks), and maps the person to a directory user.
func (s *Service) signIn(ctx context.Context, p store.IdentityProvider, tok tokenReply, nonce string) (Result, error) {
	bad := func(format string, args ...any) error {
		return &Error{Reason: ReasonIDToken, Status: http.StatusUnauthorized, Issuer: p.Issuer, Message: fmt.Sprintf("identity provider %q: the ID token %s", p.Name, fmt.Sprintf(format, args...))}
	}
	if tok.IDToken == "" {
		return Result{}, bad("is missing (is openid among the scopes?)")
	}
	t, err := federation.Parse(tok.IDToken)
	if err != nil {
		return Result{}, bad("%v", err)
	}
	if t.Issuer != p.Issuer {
		return Result{}, bad("names issuer %q, not %q", trunc(t.Issuer), p.Issuer)
	}
	if err := s.Verifier.VerifyTrusted(ctx, t); err != nil {
		return Result{}, bad("%v", err)
	}
	if !contains(t.Audience, p.ClientID) {
		return Result{}, bad("is not for client %q", p.ClientID)
	}
	if nonce != "" && t.Claims["nonce"] != nonce {
		return Result{}, bad("does not carry this sign-in's nonce")
	}
	claims := t.Claims
	if tok.AccessToken != "" && (claims[p.ClaimUsername] == nil || claims[p.ClaimGroups] == nil) {
		if info, err := s.userinfo(ctx, p, tok.AccessToken); err == nil && info["sub"] == t.Subject {
			for k, v := range info {
				if _, ok := claims[k]; !ok {
					claims[k] = v
				}
			}
		}
	}
	res := Result{Issuer: p.Issuer, Subject: t.Subject}
	name, _ := claims[p.ClaimUsername].(string)
	if p.ClaimUsername == "email" {
		name = strings.ToLower(name)
	}
	if !userName.MatchString(name) {
		return res, &Error{Reason: ReasonBadUsername, Status: http.StatusForbidden, Issuer: p.Issuer, Subject: t.Subject,
			Message: fmt.Sprintf("identity provider %q: the claim %q (%q) is not a user name berth accepts (letters, digits, . _ @ -, at most 64)", p.Name, p.ClaimUsername, trunc(name))}
	}
	var groups []string
	switch gs := claims[p.ClaimGroups].(type) {
	case []any:
		for _, g := range gs {
			if s, ok := g.(string); ok && len(groups) < 200 {
				groups = append(groups, s)
			}
		}
	case string: // one group, as some providers send it
		groups = []string{gs}
	}
	u, err := s.Store.SignInExternal(ctx, p.ID, t.Subject, name, p.CreateUsers, groups)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return res, &Error{Reason: ReasonNoUser, Status: http.StatusForbidden, Issuer: p.Issuer, Subject: t.Subject,
			Message: fmt.Sprintf("%s is not a berth user yet, and identity provider %q does not create users (berth identity-provider update --create-users)", name, p.Name)}
	case errors.Is(err, store.ErrNameTaken):
		return res, &Error{Reason: ReasonNameTaken, Status: http.StatusForbidden, Issuer: p.Issuer, Subject: t.Subject,
			Message: fmt.Sprintf("a local user named %s exists: single sign-on does not take it over", name)}
	case err != nil:
		return res, err
	}
	res.User = u
	return res, nil
}

var userName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

func (s *Service) userinfo(ctx context.Context, p store.IdentityProvider, access string) (map[string]any, error) {
	d, err := s.Verifier.Discover(ctx, p.Issuer)
	if err != nil || d.UserinfoEndpoint == "" {
		return nil, errors.New("no userinfo endpoint")
	}
	ctx, cancel := context.WithTimeout(ctx, s.Verifier.Timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.UserinfoEndpoint, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err := s.Verifier.HTTP().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("userinfo answered %d", resp.StatusCode)
	}
	var m map[string]any
	err = json.NewDecoder(io.LimitReader(resp.Body, federation.MaxDocumentBytes)).Decode(&m)
	return m, err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func trunc(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

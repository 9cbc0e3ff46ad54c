// Package oauth serves berth's token endpoints: the Docker token protocol with ACR's extensions
// (GET and POST /oauth2/token, POST /oauth2/exchange) and the directory token endpoint that
// `berth auth login` uses (POST /mgmt/v1/token).
package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/audit"
	"github.com/berth-registry/berth/internal/authn"
	"github.com/berth-registry/berth/internal/httperr"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/policy"
	"github.com/berth-registry/berth/internal/sso"
	"github.com/berth-registry/berth/internal/store"
	"github.com/berth-registry/berth/internal/token"
)

// Limits on what a token request may carry.
const (
	maxFormBytes = 64 << 10
)

// Decider is the policy the grants are computed with, and the registries' network rules.
type Decider interface {
	Decide(ctx context.Context, p access.Principal, a policy.Action, r policy.Resource) policy.Decision
	Networker
}

// Resolver finds the registry a service (login server) or Host names.
type Resolver interface {
	Resolve(ctx context.Context, host string) (store.Registry, error)
}

// Handler serves the token endpoints.
type Handler struct {
	// SSO runs single sign-ons (a server without identity providers offers none).
	SSO *sso.Service

	authn  *authn.Service
	tokens *token.Service
	policy Decider
	hosts  Resolver
	audit  audit.Recorder
	log    *slog.Logger
}

// New returns the token endpoints' handler; every sign-in attempt becomes a login event in rec.
func New(a *authn.Service, p Decider, hosts Resolver, rec audit.Recorder, single *sso.Service, log *slog.Logger) *Handler {
	if rec == nil {
		rec = audit.Discard
	}
	return &Handler{authn: a, tokens: a.Tokens(), policy: p, hosts: hosts, audit: rec, SSO: single, log: log.With("component", "oauth")}
}

// attempt is the login event of one request to a token endpoint, recorded by done.
type attempt struct {
	store.LoginEvent
}

// begin starts the login event of r.
func (h *Handler) begin(r *http.Request, op string) *attempt {
	return &attempt{audit.NewLogin(r, "", r.Host, op)}
}

func (a *attempt) registry(reg store.Registry) {
	a.Registry = reg.Name
	if reg.LoginServer != "" {
		a.LoginServer = reg.LoginServer
	}
}

func (a *attempt) principal(p access.Principal) {
	audit.SignedIn(&a.LoginEvent, p)
}

// done records the attempt, which ended with err (nil: a token was issued).
func (h *Handler) done(r *http.Request, a *attempt, err error) {
	audit.Finish(r, &a.LoginEvent, err)
	h.audit.Login(r.Context(), a.LoginEvent)
}

// Register adds the endpoints to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("GET /oauth2/token", httperr.Handle(h.log, h.token))
	mux.Handle("POST /oauth2/token", httperr.Handle(h.log, h.token))
	mux.Handle("POST /oauth2/exchange", httperr.Handle(h.log, h.exchange))
	mux.Handle("POST /mgmt/v1/token", httperr.Handle(h.log, h.directoryToken))
	mux.Handle("POST /mgmt/v1/token/revoke", httperr.Handle(h.log, h.revokeDirectoryRefresh))
	h.registerSSO(mux)
}

// tokenReply is the body of a successful /oauth2/token reply. access_token and token carry the
// same value: OAuth clients read the first, older Docker clients the second.
type tokenReply struct {
	AccessToken  string `json:"access_token"`
	Token        string `json:"token"`
	ExpiresIn    int    `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

func (h *Handler) token(w http.ResponseWriter, r *http.Request) (err error) {
	ctx := r.Context()
	a := h.begin(r, audit.OpToken)
	defer func() { h.done(r, a, err) }()
	if err := h.networkFirst(r, a); err != nil {
		return err
	}
	if err := parseForm(w, r); err != nil {
		return err
	}
	if u := r.Form.Get("username"); u != "" && a.Identity == "" {
		a.Identity = u
	}
	reg, err := h.registry(ctx, r)
	if err != nil {
		return err
	}
	a.registry(reg)
	if err := h.network(r, reg); err != nil {
		return err
	}
	p, refresh, err := h.signIn(ctx, r, reg)
	if err != nil {
		return authError(err)
	}
	a.principal(p)
	offline := r.Form.Get("offline_token") == "true" || r.Form.Get("access_type") == "offline"
	scopes, err := scopes(r.Form["scope"])
	if err != nil {
		return err
	}
	g := h.grant(ctx, p, reg, scopes)
	a.Granted, a.Refused = g.granted, g.refused
	if len(g.refused) > 0 {
		a.Reason, a.Message = ReasonInsufficientScope, g.why
	}
	c := token.Claims{Access: g.access, GrantType: token.GrantAccess, Kind: string(p.Kind), PID: p.ID, Registry: p.Registry,
		Mode: h.authn.Mode(reg)}
	c.Subject, c.Audience = p.Name, []string{authn.Audience(reg)}
	life := h.tokens.Lifetimes().Access
	signed, err := h.tokens.Sign(ctx, &c, life)
	if err != nil {
		return err
	}
	a.TokenID = c.ID
	rep := tokenReply{AccessToken: signed, Token: signed, ExpiresIn: int(life.Seconds()), IssuedAt: c.IssuedAt.UTC().Format(time.RFC3339)}
	if offline && refresh != "" {
		rep.RefreshToken = refresh
	}
	// One line per token at info, the access log's (which names the principal); the login event
	// keeps the rest (jti, scopes granted and refused). This one is for debugging.
	if h.log.Enabled(ctx, slog.LevelDebug) {
		h.log.DebugContext(ctx, "token issued", "registry", reg.Name, "principal", p.String(), "via", p.Via, "jti", c.ID, "access", c.Access)
	}
	return writeJSON(w, rep)
}

// signIn identifies the caller of a token request. refresh is the refresh token the caller
// presented (and may keep using), if any.
func (h *Handler) signIn(ctx context.Context, r *http.Request, reg store.Registry) (p access.Principal, refresh string, err error) {
	ip := authn.ClientIP(r)
	gt := r.Form.Get("grant_type")
	if user, pass, ok := r.BasicAuth(); ok && (gt == "" || gt == "password") {
		p, err = h.authn.Password(ctx, reg, ip, user, pass)
		if err == nil && p.Via == "refresh_token" {
			refresh = pass
		}
		return p, refresh, err
	}
	switch gt {
	case "refresh_token":
		rt := r.Form.Get("refresh_token")
		if rt == "" {
			return p, "", httperr.New(oci.CodeUnsupported, "grant_type=refresh_token needs a refresh_token").WithStatus(http.StatusBadRequest)
		}
		p, err = h.authn.RefreshToken(ctx, reg, rt)
		return p, rt, err
	case "password":
		user, pass := r.Form.Get("username"), r.Form.Get("password")
		if user == "" && pass == "" {
			return access.Anonymous, "", nil
		}
		p, err = h.authn.Password(ctx, reg, ip, user, pass)
		if err == nil && p.Via == "refresh_token" {
			refresh = pass
		}
		return p, refresh, err
	case "":
		if r.Method == http.MethodGet {
			return access.Anonymous, "", nil
		}
		return p, "", httperr.New(oci.CodeUnsupported, "grant_type is required: password or refresh_token").WithStatus(http.StatusBadRequest)
	default:
		return p, "", httperr.New(oci.CodeUnsupported, "grant_type %q is not supported here: use password or refresh_token", truncate(gt)).WithStatus(http.StatusBadRequest)
	}
}

// ClientAssertionJWT is the client_assertion_type of a federated credential's token (RFC 7523).
const ClientAssertionJWT = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// ReasonInsufficientScope is the reason of a token request that was granted less than it asked.
const ReasonInsufficientScope = "insufficient_scope"

// grantResult is what a token request gets: the access, the granted and refused scopes as
// strings for the login event, and why the first refused one was refused.
type grantResult struct {
	access           []access.Scope
	granted, refused []string
	why              string
}

// grant is the requested access that p holds: requested ∩ permitted. A partial grant is not an
// error; the client finds out on the request that needed the missing part.
func (h *Handler) grant(ctx context.Context, p access.Principal, reg store.Registry, scopes []access.Scope) grantResult {
	g := grantResult{access: []access.Scope{}, granted: []string{}, refused: []string{}}
	for _, sc := range scopes {
		res := policy.Resource{Registry: reg.Name, Type: sc.Type, Name: sc.Name}
		var granted, refused []string
		for _, a := range sc.Actions {
			if d := h.policy.Decide(ctx, p, policy.Action(a), res); d.Allow {
				granted = append(granted, a)
			} else {
				refused = append(refused, a)
				if g.why == "" {
					g.why = d.Reason
				}
			}
		}
		if len(granted) > 0 {
			g.access = append(g.access, access.Scope{Type: sc.Type, Name: sc.Name, Actions: granted})
			g.granted = append(g.granted, sc.Type+":"+sc.Name+":"+strings.Join(granted, ","))
		}
		if len(refused) > 0 {
			g.refused = append(g.refused, sc.Type+":"+sc.Name+":"+strings.Join(refused, ","))
		}
	}
	return g
}

// scopes parses the scope parameters of a token request (policy.ParseScopes); a malformed one is
// a 400 naming it.
func scopes(params []string) ([]access.Scope, error) {
	g, err := policy.ParseScopes(params)
	var se *policy.ScopeError
	if errors.As(err, &se) {
		code := oci.CodeUnsupported
		if se.Name {
			code = oci.CodeNameInvalid
		}
		return nil, httperr.New(code, "%s", se.Msg).WithStatus(http.StatusBadRequest)
	}
	return g, err
}

func (h *Handler) exchange(w http.ResponseWriter, r *http.Request) (err error) {
	ctx := r.Context()
	a := h.begin(r, audit.OpExchange)
	defer func() { h.done(r, a, err) }()
	if err := h.networkFirst(r, a); err != nil {
		return err
	}
	if err := parseForm(w, r); err != nil {
		return err
	}
	if gt := r.Form.Get("grant_type"); gt != "access_token" {
		return httperr.New(oci.CodeUnsupported, "grant_type %q is not supported: use access_token", truncate(gt)).WithStatus(http.StatusBadRequest)
	}
	raw := r.Form.Get("access_token")
	if raw == "" {
		return httperr.New(oci.CodeUnsupported, "access_token is required: a directory token from 'berth auth login'").WithStatus(http.StatusBadRequest)
	}
	reg, err := h.registry(ctx, r)
	if err != nil {
		return err
	}
	a.registry(reg)
	if err := h.network(r, reg); err != nil {
		return err
	}
	p, err := h.authn.DirectoryToken(ctx, raw)
	if err != nil {
		return authError(err)
	}
	a.principal(p)
	signed, jti, err := h.refreshToken(ctx, p, reg)
	if err != nil {
		return err
	}
	a.TokenID = jti
	h.log.InfoContext(ctx, "refresh token issued", "registry", reg.Name, "principal", p.String())
	return writeJSON(w, map[string]string{"refresh_token": signed})
}

func (h *Handler) refreshToken(ctx context.Context, p access.Principal, reg store.Registry) (signed, jti string, err error) {
	c := token.Claims{GrantType: token.GrantRefresh, Kind: string(p.Kind), PID: p.ID, Registry: p.Registry, Mode: h.authn.Mode(reg),
		Permissions: &token.Permissions{Actions: []string{"*"}, NotActions: []string{}}}
	c.Subject, c.Audience = p.Name, []string{authn.Audience(reg)}
	signed, err = h.tokens.Sign(ctx, &c, h.tokens.Lifetimes().Refresh)
	return signed, c.ID, err
}

// directoryToken signs in a user (grant_type=password) or a service principal
// (grant_type=client_credentials) and returns a directory token.
func (h *Handler) directoryToken(w http.ResponseWriter, r *http.Request) (err error) {
	ctx := r.Context()
	a := h.begin(r, audit.OpDirectory)
	defer func() { h.done(r, a, err) }()
	if err := parseForm(w, r); err != nil {
		return err
	}
	if u := r.Form.Get("username") + r.Form.Get("client_id"); u != "" && a.Identity == "" {
		a.Identity = u
	}
	var p access.Principal
	var family string // of a renewed sign-in
	ip := authn.ClientIP(r)
	switch gt := r.Form.Get("grant_type"); gt {
	case "refresh_token":
		p, family, err = h.authn.DirectoryRefresh(ctx, r.Form.Get("refresh_token"))
	case "password":
		p, err = h.authn.User(ctx, ip, r.Form.Get("username"), r.Form.Get("password"))
	case "authorization_code":
		p, err = h.ssoGrant(ctx, a, func(ctx context.Context) (sso.Result, error) {
			return h.SSO.Redeem(ctx, r.Form.Get("code"), r.Form.Get("code_verifier"), r.Form.Get("redirect_uri"))
		})
	case sso.DeviceGrant:
		p, err = h.ssoGrant(ctx, a, func(ctx context.Context) (sso.Result, error) { return h.SSO.PollDevice(ctx, r.Form.Get("device_code")) })
	case "client_credentials":
		id, secret := r.Form.Get("client_id"), r.Form.Get("client_secret")
		if assertion := r.Form.Get("client_assertion"); assertion != "" {
			// Entra's federated credential request: an external token stands for the secret.
			if at := r.Form.Get("client_assertion_type"); at != ClientAssertionJWT {
				return httperr.New(oci.CodeUnsupported, "client_assertion_type must be %s", ClientAssertionJWT).WithStatus(http.StatusBadRequest)
			}
			p, err = h.authn.Federated(ctx, id, assertion)
			break
		}
		if u, pw, ok := r.BasicAuth(); ok && id == "" {
			id, secret = u, pw
		}
		p, err = h.authn.ServicePrincipal(ctx, ip, id, secret)
	default:
		return httperr.New(oci.CodeUnsupported, "grant_type %q is not supported: use password, client_credentials, refresh_token, authorization_code or %s", truncate(gt), sso.DeviceGrant).WithStatus(http.StatusBadRequest)
	}
	if err != nil {
		return authError(err)
	}
	a.principal(p)
	c := token.Claims{GrantType: token.GrantDirectory, Kind: string(p.Kind), PID: p.ID}
	c.Subject, c.Audience = p.Name, []string{token.DirectoryAudience}
	life := h.tokens.Lifetimes().Directory
	signed, err := h.tokens.Sign(ctx, &c, life)
	if err != nil {
		return err
	}
	a.TokenID = c.ID
	// A refresh token for a client that asks for one (scope=offline_access, as the CLI does) and,
	// on renewal, the next one; a pipeline signing in now and then gets none (RFC 6749 4.4.3).
	var refresh string
	if family != "" || slices.Contains(strings.Fields(r.Form.Get("scope")), "offline_access") {
		if refresh, err = h.authn.IssueDirectoryRefresh(ctx, p, family); err != nil {
			return err
		}
	}
	h.log.InfoContext(ctx, "directory token issued", "principal", p.String(), "jti", c.ID, "renewal", family != "")
	rep := map[string]any{"access_token": signed, "token_type": "Bearer", "expires_in": int(life.Seconds())}
	if refresh != "" {
		rep["refresh_token"] = refresh // used once: the next renewal gets a new one
	}
	return writeJSON(w, rep)
}

// revokeDirectoryRefresh ends the sign-in of a directory refresh token (berth auth logout), as
// OAuth's revocation endpoint (RFC 7009): 200 whether or not the token was known.
func (h *Handler) revokeDirectoryRefresh(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(w, r); err != nil {
		return err
	}
	if err := h.authn.RevokeDirectoryRefresh(r.Context(), r.Form.Get("token")); err != nil {
		var ae *authn.Error
		if !errors.As(err, &ae) {
			return err
		}
	}
	return writeJSON(w, map[string]any{})
}

// registry is the registry a token request is for: the one its service names, else its Host's.
func (h *Handler) registry(ctx context.Context, r *http.Request) (store.Registry, error) {
	host := r.Form.Get("service")
	if host == "" {
		host = r.Host
	}
	if len(host) > 255 {
		return store.Registry{}, httperr.New(oci.CodeUnsupported, "service is longer than 255 bytes").WithStatus(http.StatusBadRequest)
	}
	return h.hosts.Resolve(ctx, host)
}

// networkFirst applies the network rules of the registry the request's Host or query names
// before its body is read: a client the registry does not let in cannot hold the server with a
// body. (The form may name another registry as its service; its rules are checked after.)
func (h *Handler) networkFirst(r *http.Request, a *attempt) error {
	host := r.URL.Query().Get("service")
	if host == "" {
		host = r.Host
	}
	if len(host) > 255 {
		return nil // refused with a clear message once the form is read
	}
	reg, err := h.hosts.Resolve(r.Context(), host)
	if err != nil {
		return nil // the same
	}
	a.registry(reg)
	return h.network(r, reg)
}

// network refuses a client the registry's network rules do not let in, before any sign-in.
func (h *Handler) network(r *http.Request, reg store.Registry) error {
	return CheckNetwork(r, h.policy, reg, h.log)
}

// Networker answers whether a client address may reach a registry.
type Networker interface {
	Network(registry string, ip netip.Addr) policy.Decision
}

// CheckNetwork is the network-rule check of /v2/ and the token endpoints: nil for a client the
// registry lets in, else 403 DENIED as ACR ("client with IP '…' is not allowed access"), logged.
func CheckNetwork(r *http.Request, n Networker, reg store.Registry, log *slog.Logger) error {
	d := n.Network(reg.Name, authn.ClientAddr(r))
	if d.Allow {
		return nil
	}
	log.InfoContext(r.Context(), "client refused by network rules", "registry", reg.Name, "ip", authn.ClientIP(r), "reason", d.Code)
	return httperr.New(oci.CodeDenied, "%s", d.Reason).WithStatus(http.StatusForbidden).WithReason(d.Code)
}

// authError answers a refused sign-in: 429 with Retry-After when throttled, else 401.
func authError(err error) error {
	if reply, _, ok := authn.Reply(err); ok {
		return reply
	}
	return err
}

func parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		var he *httperr.Error
		if errors.As(err, &he) { // the body stopped coming (the server's deadlines)
			return he
		}
		if errors.As(err, &mbe) {
			return httperr.New(oci.CodeSizeInvalid, "the request body is larger than %d bytes", maxFormBytes).WithStatus(http.StatusRequestEntityTooLarge)
		}
		return httperr.New(oci.CodeUnsupported, "the request is not a valid form: %v", err).WithStatus(http.StatusBadRequest)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(v)
}

func truncate(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

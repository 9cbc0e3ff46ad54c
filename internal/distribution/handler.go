// Package distribution serves the OCI distribution API under /v2/: blobs, uploads, manifests,
// tags, referrers and the catalog. Every request is authenticated and authorized (authn, then
// policy.Decide) before its handler runs.
package distribution

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/audit"
	"github.com/berth-registry/berth/internal/authn"
	"github.com/berth-registry/berth/internal/blob"
	"github.com/berth-registry/berth/internal/hosts"
	"github.com/berth-registry/berth/internal/httperr"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/policy"
	"github.com/berth-registry/berth/internal/reqlog"
	"github.com/berth-registry/berth/internal/store"
)

// Decider is the policy the handler consults.
type Decider interface {
	Decide(ctx context.Context, p access.Principal, a policy.Action, r policy.Resource) policy.Decision
	DecideVisible(ctx context.Context, p access.Principal, r policy.Resource) policy.Decision
	DecideMount(ctx context.Context, p access.Principal, src policy.Resource, named bool) policy.Decision
}

// Limits bound what clients may send and ask for.
type Limits struct {
	MaxManifestBytes      int64 // at most oci.MaxManifestSize
	MaxBlobBytes          int64
	MaxUploadsPerRegistry int // open upload sessions; beyond it POST answers 429
	MaxUploadsPerIdentity int // open upload sessions of one identity in one registry
	MaxPageSize           int // tags and catalog entries per page
}

// DefaultLimits are the limits berth ships with.
var DefaultLimits = Limits{
	MaxManifestBytes:      oci.MaxManifestSize,
	MaxBlobBytes:          64 << 30,
	MaxUploadsPerRegistry: 10_000,
	MaxUploadsPerIdentity: 1_000,
	MaxPageSize:           10_000,
}

// Deps are what the handler needs.
type Deps struct {
	Blobs  blob.Store
	Meta   *store.Store
	Authn  authn.Authenticator
	Policy Decider
	Log    *slog.Logger
	Limits Limits
	Now    func() time.Time
	// Audit receives login events for credentials sent to /v2/ itself and repository events;
	// nil keeps none.
	Audit audit.Recorder
	// OnUpload, if set, is told how long each finished upload session took (metrics).
	OnUpload func(d time.Duration, size int64)
	// Outbound carries imports' requests to other registries (bounded: webhook.Dialer).
	Outbound http.RoundTripper
	// Source names this instance in webhook payloads.
	Source store.WebhookSource
}

// Handler serves /v2/.
type Handler struct {
	blobs blob.Store
	// manifests keeps recently used manifests' bytes (content addressed: never stale).
	manifests *manifestCache
	meta      *store.Store
	authn     authn.Authenticator
	policy    Decider
	audit     audit.Recorder
	log       *slog.Logger
	// onUpload is Deps.OnUpload.
	onUpload func(time.Duration, int64)
	limits   Limits
	now      func() time.Time
	locks    uploadLocks // one per upload session in use
	outbound http.RoundTripper
	source   store.WebhookSource
	imports  chan struct{} // the imports running (at most maxImports)
}

// New returns a handler; requests must carry their registry in ctx (hosts.WithRegistry).
func New(d Deps) *Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Limits == (Limits{}) {
		d.Limits = DefaultLimits
	}
	if d.Limits.MaxUploadsPerIdentity <= 0 {
		d.Limits.MaxUploadsPerIdentity = d.Limits.MaxUploadsPerRegistry
	}
	if d.Limits.MaxManifestBytes <= 0 || d.Limits.MaxManifestBytes > oci.MaxManifestSize {
		d.Limits.MaxManifestBytes = oci.MaxManifestSize
	}
	if d.Audit == nil {
		d.Audit = audit.Discard
	}
	if d.Outbound == nil {
		d.Outbound = http.DefaultTransport
	}
	return &Handler{blobs: d.Blobs, meta: d.Meta, authn: d.Authn, policy: d.Policy, audit: d.Audit, onUpload: d.OnUpload,
		log: d.Log.With("component", "distribution"), limits: d.Limits, now: d.Now, outbound: d.Outbound, source: d.Source, imports: make(chan struct{}, maxImports),
		manifests: newManifestCache(manifestCacheBytes, manifestCacheItem)}
}

// request is one parsed, authorized /v2/ request.
type request struct {
	route
	reg       store.Registry
	principal access.Principal
	// filtered: the catalog shows only the repositories the principal may pull.
	filtered bool
	// event is the repository event of a manifest pull, push, delete or untag, which the
	// handler completes.
	event *store.RepositoryEvent
}

// describe completes the request's repository event with the manifest it concerns.
func (req *request) describe(m store.Manifest) {
	if req.event != nil {
		req.event.Digest, req.event.MediaType, req.event.ArtifactType, req.event.Size = string(m.Digest), m.MediaType, m.ArtifactType, m.Size
	}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	serve := h.serve
	if strings.HasPrefix(r.URL.Path, ACRPrefix) {
		serve = h.serveACR
	} else {
		w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
	}
	if err := serve(w, r); err != nil {
		httperr.Write(w, r, h.log, err)
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	rt, err := parseV2Path(r.URL.Path)
	if err != nil {
		return httperr.New(oci.CodeNameInvalid, "%q is not a path of the distribution API", truncate(r.URL.Path)).WithStatus(http.StatusNotFound)
	}
	reg, ok := hosts.RegistryFrom(ctx)
	if !ok {
		return errors.New("distribution: request has no registry")
	}
	if rt.name != "" {
		if err := oci.ValidateName(rt.name); err != nil {
			return httperr.New(oci.CodeNameInvalid, "%v", err).WithDetail(map[string]string{"name": truncate(rt.name)})
		}
	}
	action, res, ok := required(rt, r.Method, reg.Name)
	if !ok {
		return httperr.New(oci.CodeUnsupported, "%s is not supported on this endpoint", r.Method).
			WithHeader("Allow", allowed(rt.kind))
	}
	p, err := h.authn.Authenticate(ctx, r)
	h.loginEvent(r, reg, p, err)
	if err != nil {
		return authnError(r, action, res, err)
	}
	req := &request{route: rt, reg: reg, principal: p}
	r = r.WithContext(authn.WithPrincipal(ctx, p))
	if !p.IsAnonymous() {
		reqlog.SetIdentity(ctx, &req.principal) // formatted only if the access log is written
	}
	if rt.kind == kindManifest && r.Method != http.MethodHead {
		return h.manifest(w, r, req, action, res)
	}
	if action == "" && p.IsAnonymous() {
		// The base endpoint challenges anonymous clients, so that they come back with credentials.
		return httperr.New(oci.CodeUnauthorized, "authentication required").
			WithHeader("WWW-Authenticate", challenge(r, policy.Resource{}, "", ""))
	}
	if action != "" {
		d, err := h.authorize(r, p, action, res)
		if err != nil {
			return err
		}
		req.filtered = d.Filtered
	}

	switch rt.kind {
	case kindBase:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write([]byte("{}"))
		}
		return nil
	case kindCatalog:
		return h.catalog(w, r, req)
	case kindTags:
		return h.tags(w, r, req)
	case kindReferrers:
		return h.referrers(w, r, req)
	case kindManifest: // HEAD; the others go through h.manifest
		return h.getManifest(w, r, req)
	case kindBlob:
		if r.Method == http.MethodDelete {
			return h.deleteBlob(w, r, req)
		}
		return h.getBlob(w, r, req)
	case kindUploads:
		return h.startUpload(w, r, req)
	case kindUpload:
		switch r.Method {
		case http.MethodGet:
			return h.uploadStatus(w, r, req)
		case http.MethodPatch:
			return h.patchUpload(w, r, req)
		case http.MethodPut:
			return h.finishUpload(w, r, req)
		default:
			return h.cancelUpload(w, r, req)
		}
	}
	return fmt.Errorf("distribution: unrouted kind %d", rt.kind)
}

// loginEvent records the sign-in of a request that sent credentials to /v2/ itself: Basic
// credentials (accepted or not), or a bearer token that was refused. Requests with an accepted
// bearer token are not sign-ins: the token request was.
func (h *Handler) loginEvent(r *http.Request, reg store.Registry, p access.Principal, err error) {
	if _, _, basic := r.BasicAuth(); !basic && (err == nil || r.Header.Get("Authorization") == "") {
		return
	}
	e := audit.NewLogin(r, reg.Name, audit.LoginServer(r, reg), audit.OpRegistry)
	if err == nil {
		audit.SignedIn(&e, p)
		e.TokenID = p.TokenID
	}
	audit.Finish(r, &e, err)
	h.audit.Login(r.Context(), e)
}

// manifest serves a manifest GET, PUT or DELETE, and records it as a repository event: pull,
// push, delete or untag. Refusals are recorded too, except the 401 challenge of a request
// without credentials, which is the first step of the token flow.
func (h *Handler) manifest(w http.ResponseWriter, r *http.Request, req *request, action policy.Action, res policy.Resource) (err error) {
	op := audit.OpPull
	switch r.Method {
	case http.MethodPut:
		op = audit.OpPush
	case http.MethodDelete:
		op = audit.OpDelete
		if !strings.Contains(req.ref, ":") {
			op = audit.OpUntag
		}
	}
	e := audit.NewRepository(r, req.reg.Name, audit.LoginServer(r, req.reg), op, req.name)
	e.Identity, e.IdentityKind = audit.Identity(req.principal)
	if !strings.Contains(req.ref, ":") {
		e.Tag = truncate(req.ref)
	}
	req.event = &e
	defer func() {
		var he *httperr.Error
		if req.principal.IsAnonymous() && !req.principal.Scoped && errors.As(err, &he) && he.Status == http.StatusUnauthorized {
			return
		}
		e.Status, e.Result = 0, store.ResultSuccess
		if info := reqlog.InfoFrom(r.Context()); info != nil {
			e.Status = info.Status
		}
		if err != nil {
			e.Status, e.Reason, e.Message = audit.Describe(err)
			e.Result = store.ResultFailure
		} else if e.Status == 0 {
			e.Status = http.StatusOK
		}
		e.Duration = audit.Elapsed(r)
		h.audit.Repository(r.Context(), e)
	}()
	if _, err := h.authorize(r, req.principal, action, res); err != nil {
		return err
	}
	if r.Method != http.MethodGet {
		r = r.WithContext(h.withRequestInfo(r, req.principal))
	}
	switch r.Method {
	case http.MethodGet:
		return h.getManifest(w, r, req)
	case http.MethodPut:
		return h.putManifest(w, r, req)
	}
	return h.deleteManifest(w, r, req)
}

// required names the action a request needs and on what; ok is false for a method the
// endpoint does not have.
func required(rt route, method, registry string) (policy.Action, policy.Resource, bool) {
	repo := policy.Resource{Registry: registry, Type: policy.TypeRepository, Name: rt.name}
	is := func(ms ...string) bool {
		for _, m := range ms {
			if m == method {
				return true
			}
		}
		return false
	}
	switch rt.kind {
	case kindBase:
		return "", policy.Resource{}, is(http.MethodGet, http.MethodHead)
	case kindCatalog:
		return policy.ActionCatalog, policy.Resource{Registry: registry, Type: policy.TypeRegistry, Name: "catalog"}, is(http.MethodGet, http.MethodHead)
	case kindTags, kindReferrers:
		return policy.ActionPull, repo, is(http.MethodGet, http.MethodHead)
	case kindManifest, kindBlob:
		switch {
		case is(http.MethodGet, http.MethodHead):
			return policy.ActionPull, repo, true
		case is(http.MethodDelete):
			return policy.ActionDelete, repo, true
		case is(http.MethodPut) && rt.kind == kindManifest:
			return policy.ActionPush, repo, true
		}
		return "", repo, false
	case kindUploads:
		return policy.ActionPush, repo, is(http.MethodPost)
	case kindUpload:
		return policy.ActionPush, repo, is(http.MethodGet, http.MethodPatch, http.MethodPut, http.MethodDelete)
	}
	return "", repo, false
}

func allowed(k kind) string {
	switch k {
	case kindManifest:
		return "GET, HEAD, PUT, DELETE"
	case kindBlob:
		return "GET, HEAD, DELETE"
	case kindUploads:
		return "POST"
	case kindUpload:
		return "GET, PATCH, PUT, DELETE"
	}
	return "GET, HEAD"
}

// authorize asks the policy, which for a request with an access token also checks the token's
// grant. An anonymous caller gets 401 with a challenge (so clients retry with credentials), a
// bearer token without the scope 401 with error="insufficient_scope", Basic credentials 403.
func (h *Handler) authorize(r *http.Request, p access.Principal, a policy.Action, res policy.Resource) (policy.Decision, error) {
	d := h.policy.Decide(r.Context(), p, a, res)
	if d.Allow {
		return d, nil
	}
	return d, h.refusal(r, p, a, res, d)
}

// refusal is the reply to a request the policy refuses.
func (h *Handler) refusal(r *http.Request, p access.Principal, a policy.Action, res policy.Resource, d policy.Decision) error {
	detail := []map[string]string{{"Type": res.Type, "Name": res.Name, "Action": string(a)}}
	switch {
	case p.IsAnonymous():
		return httperr.New(oci.CodeUnauthorized, "%s", d.Reason).WithDetail(detail).
			WithHeader("WWW-Authenticate", challenge(r, res, a, "")).WithReason(d.Code)
	case p.Scoped:
		reason := d.Reason
		if d.Code == policy.CodeInsufficientScope { // the policy allows it, the access token does not
			reason += "; ask /oauth2/token for scope " + scope(r, res, a)
		}
		return httperr.New(oci.CodeDenied, "requested access to the resource is denied: insufficient_scope: %s", reason).WithDetail(detail).
			WithStatus(http.StatusUnauthorized).WithHeader("WWW-Authenticate", challenge(r, res, a, "insufficient_scope")).WithReason(d.Code)
	}
	return httperr.New(oci.CodeDenied, "requested access to the resource is denied: %s", d.Reason).WithDetail(detail).WithReason(d.Code)
}

// authnError answers a refused authentication: 429 when throttled, else 401 with a challenge.
func authnError(r *http.Request, a policy.Action, res policy.Resource, err error) error {
	reply, e, ok := authn.Reply(err)
	if !ok {
		return err
	}
	if e.RetryAfter > 0 {
		return reply
	}
	code := ""
	if e.InvalidToken {
		code = "invalid_token"
	}
	return reply.WithHeader("WWW-Authenticate", challenge(r, res, a, code))
}

// challenge is the WWW-Authenticate value that sends a client to the token endpoint.
func challenge(r *http.Request, res policy.Resource, a policy.Action, errCode string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `Bearer realm="%s://%s/oauth2/token",service="%s"`, authn.Scheme(r), r.Host, r.Host)
	if a != "" {
		fmt.Fprintf(&b, `,scope="%s"`, scope(r, res, a))
	}
	if errCode != "" {
		fmt.Fprintf(&b, `,error="%s"`, errCode)
	}
	return b.String()
}

// scope is the scope a request needs, Docker's way: a cross-repository mount also needs pull on
// its source, so the challenge names both and the client's token covers both.
func scope(r *http.Request, res policy.Resource, a policy.Action) string {
	actions := string(a)
	if a == policy.ActionPush {
		actions = "pull,push"
	}
	s := res.Type + ":" + res.Name + ":" + actions
	if r.Method == http.MethodPost && r.URL.Query().Get("mount") != "" {
		if from := r.URL.Query().Get("from"); from != "" && from != res.Name && oci.ValidateName(from) == nil {
			s += " repository:" + from + ":pull"
		}
	}
	return s
}

func newID() string {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func truncate(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

func setLocation(w http.ResponseWriter, parts ...string) {
	w.Header().Set("Location", "/v2/"+strings.Join(parts, "/"))
}

// withRequestInfo attaches what a webhook payload says of the request made by p
// (store.WithRequest).
func (h *Handler) withRequestInfo(r *http.Request, p access.Principal) context.Context {
	actor, _ := audit.Identity(p)
	return store.WithRequest(r.Context(), store.RequestInfo{ID: reqlog.CorrelationID(r.Context()), Addr: authn.ClientIP(r), Host: truncate(r.Host), Method: r.Method,
		UserAgent: truncate(r.UserAgent()), Actor: truncate(actor), Source: h.source})
}

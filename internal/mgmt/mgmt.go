// Package mgmt serves the management API, /mgmt/v1/…: registries and their settings, admin
// credentials, tokens, scope maps, network rules, users, groups, service principals, role
// assignments and explanations. Callers present a directory token; each endpoint needs a
// control-plane permission (package policy) at the registry it names, or at "/".
package mgmt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/audit"
	"github.com/berth-registry/berth/internal/authn"
	"github.com/berth-registry/berth/internal/directory"
	"github.com/berth-registry/berth/internal/federation"
	"github.com/berth-registry/berth/internal/httperr"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/policy"
	"github.com/berth-registry/berth/internal/reqlog"
	"github.com/berth-registry/berth/internal/seal"
	"github.com/berth-registry/berth/internal/store"
)

// Error codes of the management API, beside the OCI ones.
const (
	CodeNotFound        oci.ErrorCode = "NOT_FOUND"
	CodeAlreadyExists   oci.ErrorCode = "ALREADY_EXISTS"
	CodeConflict        oci.ErrorCode = "CONFLICT"
	CodeInvalidArgument oci.ErrorCode = "INVALID_ARGUMENT"
)

// Tenant is the tenant every berth identity belongs to (az prints one).
const Tenant = "berth"

// maxBody bounds a request body.
const maxBody = 1 << 20

// Deps are what the API needs.
type Deps struct {
	Store  *store.Store
	Dir    *directory.Directory
	Authn  *authn.Service
	Policy *policy.Engine
	// Box seals the admin user's passwords with the key-encryption key; without it (tests of
	// other things) they are kept as hashes only and cannot be shown again.
	Box *seal.Box
	// Audit records each read of the admin user's passwords as a login event.
	Audit audit.Recorder
	// Importer starts imports (distribution.Handler); nil: imports are not offered.
	Importer interface {
		StartImport(ctx context.Context, reg store.Registry, p access.Principal, loginServer string, req client.ImportRequest) (store.ImportRun, error)
	}
	// Changed is called after every change, so caches (hosts) can drop what they hold.
	Changed func()
	Log     *slog.Logger
	Now     func() time.Time
	// Source names this instance in webhook payloads (a ping's).
	Source store.WebhookSource
	// Federation checks external tokens; its issuers are those federated credentials may name
	// (federation.issuers). nil: federation is off.
	Federation *federation.Verifier
}

// Handler serves /mgmt/v1/.
type Handler struct {
	Deps
	usage *usageFlights
}

// New returns the API's handler.
func New(d Deps) *Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Changed == nil {
		d.Changed = func() {}
	}
	if d.Audit == nil {
		d.Audit = audit.Discard
	}
	d.Log = d.Log.With("component", "mgmt")
	return &Handler{Deps: d, usage: newUsageFlights(d.Now)}
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, p access.Principal) error

// Register adds the API's routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	routes := map[string]route{
		"GET /mgmt/v1/me": {"", h.me},

		"GET /mgmt/v1/registries":                                                  {"", h.listRegistries},
		"POST /mgmt/v1/registries":                                                 {policy.PermRegistryWrite, h.createRegistry},
		"GET /mgmt/v1/registries/{registry}":                                       {policy.PermRegistryRead, h.showRegistry},
		"PATCH /mgmt/v1/registries/{registry}":                                     {policy.PermRegistryWrite, h.updateRegistry},
		"DELETE /mgmt/v1/registries/{registry}":                                    {policy.PermRegistryDelete, h.deleteRegistry},
		"GET /mgmt/v1/registries/{registry}/credentials":                           {policy.PermCredentialsRead, h.showCredentials},
		"GET /mgmt/v1/registries/{registry}/usage":                                 {policy.PermRegistryRead, h.showUsage},
		"POST /mgmt/v1/registries/{registry}/import":                               {policy.PermRegistryWrite, h.startImport},
		"GET /mgmt/v1/registries/{registry}/imports/{id}":                          {policy.PermRegistryRead, h.showImport},
		"GET /mgmt/v1/registries/{registry}/webhooks":                              {policy.PermRegistryRead, h.listWebhooks},
		"POST /mgmt/v1/registries/{registry}/webhooks":                             {policy.PermRegistryWrite, h.createWebhook},
		"GET /mgmt/v1/registries/{registry}/webhooks/{webhook}":                    {policy.PermRegistryRead, h.showWebhook},
		"PATCH /mgmt/v1/registries/{registry}/webhooks/{webhook}":                  {policy.PermRegistryWrite, h.updateWebhook},
		"DELETE /mgmt/v1/registries/{registry}/webhooks/{webhook}":                 {policy.PermRegistryWrite, h.deleteWebhook},
		"POST /mgmt/v1/registries/{registry}/webhooks/{webhook}/ping":              {policy.PermRegistryWrite, h.pingWebhook},
		"GET /mgmt/v1/registries/{registry}/webhooks/{webhook}/events":             {policy.PermRegistryRead, h.webhookEvents},
		"POST /mgmt/v1/registries/{registry}/webhooks/{webhook}/getCallbackConfig": {policy.PermCredentialsList, h.webhookConfig},
		"POST /mgmt/v1/registries/{registry}/credentials/renew":                    {policy.PermCredentialsWrite, h.renewCredential},
		"POST /mgmt/v1/registries/{registry}/listCredentials":                      {policy.PermCredentialsList, h.listCredentials},

		"GET /mgmt/v1/registries/{registry}/tokens":                               {policy.PermCredentialsRead, h.listTokens},
		"POST /mgmt/v1/registries/{registry}/tokens":                              {policy.PermCredentialsWrite, h.createToken},
		"GET /mgmt/v1/registries/{registry}/tokens/{token}":                       {policy.PermCredentialsRead, h.showToken},
		"PATCH /mgmt/v1/registries/{registry}/tokens/{token}":                     {policy.PermCredentialsWrite, h.updateToken},
		"DELETE /mgmt/v1/registries/{registry}/tokens/{token}":                    {policy.PermCredentialsWrite, h.deleteToken},
		"POST /mgmt/v1/registries/{registry}/tokens/{token}/credentials":          {policy.PermCredentialsWrite, h.generateTokenCredentials},
		"DELETE /mgmt/v1/registries/{registry}/tokens/{token}/credentials/{name}": {policy.PermCredentialsWrite, h.deleteTokenCredential},

		"GET /mgmt/v1/registries/{registry}/scopeMaps":          {policy.PermCredentialsRead, h.listScopeMaps},
		"POST /mgmt/v1/registries/{registry}/scopeMaps":         {policy.PermCredentialsWrite, h.createScopeMap},
		"GET /mgmt/v1/registries/{registry}/scopeMaps/{map}":    {policy.PermCredentialsRead, h.showScopeMap},
		"PATCH /mgmt/v1/registries/{registry}/scopeMaps/{map}":  {policy.PermCredentialsWrite, h.updateScopeMap},
		"DELETE /mgmt/v1/registries/{registry}/scopeMaps/{map}": {policy.PermCredentialsWrite, h.deleteScopeMap},

		"GET /mgmt/v1/users":           {policy.PermDirectoryRead, h.listUsers},
		"POST /mgmt/v1/users":          {policy.PermDirectoryWrite, h.createUser},
		"GET /mgmt/v1/users/{name}":    {policy.PermDirectoryRead, h.showUser},
		"PATCH /mgmt/v1/users/{name}":  {"", h.updateUser}, // one's own password needs no role
		"DELETE /mgmt/v1/users/{name}": {policy.PermDirectoryWrite, h.deleteUser},

		"GET /mgmt/v1/groups":                          {policy.PermDirectoryRead, h.listGroups},
		"POST /mgmt/v1/groups":                         {policy.PermDirectoryWrite, h.createGroup},
		"GET /mgmt/v1/groups/{name}":                   {policy.PermDirectoryRead, h.showGroup},
		"DELETE /mgmt/v1/groups/{name}":                {policy.PermDirectoryWrite, h.deleteGroup},
		"POST /mgmt/v1/groups/{name}/members":          {policy.PermDirectoryWrite, h.addMember},
		"DELETE /mgmt/v1/groups/{name}/members/{user}": {policy.PermDirectoryWrite, h.removeMember},

		"GET /mgmt/v1/servicePrincipals":                                        {policy.PermDirectoryRead, h.listSPs},
		"POST /mgmt/v1/servicePrincipals":                                       {policy.PermDirectoryWrite, h.createSP},
		"GET /mgmt/v1/servicePrincipals/{appId}":                                {policy.PermDirectoryRead, h.showSP},
		"DELETE /mgmt/v1/servicePrincipals/{appId}":                             {policy.PermDirectoryWrite, h.deleteSP},
		"POST /mgmt/v1/servicePrincipals/{appId}/credentials/reset":             {policy.PermDirectoryWrite, h.resetSPCredential},
		"GET /mgmt/v1/servicePrincipals/{appId}/federatedCredentials":           {policy.PermDirectoryRead, h.listFederated},
		"POST /mgmt/v1/servicePrincipals/{appId}/federatedCredentials":          {policy.PermDirectoryWrite, h.createFederated},
		"GET /mgmt/v1/servicePrincipals/{appId}/federatedCredentials/{name}":    {policy.PermDirectoryRead, h.showFederated},
		"PATCH /mgmt/v1/servicePrincipals/{appId}/federatedCredentials/{name}":  {policy.PermDirectoryWrite, h.updateFederated},
		"DELETE /mgmt/v1/servicePrincipals/{appId}/federatedCredentials/{name}": {policy.PermDirectoryWrite, h.deleteFederated},
		"GET /mgmt/v1/identityProviders":                                        {policy.PermDirectoryRead, h.listIDPs},
		"POST /mgmt/v1/identityProviders":                                       {policy.PermDirectoryWrite, h.createIDP},
		"GET /mgmt/v1/identityProviders/{name}":                                 {policy.PermDirectoryRead, h.showIDP},
		"PATCH /mgmt/v1/identityProviders/{name}":                               {policy.PermDirectoryWrite, h.updateIDP},
		"DELETE /mgmt/v1/identityProviders/{name}":                              {policy.PermDirectoryWrite, h.deleteIDP},
		"GET /mgmt/v1/federation/issuers":                                       {policy.PermDirectoryRead, h.federationIssuers},

		"GET /mgmt/v1/registries/{registry}/networkRules":            {policy.PermRegistryRead, h.listNetworkRules},
		"POST /mgmt/v1/registries/{registry}/networkRules":           {policy.PermRegistryWrite, h.addNetworkRule},
		"DELETE /mgmt/v1/registries/{registry}/networkRules/{value}": {policy.PermRegistryWrite, h.removeNetworkRule},
		"GET /mgmt/v1/registries/{registry}/explain":                 {"", h.explain},
		"GET /mgmt/v1/registries/{registry}/permissions":             {"", h.permissions},
		"GET /mgmt/v1/registries/{registry}/events/{kind}":           {policy.PermRegistryRead, h.events},
		"GET /mgmt/v1/events/{kind}":                                 {policy.PermRegistryRead, h.events},

		"GET /mgmt/v1/roleDefinitions":         {"", h.listRoleDefinitions},
		"GET /mgmt/v1/roleAssignments":         {"", h.listRoleAssignments},
		"POST /mgmt/v1/roleAssignments":        {"", h.createRoleAssignment},
		"DELETE /mgmt/v1/roleAssignments/{id}": {"", h.deleteRoleAssignment},
	}
	for pattern, rt := range routes {
		mux.Handle(pattern, httperr.Handle(h.Log, h.authorized(rt)))
	}
	mux.Handle("/mgmt/v1/", httperr.Handle(h.Log, func(w http.ResponseWriter, r *http.Request) error {
		return httperr.New(CodeNotFound, "%s %s is not an endpoint of the management API", r.Method, r.URL.Path).WithStatus(http.StatusNotFound)
	}))
}

// route is an endpoint and the permission it needs: at the registry of its path, or at "/" for
// the others. Endpoints with perm "" check inside (role assignments, whose scope is in the body).
type route struct {
	perm policy.Permission
	fn   handlerFunc
}

// authorized checks the directory token and the caller's permission.
func (h *Handler) authorized(rt route) httperr.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx := r.Context()
		raw, ok := authn.BearerToken(r)
		if !ok {
			return httperr.New(oci.CodeUnauthorized, "authentication required: sign in with 'berth auth login' and send the directory token as a bearer token").
				WithHeader("WWW-Authenticate", `Bearer realm="berth"`)
		}
		p, err := h.Authn.DirectoryToken(ctx, raw)
		if err != nil {
			if e, ok := authn.AsError(err); ok {
				return httperr.New(oci.CodeUnauthorized, "%s; sign in again with 'berth auth login'", e.Message).
					WithHeader("WWW-Authenticate", `Bearer realm="berth",error="invalid_token"`)
			}
			return err
		}
		if !policy.IdentityExists(h.Policy.Snapshot(), p) {
			// Another replica may have created it a moment ago: read the store once before
			// refusing (Refresh reloads only when the policy version moved).
			if err := h.Policy.Refresh(ctx, h.Store); err != nil {
				return err
			}
		}
		if !policy.IdentityExists(h.Policy.Snapshot(), p) {
			return httperr.New(oci.CodeUnauthorized, "%s no longer exists (it was deleted, perhaps created again under the same name); sign in again with 'berth auth login'", p).
				WithHeader("WWW-Authenticate", `Bearer realm="berth",error="invalid_token"`)
		}
		reqlog.SetIdentity(ctx, p)
		if rt.perm != "" {
			if err := h.require(p, rt.perm, r.PathValue("registry")); err != nil {
				return err
			}
		}
		return rt.fn(w, r.WithContext(authn.WithPrincipal(ctx, p)), p)
	}
}

// require answers 403 DENIED unless p holds perm at registry ("" for "/"). A registry the caller
// may not read at all is reported as missing, so names do not leak.
func (h *Handler) require(p access.Principal, perm policy.Permission, registry string) error {
	snap := h.Policy.Snapshot()
	d := policy.DecideControl(snap, p, perm, registry)
	if d.Allow {
		return nil
	}
	if registry != "" && d.Code == policy.CodeNoRegistry || registry != "" && !policy.HasAnyRole(snap, p, registry) {
		return httperr.New(CodeNotFound, "registry %q was not found", registry).WithStatus(http.StatusNotFound)
	}
	return httperr.New(oci.CodeDenied, "%s; see 'berth role definition list' for the roles that give it", d.Reason)
}

// requireManage answers 403 DENIED unless p may change what an identity or group can do or who
// can act as it (policy.DecideManage): no permission grants another.
func (h *Handler) requireManage(ctx context.Context, p access.Principal, kind access.Kind, id int64, name string) error {
	// The target's roles as the store has them now, not as this replica last loaded them: a
	// role given to it a moment ago on another replica counts (Refresh reloads only when the
	// policy version moved).
	if err := h.Policy.Refresh(ctx, h.Store); err != nil {
		return err
	}
	d := policy.DecideManage(h.Policy.Snapshot(), p, kind, id, name)
	if d.Allow {
		return nil
	}
	return httperr.New(oci.CodeDenied, "%s", d.Reason).WithReason(d.Code)
}

// changed publishes a change: the policy snapshot is reloaded before the reply, so the next
// request through this replica already sees it.
func (h *Handler) changed(ctx context.Context) error {
	h.Changed()
	return h.Policy.Refresh(ctx, h.Store)
}

// commit publishes a change, then replies with v and status, or 204 with no body when v is nil.
func (h *Handler) commit(ctx context.Context, w http.ResponseWriter, status int, v any) error {
	if err := h.changed(ctx); err != nil {
		return err
	}
	if v == nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return reply(w, status, v)
}

func (h *Handler) me(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	snap := h.Policy.Snapshot()
	out := client.Me{Name: p.Name, Type: string(p.Kind), Tenant: Tenant, Permissions: []string{},
		ServerOwner: policy.DecideControl(snap, p, policy.PermAssignmentsWrite, "").Allow && policy.DecideControl(snap, p, policy.PermDirectoryWrite, "").Allow}
	for _, perm := range policy.Permissions(snap, p, "") {
		out.Permissions = append(out.Permissions, string(perm))
	}
	return reply(w, http.StatusOK, out)
}

// decode reads a JSON body into v, refusing unknown fields and oversized bodies.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return invalid("the request needs a JSON body")
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return httperr.New(oci.CodeSizeInvalid, "the request body is larger than %d bytes", maxBody).WithStatus(http.StatusRequestEntityTooLarge)
		}
		var he *httperr.Error
		if errors.As(err, &he) { // the body stopped coming (the server's deadlines)
			return he
		}
		return invalid("the request body is not valid JSON for this endpoint: %v", err)
	}
	return nil
}

func reply(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

func invalid(format string, args ...any) error {
	return httperr.New(CodeInvalidArgument, format, args...).WithStatus(http.StatusBadRequest)
}

// storeError maps the store's errors onto replies.
func storeError(err error, what string) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return httperr.New(CodeNotFound, "%s was not found", what).WithStatus(http.StatusNotFound)
	case errors.Is(err, store.ErrExists):
		return httperr.New(CodeAlreadyExists, "%s already exists", what).WithStatus(http.StatusConflict)
	case errors.Is(err, store.ErrSystemScopeMap):
		return invalid("%s is system-defined and cannot be changed or deleted", what)
	case errors.Is(err, store.ErrConflict):
		return httperr.New(CodeConflict, "%s: %s", what, conflictDetail(err)).WithStatus(http.StatusConflict)
	}
	return err
}

func conflictDetail(err error) string {
	msg := err.Error()
	const marker = "store: conflict: "
	for i := 0; i+len(marker) <= len(msg); i++ {
		if msg[i:i+len(marker)] == marker {
			return msg[i+len(marker):]
		}
	}
	return "the change conflicts with the current state"
}

func timeOrNil(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

func (h *Handler) registry(ctx context.Context, r *http.Request) (store.Registry, error) {
	name := r.PathValue("registry")
	reg, err := h.Store.RegistryByName(ctx, name)
	if err != nil {
		return store.Registry{}, storeError(err, fmt.Sprintf("registry %q", name))
	}
	return reg, nil
}

func httperr409(format string, args ...any) error {
	return httperr.New(CodeConflict, format, args...).WithStatus(http.StatusConflict)
}

// replyList converts each item with conv and replies with the list ([] when empty).
func replyList[T, J any](w http.ResponseWriter, items []T, conv func(T) (J, error)) error {
	out := make([]J, 0, len(items))
	for _, it := range items {
		j, err := conv(it)
		if err != nil {
			return err
		}
		out = append(out, j)
	}
	return reply(w, http.StatusOK, out)
}

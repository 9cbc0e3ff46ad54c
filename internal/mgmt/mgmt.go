// Package mgmt serves the management API, /mgmt/v1/…: registries and their settings, admin
// credentials, tokens, scope maps, users, groups and service principals. Callers present a
// directory token; until role assignments land, only holders of Owner at "/" may call it.
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

	"github.com/berth-registry/berth/internal/authn"
	"github.com/berth-registry/berth/internal/directory"
	"github.com/berth-registry/berth/internal/httperr"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/policy"
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
	// Changed is called after every change, so caches (hosts) can drop what they hold.
	Changed func()
	Log     *slog.Logger
	Now     func() time.Time
}

// Handler serves /mgmt/v1/.
type Handler struct {
	Deps
}

// New returns the API's handler.
func New(d Deps) *Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Changed == nil {
		d.Changed = func() {}
	}
	d.Log = d.Log.With("component", "mgmt")
	return &Handler{Deps: d}
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, p authn.Principal) error

// Register adds the API's routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	routes := map[string]handlerFunc{
		"GET /mgmt/v1/me": h.me,

		"GET /mgmt/v1/registries":                               h.listRegistries,
		"POST /mgmt/v1/registries":                              h.createRegistry,
		"GET /mgmt/v1/registries/{registry}":                    h.showRegistry,
		"PATCH /mgmt/v1/registries/{registry}":                  h.updateRegistry,
		"DELETE /mgmt/v1/registries/{registry}":                 h.deleteRegistry,
		"GET /mgmt/v1/registries/{registry}/credentials":        h.showCredentials,
		"POST /mgmt/v1/registries/{registry}/credentials/renew": h.renewCredential,

		"GET /mgmt/v1/registries/{registry}/tokens":                               h.listTokens,
		"POST /mgmt/v1/registries/{registry}/tokens":                              h.createToken,
		"GET /mgmt/v1/registries/{registry}/tokens/{token}":                       h.showToken,
		"PATCH /mgmt/v1/registries/{registry}/tokens/{token}":                     h.updateToken,
		"DELETE /mgmt/v1/registries/{registry}/tokens/{token}":                    h.deleteToken,
		"POST /mgmt/v1/registries/{registry}/tokens/{token}/credentials":          h.generateTokenCredentials,
		"DELETE /mgmt/v1/registries/{registry}/tokens/{token}/credentials/{name}": h.deleteTokenCredential,

		"GET /mgmt/v1/registries/{registry}/scopeMaps":          h.listScopeMaps,
		"POST /mgmt/v1/registries/{registry}/scopeMaps":         h.createScopeMap,
		"GET /mgmt/v1/registries/{registry}/scopeMaps/{map}":    h.showScopeMap,
		"PATCH /mgmt/v1/registries/{registry}/scopeMaps/{map}":  h.updateScopeMap,
		"DELETE /mgmt/v1/registries/{registry}/scopeMaps/{map}": h.deleteScopeMap,

		"GET /mgmt/v1/users":           h.listUsers,
		"POST /mgmt/v1/users":          h.createUser,
		"GET /mgmt/v1/users/{name}":    h.showUser,
		"PATCH /mgmt/v1/users/{name}":  h.updateUser,
		"DELETE /mgmt/v1/users/{name}": h.deleteUser,

		"GET /mgmt/v1/groups":                          h.listGroups,
		"POST /mgmt/v1/groups":                         h.createGroup,
		"GET /mgmt/v1/groups/{name}":                   h.showGroup,
		"DELETE /mgmt/v1/groups/{name}":                h.deleteGroup,
		"POST /mgmt/v1/groups/{name}/members":          h.addMember,
		"DELETE /mgmt/v1/groups/{name}/members/{user}": h.removeMember,

		"GET /mgmt/v1/servicePrincipals":                            h.listSPs,
		"POST /mgmt/v1/servicePrincipals":                           h.createSP,
		"GET /mgmt/v1/servicePrincipals/{appId}":                    h.showSP,
		"DELETE /mgmt/v1/servicePrincipals/{appId}":                 h.deleteSP,
		"POST /mgmt/v1/servicePrincipals/{appId}/credentials/reset": h.resetSPCredential,
	}
	for pattern, fn := range routes {
		mux.Handle(pattern, httperr.Handle(h.Log, h.authorized(fn)))
	}
	mux.Handle("/mgmt/v1/", httperr.Handle(h.Log, func(w http.ResponseWriter, r *http.Request) error {
		return httperr.New(CodeNotFound, "%s %s is not an endpoint of the management API", r.Method, r.URL.Path).WithStatus(http.StatusNotFound)
	}))
}

// authorized checks the directory token and the caller's right to manage the server.
func (h *Handler) authorized(fn handlerFunc) httperr.HandlerFunc {
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
		if r.URL.Path != "/mgmt/v1/me" && !policy.IsServerOwner(h.Policy.Snapshot(), p) {
			return httperr.New(oci.CodeDenied, "%s may not manage this server: that needs the Owner role at scope '/'", p)
		}
		return fn(w, r.WithContext(authn.WithPrincipal(ctx, p)), p)
	}
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

func (h *Handler) me(w http.ResponseWriter, r *http.Request, p authn.Principal) error {
	return reply(w, http.StatusOK, map[string]any{"name": p.Name, "type": p.Kind, "tenant": Tenant,
		"serverOwner": policy.IsServerOwner(h.Policy.Snapshot(), p)})
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

func timeOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
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

package portal

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/berth-registry/berth/client"
)

// call is one signed-in request.
type call struct {
	w   http.ResponseWriter
	r   *http.Request
	ctx context.Context
	s   *session
	c   *client.Client
	v   *view
	// rendered: the handler wrote the reply itself (a secret shown once).
	rendered bool
	// status of the page (a refused change shows its page with the refusal's).
	status int
}

// maxForm bounds a form's body.
const maxForm = 64 << 10

func (h *Handler) routes() {
	m := h.mux
	m.HandleFunc("GET /portal/{$}", h.signedIn(false, h.home))
	m.HandleFunc("GET /portal", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, Prefix, http.StatusSeeOther) })
	m.HandleFunc("GET /portal/signin", h.signinPage)
	m.HandleFunc("POST /portal/signin", h.signin)
	m.HandleFunc("POST /portal/signout", h.signout)
	m.HandleFunc("POST /portal/sso/start", h.ssoStart)
	m.HandleFunc("GET "+ssoPath, h.ssoDone)
	m.HandleFunc("GET /portal/directory", h.signedIn(false, h.directory))
	dir := func(path string, fn func(*call) (string, error)) {
		m.HandleFunc("POST /portal/directory/"+path, h.signedIn(false, h.action(fn, h.directory)))
	}
	dir("users/create", h.createUser)
	dir("users/delete", h.deleteUser)
	dir("groups/create", h.createGroup)
	dir("groups/delete", h.deleteGroup)
	dir("groups/add", h.addMember)
	dir("groups/remove", h.removeMember)
	dir("sps/create", h.createSP)
	dir("sps/reset", h.resetSP)
	dir("sps/delete", h.deleteSP)

	reg := func(path string, fn func(*call) error) {
		m.HandleFunc("GET /portal/r/{registry}/"+path, h.signedIn(true, fn))
	}
	act := func(path string, fn func(*call) (string, error), back func(*call) error) {
		m.HandleFunc("POST /portal/r/{registry}/"+path, h.signedIn(true, h.action(fn, back)))
	}
	// The content blades use the data plane: a 401 there is first a sign-in to renew (the tokens
	// kept were made before a change that voids them, such as the role assignment mode's), once;
	// then it is a refusal (planeErr), not a sign-out.
	show := func(fn func(*call) error) func(*call) error {
		return func(x *call) error {
			err := fn(x)
			if client.IsStatus(err, http.StatusUnauthorized) {
				h.planes.forget(planeKey(x))
				err = fn(x)
			}
			return planeErr(err)
		}
	}
	change := func(fn func(*call) (string, error)) func(*call) (string, error) {
		return func(x *call) (string, error) {
			n, err := fn(x)
			if client.IsStatus(err, http.StatusUnauthorized) {
				h.planes.forget(planeKey(x))
				n, err = fn(x)
			}
			return n, planeErr(err)
		}
	}
	reg("{$}", h.overview)
	reg("usage", h.usage)
	reg("repositories", show(h.repositories))
	reg("repository", show(h.repository))
	reg("manifest", show(h.manifest))
	act("repository/untag", change(h.untag), show(h.repository))
	act("manifest/delete", change(h.deleteManifest), show(h.manifest))
	act("repository/delete", change(h.deleteRepository), show(h.repository))
	act("repository/locks", change(h.lock), show(h.repository))
	act("manifest/locks", change(h.lock), show(h.manifest))
	reg("keys", h.keys)
	act("keys/admin", h.setAdmin, h.keys)
	act("keys/show", h.showPasswords, h.keys)
	act("keys/regenerate", h.regenerate, h.keys)
	reg("tokens", h.tokens)
	act("tokens/create", h.createToken, h.tokens)
	act("tokens/password", h.tokenPassword, h.tokens)
	act("tokens/status", h.tokenStatus, h.tokens)
	act("tokens/delete", h.deleteToken, h.tokens)
	act("scopemaps/create", h.createScopeMap, h.tokens)
	act("scopemaps/delete", h.deleteScopeMap, h.tokens)
	reg("access", h.accessControl)
	reg("access/check", h.checkAccess)
	act("access/assign", h.assign, h.accessControl)
	act("access/remove", h.unassign, h.accessControl)
	reg("network", h.network)
	act("network/settings", h.networkSettings, h.network)
	act("network/add", h.addRule, h.network)
	act("network/remove", h.removeRule, h.network)
	reg("webhooks", h.webhooks)
	act("webhooks/create", h.createWebhook, h.webhooks)
	act("webhooks/status", h.webhookStatus, h.webhooks)
	act("webhooks/ping", h.pingWebhook, h.webhooks)
	act("webhooks/delete", h.deleteWebhook, h.webhooks)
	reg("policies", h.policies)
	act("policies", h.setPolicies, h.policies)
	reg("events", h.events)
	m.HandleFunc("/portal/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, http.StatusNotFound, "There is no such page in the portal.")
	})
}

// signedIn runs fn for a signed-in browser (others go to the sign-in page), with the view's
// frame filled: who is signed in, the registries they may see and, on a registry's pages, that
// registry and what they may do there. A POST must carry the session's CSRF token.
func (h *Handler) signedIn(onRegistry bool, fn func(*call) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := withOrigin(r.Context(), r)
		s, err := h.loadSession(ctx, r)
		if errors.Is(err, errNoSession) {
			if r.Method == http.MethodPost {
				h.fail(w, r, http.StatusForbidden, "Your session has ended: sign in again, then repeat what you were doing.")
				return
			}
			http.Redirect(w, r, Prefix+"signin?"+url.Values{"next": {r.URL.RequestURI()}}.Encode(), http.StatusSeeOther)
			return
		}
		if err != nil {
			h.Log.Error("portal session", "err", err)
			h.fail(w, r, http.StatusServiceUnavailable, "The portal could not read your session; try again.")
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseForm(); err != nil {
				h.fail(w, r, http.StatusBadRequest, "The form could not be read.")
				return
			}
			if !checkCSRF(r.PostForm.Get("csrf"), s.CSRF) {
				h.fail(w, r, http.StatusForbidden, "The form's security token is missing or wrong (CSRF): reload the page and try again.")
				return
			}
		}
		x := &call{w: w, r: r, ctx: ctx, s: s, c: h.api(r, s.tokens.Access), v: &view{CSRF: s.CSRF}}
		if err := h.frame(x, onRegistry); err != nil {
			h.apiFailed(x, err)
			return
		}
		if err := fn(x); err != nil {
			h.apiFailed(x, err)
		}
	}
}

// frame reads who is signed in, their registries and, on a registry's page, what they may do.
func (h *Handler) frame(x *call, onRegistry bool) error {
	var err error
	if x.v.Me, err = x.c.Me(x.ctx); err != nil {
		return err
	}
	if x.v.Registries, err = x.c.Registries(x.ctx); err != nil {
		return err
	}
	if !onRegistry {
		return nil
	}
	name := x.r.PathValue("registry")
	for i := range x.v.Registries {
		if x.v.Registries[i].Name == name {
			x.v.Registry = &x.v.Registries[i]
		}
	}
	if x.v.Registry == nil {
		return &client.Error{Status: http.StatusNotFound, Code: "NOT_FOUND", Message: "registry " + quote(name) + " was not found"}
	}
	x.v.Perms, err = x.c.MyPermissions(x.ctx, name, "")
	return err
}

// apiFailed shows an API's refusal: a sign-in that ended goes back to the sign-in page; others are
// an error page with the API's message and correlation id.
func (h *Handler) apiFailed(x *call, err error) {
	var e *client.Error
	if !errors.As(err, &e) {
		h.Log.Error("portal page", "path", x.r.URL.Path, "err", err)
		e = &client.Error{Status: http.StatusBadGateway, Message: "The portal could not complete the request: " + err.Error()}
	}
	if e.Status == http.StatusUnauthorized {
		h.Log.Info("portal: the API no longer takes the session's sign-in", "path", x.r.URL.Path, "err", e)
		_ = h.Store.DeletePortalSession(x.ctx, x.s.ID)
		http.Redirect(x.w, x.r, Prefix+"signin", http.StatusSeeOther)
		return
	}
	x.v.Err = e
	x.v.Title = http.StatusText(e.Status)
	h.render(x.w, e.Status, "error", x.v)
}

// action runs a form's change; on success the browser is sent back to the page (303) with a
// notice, on a refusal the page is shown again with the API's message.
func (h *Handler) action(fn func(*call) (string, error), back func(*call) error) func(*call) error {
	return func(x *call) error {
		notice, err := fn(x)
		var e *client.Error
		if errors.As(err, &e) && e.Status != http.StatusUnauthorized {
			x.v.Err = e
			x.status = e.Status
			return back(x)
		}
		switch {
		case err != nil:
			return err
		case x.rendered: // a secret's page, written by fn
			return nil
		}
		// Back to the page the form names, when it is a path of the portal's (never another
		// site's: "//host/…" and "https://…" are not); else the blade's.
		u, perr := url.Parse(x.r.PostForm.Get("back"))
		if perr != nil || !strings.HasPrefix(u.String(), Prefix) {
			u = &url.URL{Path: x.v.Base()}
		}
		if notice != "" {
			q := u.Query()
			q.Set("done", notice)
			u.RawQuery = q.Encode()
		}
		http.Redirect(x.w, x.r, u.String(), http.StatusSeeOther)
		return nil
	}
}

// page renders the call's page, with its notice (?done=) if any.
func (h *Handler) page(x *call, page, nav, title string, data any) error {
	x.v.Title, x.v.Nav, x.v.Data = title, nav, data
	if x.v.Err == nil && x.v.Notice == "" {
		x.v.Notice = notices[x.r.URL.Query().Get("done")]
	}
	status := x.status
	if status == 0 {
		status = http.StatusOK
	}
	h.render(x.w, status, page, x.v)
	x.rendered = true
	return nil
}

// notices are the messages a change's redirect may name (never text from the request).
var notices = map[string]string{
	"admin-on": "The admin user is enabled.", "admin-off": "The admin user is disabled.",
	"token-created": "The token was created.", "token-updated": "The token was updated.", "token-deleted": "The token was deleted.",
	"map-created": "The scope map was created.", "map-deleted": "The scope map was deleted.",
	"assigned": "The role was assigned.", "unassigned": "The role assignment was removed.",
	"network-saved": "The network settings were saved.", "rule-added": "The IP rule was added.", "rule-removed": "The IP rule was removed.",
	"untagged": "The tag was removed.", "manifest-deleted": "The manifest was deleted.", "repository-deleted": "The repository was deleted.",
	"policies-saved": "The policies were saved.", "locks-saved": "The locks were saved.",
	"user-created": "The user was created.", "user-deleted": "The user was deleted.", "group-created": "The group was created.",
	"group-deleted": "The group was deleted.", "member-added": "The member was added.", "member-removed": "The member was removed.",
	"sp-deleted": "The service principal was deleted.", "webhook-created": "The webhook was created.", "webhook-updated": "The webhook was updated.",
	"webhook-pinged": "A ping was queued: its delivery is listed below.", "webhook-deleted": "The webhook was deleted.",
}

func quote(s string) string { return `"` + s + `"` }

// newSecret is a random value for a form (the sign-in form's CSRF secret).
func newSecret() string { return rand.Text() }

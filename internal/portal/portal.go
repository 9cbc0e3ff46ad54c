// Package portal is berth's web console at /portal/: ACR's blades (overview, repositories, access
// keys, tokens, access control, networking, directory, webhooks, events) server-rendered with
// html/template. It is a client of berth's own APIs, like the CLI: every page reads, and every
// form acts, through the management API, the token endpoints and the data plane with the
// signed-in user's own token (transport.go), so the same policy decides what each user sees and
// may do, and the audit trail is the same.
package portal

import (
	"cmp"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/authn"
	"github.com/berth-registry/berth/internal/seal"
	"github.com/berth-registry/berth/internal/store"
)

//go:embed templates static
var assets embed.FS

// Deps are what the portal needs.
type Deps struct {
	// API is the server's handler without the portal: every page and action goes through it.
	API   http.Handler
	Store *store.Store
	// Box seals the sessions' tokens.
	Box *seal.Box
	Log *slog.Logger
	Now func() time.Time
	// Idle and Absolute end sessions (portal.idle_timeout, portal.absolute_timeout).
	Idle, Absolute time.Duration
	// Secure reports whether the browser reached berth over HTTPS (directly or through a trusted
	// proxy): the cookies are then Secure and __Host- prefixed. nil: authn.HTTPS.
	Secure  func(*http.Request) bool
	Version string
}

// Handler serves /portal/.
type Handler struct {
	Deps
	mux    *http.ServeMux
	pages  map[string]*template.Template
	static http.Handler
	planes *planes
}

// Prefix is the portal's path.
const Prefix = "/portal/"

// New returns the portal's handler.
func New(d Deps) (*Handler, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Secure == nil {
		d.Secure = authn.HTTPS
	}
	d.Log = cmp.Or(d.Log, slog.New(slog.DiscardHandler)).With("component", "portal")
	if d.Box == nil || d.Store == nil || d.API == nil {
		return nil, errors.New("portal: needs the API, the store and the key-encryption key")
	}
	h := &Handler{Deps: d, mux: http.NewServeMux(), planes: newPlanes(d.Now)}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	h.pages = pages
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	h.static = http.StripPrefix("/portal/static/", http.FileServerFS(static))
	h.routes()
	return h, nil
}

// csp is the Content-Security-Policy of every reply: scripts and styles from the portal only,
// no inline code, no frames, forms to the portal only.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ServeHTTP sets the security headers of every reply, refuses cross-site form posts, and routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	if h.Secure(r) {
		hd.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if strings.HasPrefix(r.URL.Path, "/portal/static/") {
		hd.Set("Cache-Control", "public, max-age=86400")
		h.static.ServeHTTP(w, r)
		return
	}
	hd.Set("Cache-Control", "no-store")
	if r.Method == http.MethodPost && !sameOrigin(r) {
		h.fail(w, r, http.StatusForbidden, "This form was sent from another site; it was refused.")
		return
	}
	h.mux.ServeHTTP(w, r)
}

// sameOrigin refuses what browsers say came from another site (Sec-Fetch-Site, Origin): the
// CSRF tokens are the check; this is a second one. An Origin of "null" (a sandboxed frame, a
// cross-site redirect, a page whose referrer policy withholds it) passes only when the browser
// also says the request is same-origin.
func sameOrigin(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	if site != "" && site != "same-origin" && site != "none" {
		return false
	}
	switch o := r.Header.Get("Origin"); {
	case o == "":
		return true
	case o == "null":
		return site == "same-origin"
	default:
		u, err := url.Parse(o)
		return err == nil && u.Host == r.Host
	}
}

// view is what every page's template gets.
type view struct {
	Title   string
	Nav     string
	Version string
	Me      client.Me
	// CSRF is the session's token, for every form.
	CSRF       string
	Registries []client.Registry
	Registry   *client.Registry
	Perms      client.Permissions
	// Notice is a success message; Err an API's refusal, with its correlation id.
	Notice string
	Err    *client.Error
	Data   any
}

func (v *view) Can(perm string) bool { return v.Perms.Has(perm) }

// base is the path of the current registry's pages.
func (v *view) Base() string {
	if v.Registry == nil {
		return Prefix
	}
	return Prefix + "r/" + url.PathEscape(v.Registry.Name) + "/"
}

// render writes a page.
func (h *Handler) render(w http.ResponseWriter, status int, page string, v *view) {
	t, ok := h.pages[page]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	v.Version = h.Version
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", v); err != nil {
		h.Log.Error("rendering a page", "page", page, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(b.String()))
}

// fail writes an error page without a session's frame.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h.render(w, status, "error", &view{Title: http.StatusText(status), Err: &client.Error{Status: status, Message: msg}})
}

// inProcessClient sends requests to the API in process, following no redirect.
func (h *Handler) inProcessClient() *http.Client {
	return &http.Client{Transport: inProcess{api: h.API}, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// api is a client of the server's APIs with token (may be empty), for the browser of r: on the
// host the browser asked for (the default registry's login server is that host).
func (h *Handler) api(r *http.Request, token string) *client.Client {
	c := client.New("http://"+r.Host, token)
	c.HTTP = h.inProcessClient()
	return c
}

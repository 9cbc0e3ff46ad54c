package portal

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/berth-registry/berth/client"
)

// signinData is the sign-in page's.
type signinData struct {
	Next     string
	User     string
	Secret   string
	Messages []string
	// Providers are the identity providers to offer (single sign-on).
	Providers []client.SSOProvider
}

// safeNext keeps a return path only when it is one of the portal's.
// (A URL with control characters does not parse; one of another site does not start with the
// portal's path.)
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || !strings.HasPrefix(u.String(), Prefix) || len(next) > maxNext {
		return Prefix
	}
	return u.String()
}

// maxNext bounds a return path.
const maxNext = 1000

func (h *Handler) signinPage(w http.ResponseWriter, r *http.Request) {
	if _, err := h.loadSession(withOrigin(r.Context(), r), r); err == nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	h.showSignin(w, r, http.StatusOK, signinData{Next: safeNext(r.URL.Query().Get("next"))}, nil)
}

// showSignin renders the sign-in form with a new CSRF secret (its cookie and its field).
func (h *Handler) showSignin(w http.ResponseWriter, r *http.Request, status int, d signinData, e *client.Error) {
	d.Secret = newSecret()
	if ps, err := h.api(r, "").SignInProviders(withOrigin(r.Context(), r)); err == nil {
		d.Providers = ps
	}
	h.setCookie(w, r, signinCookie, d.Secret, 600)
	h.render(w, status, "signin", &view{Title: "Sign in", Data: d, Err: e})
}

func (h *Handler) signin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	d := signinData{Next: safeNext(r.PostForm.Get("next")), User: r.PostForm.Get("username")}
	if !checkCSRF(r.PostForm.Get("csrf"), h.cookie(r, signinCookie)) {
		h.showSignin(w, r, http.StatusForbidden, d, &client.Error{Status: http.StatusForbidden,
			Message: "The sign-in form expired or was not sent from this page (CSRF): sign in again."})
		return
	}
	ctx := withOrigin(r.Context(), r)
	tok, err := h.api(r, "").SignIn(ctx, d.User, r.PostForm.Get("password"))
	if err != nil {
		var e *client.Error
		if !errors.As(err, &e) {
			h.Log.Error("portal sign-in", "err", err)
			e = &client.Error{Status: http.StatusBadGateway, Message: "The sign-in could not be completed."}
		}
		h.showSignin(w, r, e.Status, d, e)
		return
	}
	if err := h.startSession(w, r, d.User, tok); err != nil {
		h.Log.Error("portal session", "err", err)
		h.showSignin(w, r, http.StatusServiceUnavailable, d, &client.Error{Status: http.StatusServiceUnavailable,
			Message: "Signed in, but the portal could not open a session (too many are open?); try again later."})
		return
	}
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

func (h *Handler) signout(w http.ResponseWriter, r *http.Request) {
	ctx := withOrigin(r.Context(), r)
	s, err := h.loadSession(ctx, r)
	if err == nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if r.ParseForm() != nil || !checkCSRF(r.PostForm.Get("csrf"), s.CSRF) {
			h.fail(w, r, http.StatusForbidden, "The form's security token is missing or wrong (CSRF): reload the page and try again.")
			return
		}
		if err := h.api(r, "").RevokeSignIn(ctx, s.tokens.Refresh); err != nil {
			h.Log.Warn("portal sign-out: revoking the refresh token", "err", err)
		}
		_ = h.Store.DeletePortalSession(ctx, s.ID)
		h.planes.drop(s.ID)
	}
	h.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, Prefix+"signin", http.StatusSeeOther)
}

package portal

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/authn"
)

// Single sign-on: the portal is a client of berth's sign-in with an identity provider, as the CLI
// is (berth auth login --sso), with its own page as the redirect: /portal/sso/start sends the
// browser to /mgmt/v1/sso/{idp}/login with a PKCE challenge; berth sends it back to
// /portal/sso/done with a one-time code, which the portal redeems with the verifier. The verifier,
// the state and the return path wait in a sealed cookie for ten minutes; it is SameSite=Lax, since
// the browser comes back from the provider's site.

const ssoCookie = "berth_portal_sso"

// ssoPath is the portal's page that takes the code (sso.PortalPath).
const ssoPath = "/portal/sso/done"

type ssoState struct {
	IdP, Verifier, State, Next string
}

// ownBase is scheme://host as the browser reached berth (and as berth's callback reckons it).
func ownBase(r *http.Request) string { return authn.Scheme(r) + "://" + r.Host }

func (h *Handler) ssoStart(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	d := signinData{Next: safeNext(r.PostForm.Get("next"))}
	if !checkCSRF(r.PostForm.Get("csrf"), h.cookie(r, signinCookie)) {
		h.showSignin(w, r, http.StatusForbidden, d, &client.Error{Status: http.StatusForbidden,
			Message: "The sign-in form expired or was not sent from this page (CSRF): sign in again."})
		return
	}
	idp := r.PostForm.Get("idp")
	raw := make([]byte, 32)
	rand.Read(raw)
	st := ssoState{IdP: idp, Verifier: base64.RawURLEncoding.EncodeToString(raw), State: rand.Text(), Next: d.Next}
	b, _ := json.Marshal(st)
	sealed, err := h.Box.Seal(b, []byte(ssoCookie))
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, "The sign-in could not be started.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: h.cookieName(r, ssoCookie), Value: base64.RawURLEncoding.EncodeToString(sealed), Path: "/", MaxAge: 600,
		HttpOnly: true, Secure: h.Secure(r), SameSite: http.SameSiteLaxMode})
	sum := sha256.Sum256([]byte(st.Verifier))
	q := url.Values{"redirect_uri": {ownBase(r) + ssoPath}, "state": {st.State}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"}}
	http.Redirect(w, r, "/mgmt/v1/sso/"+url.PathEscape(idp)+"/login?"+q.Encode(), http.StatusSeeOther)
}

// ssoDone redeems the one-time code and opens a session. It answers with a page that goes on to
// the portal: that request is the browser's own, same-site, so the session cookie (Strict) is
// sent with it, which it is not on the end of a redirect chain that began at the provider.
func (h *Handler) ssoDone(w http.ResponseWriter, r *http.Request) {
	d := signinData{Next: Prefix}
	c, err := r.Cookie(h.cookieName(r, ssoCookie))
	var st ssoState
	if err == nil && len(c.Value) < 4096 {
		if raw, err := base64.RawURLEncoding.DecodeString(c.Value); err == nil {
			if plain, err := h.Box.Open(raw, []byte(ssoCookie)); err == nil {
				_ = json.Unmarshal(plain, &st)
			}
		}
	}
	http.SetCookie(w, &http.Cookie{Name: h.cookieName(r, ssoCookie), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: h.Secure(r), SameSite: http.SameSiteLaxMode})
	q := r.URL.Query()
	switch {
	case st.State == "" || !checkCSRF(q.Get("state"), st.State):
		h.showSignin(w, r, http.StatusBadRequest, d, &client.Error{Status: http.StatusBadRequest,
			Message: "This single sign-on was not started here, or took longer than ten minutes: start it again."})
		return
	case q.Get("error") != "":
		h.showSignin(w, r, http.StatusUnauthorized, d, &client.Error{Status: http.StatusUnauthorized, Code: q.Get("error"), Message: q.Get("error_description")})
		return
	}
	ctx := withOrigin(r.Context(), r)
	api := h.api(r, "")
	tok, err := api.RedeemSignIn(ctx, q.Get("code"), st.Verifier, ownBase(r)+ssoPath)
	if err != nil {
		var e *client.Error
		if !errors.As(err, &e) {
			e = &client.Error{Status: http.StatusBadGateway, Message: "The sign-in could not be completed."}
		}
		h.showSignin(w, r, e.Status, d, e)
		return
	}
	api.AuthToken = tok.AccessToken
	me, err := api.Me(ctx)
	if err == nil {
		err = h.startSession(w, r, me.Name, tok)
	}
	if err != nil {
		h.Log.Error("portal single sign-on", "err", err)
		h.showSignin(w, r, http.StatusServiceUnavailable, d, &client.Error{Status: http.StatusServiceUnavailable, Message: "Signed in, but the portal could not open a session; try again."})
		return
	}
	h.render(w, http.StatusOK, "continue", &view{Title: "Signed in", Data: safeNext(st.Next)})
}

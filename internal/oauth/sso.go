package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/audit"
	"github.com/berth-registry/berth/internal/authn"
	"github.com/berth-registry/berth/internal/httperr"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/sso"
	"github.com/berth-registry/berth/internal/store"
)

// Single sign-on (package sso): a client starts a sign-in at /mgmt/v1/sso/{idp}/login (the
// browser goes on to the provider and comes back to /mgmt/v1/sso/callback, which sends it to the
// client's loopback address with a one-time code), or at /mgmt/v1/sso/{idp}/device; it then
// redeems the code, or polls the device code, at /mgmt/v1/token. None needs credentials: they
// are how a person without any gets some.

// Codes of a device sign-in not finished yet (RFC 8628's errors, in the OCI envelope).
const (
	CodeAuthorizationPending oci.ErrorCode = "AUTHORIZATION_PENDING"
	CodeSlowDown             oci.ErrorCode = "SLOW_DOWN"
)

func (h *Handler) registerSSO(mux *http.ServeMux) {
	mux.Handle("GET /mgmt/v1/sso/{idp}/login", httperr.Handle(h.log, h.ssoLogin))
	mux.Handle("GET /mgmt/v1/sso/callback", httperr.Handle(h.log, h.ssoCallback))
	mux.Handle("POST /mgmt/v1/sso/{idp}/device", httperr.Handle(h.log, h.ssoDevice))
	mux.Handle("GET /mgmt/v1/sso/providers", httperr.Handle(h.log, h.ssoProviders))
}

// ssoProviders names the identity providers a person may sign in with (a sign-in page's
// buttons): their names only.
func (h *Handler) ssoProviders(w http.ResponseWriter, r *http.Request) error {
	out := client.SSOProviders{Providers: []client.SSOProvider{}}
	ps, err := h.SSO.Store.IdentityProviders(r.Context())
	if err != nil {
		return err
	}
	for _, p := range ps {
		out.Providers = append(out.Providers, client.SSOProvider{Name: p.Name})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(out)
}

// callbackURL is this server's callback as the client reached it.
func callbackURL(r *http.Request) string {
	return authn.Scheme(r) + "://" + r.Host + "/mgmt/v1/sso/callback"
}

func (h *Handler) ssoLogin(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if m := q.Get("code_challenge_method"); m != "S256" {
		return httperr.New(oci.CodeUnsupported, "code_challenge_method must be S256").WithStatus(http.StatusBadRequest)
	}
	u, err := h.SSO.StartCode(r.Context(), r.PathValue("idp"), authn.ClientIP(r), q.Get("redirect_uri"), q.Get("state"), q.Get("code_challenge"), callbackURL(r))
	if err != nil {
		return ssoReply(err, r.PathValue("idp"))
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u, http.StatusFound)
	return nil
}

func (h *Handler) ssoCallback(w http.ResponseWriter, r *http.Request) (err error) {
	a := h.begin(r, audit.OpSSO)
	q := r.URL.Query()
	providerErr := q.Get("error")
	if providerErr != "" && q.Get("error_description") != "" {
		providerErr += ": " + q.Get("error_description")
	}
	to, res, err := h.SSO.Callback(r.Context(), q.Get("state"), q.Get("code"), providerErr, callbackURL(r))
	a.Issuer, a.Subject = res.Issuer, res.Subject
	if res.User.ID != 0 {
		audit.SignedIn(&a.LoginEvent, ssoPrincipal(res))
	}
	h.done(r, a, eventError(err))
	if to == "" {
		return ssoReply(err, "")
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusFound)
	return nil
}

func (h *Handler) ssoDevice(w http.ResponseWriter, r *http.Request) error {
	d, err := h.SSO.StartDevice(r.Context(), r.PathValue("idp"), authn.ClientIP(r))
	if err != nil {
		return ssoReply(err, r.PathValue("idp"))
	}
	return writeJSON(w, d)
}

// ssoGrant finishes a sign-in at the token endpoint: a redeemed code or a polled device code.
func (h *Handler) ssoGrant(ctx context.Context, a *attempt, do func(context.Context) (sso.Result, error)) (access.Principal, error) {
	res, err := do(ctx)
	a.Issuer, a.Subject = res.Issuer, res.Subject
	if err != nil {
		var se *sso.Error
		if errors.As(err, &se) && (se.OAuth == "authorization_pending" || se.OAuth == "slow_down") {
			code := CodeAuthorizationPending
			if se.OAuth == "slow_down" {
				code = CodeSlowDown
			}
			return access.Principal{}, httperr.New(code, "%s", se.Message).WithStatus(http.StatusBadRequest).WithReason(se.Reason)
		}
		return access.Principal{}, eventError(err)
	}
	return ssoPrincipal(res), nil
}

func ssoPrincipal(res sso.Result) access.Principal {
	return access.Principal{Kind: access.KindUser, Name: res.User.Name, ID: res.User.ID, Via: "sso", Issuer: res.Issuer, Subject: res.Subject}
}

// eventError is a refused single sign-on as an authentication error (401, its reason, the
// external identity for the login event).
func eventError(err error) error {
	var se *sso.Error
	if errors.As(err, &se) {
		return &authn.Error{Reason: se.Reason, Message: "single sign-on: " + se.Message, Issuer: se.Issuer, Subject: se.Subject}
	}
	return err
}

// ssoReply is a refused start or callback as a reply.
func ssoReply(err error, idp string) error {
	var se *sso.Error
	switch {
	case errors.As(err, &se):
		return httperr.New(oci.CodeUnauthorized, "single sign-on: %s", se.Message).WithStatus(se.Status).WithReason(se.Reason)
	case errors.Is(err, store.ErrNotFound):
		return httperr.New(oci.CodeUnsupported, "identity provider %q was not found", truncate(idp)).WithStatus(http.StatusNotFound)
	case errors.Is(err, store.ErrLimit):
		return httperr.New(oci.CodeTooManyRequests, "too many single sign-ons are in progress: try again in a few minutes").WithStatus(http.StatusTooManyRequests)
	}
	return err
}

package mgmt

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/authn"
	"github.com/berth-registry/berth/internal/policy"
	"github.com/berth-registry/berth/internal/sso"
	"github.com/berth-registry/berth/internal/store"
)

// Identity providers for single sign-on (berth identity-provider). Reading them is
// directory/read. Adding or changing one decides who may become which directory user and join
// which groups — the groups' roles included — so it needs directory/write and the right to
// assign roles at "/" (roleAssignments/write): a Contributor cannot make themselves Owner through
// a provider of their own whose groups claim names the Owners' group.

var idpName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,49}$`)

var claimName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.:/-]{0,127}$`)

func (h *Handler) idpJSON(r *http.Request, p store.IdentityProvider) client.IdentityProvider {
	base := callbackBase(r)
	return client.IdentityProvider{Name: p.Name, Issuer: p.Issuer, ClientID: p.ClientID, HasClientSecret: p.SecretSealed != nil,
		Claims: client.IdentityClaims{Username: p.ClaimUsername, Email: p.ClaimEmail, Groups: p.ClaimGroups}, Scopes: strings.Fields(p.Scopes),
		CreateUsers: p.CreateUsers, RedirectURI: p.RedirectURI, CreationDate: timeOrNil(p.CreatedAt),
		Endpoints: &client.SSOEndpoints{Login: base + "/mgmt/v1/sso/" + p.Name + "/login", Device: base + "/mgmt/v1/sso/" + p.Name + "/device",
			Callback: firstNonEmpty(p.RedirectURI, base+"/mgmt/v1/sso/callback")}}
}

func callbackBase(r *http.Request) string { return authn.Scheme(r) + "://" + r.Host }

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (h *Handler) checkIDP(p *store.IdentityProvider) error {
	u, err := url.Parse(p.Issuer)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || len(p.Issuer) > 600:
		return invalid("issuer %q is not an issuer URL (https://host[/path], as the provider's ID tokens' iss says)", truncate(p.Issuer))
	case p.ClientID == "" || len(p.ClientID) > 256:
		return invalid("clientId is required (at most 256 characters): the client registered with the provider")
	}
	if p.RedirectURI != "" {
		if u, err := url.Parse(p.RedirectURI); err != nil || u.Host == "" || !strings.HasSuffix(u.Path, "/mgmt/v1/sso/callback") {
			return invalid("redirectUri %q must be an absolute URL ending in /mgmt/v1/sso/callback (berth's callback, as registered with the provider)", truncate(p.RedirectURI))
		}
	}
	for what, c := range map[string]*string{"username": &p.ClaimUsername, "email": &p.ClaimEmail, "groups": &p.ClaimGroups} {
		if !claimName.MatchString(*c) {
			return invalid("claims.%s %q is not a claim name", what, truncate(*c))
		}
	}
	scopes := strings.Fields(p.Scopes)
	if len(scopes) > 20 || len(p.Scopes) > 512 {
		return invalid("at most 20 scopes")
	}
	if !slicesContains(scopes, "openid") {
		p.Scopes = strings.TrimSpace("openid " + p.Scopes)
	}
	return nil
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (h *Handler) listIDPs(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	list, err := h.Store.IdentityProviders(r.Context())
	if err != nil {
		return err
	}
	return replyList(w, list, func(p store.IdentityProvider) (client.IdentityProvider, error) { return h.idpJSON(r, p), nil })
}

func (h *Handler) showIDP(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	p, err := h.Store.IdentityProvider(r.Context(), r.PathValue("name"))
	if err != nil {
		return storeError(err, fmt.Sprintf("identity provider %q", truncate(r.PathValue("name"))))
	}
	return reply(w, http.StatusOK, h.idpJSON(r, p))
}

func (h *Handler) createIDP(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	ctx := r.Context()
	var req client.IdentityProvider
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := h.require(p, policy.PermAssignmentsWrite, ""); err != nil {
		return err
	}
	if !idpName.MatchString(req.Name) {
		return invalid("name %q: 2 to 50 lower-case letters, digits and '-'", truncate(req.Name))
	}
	ip := store.IdentityProvider{Name: req.Name, Issuer: req.Issuer, ClientID: req.ClientID, ClaimUsername: firstNonEmpty(req.Claims.Username, "preferred_username"),
		ClaimEmail: firstNonEmpty(req.Claims.Email, "email"), ClaimGroups: firstNonEmpty(req.Claims.Groups, "groups"),
		Scopes: firstNonEmpty(strings.Join(req.Scopes, " "), "openid profile email"), CreateUsers: req.CreateUsers, RedirectURI: req.RedirectURI}
	if err := h.checkIDP(&ip); err != nil {
		return err
	}
	if len(req.ClientSecret) > 1024 {
		return invalid("clientSecret is longer than 1024 characters")
	}
	var err error
	if ip.SecretSealed, err = sso.SealSecret(h.Box, ip.Name, req.ClientSecret); err != nil {
		return err
	}
	created, err := h.Store.CreateIdentityProvider(ctx, ip)
	switch {
	case errors.Is(err, store.ErrExists):
		return httperr409("identity provider %q already exists", ip.Name)
	case errors.Is(err, store.ErrLimit):
		return httperr409("this server already has %d identity providers, the most it may have", store.MaxIdentityProviders)
	case err != nil:
		return err
	}
	h.Log.InfoContext(ctx, "identity provider created", "name", ip.Name, "issuer", ip.Issuer, "createUsers", ip.CreateUsers)
	return reply(w, http.StatusCreated, h.idpJSON(r, created))
}

func (h *Handler) updateIDP(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	ctx := r.Context()
	var req client.IdentityProviderUpdate
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := h.require(p, policy.PermAssignmentsWrite, ""); err != nil {
		return err
	}
	what := fmt.Sprintf("identity provider %q", truncate(r.PathValue("name")))
	ip, err := h.Store.IdentityProvider(ctx, r.PathValue("name"))
	if err != nil {
		return storeError(err, what)
	}
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&ip.Issuer, req.Issuer)
	set(&ip.ClientID, req.ClientID)
	set(&ip.RedirectURI, req.RedirectURI)
	if req.Claims != nil {
		ip.ClaimUsername, ip.ClaimEmail, ip.ClaimGroups = firstNonEmpty(req.Claims.Username, ip.ClaimUsername), firstNonEmpty(req.Claims.Email, ip.ClaimEmail), firstNonEmpty(req.Claims.Groups, ip.ClaimGroups)
	}
	if req.Scopes != nil {
		ip.Scopes = strings.Join(*req.Scopes, " ")
	}
	if req.CreateUsers != nil {
		ip.CreateUsers = *req.CreateUsers
	}
	if err := h.checkIDP(&ip); err != nil {
		return err
	}
	if req.ClientSecret != nil {
		if len(*req.ClientSecret) > 1024 {
			return invalid("clientSecret is longer than 1024 characters")
		}
		if ip.SecretSealed, err = sso.SealSecret(h.Box, ip.Name, *req.ClientSecret); err != nil {
			return err
		}
	}
	if err := h.Store.UpdateIdentityProvider(ctx, ip); err != nil {
		return storeError(err, what)
	}
	h.Log.InfoContext(ctx, "identity provider updated", "name", ip.Name)
	return reply(w, http.StatusOK, h.idpJSON(r, ip))
}

func (h *Handler) deleteIDP(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	if err := h.require(p, policy.PermAssignmentsWrite, ""); err != nil {
		return err
	}
	if err := h.Store.DeleteIdentityProvider(r.Context(), r.PathValue("name")); err != nil {
		return storeError(err, fmt.Sprintf("identity provider %q", truncate(r.PathValue("name"))))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

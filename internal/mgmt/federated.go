package mgmt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/directory"
	"github.com/berth-registry/berth/internal/federation"
	"github.com/berth-registry/berth/internal/store"
)

// Federated credentials of service principals (az ad app federated-credential): reading them is
// directory/read; adding, changing or removing one lets tokens act as the service principal, so
// it needs directory/write and what a secret reset needs (DecideManage).

// DefaultAudience is a federated credential's audience when none is given: the value an external
// token must carry in aud to be exchanged at berth.
const DefaultAudience = "api://BerthTokenExchange"

// Bounds of a federated credential's fields (Entra's, where it has them).
const (
	maxFederatedField = 600
	maxAudiences      = 5
	maxStaticJWKS     = 64 << 10
)

var federatedName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{2,119}$`)

func federatedJSON(fc store.FederatedCredential) client.FederatedCredential {
	out := client.FederatedCredential{ID: fc.ID, Name: fc.Name, Issuer: fc.Issuer, Audiences: fc.Audiences, Description: fc.Description, JWKS: fc.JWKS}
	if fc.Expression != "" {
		out.ClaimsMatchingExpression = &client.ClaimsMatchingExpression{Value: fc.Expression, LanguageVersion: 1}
	} else {
		s := fc.Subject
		out.Subject = &s
	}
	return out
}

// checkFederated validates a federated credential as it will be stored.
func (h *Handler) checkFederated(fc *store.FederatedCredential) error {
	u, err := url.Parse(fc.Issuer)
	switch {
	case fc.Issuer == "":
		return invalid("issuer is required: the iss claim of the tokens to trust")
	case len(fc.Issuer) > maxFederatedField:
		return invalid("issuer is longer than %d bytes", maxFederatedField)
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return invalid("issuer %q is not an issuer URL (https://host[/path])", truncate(fc.Issuer))
	case !slices.Contains(h.issuers(), fc.Issuer):
		if len(h.issuers()) == 0 {
			return invalid("federated sign-in is off on this server: its configuration's federation.issuers must list %q first", truncate(fc.Issuer))
		}
		return invalid("issuer %q is not one this server trusts: its configuration's federation.issuers lists %s", truncate(fc.Issuer), strings.Join(h.issuers(), ", "))
	}
	switch {
	case (fc.Subject == "") == (fc.Expression == ""):
		return invalid("give a subject (matched exactly) or a claimsMatchingExpression, not both nor neither")
	case len(fc.Subject) > maxFederatedField:
		return invalid("subject is longer than %d bytes", maxFederatedField)
	case fc.Subject != strings.TrimSpace(fc.Subject):
		return invalid("subject %q starts or ends with white space, which no token's sub does", truncate(fc.Subject))
	}
	if fc.Expression != "" {
		if _, err := federation.ParseExpression(fc.Expression); err != nil {
			return invalid("claimsMatchingExpression: %v", err)
		}
	}
	if len(fc.Audiences) == 0 {
		fc.Audiences = []string{DefaultAudience}
	}
	if len(fc.Audiences) > maxAudiences {
		return invalid("at most %d audiences", maxAudiences)
	}
	for _, a := range fc.Audiences {
		if a == "" || len(a) > maxFederatedField {
			return invalid("an audience must be 1 to %d bytes", maxFederatedField)
		}
	}
	if len(fc.Description) > maxFederatedField {
		return invalid("description is longer than %d bytes", maxFederatedField)
	}
	if fc.JWKS != nil {
		if len(fc.JWKS) > maxStaticJWKS {
			return invalid("jwks is larger than %d bytes", maxStaticJWKS)
		}
		if _, err := federation.ParseKeySet(fc.JWKS); err != nil {
			return invalid("jwks: %v", err)
		}
	}
	return nil
}

// expressionOf is the expression of a request's claimsMatchingExpression.
func expressionOf(e *client.ClaimsMatchingExpression) (string, error) {
	if e == nil {
		return "", nil
	}
	if e.LanguageVersion != 0 && e.LanguageVersion != 1 {
		return "", invalid("claimsMatchingExpression.languageVersion must be 1")
	}
	if e.Value == "" {
		return "", invalid("claimsMatchingExpression.value is empty")
	}
	return e.Value, nil
}

// federatedOf is the federated credential of sp the path names (by name or id), and how replies
// name it.
func (h *Handler) federatedOf(r *http.Request, sp store.ServicePrincipal) (store.FederatedCredential, string, error) {
	what := fmt.Sprintf("federated credential %q of service principal %s", truncate(r.PathValue("name")), sp.AppID)
	fc, err := h.Store.FederatedCredential(r.Context(), sp.ID, r.PathValue("name"))
	if err != nil {
		return fc, what, storeError(err, what)
	}
	return fc, what, nil
}

func (h *Handler) listFederated(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	sp, err := h.lookupSP(r)
	if err != nil {
		return err
	}
	list, err := h.Store.FederatedCredentials(r.Context(), sp.ID)
	if err != nil {
		return err
	}
	return replyList(w, list, func(fc store.FederatedCredential) (client.FederatedCredential, error) { return federatedJSON(fc), nil })
}

func (h *Handler) showFederated(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	sp, err := h.lookupSP(r)
	if err != nil {
		return err
	}
	fc, _, err := h.federatedOf(r, sp)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, federatedJSON(fc))
}

func (h *Handler) createFederated(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	ctx := r.Context()
	var req client.FederatedCredential
	if err := decode(w, r, &req); err != nil {
		return err
	}
	sp, err := h.managedSP(r, p)
	if err != nil {
		return err
	}
	if !federatedName.MatchString(req.Name) {
		return invalid("name %q: 3 to 120 letters, digits, '-' and '_', starting with a letter or digit", truncate(req.Name))
	}
	expr, err := expressionOf(req.ClaimsMatchingExpression)
	if err != nil {
		return err
	}
	fc := store.FederatedCredential{ID: directory.NewGUID(), Name: req.Name, Issuer: req.Issuer, Expression: expr, Audiences: req.Audiences,
		Description: req.Description, JWKS: req.JWKS, CreatedAt: h.Now()}
	if req.Subject != nil {
		fc.Subject = *req.Subject
	}
	if err := h.checkFederated(&fc); err != nil {
		return err
	}
	err = h.Store.CreateFederatedCredential(ctx, sp.ID, fc)
	switch {
	case errors.Is(err, store.ErrExists):
		return httperr409("service principal %s already has a federated credential named %q, or one for issuer %q with this subject", sp.AppID, fc.Name, truncate(fc.Issuer))
	case errors.Is(err, store.ErrLimit):
		return httperr409("service principal %s already has %d federated credentials, the most it may hold", sp.AppID, store.MaxFederatedCredentials)
	case err != nil:
		return err
	}
	h.Authn.FederationChanged()
	h.Log.InfoContext(ctx, "federated credential created", "appId", sp.AppID, "name", fc.Name, "issuer", fc.Issuer)
	return reply(w, http.StatusCreated, federatedJSON(fc))
}

// federatedUpdate is what a PATCH may change: the fields it gives.
type federatedUpdate struct {
	Issuer                   *string                          `json:"issuer"`
	Subject                  *string                          `json:"subject"`
	ClaimsMatchingExpression *client.ClaimsMatchingExpression `json:"claimsMatchingExpression"`
	Audiences                []string                         `json:"audiences"`
	Description              *string                          `json:"description"`
	JWKS                     json.RawMessage                  `json:"jwks"`
	// Name and ID may be sent back as shown; they do not change.
	Name string `json:"name"`
	ID   string `json:"id"`
}

func (h *Handler) updateFederated(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	ctx := r.Context()
	var req federatedUpdate
	if err := decode(w, r, &req); err != nil {
		return err
	}
	sp, err := h.managedSP(r, p)
	if err != nil {
		return err
	}
	fc, what, err := h.federatedOf(r, sp)
	if err != nil {
		return err
	}
	if req.Name != "" && req.Name != fc.Name || req.ID != "" && req.ID != fc.ID {
		return invalid("a federated credential's name and id do not change: delete it and create another")
	}
	if req.Issuer != nil {
		fc.Issuer = *req.Issuer
	}
	if req.Subject != nil || req.ClaimsMatchingExpression != nil {
		expr, err := expressionOf(req.ClaimsMatchingExpression)
		if err != nil {
			return err
		}
		fc.Subject, fc.Expression = "", expr
		if req.Subject != nil {
			fc.Subject = *req.Subject
		}
	}
	if req.Audiences != nil {
		fc.Audiences = req.Audiences
	}
	if req.Description != nil {
		fc.Description = *req.Description
	}
	if req.JWKS != nil {
		fc.JWKS = req.JWKS
		if string(req.JWKS) == "null" {
			fc.JWKS = nil
		}
	}
	if err := h.checkFederated(&fc); err != nil {
		return err
	}
	if err := h.Store.UpdateFederatedCredential(ctx, sp.ID, fc); errors.Is(err, store.ErrExists) {
		return httperr409("service principal %s already has a federated credential for issuer %q with this subject", sp.AppID, truncate(fc.Issuer))
	} else if err != nil {
		return storeError(err, what)
	}
	h.Authn.FederationChanged()
	h.Log.InfoContext(ctx, "federated credential updated", "appId", sp.AppID, "name", fc.Name, "issuer", fc.Issuer)
	return reply(w, http.StatusOK, federatedJSON(fc))
}

func (h *Handler) deleteFederated(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	ctx := r.Context()
	sp, err := h.managedSP(r, p)
	if err != nil {
		return err
	}
	fc, what, err := h.federatedOf(r, sp)
	if err != nil {
		return err
	}
	if err := h.Store.DeleteFederatedCredential(ctx, sp.ID, fc.ID); err != nil {
		return storeError(err, what)
	}
	h.Authn.FederationChanged()
	h.Log.InfoContext(ctx, "federated credential deleted", "appId", sp.AppID, "name", fc.Name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// explainFederated adds to an explanation how a service principal may sign in without a secret:
// each federated credential, and with subject, whether a token of that subject would match it.
func (h *Handler) explainFederated(ctx context.Context, who access.Principal, subject string, out *client.Explanation) error {
	if len(subject) > maxFederatedField {
		return invalid("subject is longer than %d bytes", maxFederatedField)
	}
	list, err := h.Store.FederatedCredentials(ctx, who.ID)
	if err != nil {
		return err
	}
	for _, fc := range list {
		detail := fmt.Sprintf("tokens of %s for audience %s ", fc.Issuer, strings.Join(fc.Audiences, " or "))
		if fc.Expression != "" {
			detail += "whose claims satisfy " + fc.Expression
		} else {
			detail += "with subject " + fc.Subject + " (exactly)"
		}
		detail += " sign in as this service principal"
		if !slices.Contains(h.issuers(), fc.Issuer) {
			detail += "; but this server no longer trusts the issuer (federation.issuers)"
		}
		matched := false
		if subject != "" {
			cred := federation.Credential{Name: fc.Name, Issuer: fc.Issuer, Subject: fc.Subject, Expression: fc.Expression, Audiences: fc.Audiences}
			tok := &federation.Token{Issuer: fc.Issuer, Subject: subject, Audience: fc.Audiences, Claims: map[string]any{"sub": subject}}
			if _, err := federation.Match(tok, []federation.Credential{cred}); err == nil {
				matched = true
				detail += ": subject " + subject + " matches"
			} else {
				detail += ": subject " + subject + " does not match"
			}
		}
		out.Steps = append(out.Steps, client.Step{Source: "federated-credential", Ref: fc.Name, Matched: matched, Detail: detail})
	}
	return nil
}

// issuers are the issuers the server trusts.
func (h *Handler) issuers() []string {
	if h.Federation == nil {
		return nil
	}
	return h.Federation.Issuers()
}

// federationIssuers probes each trusted issuer now: its discovery document and key set, as the
// server reaches them (for check-health).
func (h *Handler) federationIssuers(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	out := []client.FederationIssuer{}
	if h.Federation != nil {
		for _, st := range h.Federation.Probe(r.Context()) {
			fi := client.FederationIssuer{Issuer: st.Issuer, Reachable: st.Err == nil, Keys: st.Keys}
			if st.Err != nil {
				fi.Error = st.Err.Error()
			}
			out = append(out, fi)
		}
	}
	return reply(w, http.StatusOK, out)
}

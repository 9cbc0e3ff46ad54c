package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

// FederatedCredential is a service principal's trust in an external OpenID Connect issuer's
// tokens, in the shape of az ad app federated-credential (Entra's
// federatedIdentityCredential): tokens of Issuer for one of Audiences whose subject is Subject,
// or whose claims satisfy ClaimsMatchingExpression (Entra's flexible credentials; Subject is then
// null), sign in as the service principal.
type FederatedCredential struct {
	ID                       string                    `json:"id,omitempty"`
	Name                     string                    `json:"name"`
	Issuer                   string                    `json:"issuer"`
	Subject                  *string                   `json:"subject"`
	ClaimsMatchingExpression *ClaimsMatchingExpression `json:"claimsMatchingExpression,omitempty"`
	Audiences                []string                  `json:"audiences"`
	Description              string                    `json:"description"`
	// JWKS is berth's: a static key set for an issuer the server cannot reach (an air-gapped
	// cluster's `kubectl get --raw /openid/v1/jwks`); absent: the issuer's published keys.
	JWKS json.RawMessage `json:"jwks,omitempty"`
}

// ClaimsMatchingExpression is Entra's expression form: claims['sub'] matches 'repo:o/r:ref:*'.
type ClaimsMatchingExpression struct {
	Value           string `json:"value"`
	LanguageVersion int    `json:"languageVersion"`
}

func federated(appID string) string { return sp(appID) + "/federatedCredentials" }

// FederatedCredentials lists a service principal's federated credentials.
func (c *Client) FederatedCredentials(ctx context.Context, appID string) ([]FederatedCredential, error) {
	var out []FederatedCredential
	return out, c.Do(ctx, http.MethodGet, federated(appID), nil, &out)
}

// FederatedCredential shows one, by name or id.
func (c *Client) FederatedCredential(ctx context.Context, appID, nameOrID string) (FederatedCredential, error) {
	var out FederatedCredential
	return out, c.Do(ctx, http.MethodGet, federated(appID)+"/"+url.PathEscape(nameOrID), nil, &out)
}

// CreateFederatedCredential adds one.
func (c *Client) CreateFederatedCredential(ctx context.Context, appID string, fc FederatedCredential) (FederatedCredential, error) {
	var out FederatedCredential
	return out, c.Do(ctx, http.MethodPost, federated(appID), fc, &out)
}

// UpdateFederatedCredential replaces what may change of one (all but its id and name).
func (c *Client) UpdateFederatedCredential(ctx context.Context, appID, nameOrID string, fc FederatedCredential) (FederatedCredential, error) {
	var out FederatedCredential
	return out, c.Do(ctx, http.MethodPatch, federated(appID)+"/"+url.PathEscape(nameOrID), fc, &out)
}

// PatchFederatedCredential changes the fields body gives (a JSON object of FederatedCredential's
// fields), keeping the others.
func (c *Client) PatchFederatedCredential(ctx context.Context, appID, nameOrID string, body map[string]any) (FederatedCredential, error) {
	var out FederatedCredential
	return out, c.Do(ctx, http.MethodPatch, federated(appID)+"/"+url.PathEscape(nameOrID), body, &out)
}

// DeleteFederatedCredential removes one.
func (c *Client) DeleteFederatedCredential(ctx context.Context, appID, nameOrID string) error {
	return c.Do(ctx, http.MethodDelete, federated(appID)+"/"+url.PathEscape(nameOrID), nil, nil)
}

// FederationIssuer is a trusted issuer as the server reaches it now.
type FederationIssuer struct {
	Issuer    string `json:"issuer"`
	Reachable bool   `json:"reachable"`
	Keys      int    `json:"keys"`
	Error     string `json:"error,omitempty"`
}

// FederationIssuers probes the issuers the server trusts (federation.issuers).
func (c *Client) FederationIssuers(ctx context.Context) ([]FederationIssuer, error) {
	var out []FederationIssuer
	return out, c.Do(ctx, http.MethodGet, "/mgmt/v1/federation/issuers", nil, &out)
}

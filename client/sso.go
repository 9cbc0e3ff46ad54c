package client

import (
	"context"
	"net/http"
	"net/url"
)

// IdentityProvider is an OpenID Connect provider people sign in with (berth identity-provider).
// ClientSecret is write-only: replies say whether one is set (HasClientSecret).
type IdentityProvider struct {
	Name            string         `json:"name"`
	Issuer          string         `json:"issuer"`
	ClientID        string         `json:"clientId"`
	ClientSecret    string         `json:"clientSecret,omitempty"`
	HasClientSecret bool           `json:"hasClientSecret"`
	Claims          IdentityClaims `json:"claims"`
	Scopes          []string       `json:"scopes"`
	CreateUsers     bool           `json:"createUsers"`
	RedirectURI     string         `json:"redirectUri,omitempty"`
	CreationDate    *string        `json:"creationDate,omitempty"`
	Endpoints       *SSOEndpoints  `json:"endpoints,omitempty"`
}

// IdentityClaims are the claims that name a person: user name, e-mail address, groups.
type IdentityClaims struct {
	Username string `json:"username"`
	Email    string `json:"email"`
	Groups   string `json:"groups"`
}

// SSOEndpoints are where a client starts a sign-in with the provider, and berth's callback to
// register with the provider.
type SSOEndpoints struct {
	Login    string `json:"login"`
	Device   string `json:"device"`
	Callback string `json:"callback"`
}

// IdentityProviderUpdate changes what it gives.
type IdentityProviderUpdate struct {
	Issuer       *string         `json:"issuer,omitempty"`
	ClientID     *string         `json:"clientId,omitempty"`
	ClientSecret *string         `json:"clientSecret,omitempty"`
	Claims       *IdentityClaims `json:"claims,omitempty"`
	Scopes       *[]string       `json:"scopes,omitempty"`
	CreateUsers  *bool           `json:"createUsers,omitempty"`
	RedirectURI  *string         `json:"redirectUri,omitempty"`
}

func idp(name string) string { return "/mgmt/v1/identityProviders/" + url.PathEscape(name) }

// IdentityProviders lists them.
func (c *Client) IdentityProviders(ctx context.Context) ([]IdentityProvider, error) {
	var out []IdentityProvider
	return out, c.Do(ctx, http.MethodGet, "/mgmt/v1/identityProviders", nil, &out)
}

// IdentityProvider shows one.
func (c *Client) IdentityProvider(ctx context.Context, name string) (IdentityProvider, error) {
	var out IdentityProvider
	return out, c.Do(ctx, http.MethodGet, idp(name), nil, &out)
}

// CreateIdentityProvider adds one.
func (c *Client) CreateIdentityProvider(ctx context.Context, p IdentityProvider) (IdentityProvider, error) {
	var out IdentityProvider
	return out, c.Do(ctx, http.MethodPost, "/mgmt/v1/identityProviders", p, &out)
}

// UpdateIdentityProvider changes one.
func (c *Client) UpdateIdentityProvider(ctx context.Context, name string, u IdentityProviderUpdate) (IdentityProvider, error) {
	var out IdentityProvider
	return out, c.Do(ctx, http.MethodPatch, idp(name), u, &out)
}

// DeleteIdentityProvider removes one (its users stay, unlinked).
func (c *Client) DeleteIdentityProvider(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, idp(name), nil, nil)
}

// DeviceSignIn is a device sign-in started: what to show the person, and the code to poll with.
type DeviceSignIn struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete,omitempty"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
}

// StartDeviceSignIn begins a single sign-on with the device flow at identity provider idp.
func (c *Client) StartDeviceSignIn(ctx context.Context, idp string) (DeviceSignIn, error) {
	var out DeviceSignIn
	return out, c.form(ctx, c.BaseURL+"/mgmt/v1/sso/"+url.PathEscape(idp)+"/device", url.Values{}, &out)
}

// PollDeviceSignIn asks whether a device sign-in finished: errors with codes
// AUTHORIZATION_PENDING or SLOW_DOWN (IsCode) while not.
func (c *Client) PollDeviceSignIn(ctx context.Context, deviceCode string) (DirectoryToken, error) {
	var t DirectoryToken
	err := c.form(ctx, c.BaseURL+"/mgmt/v1/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {deviceCode},
		"scope": {"offline_access"}}, &t)
	return t, err
}

// SSOProviders are the identity providers a person may sign in with (GET /mgmt/v1/sso/providers,
// without credentials).
type SSOProviders struct {
	Providers []SSOProvider `json:"providers"`
}

// SSOProvider is one of them, by name.
type SSOProvider struct {
	Name string `json:"name"`
}

// SignInProviders lists the identity providers of the server (no credentials needed).
func (c *Client) SignInProviders(ctx context.Context) ([]SSOProvider, error) {
	var out SSOProviders
	return out.Providers, c.Do(ctx, http.MethodGet, "/mgmt/v1/sso/providers", nil, &out)
}

// RedeemSignIn trades a single sign-on's one-time code, with its PKCE verifier and redirect,
// for a directory token (and a refresh token).
func (c *Client) RedeemSignIn(ctx context.Context, code, verifier, redirect string) (DirectoryToken, error) {
	var t DirectoryToken
	err := c.form(ctx, c.BaseURL+"/mgmt/v1/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
		"redirect_uri": {redirect}, "scope": {"offline_access"}}, &t)
	return t, err
}

// Package client is the Go client of berth's management API (/mgmt/v1) and of its sign-in
// endpoints. It is what the berth CLI uses; programs may use it the same way.
//
//	c := client.New("https://berth.example.com", "")
//	tok, err := c.SignIn(ctx, "owner", password)
//	c.AuthToken = tok.AccessToken
//	regs, err := c.Registries(ctx)
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls one berth server.
type Client struct {
	// BaseURL is the server's URL, e.g. https://berth.example.com:5000.
	BaseURL string
	// AuthToken is the directory token sent as a bearer token.
	AuthToken string
	HTTP      *http.Client
	// onReply, if set, sees each reply before its body is read (DataPlane reads Link).
	onReply func(*http.Response)
}

// New returns a client of the server at baseURL with a directory token (may be empty).
func New(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), AuthToken: token, HTTP: &http.Client{Timeout: 60 * time.Second}}
}

// Error is an error reply of the server.
type Error struct {
	Status        int
	Code          string
	Message       string
	CorrelationID string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %s", e.Code, e.Message)
	switch {
	case e.Code == "" && e.Message != "":
		msg = fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
	case e.Code == "":
		msg = fmt.Sprintf("HTTP %d", e.Status)
	}
	if e.CorrelationID != "" && !strings.Contains(e.Message, e.CorrelationID) {
		msg += " (correlation id " + e.CorrelationID + ")"
	}
	return msg
}

// IsStatus reports whether err is an *Error with that HTTP status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// maxReply bounds the bytes read from a reply.
const maxReply = 32 << 20

// Do sends a JSON request to path (relative to BaseURL) and decodes the JSON reply into out
// (when non-nil).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.AuthToken != "" {
		req.Header.Set("Authorization", "Bearer "+c.AuthToken)
	}
	return c.send(req, out)
}

func (c *Client) send(req *http.Request, out any) error {
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if c.onReply != nil {
		c.onReply(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return replyError(resp, b)
	}
	if out == nil || len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("client: decoding the reply of %s %s: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

// replyError is the *Error of a reply with an error status and body b.
func replyError(resp *http.Response, b []byte) *Error {
	e := &Error{Status: resp.StatusCode, CorrelationID: resp.Header.Get("X-Correlation-Id")}
	var env struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if json.Unmarshal(b, &env) == nil && len(env.Errors) > 0 {
		e.Code, e.Message = env.Errors[0].Code, env.Errors[0].Message
		return e
	}
	// Not berth's answer (a proxy's page, Go's TLS layer met with plain HTTP): its first line.
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(line) > 200 {
		line = line[:200] + "…"
	}
	e.Message = strings.TrimSpace(line)
	return e
}

func (c *Client) form(ctx context.Context, u string, f url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(f.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.send(req, out)
}

// DirectoryToken is what a sign-in returns.
type DirectoryToken struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	// RefreshToken renews the sign-in (RenewSignIn), once: each renewal returns the next one.
	RefreshToken string `json:"refresh_token,omitempty"`
}

// SignIn signs a directory user in with a password; the reply carries a refresh token
// (offline_access) that renews the sign-in.
func (c *Client) SignIn(ctx context.Context, user, password string) (DirectoryToken, error) {
	var t DirectoryToken
	err := c.form(ctx, c.BaseURL+"/mgmt/v1/token", url.Values{"grant_type": {"password"}, "username": {user}, "password": {password}, "scope": {"offline_access"}}, &t)
	return t, err
}

// SignInServicePrincipal signs a service principal in with its client id and secret.
func (c *Client) SignInServicePrincipal(ctx context.Context, appID, secret string) (DirectoryToken, error) {
	var t DirectoryToken
	err := c.form(ctx, c.BaseURL+"/mgmt/v1/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {appID}, "client_secret": {secret}, "scope": {"offline_access"}}, &t)
	return t, err
}

// ClientAssertionJWT is the client_assertion_type of an external token (RFC 7523).
const ClientAssertionJWT = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// SignInFederated signs a service principal in with an external OpenID Connect token that one of
// its federated credentials trusts (Entra's client assertion).
func (c *Client) SignInFederated(ctx context.Context, appID, token string) (DirectoryToken, error) {
	var t DirectoryToken
	err := c.form(ctx, c.BaseURL+"/mgmt/v1/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {appID},
		"client_assertion_type": {ClientAssertionJWT}, "client_assertion": {token}, "scope": {"offline_access"}}, &t)
	return t, err
}

// RenewSignIn trades a directory refresh token for a new directory token and the next refresh
// token; the one given is spent.
func (c *Client) RenewSignIn(ctx context.Context, refresh string) (DirectoryToken, error) {
	var t DirectoryToken
	err := c.form(ctx, c.BaseURL+"/mgmt/v1/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, &t)
	return t, err
}

// RevokeSignIn ends the sign-in of a directory refresh token (every renewal of it).
func (c *Client) RevokeSignIn(ctx context.Context, refresh string) error {
	return c.form(ctx, c.BaseURL+"/mgmt/v1/token/revoke", url.Values{"token": {refresh}}, &struct{}{})
}

// Exchange trades the client's directory token for a registry refresh token at realmBase
// (scheme://host of the registry's token realm) for service (its login server).
func (c *Client) Exchange(ctx context.Context, realmBase, service string) (string, error) {
	var out struct {
		RefreshToken string `json:"refresh_token"`
	}
	err := c.form(ctx, strings.TrimRight(realmBase, "/")+"/oauth2/exchange",
		url.Values{"grant_type": {"access_token"}, "service": {service}, "tenant": {"berth"}, "access_token": {c.AuthToken}}, &out)
	return out.RefreshToken, err
}

// Me describes the signed-in principal.
type Me struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Tenant      string `json:"tenant"`
	ServerOwner bool   `json:"serverOwner"`
	// Permissions are the management permissions held at "/".
	Permissions []string `json:"permissions"`
}

// Me returns who the client's token belongs to.
func (c *Client) Me(ctx context.Context) (Me, error) {
	var m Me
	return m, c.Do(ctx, http.MethodGet, "/mgmt/v1/me", nil, &m)
}

// IsCode reports whether err is the server's error with this code (UNAUTHORIZED,
// AUTHORIZATION_PENDING …).
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

package checkhealth

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/berth-registry/berth/client"
)

// Limits of what check-health accepts from a registry.
const (
	maxSkew        = 2 * time.Minute
	certWarning    = 30 * 24 * time.Hour
	maxErrorReply  = 64 << 10
	maxTokenReply  = 1 << 20
	noRegistryNote = "Registry name must be provided to check connectivity."
)

// looksLikeHost tells a login server (registry.example.com, 127.0.0.1:5000, localhost) from a
// registry name.
func looksLikeHost(s string) bool {
	return strings.ContainsAny(s, ".:") || strings.EqualFold(s, "localhost")
}

// resolveLoginServer finds the registry's login server: through the signed-in session for a
// registry name, or as given for a host name. An upper-case name is an error of its own.
func (r *run) resolveLoginServer() error {
	const check = "login server"
	if r.Name == "" {
		r.warn(check, noRegistryNote)
		return nil
	}
	if r.Name != strings.ToLower(r.Name) {
		if err := r.fail("registry name", "REGISTRY_NAME_UPPERCASE_ERROR", "", 0); err != nil {
			return err
		}
	}
	name := strings.ToLower(r.Name)
	if r.Session != nil && !r.PlainHTTP {
		if u, err := url.Parse(r.Session.BaseURL); err == nil && u.Scheme == "http" {
			r.scheme = "http"
		}
	}
	if looksLikeHost(name) {
		r.loginServer = name
		if r.Session != nil { // find the registry behind it, for its name and settings
			if regs, err := r.Session.Registries(r.ctx); err == nil {
				for _, reg := range regs {
					if strings.EqualFold(reg.LoginServer, name) {
						r.useRegistry(reg)
					}
				}
			}
		}
		r.ok(check, "Login server: %s", r.loginServer)
		return nil
	}
	if r.Session == nil {
		return r.fail(check, "LOGIN_SERVER_ERROR", "not signed in: run 'berth auth login', or give the login server (host[:port]) instead of the registry name", 0)
	}
	reg, err := r.Session.Registry(r.ctx, name)
	if err != nil {
		return r.fail(check, "LOGIN_SERVER_ERROR", err.Error(), 0)
	}
	r.useRegistry(reg)
	r.ok(check, "Login server of registry '%s': %s", reg.Name, r.loginServer)
	return nil
}

func (r *run) useRegistry(reg client.Registry) {
	r.registry, r.loginServer = reg.Name, strings.ToLower(reg.LoginServer)
	anon := reg.AnonymousPullEnabled || len(reg.AnonymousPullRepositories) > 0
	r.anonymous = &anon
}

func (r *run) dns() error {
	if r.loginServer == "" {
		return nil
	}
	host := r.loginServer
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ips, err := net.DefaultResolver.LookupHost(r.ctx, strings.Trim(host, "[]"))
	if err != nil || len(ips) == 0 {
		r.unreachable = true // the connection checks that follow could only repeat this
		return r.fail("dns", "CONNECTIVITY_DNS_ERROR", fmt.Sprint(err), 0)
	}
	r.ok("dns", "DNS lookup to %s at IP %s : OK", r.loginServer, ips[0])
	return nil
}

// challenge asks GET /v2/ for its challenge, and checks on the way the TLS certificate and the
// clock against the reply's Date.
func (r *run) challenge() error {
	if r.loginServer == "" || r.unreachable {
		return nil
	}
	const check = "challenge"
	u := r.scheme + "://" + r.loginServer + "/v2/"
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, u, nil)
	if err != nil {
		return r.fail(check, "CONNECTIVITY_CHALLENGE_ERROR", err.Error(), 0)
	}
	resp, err := r.HTTP.Do(req)
	if err != nil {
		if tlsError(err) {
			return r.fail("tls", "CONNECTIVITY_SSL_ERROR", err.Error(), 0)
		}
		return r.fail(check, "CONNECTIVITY_CHALLENGE_ERROR", err.Error(), 0)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorReply))
	resp.Body.Close()
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		cert := resp.TLS.PeerCertificates[0]
		if left := cert.NotAfter.Sub(r.Now()); left < certWarning {
			if err := r.fail("tls", "CERTIFICATE_EXPIRY_ERROR", "the certificate expires on "+cert.NotAfter.UTC().Format(time.RFC3339), 0); err != nil {
				return err
			}
		} else {
			r.ok("tls", "TLS certificate of %s is trusted and valid until %s : OK", r.loginServer, cert.NotAfter.UTC().Format("2006-01-02"))
		}
	}
	if err := r.clock(resp.Header.Get("Date")); err != nil {
		return err
	}
	h := resp.Header.Get("WWW-Authenticate")
	switch {
	case resp.StatusCode == http.StatusForbidden:
		return r.fail(check, "CONNECTIVITY_FORBIDDEN_ERROR", serverMessage(body, resp.StatusCode), resp.StatusCode)
	case resp.StatusCode != http.StatusUnauthorized || h == "":
		return r.fail(check, "CONNECTIVITY_CHALLENGE_ERROR", fmt.Sprintf("GET %s answered %d without a challenge", u, resp.StatusCode), resp.StatusCode)
	}
	params, bearer := parseChallenge(h)
	if !bearer || params["realm"] == "" || params["service"] == "" {
		return r.fail(check, "CONNECTIVITY_AAD_LOGIN_ERROR", "WWW-Authenticate: "+h, resp.StatusCode)
	}
	r.realm, r.service = params["realm"], params["service"]
	r.ok(check, "Challenge endpoint %s : OK", u)
	return nil
}

// clock compares the local time with the registry's Date header.
func (r *run) clock(date string) error {
	t, err := http.ParseTime(date)
	if err != nil {
		r.skip("clock", "The registry sent no Date header; clock skew not checked.")
		return nil
	}
	skew := r.Now().Sub(t).Truncate(time.Second)
	if skew > maxSkew || skew < -maxSkew {
		return r.fail("clock", "CLOCK_SKEW_ERROR", fmt.Sprintf("local clock %s, registry %s (skew %s)", r.Now().UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339), skew), 0)
	}
	r.ok("clock", "Clock skew against %s: %s : OK", r.loginServer, skew)
	return nil
}

func tlsError(err error) bool {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	var record tls.RecordHeaderError
	return errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid) || errors.As(err, &verify) || errors.As(err, &record) ||
		strings.Contains(err.Error(), "tls: ") || strings.Contains(err.Error(), "x509: ")
}

// parseChallenge reads a challenge: its parameters, and whether it is Bearer.
func parseChallenge(h string) (map[string]string, bool) {
	scheme, params := client.ParseChallenge(h)
	return params, scheme == "bearer"
}

// serverMessage is the message of an OCI error reply, or its status.
func serverMessage(body []byte, status int) string {
	var env struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if json.Unmarshal(body, &env) == nil && len(env.Errors) > 0 {
		return strings.ToLower(env.Errors[0].Code) + ": " + env.Errors[0].Message
	}
	return fmt.Sprintf("HTTP %d %s", status, http.StatusText(status))
}

func (r *run) refreshToken() error {
	const check = "refresh token"
	switch {
	case r.realm == "":
		return nil
	case r.Session == nil:
		r.skip(check, "Not signed in with 'berth auth login': the refresh token check is skipped.")
		return nil
	}
	realm, err := url.Parse(r.realm)
	if err != nil {
		return r.fail(check, "CONNECTIVITY_REFRESH_TOKEN_ERROR", "the challenge's realm is not a URL", 0)
	}
	refresh, err := r.Session.Exchange(r.ctx, realm.Scheme+"://"+realm.Host, r.service)
	if err != nil {
		status := 0
		var ce *client.Error
		if errors.As(err, &ce) {
			status = ce.Status
		}
		if status == http.StatusTooManyRequests {
			return r.fail(check, "CONNECTIVITY_TOOMANYREQUESTS_ERROR", err.Error(), status)
		}
		return r.fail(check, "CONNECTIVITY_REFRESH_TOKEN_ERROR", err.Error(), status)
	}
	r.refresh = refresh
	r.ok(check, "Fetch refresh token for registry '%s' : OK", r.loginServer)
	return nil
}

// token asks the realm for an access token; auth is Basic credentials (user, password) or,
// with user "", a refresh token in password ("" for none).
func (r *run) token(user, password, scope string) (access string, status int, detail string, err error) {
	form := url.Values{"service": {r.service}}
	if scope != "" {
		form.Set("scope", scope)
	}
	if user == "" && password != "" {
		form.Set("grant_type", "refresh_token")
		form.Set("refresh_token", password)
	} else if user != "" {
		form.Set("grant_type", "password")
	}
	method, body := http.MethodGet, io.Reader(nil)
	u := r.realm + "?" + form.Encode()
	if form.Get("grant_type") == "refresh_token" {
		method, body, u = http.MethodPost, strings.NewReader(form.Encode()), r.realm
	}
	req, err := http.NewRequestWithContext(r.ctx, method, u, body)
	if err != nil {
		return "", 0, "", err
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := r.HTTP.Do(req)
	if err != nil {
		return "", 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxTokenReply))
	if resp.StatusCode != http.StatusOK {
		return "", resp.StatusCode, serverMessage(b, resp.StatusCode), nil
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		Token       string `json:"token"`
	}
	if err := json.Unmarshal(b, &tok); err != nil {
		return "", resp.StatusCode, "the token reply is not JSON", nil
	}
	if tok.AccessToken == "" {
		tok.AccessToken = tok.Token
	}
	return tok.AccessToken, resp.StatusCode, "", nil
}

func (r *run) accessToken() error {
	const check = "access token"
	if r.refresh == "" {
		return nil
	}
	_, status, detail, err := r.token("", r.refresh, "registry:catalog:*")
	switch {
	case err != nil:
		return r.fail(check, "CONNECTIVITY_ACCESS_TOKEN_ERROR", err.Error(), 0)
	case status == http.StatusTooManyRequests:
		return r.fail(check, "CONNECTIVITY_TOOMANYREQUESTS_ERROR", detail, status)
	case status != http.StatusOK:
		return r.fail(check, "CONNECTIVITY_ACCESS_TOKEN_ERROR", detail, status)
	}
	r.ok(check, "Fetch access token for registry '%s' : OK", r.loginServer)
	return nil
}

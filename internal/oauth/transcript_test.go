package oauth_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/golden"
	"github.com/berth-registry/berth/internal/registrytest"
	"github.com/berth-registry/berth/internal/store"
)

var (
	jwtRE         = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)
	correlationRE = regexp.MustCompile(`correlation id: [A-Z0-9]{16}`)
	issuedRE      = regexp.MustCompile(`"issued_at":"[^"]*"`)
	refreshRE     = regexp.MustCompile(`bdr_[A-Za-z0-9_-]{43}`)
)

// oauthTranscript records token requests and their replies, each JWT shown by its claims
// (without times and ids) instead of its bytes.
type oauthTranscript struct {
	t       *testing.T
	s       *registrytest.Server
	b       strings.Builder
	secrets map[string]string // secret → its name
}

func (tr *oauthTranscript) mask(s string) string {
	s = jwtRE.ReplaceAllStringFunc(s, func(tok string) string {
		c := claims(tr.t, tok)
		var keys []string
		for k := range c {
			switch k {
			case "iat", "nbf", "exp", "jti":
				continue
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			v, _ := json.Marshal(c[k])
			parts = append(parts, k+"="+string(v))
		}
		life := int64(c["exp"].(float64) - c["nbf"].(float64))
		return fmt.Sprintf("<jwt %s life=%ds>", strings.Join(parts, " "), life)
	})
	s = strings.ReplaceAll(s, tr.s.Host, "HOST")
	s = correlationRE.ReplaceAllString(s, "correlation id: …")
	s = issuedRE.ReplaceAllString(s, `"issued_at":"…"`)
	s = refreshRE.ReplaceAllString(s, "<directory refresh token>")
	for sec, name := range tr.secrets {
		s = strings.ReplaceAll(s, sec, name)
	}
	return s
}

func (tr *oauthTranscript) do(what, method, path, auth string, form url.Values) call {
	tr.t.Helper()
	var c call
	if method == "GET" && form != nil {
		c = do(tr.t, method, tr.s.URL+path+"?"+form.Encode(), auth, nil)
	} else {
		c = do(tr.t, method, tr.s.URL+path, auth, form)
	}
	fmt.Fprintf(&tr.b, "## %s\n%s %s", what, method, path)
	if raw, ok := strings.CutPrefix(auth, "Basic "); ok {
		dec, _ := base64.StdEncoding.DecodeString(raw)
		fmt.Fprintf(&tr.b, " [Basic %s]", tr.mask(string(dec)))
	} else if auth != "" {
		fmt.Fprintf(&tr.b, " [Authorization: %s]", tr.mask(auth))
	}
	if form != nil {
		keys := make([]string, 0, len(form))
		for k := range form {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&tr.b, " %s=%q", k, tr.mask(strings.Join(form[k], "|")))
		}
	}
	fmt.Fprintf(&tr.b, "\n→ %d\n", c.status)
	for _, h := range []string{"Cache-Control", "Content-Type", "Retry-After", "Www-Authenticate"} {
		if v := c.header.Get(h); v != "" {
			fmt.Fprintf(&tr.b, "  %s: %s\n", h, tr.mask(v))
		}
	}
	if len(c.body) > 0 {
		fmt.Fprintf(&tr.b, "  %s\n", tr.mask(strings.TrimSpace(string(c.body))))
	}
	return c
}

// TestOAuthTranscript runs the token endpoints through every grant, scope form and refusal,
// and compares each reply (status, headers, the body with each JWT as its claims) and the
// login events they left with testdata/oauth.golden (-update rewrites it).
func TestOAuthTranscript(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	user, pass := s.Admin(t)
	tokPw := createToken(t, s, "ci-token", map[string][]string{"samples/*": {"content/read", "content/write"}}, nil)
	var sp struct{ AppID, Password string }
	s.Mgmt(t, "POST", "/mgmt/v1/servicePrincipals", map[string]any{"displayName": "robot"}, &sp)
	s.Mgmt(t, "POST", "/mgmt/v1/roleAssignments", map[string]any{"assignee": sp.AppID, "role": "AcrPull", "scope": "/registries/default"}, nil)
	tr := &oauthTranscript{t: t, s: s, secrets: map[string]string{pass: "<admin password>", tokPw: "<token password>",
		sp.Password: "<sp secret>", sp.AppID: "<sp app id>", registrytest.OwnerPassword: "<owner password>"}}
	svc := url.Values{"service": {s.Host}}
	with := func(v url.Values, kv ...string) url.Values {
		out := url.Values{}
		for k, vs := range v {
			out[k] = append([]string(nil), vs...)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}

	tr.do("GET, admin, several scopes", "GET", "/oauth2/token", basic(user, pass),
		with(svc, "scope", "repository:samples/a:pull,push", "scope", "registry:catalog:* repository:samples/b:*", "scope", "unknown:x:y"))
	tr.do("GET, the same repository twice", "GET", "/oauth2/token", basic(user, pass), with(svc, "scope", "repository:samples/a:pull", "scope", "repository:samples/a:push,pull,bogus"))
	tr.do("GET, anonymous", "GET", "/oauth2/token", "", with(svc, "scope", "repository:samples/a:pull"))
	tr.do("GET, no scope", "GET", "/oauth2/token", basic(user, pass), svc)
	tr.do("GET, offline token without a refresh token", "GET", "/oauth2/token", basic(user, pass), with(svc, "offline_token", "true"))
	tr.do("token: inside and outside its scope map", "GET", "/oauth2/token", basic("ci-token", tokPw),
		with(svc, "scope", "repository:samples/a:pull,push,delete", "scope", "repository:other/a:pull", "scope", "registry:catalog:*"))
	tr.do("token: wrong password", "GET", "/oauth2/token", basic("ci-token", "wrong"), with(svc, "scope", "repository:samples/a:pull"))
	tr.do("service principal with AcrPull", "GET", "/oauth2/token", basic(sp.AppID, sp.Password), with(svc, "scope", "repository:samples/a:pull,push"))
	tr.do("service principal, wrong secret", "GET", "/oauth2/token", basic(sp.AppID, "nope"), svc)
	tr.do("a user name that is a GUID nobody has", "GET", "/oauth2/token", basic("11111111-2222-4333-8444-555555555555", "x"), svc)
	tr.do("POST password grant", "POST", "/oauth2/token", "", with(svc, "grant_type", "password", "username", user, "password", pass, "scope", "repository:samples/a:pull"))
	tr.do("POST password grant, no credentials (anonymous)", "POST", "/oauth2/token", "", with(svc, "grant_type", "password", "scope", "repository:samples/a:pull"))
	tr.do("POST without a grant type", "POST", "/oauth2/token", "", svc)
	tr.do("POST, unsupported grant type", "POST", "/oauth2/token", "", with(svc, "grant_type", "client_credentials"))
	tr.do("POST, a grant type too long to echo", "POST", "/oauth2/token", "", with(svc, "grant_type", strings.Repeat("g", 200)))
	tr.do("POST refresh grant without the token", "POST", "/oauth2/token", "", with(svc, "grant_type", "refresh_token"))
	tr.do("POST refresh grant with garbage", "POST", "/oauth2/token", "", with(svc, "grant_type", "refresh_token", "refresh_token", "garbage"))
	for _, sc := range []string{"nocolons", "repository:samples/a", "repository::pull", "repository:UPPER:pull", "repository:samples/a:pull," + strings.Repeat("x", 1024-len("repository:samples/a:pull,")), // 1024 bytes: the limit
		"repository:samples/a:pull," + strings.Repeat("x", 1025-len("repository:samples/a:pull,")), // one over
		"registry:other:*", "repository:samples/a:unknownaction"} {
		tr.do("scope "+truncateForName(sc), "GET", "/oauth2/token", basic(user, pass), with(svc, "scope", sc))
	}
	many := with(svc)
	for i := range 65 {
		many.Add("scope", fmt.Sprintf("repository:r/%d:pull", i))
	}
	c := do(t, "GET", s.URL+"/oauth2/token?"+many.Encode(), basic(user, pass), nil)
	fmt.Fprintf(&tr.b, "## 65 scopes (one over the limit)\n→ %d %s\n", c.status, tr.mask(string(c.body)))
	hundred := with(svc)
	for i := range 64 {
		hundred.Add("scope", fmt.Sprintf("repository:r/%d:pull", i))
	}
	c = do(t, "GET", s.URL+"/oauth2/token?"+hundred.Encode(), basic(user, pass), nil)
	fmt.Fprintf(&tr.b, "## 64 scopes (the limit)\n→ %d (%d access entries)\n", c.status, len(access(t, func() string {
		var r tokenReply
		json.Unmarshal(c.body, &r)
		return r.AccessToken
	}())))
	tr.do("a Host too long", "GET", "/oauth2/token", basic(user, pass), url.Values{"service": {strings.Repeat("h", 300)}})

	// Directory sign-in, the exchange, the refresh token.
	dir := tr.do("directory token, owner", "POST", "/mgmt/v1/token", "", url.Values{"grant_type": {"password"}, "username": {"owner"}, "password": {registrytest.OwnerPassword}})
	var d struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(dir.body, &d)
	tr.do("directory token, wrong password", "POST", "/mgmt/v1/token", "", url.Values{"grant_type": {"password"}, "username": {"owner"}, "password": {"x"}})
	tr.do("directory token, service principal", "POST", "/mgmt/v1/token", "", url.Values{"grant_type": {"client_credentials"}, "client_id": {sp.AppID}, "client_secret": {sp.Password}})
	tr.do("directory token, client id not a GUID", "POST", "/mgmt/v1/token", "", url.Values{"grant_type": {"client_credentials"}, "client_id": {"robot"}, "client_secret": {"x"}})
	tr.do("directory token, unsupported grant", "POST", "/mgmt/v1/token", "", url.Values{"grant_type": {"refresh_token"}})
	ex := tr.do("exchange", "POST", "/oauth2/exchange", "", with(svc, "grant_type", "access_token", "access_token", d.AccessToken))
	var rt struct {
		RefreshToken string `json:"refresh_token"`
	}
	json.Unmarshal(ex.body, &rt)
	tr.do("exchange without the token", "POST", "/oauth2/exchange", "", with(svc, "grant_type", "access_token"))
	tr.do("exchange, wrong grant type", "POST", "/oauth2/exchange", "", with(svc, "grant_type", "password"))
	tr.do("exchange of a refresh token", "POST", "/oauth2/exchange", "", with(svc, "grant_type", "access_token", "access_token", rt.RefreshToken))
	tr.do("refresh grant", "POST", "/oauth2/token", "", with(svc, "grant_type", "refresh_token", "refresh_token", rt.RefreshToken, "scope", "repository:samples/a:pull,delete"))
	tr.do("null GUID with the refresh token, offline", "GET", "/oauth2/token", basic(nullGUID, rt.RefreshToken), with(svc, "offline_token", "true", "scope", "repository:samples/a:push"))
	tr.do("null GUID with the refresh token, access_type=offline", "GET", "/oauth2/token", basic(nullGUID, rt.RefreshToken), with(svc, "access_type", "offline"))
	tr.do("null GUID with garbage", "GET", "/oauth2/token", basic(nullGUID, "garbage"), svc)
	tr.do("Bearer on the token endpoint (ignored: anonymous)", "GET", "/oauth2/token", bearer(rt.RefreshToken), with(svc, "scope", "repository:samples/a:pull"))

	// The login events the scenario left, oldest first.
	s.SettleEvents(t)
	evs, err := s.Meta().LoginEvents(t.Context(), store.EventFilter{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&tr.b, "# login events\n")
	for i := len(evs) - 1; i >= 0; i-- {
		e := evs[i]
		fmt.Fprintf(&tr.b, "%s %s %s(%s) %d %s %s %q granted=%v refused=%v token=%v\n", e.Operation, e.Registry, tr.mask(e.Identity), e.IdentityKind,
			e.Status, e.Result, e.Reason, tr.mask(e.Message), e.Granted, e.Refused, e.TokenID != "")
	}
	golden.Compare(t, "testdata/oauth.golden", tr.b.String())
}

func truncateForName(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

package oauth_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/registrytest"
)

// call is one HTTP exchange with its body read.
type call struct {
	status int
	header http.Header
	body   []byte
}

func (c call) errCode() string {
	var env struct {
		Errors []struct{ Code, Message string }
	}
	if json.Unmarshal(c.body, &env) != nil || len(env.Errors) == 0 {
		return ""
	}
	return env.Errors[0].Code
}

func (c call) message() string {
	var env struct {
		Errors []struct{ Code, Message string }
	}
	if json.Unmarshal(c.body, &env) != nil || len(env.Errors) == 0 {
		return ""
	}
	return env.Errors[0].Message
}

// do sends a request; auth is a whole Authorization header value ("" for none).
func do(t testing.TB, method, u, auth string, form url.Values) call {
	t.Helper()
	return doHost(t, method, u, "", auth, form)
}

// doHost is do with another Host header ("" keeps the URL's): the registry a request is for.
func doHost(t testing.TB, method, u, host, auth string, form url.Values) call {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return call{resp.StatusCode, resp.Header, b}
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func bearer(tok string) string { return "Bearer " + tok }

type tokenReply struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
}

// getToken asks GET /oauth2/token with Basic credentials for scopes.
func getToken(t testing.TB, s *registrytest.Server, user, pass string, extra url.Values, scopes ...string) (tokenReply, call) {
	t.Helper()
	q := url.Values{"service": {s.Host}}
	for k, v := range extra {
		q[k] = v
	}
	for _, sc := range scopes {
		q.Add("scope", sc)
	}
	auth := ""
	if user != "" {
		auth = basic(user, pass)
	}
	c := do(t, "GET", s.URL+"/oauth2/token?"+q.Encode(), auth, nil)
	var r tokenReply
	if c.status == 200 {
		if err := json.Unmarshal(c.body, &r); err != nil {
			t.Fatal(err)
		}
	}
	return r, c
}

// claims decodes a JWT's payload without verifying it.
func claims(t testing.TB, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// access renders a token's access claim as "type:name:a,b" strings.
func access(t testing.TB, jwt string) []string {
	t.Helper()
	var out []string
	list, _ := claims(t, jwt)["access"].([]any)
	for _, e := range list {
		m := e.(map[string]any)
		var acts []string
		for _, a := range m["actions"].([]any) {
			acts = append(acts, a.(string))
		}
		out = append(out, m["type"].(string)+":"+m["name"].(string)+":"+strings.Join(acts, ","))
	}
	return out
}

// createToken creates a repository-scoped token with the given --repository arguments and
// returns its first password.
func createToken(t testing.TB, s *registrytest.Server, name string, repos map[string][]string, extra map[string]any) string {
	t.Helper()
	req := map[string]any{"name": name}
	var list []map[string]any
	for r, acts := range repos {
		list = append(list, map[string]any{"repository": r, "actions": acts})
	}
	if len(list) > 0 {
		req["repositories"] = list
	}
	for k, v := range extra {
		req[k] = v
	}
	var tok struct {
		Credentials struct {
			Passwords []struct{ Name, Value string }
		}
	}
	if st := s.Mgmt(t, "POST", "/mgmt/v1/registries/default/tokens", req, &tok); st != http.StatusCreated {
		t.Fatalf("create token %s: status %d", name, st)
	}
	if len(tok.Credentials.Passwords) == 0 {
		return ""
	}
	return tok.Credentials.Passwords[0].Value
}

package oauth_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/registrytest"
)

func TestRepositoryScopedTokens(t *testing.T) {
	clk := registrytest.NewClock()
	s := registrytest.New(t, registrytest.Options{Now: clk.Now})
	pw := createToken(t, s, "ci-samples", map[string][]string{"samples/*": {"content/read", "Content/Write"}}, nil)

	// Granted = requested ∩ scope map; a partial grant is not an error.
	r, c := getToken(t, s, "ci-samples", pw, nil, "repository:samples/a:pull,push,delete", "repository:other/b:pull,push", "registry:catalog:*")
	if c.status != 200 {
		t.Fatalf("token: %d %s", c.status, c.body)
	}
	// The catalog is granted too: filtered to what the token may pull (beyond ACR, which says 401).
	if got := access(t, r.AccessToken); !slices.Equal(got, []string{"repository:samples/a:pull,push", "registry:catalog:*"}) {
		t.Errorf("access = %v", got)
	}
	// Basic auth directly: pushes to samples/a, is refused on other/b with the scope map named.
	push := func(auth, repo string) call {
		return do(t, "POST", s.URL+"/v2/"+repo+"/blobs/uploads/", auth, nil)
	}
	if c := push(basic("ci-samples", pw), "samples/a"); c.status != 202 {
		t.Errorf("push to samples/a: %d %s", c.status, c.body)
	}
	if c := push(basic("ci-samples", pw), "samples/deep/new/repo"); c.status != 202 {
		t.Errorf("push to a new repository under samples/: %d %s", c.status, c.body)
	}
	c = push(basic("ci-samples", pw), "other/b")
	if c.status != 403 || c.errCode() != "DENIED" || !strings.Contains(c.message(), `scope map "ci-samples-scope-map"`) {
		t.Errorf("push to other/b: %d %s", c.status, c.body)
	}
	c = push(bearer(r.AccessToken), "other/b")
	if c.status != 401 || !strings.Contains(c.header.Get("WWW-Authenticate"), `error="insufficient_scope"`) || !strings.Contains(c.message(), "insufficient_scope") {
		t.Errorf("push to other/b with a bearer token: %d %q %s", c.status, c.header.Get("WWW-Authenticate"), c.body)
	}
	if c := do(t, "GET", s.URL+"/v2/_catalog", basic("ci-samples", pw), nil); c.status != 200 || strings.Contains(string(c.body), "other/") {
		t.Errorf("catalog with a samples/* token: %d %s", c.status, c.body)
	}

	// A scope-map change applies at once, to tokens already issued too.
	if st := s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default/scopeMaps/ci-samples-scope-map",
		map[string]any{"removeRepositories": []map[string]any{{"repository": "samples/*", "actions": []string{"content/write"}}}}, nil); st != 200 {
		t.Fatalf("update scope map: %d", st)
	}
	if c := push(bearer(r.AccessToken), "samples/a"); c.status != 401 || !strings.Contains(c.message(), "does not grant content/write") {
		t.Errorf("push after write was removed: %d %s", c.status, c.body)
	}
	// Disabled: the right password is told so, and issued tokens stop working.
	s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default/tokens/ci-samples", map[string]any{"status": "disabled"}, nil)
	if c := do(t, "GET", s.URL+"/v2/", basic("ci-samples", pw), nil); c.status != 401 || !strings.Contains(c.message(), "token is disabled") {
		t.Errorf("disabled token: %d %s", c.status, c.body)
	}
	if c := do(t, "GET", s.URL+"/v2/samples/a/tags/list", bearer(r.AccessToken), nil); c.status != 401 {
		t.Errorf("access token of a disabled token: %d %s", c.status, c.body)
	}
	s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default/tokens/ci-samples", map[string]any{"status": "enabled"}, nil)

	// Passwords expire by the server's clock, and the message says which and when.
	var gen struct {
		Credentials struct {
			Passwords []struct{ Name, Value, Expiry string }
		}
	}
	if st := s.Mgmt(t, "POST", "/mgmt/v1/registries/default/tokens/ci-samples/credentials", map[string]any{"password2": true, "expiryInDays": 1}, &gen); st != 200 {
		t.Fatalf("generate password2: %d", st)
	}
	var pw2 string
	for _, p := range gen.Credentials.Passwords {
		if p.Name == "password2" {
			pw2 = p.Value
		}
	}
	if c := do(t, "GET", s.URL+"/v2/", basic("ci-samples", pw2), nil); c.status != 200 {
		t.Errorf("fresh password2: %d %s", c.status, c.body)
	}
	clk.Add(25 * time.Hour)
	c = do(t, "GET", s.URL+"/v2/", basic("ci-samples", pw2), nil)
	if c.status != 401 || !strings.Contains(c.message(), "password2 of token ci-samples expired on") {
		t.Errorf("expired password2: %d %s", c.status, c.body)
	}
	if c := do(t, "GET", s.URL+"/v2/", basic("ci-samples", pw), nil); c.status != 200 {
		t.Errorf("password1 (no expiry) after password2 expired: %d %s", c.status, c.body)
	}

	// A token on a system scope map with '*' lists the catalog.
	admin := createToken(t, s, "reader", nil, map[string]any{"scopeMap": "_repositories_pull"})
	if c := do(t, "GET", s.URL+"/v2/_catalog", basic("reader", admin), nil); c.status != 200 {
		t.Errorf("catalog with _repositories_pull: %d %s", c.status, c.body)
	}
	if c := push(basic("reader", admin), "samples/a"); c.status != 403 {
		t.Errorf("push with _repositories_pull: %d %s", c.status, c.body)
	}
	// Deleting a scope map in use is refused, naming the token.
	if st := s.Mgmt(t, "DELETE", "/mgmt/v1/registries/default/scopeMaps/ci-samples-scope-map", nil, nil); st != http.StatusConflict {
		t.Errorf("delete of a scope map in use: %d", st)
	}
	if st := s.Mgmt(t, "DELETE", "/mgmt/v1/registries/default/scopeMaps/_repositories_pull", nil, nil); st != http.StatusBadRequest {
		t.Errorf("delete of a system scope map: %d", st)
	}
}

func TestScopeMapValidation(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	n := 0
	for _, tc := range []struct {
		repo    string
		actions []string
		ok      bool
	}{
		{"samples/*", []string{"content/read"}, true},
		{"*", []string{"metadata/read"}, true},
		{"sample/teama/projectb", []string{"content/delete"}, true},
		{"sample/*/teamA", []string{"content/read"}, false},
		{"sample/teamA*", []string{"content/read"}, false},
		{"sample/teamA/*/projectB/*", []string{"content/read"}, false},
		{"Samples/*", []string{"content/read"}, false},
		{"samples/a", nil, false},
		{"samples/a", []string{"content/execute"}, false},
	} {
		n++
		st := s.Mgmt(t, "POST", "/mgmt/v1/registries/default/scopeMaps", map[string]any{"name": "map-case-" + strconv.Itoa(n),
			"repositories": []map[string]any{{"repository": tc.repo, "actions": tc.actions}}}, nil)
		if (st == http.StatusCreated) != tc.ok {
			t.Errorf("%q %v: status %d, want ok=%v", tc.repo, tc.actions, st, tc.ok)
		}
	}
	// Rules are additive, and wildcards cover repositories that do not exist yet.
	pw := createToken(t, s, "teamtoken", map[string][]string{"sample/*": {"content/read"}, "sample/teama/*": {"content/write"},
		"sample/teama/projectb": {"content/delete"}}, nil)
	r, _ := getToken(t, s, "teamtoken", pw, nil, "repository:sample/teama/projectb:pull,push,delete",
		"repository:sample/teama/projectc:pull,push,delete", "repository:sample/x:pull,push", "repository:samplex:pull")
	want := []string{"repository:sample/teama/projectb:pull,push,delete", "repository:sample/teama/projectc:pull,push", "repository:sample/x:pull"}
	if got := access(t, r.AccessToken); !slices.Equal(got, want) {
		t.Errorf("additive grants = %v; want %v", got, want)
	}
}

func TestSigninThrottling(t *testing.T) {
	clk := registrytest.NewClock()
	s := registrytest.New(t, registrytest.Options{Now: clk.Now, Config: nil})
	user, pass := s.Admin(t)
	max := s.Cfg.Auth.MaxFailures
	for i := 0; i < max-1; i++ {
		if c := do(t, "GET", s.URL+"/v2/", basic(user, "wrong"), nil); c.status != 401 {
			t.Fatalf("bad password %d: %d %s", i, c.status, c.body)
		}
	}
	c := do(t, "GET", s.URL+"/v2/", basic(user, "wrong"), nil)
	if c.status != 429 || c.errCode() != "TOOMANYREQUESTS" || c.header.Get("Retry-After") == "" {
		t.Fatalf("bad password %d: %d %v %s; want 429 with Retry-After", max, c.status, c.header, c.body)
	}
	ra, _ := strconv.Atoi(c.header.Get("Retry-After"))
	if ra < 1 || ra > int(s.Cfg.Auth.Lockout.Seconds()) {
		t.Errorf("Retry-After = %d", ra)
	}
	// Blocked: even the right password waits, on every sign-in path.
	if c := do(t, "GET", s.URL+"/v2/", basic(user, pass), nil); c.status != 429 {
		t.Errorf("good password while blocked: %d %s", c.status, c.body)
	}
	if _, c := getToken(t, s, user, pass, nil); c.status != 429 {
		t.Errorf("token endpoint while blocked: %d %s", c.status, c.body)
	}
	// Other identities are not blocked by one identity's failures.
	other := createToken(t, s, "unrelated", nil, map[string]any{"scopeMap": "_repositories_pull"})
	if c := do(t, "GET", s.URL+"/v2/", basic("unrelated", other), nil); c.status != 200 {
		t.Errorf("another identity: %d %s", c.status, c.body)
	}
	clk.Add(time.Duration(ra) * time.Second)
	if c := do(t, "GET", s.URL+"/v2/", basic(user, pass), nil); c.status != 200 {
		t.Errorf("good password after Retry-After: %d %s", c.status, c.body)
	}
	// Unknown names are throttled too, and the directory endpoint as well.
	for i := 0; i < max; i++ {
		c = do(t, "POST", s.URL+"/mgmt/v1/token", "", url.Values{"grant_type": {"password"}, "username": {"nobody"}, "password": {"x"}})
	}
	if c.status != 429 {
		t.Errorf("unknown user after %d attempts: %d %s", max, c.status, c.body)
	}
}

// TestNoSecretsInLogs runs a scenario that handles every kind of secret and checks that none of
// them appears in the server's log.
func TestNoSecretsInLogs(t *testing.T) {
	var mu sync.Mutex
	var logs bytes.Buffer
	s := registrytest.New(t, registrytest.Options{Log: writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	})})
	secrets := []string{registrytest.OwnerPassword}
	user, pass := s.Admin(t)
	secrets = append(secrets, pass)
	tokPw := createToken(t, s, "logcheck", map[string][]string{"x/*": {"content/read"}}, nil)
	secrets = append(secrets, tokPw)
	var sp struct{ AppID, Password string }
	s.Mgmt(t, "POST", "/mgmt/v1/servicePrincipals", map[string]any{"displayName": "ci"}, &sp)
	secrets = append(secrets, sp.Password)
	var u struct{ Password string }
	s.Mgmt(t, "POST", "/mgmt/v1/users", map[string]any{"name": "alice"}, &u)
	secrets = append(secrets, u.Password)
	r, _ := getToken(t, s, user, pass, nil, "repository:x/a:pull")
	secrets = append(secrets, r.AccessToken)
	dir := s.OwnerToken(t)
	secrets = append(secrets, dir)
	c := do(t, "POST", s.URL+"/oauth2/exchange", "", url.Values{"grant_type": {"access_token"}, "service": {s.Host}, "access_token": {dir}})
	var ex struct {
		RefreshToken string `json:"refresh_token"`
	}
	if c.status != 200 || json.Unmarshal(c.body, &ex) != nil || ex.RefreshToken == "" {
		t.Fatalf("exchange: %d %s", c.status, c.body)
	}
	secrets = append(secrets, ex.RefreshToken)
	// The refresh token in every place a client sends it: the refresh grant, the null GUID's
	// password (with and without an offline token), Basic on /v2/.
	c = do(t, "POST", s.URL+"/oauth2/token", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ex.RefreshToken},
		"service": {s.Host}, "scope": {"repository:x/a:pull"}})
	var fromRefresh tokenReply
	if c.status != 200 || json.Unmarshal(c.body, &fromRefresh) != nil || fromRefresh.AccessToken == "" {
		t.Fatalf("refresh grant: %d %s", c.status, c.body)
	}
	secrets = append(secrets, fromRefresh.AccessToken)
	if _, c := getToken(t, s, nullGUID, ex.RefreshToken, url.Values{"offline_token": {"true"}}, "repository:x/a:pull"); c.status != 200 {
		t.Fatalf("null GUID with the refresh token: %d %s", c.status, c.body)
	}
	for _, a := range []string{basic(user, pass), basic(user, pass+"x"), basic("logcheck", tokPw), bearer(r.AccessToken), basic(sp.AppID, sp.Password),
		basic(nullGUID, ex.RefreshToken), basic(nullGUID, fromRefresh.AccessToken), bearer(fromRefresh.AccessToken)} {
		do(t, "GET", s.URL+"/v2/x/a/tags/list", a, nil)
	}
	c = do(t, "POST", s.URL+"/mgmt/v1/token", "", url.Values{"grant_type": {"client_credentials"}, "client_id": {sp.AppID}, "client_secret": {sp.Password}})
	var spDir struct {
		AccessToken string `json:"access_token"`
	}
	if c.status != 200 || json.Unmarshal(c.body, &spDir) != nil || spDir.AccessToken == "" {
		t.Fatalf("service principal's directory token: %d %s", c.status, c.body)
	}
	secrets = append(secrets, spDir.AccessToken)
	do(t, "GET", s.URL+"/mgmt/v1/registries", bearer(spDir.AccessToken), nil)
	s.Stop()
	mu.Lock()
	defer mu.Unlock()
	if logs.Len() == 0 {
		t.Fatal("the scenario wrote no log at all")
	}
	for _, sec := range secrets {
		if sec == "" {
			t.Fatal("a secret of the scenario is empty")
		}
		if i := strings.Index(logs.String(), sec); i >= 0 {
			t.Errorf("a secret appears in the log: …%s…", logs.String()[max(0, i-80):i])
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestAccessTokenAsPasswordIsBounded checks that a token request signed in with an access token
// (the null GUID and the token as password, as clients that cache one do) gets at most what
// that token holds, although the identity behind it could get more.
func TestAccessTokenAsPasswordIsBounded(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	user, pass := s.Admin(t) // the admin user may do everything on every repository
	pullOnly, c := getToken(t, s, user, pass, nil, "repository:samples/a:pull")
	if c.status != 200 || !slices.Equal(access(t, pullOnly.AccessToken), []string{"repository:samples/a:pull"}) {
		t.Fatalf("pull-only token: %d %s", c.status, c.body)
	}
	ask := []string{"repository:samples/a:pull,push,delete", "repository:samples/b:pull,push", "registry:catalog:*"}
	r, c := getToken(t, s, nullGUID, pullOnly.AccessToken, nil, ask...)
	if c.status != 200 {
		t.Fatalf("token for an access token: %d %s", c.status, c.body)
	}
	if got, want := access(t, r.AccessToken), []string{"repository:samples/a:pull"}; !slices.Equal(got, want) {
		t.Errorf("an access token with %v asked for %v got %v; want %v", want, ask, got, want)
	}
	// The same request with the admin's password gets all of it: the bound is the token's.
	r, _ = getToken(t, s, user, pass, nil, ask...)
	if got := access(t, r.AccessToken); !slices.Equal(got, []string{"repository:samples/a:pull,push,delete", "repository:samples/b:pull,push", "registry:catalog:*"}) {
		t.Errorf("the admin's password got %v", got)
	}
	// And the bounded token cannot push where its source could not.
	if c := do(t, "POST", s.URL+"/v2/samples/a/blobs/uploads/", basic(nullGUID, pullOnly.AccessToken), nil); c.status != 401 {
		t.Errorf("push with a pull-only access token as password: %d %s", c.status, c.body)
	}
}

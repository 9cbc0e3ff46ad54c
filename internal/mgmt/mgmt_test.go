package mgmt_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/registrytest"
)

func signIn(t *testing.T, s *registrytest.Server, form url.Values) (int, string, string) {
	t.Helper()
	resp, err := http.PostForm(s.URL+"/mgmt/v1/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(b, &out)
	return resp.StatusCode, out.AccessToken, string(b)
}

func raw(t *testing.T, s *registrytest.Server, method, path, auth, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAuthorization(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	var alice struct{ Password string }
	if st := s.Mgmt(t, "POST", "/mgmt/v1/users", map[string]string{"name": "alice"}, &alice); st != 201 || alice.Password == "" {
		t.Fatalf("create user: %d", st)
	}
	_, aliceTok, _ := signIn(t, s, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alice.Password}})
	for _, tc := range []struct {
		name, auth string
		status     int
		want       string
	}{
		{"no token", "", 401, "berth auth login"},
		{"garbage token", "Bearer xyz", 401, "malformed"},
		{"basic auth", "Basic b3duZXI6eA==", 401, "authentication required"},
		{"user without a role", "Bearer " + aliceTok, 403, `has no role that gives registries/write at /`},
		{"owner", "Bearer " + s.OwnerToken(t), 201, `"name":"team1"`},
	} {
		st, body := raw(t, s, "POST", "/mgmt/v1/registries", tc.auth, `{"name":"team1"}`)
		if st != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s; want %d with %q", tc.name, st, body, tc.status, tc.want)
		}
	}
	if st, body := raw(t, s, "GET", "/mgmt/v1/me", "Bearer "+aliceTok, ""); st != 200 || !strings.Contains(body, `"serverOwner":false`) {
		t.Errorf("me for alice: %d %s", st, body)
	}
	// Registries alice has no role on are not listed, and look missing.
	if st, body := raw(t, s, "GET", "/mgmt/v1/registries", "Bearer "+aliceTok, ""); st != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("list for alice: %d %s", st, body)
	}
	if st, body := raw(t, s, "GET", "/mgmt/v1/registries/team1", "Bearer "+aliceTok, ""); st != 404 {
		t.Errorf("show team1 for alice: %d %s", st, body)
	}
	// A directory token is no registry token, and the other way round.
	if st, _ := raw(t, s, "GET", "/v2/", "Bearer "+aliceTok, ""); st != 401 {
		t.Errorf("directory token on /v2/: %d", st)
	}
}

func TestBadRequests(t *testing.T) {
	clk := registrytest.NewClock()
	s := registrytest.New(t, registrytest.Options{Now: clk.Now})
	owner := "Bearer " + s.OwnerToken(t)
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/mgmt/v1/registries", `{"name":`, 400, "not valid JSON"},
		{"POST", "/mgmt/v1/registries", `{"name":"x","colour":"red"}`, 400, "unknown field"},
		{"POST", "/mgmt/v1/registries", ``, 400, "JSON body"},
		{"POST", "/mgmt/v1/registries", `{"name":"` + strings.Repeat("a", 2<<20) + `"}`, 413, "larger than"},
		{"POST", "/mgmt/v1/registries", `{"name":"Bad_Name"}`, 400, "registry name"},
		{"POST", "/mgmt/v1/registries", `{"name":"default"}`, 409, "already exists"},
		{"GET", "/mgmt/v1/registries/nope", ``, 404, `was not found`},
		{"DELETE", "/mgmt/v1/registries/default", ``, 409, "default registry cannot be deleted"},
		{"POST", "/mgmt/v1/registries/default/tokens", `{"name":"default","scopeMap":"_repositories_pull"}`, 400, "admin user's name"},
		{"POST", "/mgmt/v1/registries/default/tokens", `{"name":"00000000-0000-0000-0000-000000000000","scopeMap":"_repositories_pull"}`, 400, "GUID"},
		{"POST", "/mgmt/v1/registries/default/tokens", `{"name":"both1","scopeMap":"_repositories_pull","repositories":[{"repository":"a","actions":["content/read"]}]}`, 400, "usage error"},
		{"POST", "/mgmt/v1/registries/default/tokens", `{"name":"neither"}`, 400, "usage error"},
		{"POST", "/mgmt/v1/registries/default/tokens", `{"name":"past1","scopeMap":"_repositories_pull","expiry":"2001-01-01T00:00:00Z"}`, 400, "in the past"},
		{"POST", "/mgmt/v1/registries/default/tokens", `{"name":"nomap","scopeMap":"missing"}`, 404, "not found"},
		{"POST", "/mgmt/v1/registries/default/tokens", `{"name":"stat1","scopeMap":"_repositories_pull","status":"paused"}`, 400, "status"},
		{"POST", "/mgmt/v1/registries/default/credentials/renew", `{"name":"password3"}`, 400, "password or password2"},
		{"POST", "/mgmt/v1/registries/default/credentials/renew", `{"name":"password"}`, 409, "admin user is disabled"},
		{"POST", "/mgmt/v1/users", `{"name":"bob","password":"short"}`, 400, "12 to 256"},
		{"DELETE", "/mgmt/v1/users/owner", ``, 400, "signed in as"},
		{"POST", "/mgmt/v1/groups/nope/members", `{"user":"owner"}`, 404, "not found"},
		{"GET", "/mgmt/v1/nothing", ``, 404, "not an endpoint"},
	} {
		st, body := raw(t, s, tc.method, tc.path, owner, tc.body)
		if st != tc.status || !strings.Contains(body, tc.want) || !strings.Contains(body, `"errors"`) {
			t.Errorf("%s %s %.60s: %d %.300s; want %d with %q", tc.method, tc.path, tc.body, st, body, tc.status, tc.want)
		}
	}
}

func TestServicePrincipalSecrets(t *testing.T) {
	clk := registrytest.NewClock()
	s := registrytest.New(t, registrytest.Options{Now: clk.Now})
	var sp struct{ AppID, Password, Tenant, DisplayName string }
	if st := s.Mgmt(t, "POST", "/mgmt/v1/servicePrincipals", map[string]any{"displayName": "ci"}, &sp); st != 201 || sp.Tenant != "berth" || sp.AppID == "" {
		t.Fatalf("create sp: %d %+v", st, sp)
	}
	cc := func(secret string) (int, string) {
		st, _, body := signIn(t, s, url.Values{"grant_type": {"client_credentials"}, "client_id": {sp.AppID}, "client_secret": {secret}})
		return st, body
	}
	if st, body := cc(sp.Password); st != 200 {
		t.Fatalf("client credentials: %d %s", st, body)
	}
	var second struct{ Password string }
	if st := s.Mgmt(t, "POST", "/mgmt/v1/servicePrincipals/"+sp.AppID+"/credentials/reset", map[string]any{"append": true}, &second); st != 200 {
		t.Fatalf("append a secret: %d", st)
	}
	if st, _ := cc(sp.Password); st != 200 {
		t.Error("the first secret stopped working after an append")
	}
	if st := s.Mgmt(t, "POST", "/mgmt/v1/servicePrincipals/"+sp.AppID+"/credentials/reset", map[string]any{"append": true}, nil); st != 409 {
		t.Errorf("a third secret: %d; want 409", st)
	}
	var info struct {
		PasswordCredentials []struct{ KeyID, EndDateTime string }
	}
	s.Mgmt(t, "GET", "/mgmt/v1/servicePrincipals/"+sp.AppID, nil, &info)
	if len(info.PasswordCredentials) != 2 {
		t.Fatalf("credentials = %+v", info)
	}
	end, _ := time.Parse(time.RFC3339, info.PasswordCredentials[0].EndDateTime)
	if d := end.Sub(clk.Now()); d < 364*24*time.Hour || d > 367*24*time.Hour {
		t.Errorf("a secret expires in %v; want one year", d)
	}
	clk.Add(366 * 24 * time.Hour)
	if st, body := cc(second.Password); st != 401 || !strings.Contains(body, "secret") || !strings.Contains(body, "expired on") {
		t.Errorf("an expired secret: %d %s", st, body)
	}
	if st, body := cc("wrong"); st != 401 || strings.Contains(body, "expired") {
		t.Errorf("a wrong secret: %d %s (must not say more)", st, body)
	}
	if st, _, body := signIn(t, s, url.Values{"grant_type": {"client_credentials"}, "client_id": {"not-a-guid"}, "client_secret": {"x"}}); st != 401 || !strings.Contains(body, "GUID") {
		t.Errorf("a client id that is no GUID: %d %s", st, body)
	}
	if st := s.Mgmt(t, "DELETE", "/mgmt/v1/servicePrincipals/"+sp.AppID, nil, nil); st != 204 {
		t.Errorf("delete sp: %d", st)
	}
}

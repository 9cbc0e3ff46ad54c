package oauth_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/berth-registry/berth/internal/registrytest"
)

// TestRevivedCredentials (issue 15, attack 4): when a repository token, a directory user or a
// registry is deleted and another of the same name is created, what was issued to the old one
// does not work for the new one (ids are never given twice, and every check names the id).
func TestRevivedCredentials(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})

	// A repository token.
	newToken := func() string {
		var tok struct {
			Credentials struct{ Passwords []struct{ Value string } }
		}
		if st := s.Mgmt(t, "POST", "/mgmt/v1/registries/default/tokens", map[string]any{"name": "revive-me", "scopeMap": "_repositories_pull"}, &tok); st != http.StatusCreated {
			t.Fatalf("create token: %d", st)
		}
		return tok.Credentials.Passwords[0].Value
	}
	old, c := getToken(t, s, "revive-me", newToken(), url.Values{"access_type": {"offline"}}, "repository:x:pull")
	if c.status != 200 {
		t.Fatalf("token for revive-me: %d %s", c.status, c.body)
	}
	s.Mgmt(t, "DELETE", "/mgmt/v1/registries/default/tokens/revive-me", nil, nil)
	newToken()
	if c := do(t, "GET", s.URL+"/v2/x/tags/list", bearer(old.AccessToken), nil); c.status != http.StatusUnauthorized && c.status != http.StatusForbidden {
		t.Errorf("the deleted token's access token on /v2/: %d %s", c.status, c.body)
	}
	if old.RefreshToken != "" {
		if _, c := getToken(t, s, nullGUID, old.RefreshToken, nil, "repository:x:pull"); c.status == http.StatusOK {
			t.Errorf("the deleted token's refresh token: %d %s", c.status, c.body)
		}
	}

	// A directory user.
	newUser := func() string {
		var u struct{ Password string }
		if st := s.Mgmt(t, "POST", "/mgmt/v1/users", map[string]string{"name": "revived"}, &u); st != http.StatusCreated {
			t.Fatalf("create user: %d", st)
		}
		return u.Password
	}
	c = do(t, "POST", s.URL+"/mgmt/v1/token", "", url.Values{"grant_type": {"password"}, "username": {"revived"}, "password": {newUser()}})
	var dir tokenReply
	if c.status != 200 || json.Unmarshal(c.body, &dir) != nil {
		t.Fatalf("directory token: %d %s", c.status, c.body)
	}
	s.Mgmt(t, "DELETE", "/mgmt/v1/users/revived", nil, nil)
	newUser()
	// The new user of that name may pull: nothing issued to the old one may.
	if st := s.Mgmt(t, "POST", "/mgmt/v1/roleAssignments", map[string]string{"assignee": "revived", "role": "AcrPull", "scope": "/registries/default"}, nil); st != http.StatusCreated {
		t.Fatalf("assign AcrPull: %d", st)
	}
	if c := do(t, "GET", s.URL+"/mgmt/v1/me", bearer(dir.AccessToken), nil); c.status != http.StatusUnauthorized {
		t.Errorf("the deleted user's directory token: %d %s", c.status, c.body)
	}
	// Exchanged, it gives a refresh token that names the old id: refused where it is used.
	c = do(t, "POST", s.URL+"/oauth2/exchange", "", url.Values{"grant_type": {"access_token"}, "service": {s.Host}, "access_token": {dir.AccessToken}})
	var ex tokenReply
	if c.status == http.StatusOK && json.Unmarshal(c.body, &ex) == nil {
		if r, c := getToken(t, s, nullGUID, ex.RefreshToken, nil, "repository:x:pull"); c.status == http.StatusOK {
			access, _ := claims(t, r.AccessToken)["access"].([]any)
			for _, a := range access {
				if acts, _ := a.(map[string]any)["actions"].([]any); len(acts) > 0 {
					t.Errorf("the deleted user's exchanged refresh token was granted %v", a)
				}
			}
		}
	}

	// A registry, through its admin user.
	newRegistry := func() (string, string) {
		var reg struct {
			Credentials struct {
				Username  string
				Passwords []struct{ Value string }
			}
		}
		if st := s.Mgmt(t, "POST", "/mgmt/v1/registries", map[string]any{"name": "revival", "loginServer": "revival.example", "adminUserEnabled": true}, &reg); st != http.StatusCreated {
			t.Fatalf("create registry: %d", st)
		}
		return reg.Credentials.Username, reg.Credentials.Passwords[0].Value
	}
	user, pass := newRegistry()
	q := url.Values{"service": {"revival.example"}, "scope": {"repository:x:pull"}}
	c = doHost(t, "GET", s.URL+"/oauth2/token?"+q.Encode(), "revival.example", basic(user, pass), nil)
	var adm tokenReply
	if c.status != 200 || json.Unmarshal(c.body, &adm) != nil {
		t.Fatalf("admin token: %d %s", c.status, c.body)
	}
	if st := s.Mgmt(t, "DELETE", "/mgmt/v1/registries/revival", nil, nil); st != http.StatusNoContent {
		t.Fatalf("delete registry: %d", st)
	}
	newRegistry()
	if c := doHost(t, "GET", s.URL+"/v2/x/tags/list", "revival.example", bearer(adm.AccessToken), nil); c.status == http.StatusOK || c.status == http.StatusNotFound {
		t.Errorf("the deleted registry's admin access token: %d %s", c.status, c.body)
	}
}

package oauth_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/registrytest"
	"github.com/berth-registry/berth/internal/store"
)

// TestTokenEndpointEdges: the forms a client may send at the edges of what is accepted, each
// with the reply and (for sign-ins) the identity its login event names.
func TestTokenEndpointEdges(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	user, pass := s.Admin(t)
	var sp struct{ AppID, Password string }
	s.Mgmt(t, "POST", "/mgmt/v1/servicePrincipals", map[string]any{"displayName": "robot"}, &sp)
	svc := func(kv ...string) url.Values {
		v := url.Values{"service": {s.Host}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	// A password grant needs both halves: one alone is a failed sign-in, not anonymous.
	for _, f := range []url.Values{svc("grant_type", "password", "username", user), svc("grant_type", "password", "password", pass)} {
		if c := do(t, "POST", s.URL+"/oauth2/token", "", f); c.status != 401 {
			t.Errorf("password grant %v: %d %s; want 401", f, c.status, c.body)
		}
	}
	// The null GUID in a password grant with a refresh token: an offline request gets it back.
	dir := s.OwnerToken(t)
	c := do(t, "POST", s.URL+"/oauth2/exchange", "", svc("grant_type", "access_token", "access_token", dir))
	var ex struct {
		RefreshToken string `json:"refresh_token"`
	}
	json.Unmarshal(c.body, &ex)
	var r tokenReply
	c = do(t, "POST", s.URL+"/oauth2/token", "", svc("grant_type", "password", "username", nullGUID, "password", ex.RefreshToken, "access_type", "offline"))
	if json.Unmarshal(c.body, &r); c.status != 200 || r.RefreshToken != ex.RefreshToken {
		t.Errorf("null GUID and a refresh token in a password grant, offline: %d, refresh token echoed %v", c.status, r.RefreshToken == ex.RefreshToken)
	}
	c = do(t, "POST", s.URL+"/oauth2/token", "", svc("grant_type", "password", "username", user, "password", pass, "access_type", "offline"))
	r = tokenReply{}
	if json.Unmarshal(c.body, &r); c.status != 200 || r.RefreshToken != "" {
		t.Errorf("a password grant with a password, offline: %d, refresh token %q (a password is not a refresh token)", c.status, r.RefreshToken)
	}
	// client_credentials: the secret may come as Basic; a client_id in the form wins over it.
	if c := do(t, "POST", s.URL+"/mgmt/v1/token", basic(sp.AppID, sp.Password), url.Values{"grant_type": {"client_credentials"}}); c.status != 200 {
		t.Errorf("client credentials as Basic: %d %s", c.status, c.body)
	}
	if c := do(t, "POST", s.URL+"/mgmt/v1/token", basic(sp.AppID, sp.Password), url.Values{"grant_type": {"client_credentials"},
		"client_id": {"99999999-2222-4333-8444-555555555555"}, "client_secret": {"x"}}); c.status != 401 {
		t.Errorf("a form client_id with other Basic credentials: %d %s; want 401 (the form is used)", c.status, c.body)
	}
	// Limits, exactly at and one past.
	g120, g121 := strings.Repeat("g", 120), strings.Repeat("g", 121)
	for gt, suffix := range map[string]string{g120: g120 + `\"`, g121: g120 + `…\"`} {
		if c := do(t, "POST", s.URL+"/oauth2/token", "", svc("grant_type", gt)); c.status != 400 || !strings.Contains(string(c.body), suffix) {
			t.Errorf("grant_type of %d bytes: %d %s", len(gt), c.status, c.body)
		}
	}
	for n, long := range map[int]bool{255: false, 256: true} {
		c := do(t, "GET", s.URL+"/oauth2/token?"+url.Values{"service": {strings.Repeat("h", n)}}.Encode(), basic(user, pass), nil)
		if strings.Contains(string(c.body), "longer than 255") != long {
			t.Errorf("service of %d bytes: %d %s", n, c.status, c.body)
		}
	}
	big := strings.Repeat("x", 1<<20)
	if c := do(t, "POST", s.URL+"/oauth2/token", "", url.Values{"grant_type": {"password"}, "pad": {big}}); c.status != 413 {
		t.Errorf("a form over the limit: %d %s; want 413", c.status, c.body)
	}
	// The login event names the identity of the credentials, not a stray form field.
	do(t, "GET", s.URL+"/oauth2/token?"+svc("username", "someone-else").Encode(), basic(user, "wrong"), nil)
	do(t, "POST", s.URL+"/mgmt/v1/token", basic(sp.AppID, "wrong"), url.Values{"grant_type": {"password"}, "username": {"form-user"}, "password": {"x"}})
	do(t, "POST", s.URL+"/mgmt/v1/token", basic(sp.AppID, "wrong"), url.Values{"grant_type": {"bogus"}, "username": {"form-user"}})
	// Refused before any sign-in (a service name too long): still the Basic user.
	do(t, "GET", s.URL+"/oauth2/token?"+url.Values{"service": {strings.Repeat("h", 256)}, "username": {"someone-else"}}.Encode(), basic(user, "wrong"), nil)
	s.SettleEvents(t)
	evs, err := s.Meta().LoginEvents(t.Context(), store.EventFilter{Limit: 4})
	if err != nil || len(evs) != 4 {
		t.Fatalf("events: %v %v", evs, err)
	}
	if evs[0].Identity != user {
		t.Errorf("a token request refused before sign-in, with Basic %s and a form username: the event names %q", user, evs[0].Identity)
	}
	evs = evs[1:]
	if evs[2].Identity != user {
		t.Errorf("Basic %s with a form username: the event names %q", user, evs[2].Identity)
	}
	if evs[1].Identity != "form-user" {
		t.Errorf("a directory password grant: the event names %q; want the form's user", evs[1].Identity)
	}
	if evs[0].Identity != sp.AppID {
		t.Errorf("an unsupported grant with Basic credentials and a form username: the event names %q; want the Basic user", evs[0].Identity)
	}
}

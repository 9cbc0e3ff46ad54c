package oauth_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/registrytest"
)

// TestRevokeDirectoryRefresh: berth auth logout's endpoint (RFC 7009) answers 200 with an empty
// JSON object, for a known refresh token (whose sign-in then ends) and an unknown one alike.
func TestRevokeDirectoryRefresh(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	signIn := do(t, "POST", s.URL+"/mgmt/v1/token", "", url.Values{"grant_type": {"password"}, "username": {"owner"},
		"password": {registrytest.OwnerPassword}, "scope": {"offline_access"}})
	var rep struct {
		RefreshToken string `json:"refresh_token"`
	}
	if signIn.status != 200 || json.Unmarshal(signIn.body, &rep) != nil || rep.RefreshToken == "" {
		t.Fatalf("sign-in: %d %s", signIn.status, signIn.body)
	}
	for _, tok := range []string{rep.RefreshToken, "not-a-token-berth-knows"} {
		c := do(t, "POST", s.URL+"/mgmt/v1/token/revoke", "", url.Values{"token": {tok}})
		if c.status != 200 || strings.TrimSpace(string(c.body)) != "{}" || !strings.HasPrefix(c.header.Get("Content-Type"), "application/json") {
			t.Errorf("revoke %.12s…: %d %q %q, want 200 {} as JSON", tok, c.status, c.body, c.header.Get("Content-Type"))
		}
	}
	if c := do(t, "POST", s.URL+"/mgmt/v1/token", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rep.RefreshToken}}); c.status == 200 {
		t.Errorf("a revoked refresh token renewed the sign-in: %s", c.body)
	}
}

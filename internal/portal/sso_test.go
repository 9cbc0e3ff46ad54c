package portal_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/registrytest"
	"github.com/berth-registry/berth/internal/sso/ssotest"
)

// TestSingleSignOn: a person signs in to the portal with an identity provider (the real test
// provider), becomes the directory user berth maps them to, with the roles of the groups the
// provider names; a code comes back only to the browser that started the sign-in.
func TestSingleSignOn(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) {
		c.Federation.AllowHTTP, c.Outbound.AllowedNetworks = true, []string{"127.0.0.0/8"}
	}})
	issuer := ssotest.Provider(t, s.URL+"/mgmt/v1/sso/callback")
	if st := s.Mgmt(t, "POST", "/mgmt/v1/groups", map[string]string{"name": "devs"}, nil); st >= 300 {
		t.Fatalf("group: %d", st)
	}
	if st := s.Mgmt(t, "POST", "/mgmt/v1/roleAssignments", map[string]any{"assignee": "devs", "role": "Reader", "scope": "/registries/default"}, nil); st >= 300 {
		t.Fatalf("assign: %d", st)
	}
	if st := s.Mgmt(t, "POST", "/mgmt/v1/identityProviders", client.IdentityProvider{Name: "corp", Issuer: issuer, ClientID: "berth", ClientSecret: "berth-secret",
		CreateUsers: true}, nil); st != http.StatusCreated {
		t.Fatalf("identity provider: %d", st)
	}
	b := newBrowser(t, s.URL)
	_, page := b.get("/portal/signin")
	if !strings.Contains(page, `id="sso-corp"`) {
		t.Fatal("the sign-in page offers no single sign-on")
	}
	if resp, _ := b.post("/portal/sso/start", url.Values{"idp": {"corp"}, "csrf": {"WRONG"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a start without the sign-in form's token: %d", resp.StatusCode)
	}
	b.get("/portal/signin")
	resp, _ := b.post("/portal/sso/start", url.Values{"idp": {"corp"}})
	first, _ := url.Parse(resp.Header.Get("Location"))
	b.get("/portal/signin")
	resp, _ = b.post("/portal/sso/start", url.Values{"idp": {"corp"}, "next": {"/portal/r/default/keys"}})
	start := resp.Header.Get("Location")
	second, _ := url.Parse(start)
	set := strings.Join(resp.Header.Values("Set-Cookie"), "\n")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(start, "/mgmt/v1/sso/corp/login?") || !strings.Contains(set, "HttpOnly") || !strings.Contains(set, "SameSite=Lax") {
		t.Fatalf("start: %d %s %s", resp.StatusCode, start, set)
	}
	if c1, c2 := first.Query().Get("code_challenge"), second.Query().Get("code_challenge"); c1 == c2 || len(c2) != 43 || first.Query().Get("state") == second.Query().Get("state") {
		t.Errorf("two starts share a challenge or a state: %s %s", c1, c2)
	}
	// The browser goes to the provider, signs in there, and comes back through berth's callback.
	follow := &http.Client{Jar: b.c.Jar}
	resp, err := follow.Get(s.URL + start)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	login := *resp.Request.URL
	id := login.Query().Get("authRequestID")
	login.RawQuery = ""
	resp, err = follow.PostForm(login.String(), url.Values{"username": {"alice"}, "password": {ssotest.AlicePassword}, "id": {id}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Request.URL.Path != "/portal/sso/done" || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `href="/portal/r/default/keys"`) {
		t.Fatalf("back at %s: %d %s", resp.Request.URL, resp.StatusCode, errorText(string(body)))
	}
	done := resp.Request.URL.String()
	if _, page := b.get("/portal/r/default/keys"); !strings.Contains(page, `id="signed-in-as">alice<`) {
		t.Fatalf("after single sign-on: %s", errorText(page))
	}
	// The same code again, or from another browser, opens nothing.
	other := newBrowser(t, s.URL)
	if resp, page := other.get(strings.TrimPrefix(done, s.URL)); resp.StatusCode != http.StatusBadRequest || other.cookie("berth_portal") != "" {
		t.Errorf("the code in another browser: %d %s", resp.StatusCode, errorText(page))
	}
	if resp, _ := b.get(strings.TrimPrefix(done, s.URL)); resp.StatusCode == http.StatusOK {
		t.Errorf("the code replayed: %d", resp.StatusCode)
	}
	// berth sends a sign-in back only to a loopback client or to its own portal page.
	q := url.Values{"redirect_uri": {"http://evil.example/portal/sso/done"}, "state": {"x"}, "code_challenge": {strings.Repeat("A", 43)}, "code_challenge_method": {"S256"}}
	if resp, _ := b.get("/mgmt/v1/sso/corp/login?" + q.Encode()); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a redirect elsewhere: %d", resp.StatusCode)
	}
}

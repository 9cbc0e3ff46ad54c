package oauth_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/federation"
	"github.com/berth-registry/berth/internal/federation/federationtest"
	"github.com/berth-registry/berth/internal/registrytest"
)

// federatedServer is a berth that trusts the test issuer (over http on loopback, as
// configured), with a service principal holding AcrPush on the default registry and a
// federated credential for GitHub's main branch of acme/app.
func federatedServer(t *testing.T, is *federationtest.Issuer, allowLoopback bool) (*registrytest.Server, string) {
	t.Helper()
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) {
		c.Federation.Issuers, c.Federation.AllowHTTP = []string{is.URL}, true
		if allowLoopback {
			c.Outbound.AllowedNetworks = []string{"127.0.0.0/8"}
		}
	}})
	var sp struct{ AppID string }
	if st := s.Mgmt(t, "POST", "/mgmt/v1/servicePrincipals", map[string]any{"displayName": "pipeline"}, &sp); st != 201 && st != 200 {
		t.Fatalf("create sp: %d", st)
	}
	if st := s.Mgmt(t, "POST", "/mgmt/v1/roleAssignments", map[string]any{"assignee": sp.AppID, "role": "AcrPush", "scope": "/registries/default"}, nil); st >= 300 {
		t.Fatalf("assign: %d", st)
	}
	if st := s.Mgmt(t, "POST", "/mgmt/v1/servicePrincipals/"+sp.AppID+"/federatedCredentials", client.FederatedCredential{Name: "main", Issuer: is.URL,
		Subject: ptr("repo:acme/app:ref:refs/heads/main"), Description: "pushes from main"}, nil); st != 201 {
		t.Fatalf("create federated credential: %d", st)
	}
	return s, sp.AppID
}

func ptr(s string) *string { return &s }

// TestFederatedSignIn (issue 20): a GitHub Actions token for main signs in as the service
// principal with Entra's client assertion at /mgmt/v1/token (then the usual exchange for a
// registry refresh token), as a password at /oauth2/token (docker login -u APPID -p TOKEN) and
// on /v2/ itself; the dev branch is refused naming its subject, in the reply and in the login
// event, which carries the issuer and subject.
func TestFederatedSignIn(t *testing.T) {
	is := federationtest.New(t)
	s, appID := federatedServer(t, is, true)
	main := is.Sign(t, nil, federationtest.GitHub("acme/app", "refs/heads/main"))
	dev := is.Sign(t, nil, federationtest.GitHub("acme/app", "refs/heads/dev"))

	// Entra's request shape, then the ACR exchange.
	assertion := func(tok string) call {
		return do(t, "POST", s.URL+"/mgmt/v1/token", "", url.Values{"grant_type": {"client_credentials"}, "client_id": {appID},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {tok}})
	}
	r := assertion(main)
	var dir struct {
		AccessToken string `json:"access_token"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &dir) != nil || dir.AccessToken == "" {
		t.Fatalf("client assertion: %d %s", r.status, r.body)
	}
	r = do(t, "POST", s.URL+"/oauth2/exchange", "", url.Values{"grant_type": {"access_token"}, "service": {s.Host}, "access_token": {dir.AccessToken}})
	if r.status != 200 || !strings.Contains(string(r.body), "refresh_token") {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	if r := assertion(main); r.status != 200 {
		t.Errorf("the same token again (a pipeline's retries): %d", r.status)
	}
	r = do(t, "POST", s.URL+"/mgmt/v1/token", "", url.Values{"grant_type": {"client_credentials"}, "client_id": {appID}, "client_assertion_type": {"x"}, "client_assertion": {main}})
	if r.status != 400 || !strings.Contains(r.message(), "jwt-bearer") {
		t.Errorf("another client_assertion_type: %d %s", r.status, r.body)
	}

	// docker login -u APPID -p "$OIDC_TOKEN": Basic at the token endpoint, and on /v2/.
	r = do(t, "GET", s.URL+"/oauth2/token?service="+s.Host+"&scope=repository:acme/app:pull,push", basic(appID, main), nil)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &tok) != nil {
		t.Fatalf("token with the external token as password: %d %s", r.status, r.body)
	}
	if c := claims(t, tok.AccessToken); !strings.Contains(fmt.Sprint(c["access"]), "push") {
		t.Errorf("the access token does not grant push: %v", c["access"])
	}
	if r := do(t, "POST", s.URL+"/v2/acme/app/blobs/uploads/", basic(appID, main), nil); r.status != 202 {
		t.Errorf("/v2/ with the external token as password: %d %s", r.status, r.body)
	}

	// The dev branch: refused, its subject named, everywhere.
	for _, r := range []call{assertion(dev), do(t, "GET", s.URL+"/oauth2/token?service="+s.Host+"&scope=repository:acme/app:pull", basic(appID, dev), nil)} {
		if r.status != 401 || !strings.Contains(r.message(), "subject repo:acme/app:ref:refs/heads/dev does not match the federated credential \"main\"") {
			t.Errorf("dev branch: %d %s", r.status, r.body)
		}
	}
	s.SettleEvents(t)
	var events []client.LoginEvent
	s.Mgmt(t, "GET", "/mgmt/v1/events/login?identity="+appID, nil, &events)
	var ok, refused int
	for _, e := range events {
		switch {
		case e.Issuer != is.URL: // the exchange of a directory token, a malformed request
		case e.Result == "success" && e.Subject == "repo:acme/app:ref:refs/heads/main":
			ok++
		case e.Reason == federation.ReasonSubject && e.Subject == "repo:acme/app:ref:refs/heads/dev" && strings.Contains(e.Message, "refs/heads/dev"):
			refused++
		}
	}
	if ok < 4 || refused != 2 {
		t.Errorf("login events: %d successes with main's subject (want ≥ 4), %d refusals naming dev (want 2): %+v", ok, refused, events)
	}
	// Filtered by the subject: the dev branch's two refusals, nothing else.
	var dev2 []client.LoginEvent
	s.Mgmt(t, "GET", "/mgmt/v1/events/login?subject="+url.QueryEscape("repo:acme/app:ref:refs/heads/dev"), nil, &dev2)
	if len(dev2) != 2 || dev2[0].Result != "failure" || dev2[1].Result != "failure" {
		t.Errorf("events of the dev subject: %+v", dev2)
	}
}

// TestFederatedRefusals (issue 20): a loopback issuer not in outbound.allowed_networks cannot be
// reached; an unknown client id, a principal without a credential for the issuer, and a server
// whose federation is off refuse with their reasons; a secret still signs in beside it.
func TestFederatedRefusals(t *testing.T) {
	is := federationtest.New(t)
	s, appID := federatedServer(t, is, false) // loopback not allowed
	main := is.Sign(t, nil, federationtest.GitHub("acme/app", "refs/heads/main"))
	r := do(t, "GET", s.URL+"/oauth2/token?service="+s.Host, basic(appID, main), nil)
	if r.status != 401 || !strings.Contains(r.message(), "outbound.allowed_networks") {
		t.Errorf("a loopback issuer without allowing it: %d %s", r.status, r.body)
	}

	s2, _ := federatedServer(t, is, true)
	var other struct{ AppID, Password string }
	s2.Mgmt(t, "POST", "/mgmt/v1/servicePrincipals", map[string]any{"displayName": "no-federation"}, &other)
	for _, tc := range []struct {
		name, user, says string
	}{
		{"unknown client id", "11111111-2222-4333-8444-555555555555", "application not registered"},
		{"no credential for the issuer", other.AppID, "has no federated credential for issuer"},
	} {
		if r := do(t, "GET", s2.URL+"/oauth2/token?service="+s2.Host, basic(tc.user, main), nil); r.status != 401 || !strings.Contains(r.message(), tc.says) {
			t.Errorf("%s: %d %s", tc.name, r.status, r.body)
		}
	}
	if r := do(t, "GET", s2.URL+"/oauth2/token?service="+s2.Host, basic(other.AppID, other.Password), nil); r.status != 200 {
		t.Errorf("a secret beside federation: %d %s", r.status, r.body)
	}
	r = do(t, "POST", s2.URL+"/mgmt/v1/token", "", url.Values{"grant_type": {"client_credentials"}, "client_id": {"pipeline"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {main}})
	if r.status != 401 || !strings.Contains(r.message(), "client id must be a GUID") {
		t.Errorf("a client id that is no GUID: %d %s", r.status, r.body)
	}
	off := registrytest.New(t, registrytest.Options{})
	if r := do(t, "GET", off.URL+"/oauth2/token?service="+off.Host, basic(appID, main), nil); r.status != 401 || !strings.Contains(r.message(), "federated sign-in is off") {
		t.Errorf("federation off: %d %s", r.status, r.body)
	}
}

// TestFederatedCredentialsAPI (issue 20): az ad app federated-credential's shape and rules: the
// issuer must be one the server trusts, a subject or an expression (not both), at most 20, names
// and issuer+subject unique, a static key set parsed; update and delete by name or id.
func TestFederatedCredentialsAPI(t *testing.T) {
	is := federationtest.New(t)
	s, appID := federatedServer(t, is, true)
	path := "/mgmt/v1/servicePrincipals/" + appID + "/federatedCredentials"
	var fc client.FederatedCredential
	if st := s.Mgmt(t, "GET", path+"/main", nil, &fc); st != 200 || fc.ID == "" || fc.Subject == nil || *fc.Subject != "repo:acme/app:ref:refs/heads/main" ||
		len(fc.Audiences) != 1 || fc.Audiences[0] != "api://BerthTokenExchange" || fc.ClaimsMatchingExpression != nil {
		t.Fatalf("show: %d %+v", st, fc)
	}
	for _, tc := range []struct {
		name string
		body map[string]any
		want int
	}{
		{"issuer not trusted", map[string]any{"name": "x1", "issuer": "https://token.actions.githubusercontent.com", "subject": "s"}, 400},
		{"subject and expression", map[string]any{"name": "x2", "issuer": is.URL, "subject": "s", "claimsMatchingExpression": map[string]any{"value": "claims['sub'] eq 's'", "languageVersion": 1}}, 400},
		{"neither", map[string]any{"name": "x3", "issuer": is.URL}, 400},
		{"bad expression", map[string]any{"name": "x4", "issuer": is.URL, "claimsMatchingExpression": map[string]any{"value": "sub == 'x'"}}, 400},
		{"bad name", map[string]any{"name": "-x", "issuer": is.URL, "subject": "s"}, 400},
		{"subject with spaces", map[string]any{"name": "x5", "issuer": is.URL, "subject": " s"}, 400},
		{"subject too long", map[string]any{"name": "x6", "issuer": is.URL, "subject": strings.Repeat("s", 601)}, 400},
		{"bad static key set", map[string]any{"name": "x7", "issuer": is.URL, "subject": "s", "jwks": map[string]any{"keys": []any{map[string]any{"kty": "oct", "k": "AAAA"}}}}, 400},
		{"name taken", map[string]any{"name": "main", "issuer": is.URL, "subject": "other"}, 409},
		{"issuer and subject taken", map[string]any{"name": "again", "issuer": is.URL, "subject": "repo:acme/app:ref:refs/heads/main"}, 409},
		{"expression", map[string]any{"name": "branches", "issuer": is.URL, "claimsMatchingExpression": map[string]any{"value": "claims['sub'] matches 'repo:acme/app:ref:refs/heads/*'", "languageVersion": 1}}, 201},
		{"static key set", map[string]any{"name": "airgapped", "issuer": is.URL, "subject": "system:serviceaccount:ci:pusher", "jwks": json.RawMessage(is.JWKS())}, 201},
	} {
		if st := s.Mgmt(t, "POST", path, tc.body, nil); st != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, st, tc.want)
		}
	}
	// The expression credential signs in a feature branch; the static key set a pod.
	for _, tok := range []string{is.Sign(t, nil, federationtest.GitHub("acme/app", "refs/heads/feature/y")), is.Sign(t, nil, federationtest.Kubernetes("ci", "pusher"))} {
		if r := do(t, "GET", s.URL+"/oauth2/token?service="+s.Host, basic(appID, tok), nil); r.status != 200 {
			t.Errorf("%d %s", r.status, r.body)
		}
	}
	for i := 0; ; i++ {
		st := s.Mgmt(t, "POST", path, map[string]any{"name": fmt.Sprintf("n%02d", i), "issuer": is.URL, "subject": fmt.Sprintf("s%d", i)}, nil)
		if st == 409 {
			if i+3 != 20 {
				t.Errorf("the %dth credential was refused; want the 21st", i+4)
			}
			break
		}
		if st != 201 || i > 20 {
			t.Fatalf("credential %d: %d", i, st)
		}
	}
	var list []client.FederatedCredential
	if s.Mgmt(t, "GET", path, nil, &list); len(list) != 20 {
		t.Errorf("list: %d", len(list))
	}
	// Update by id: the subject; the name does not change; delete by name.
	if st := s.Mgmt(t, "PATCH", path+"/"+fc.ID, map[string]any{"subject": "repo:acme/app:environment:prod"}, &fc); st != 200 || *fc.Subject != "repo:acme/app:environment:prod" {
		t.Errorf("update: %d %+v", st, fc)
	}
	if st := s.Mgmt(t, "PATCH", path+"/main", map[string]any{"name": "renamed"}, nil); st != 400 {
		t.Errorf("rename: %d", st)
	}
	if st := s.Mgmt(t, "DELETE", path+"/main", nil, nil); st != 204 {
		t.Errorf("delete: %d", st)
	}
	if st := s.Mgmt(t, "GET", path+"/main", nil, nil); st != 404 {
		t.Errorf("after delete: %d", st)
	}
	// Deleting the service principal deletes its credentials with it.
	if st := s.Mgmt(t, "DELETE", "/mgmt/v1/servicePrincipals/"+appID, nil, nil); st != 204 {
		t.Fatalf("delete sp: %d", st)
	}
	if r := do(t, "GET", s.URL+"/oauth2/token?service="+s.Host, basic(appID, is.Sign(t, nil, federationtest.GitHub("acme/app", "refs/heads/feature/y"))), nil); r.status != http.StatusUnauthorized {
		t.Errorf("a deleted principal's credential: %d", r.status)
	}
}

// TestFederatedSignInRechecked: a federated sign-in is remembered for a second at most, so that a
// credential deleted elsewhere (another replica: here, the store directly) stops the token
// within it; a deletion through this server's API stops it at once.
func TestFederatedSignInRechecked(t *testing.T) {
	is := federationtest.New(t)
	clk := registrytest.NewClock()
	s := registrytest.New(t, registrytest.Options{Now: clk.Now, Config: func(c *config.Config) {
		c.Federation.Issuers, c.Federation.AllowHTTP, c.Outbound.AllowedNetworks = []string{is.URL}, true, []string{"127.0.0.0/8"}
	}})
	var sp struct{ AppID string }
	s.Mgmt(t, "POST", "/mgmt/v1/servicePrincipals", map[string]any{"displayName": "pipeline"}, &sp)
	path := "/mgmt/v1/servicePrincipals/" + sp.AppID + "/federatedCredentials"
	for _, name := range []string{"main", "prod"} {
		s.Mgmt(t, "POST", path, client.FederatedCredential{Name: name, Issuer: is.URL, Subject: ptr("repo:acme/app:ref:refs/heads/" + name)}, nil)
	}
	signIn := func(tok string) int {
		return do(t, "GET", s.URL+"/oauth2/token?service="+s.Host, basic(sp.AppID, tok), nil).status
	}
	main := is.Sign(t, nil, federationtest.GitHub("acme/app", "refs/heads/main"))
	if st := signIn(main); st != 200 {
		t.Fatalf("main: %d", st)
	}
	// Deleted behind this server's back: remembered for under a second, then refused.
	sps, _ := s.Meta().ServicePrincipalByAppID(t.Context(), sp.AppID)
	fc, _ := s.Meta().FederatedCredential(t.Context(), sps.ID, "main")
	if err := s.Meta().DeleteFederatedCredential(t.Context(), sps.ID, fc.ID); err != nil {
		t.Fatal(err)
	}
	if st := signIn(main); st != 200 {
		t.Errorf("within the second: %d", st)
	}
	clk.Add(1100 * time.Millisecond)
	if st := signIn(main); st != 401 {
		t.Errorf("a second after the credential went: %d", st)
	}
	// Deleted through the API: at once.
	prod := is.Sign(t, nil, federationtest.GitHub("acme/app", "refs/heads/prod"))
	if st := signIn(prod); st != 200 {
		t.Fatalf("prod: %d", st)
	}
	if st := s.Mgmt(t, "DELETE", path+"/prod", nil, nil); st != 204 {
		t.Fatal(st)
	}
	if st := signIn(prod); st != 401 {
		t.Errorf("right after deleting the credential through the API: %d", st)
	}
}

// TestDirectoryRefreshOfServicePrincipals: a service principal's sign-in with offline_access
// (a secret or a federated token) renews with its refresh token while the principal exists.
func TestDirectoryRefreshOfServicePrincipals(t *testing.T) {
	is := federationtest.New(t)
	s, appID := federatedServer(t, is, true)
	r := do(t, "POST", s.URL+"/mgmt/v1/token", "", url.Values{"grant_type": {"client_credentials"}, "client_id": {appID},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {is.Sign(t, nil, federationtest.GitHub("acme/app", "refs/heads/main"))},
		"scope": {"offline_access"}})
	var tok struct {
		RefreshToken string `json:"refresh_token"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &tok) != nil || tok.RefreshToken == "" {
		t.Fatalf("sign-in: %d %s", r.status, r.body)
	}
	r = do(t, "POST", s.URL+"/mgmt/v1/token", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	if r.status != 200 || json.Unmarshal(r.body, &tok) != nil || tok.RefreshToken == "" {
		t.Fatalf("renewal: %d %s", r.status, r.body)
	}
	if st := s.Mgmt(t, "DELETE", "/mgmt/v1/servicePrincipals/"+appID, nil, nil); st != 204 {
		t.Fatal(st)
	}
	if r := do(t, "POST", s.URL+"/mgmt/v1/token", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}); r.status != 401 {
		t.Errorf("renewal after the principal went: %d", r.status)
	}
}

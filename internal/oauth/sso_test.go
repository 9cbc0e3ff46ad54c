package oauth_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/federation/federationtest"
	"github.com/berth-registry/berth/internal/registrytest"
	"github.com/berth-registry/berth/internal/sso/ssotest"
	"github.com/berth-registry/berth/internal/store"
)

func pkce() (verifier, challenge string) {
	verifier = strings.Repeat("v", 20) + base64.RawURLEncoding.EncodeToString([]byte(time.Now().String()))
	h := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(h[:])
}

// codeSignIn runs the authorization code flow as berth auth login --sso does, with a loopback
// listener, the person typing user and password at the provider; it returns what the loopback
// received.
func codeSignIn(t *testing.T, s *registrytest.Server, idp, user, password, challenge string) url.Values {
	t.Helper()
	got := make(chan url.Values, 1)
	loop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Query()
		io.WriteString(w, "signed in: you may close this window")
	}))
	defer loop.Close()
	q := url.Values{"redirect_uri": {loop.URL + "/callback"}, "state": {"client-state"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	end, status := ssotest.SignIn(t, s.URL+"/mgmt/v1/sso/"+idp+"/login?"+q.Encode(), user, password)
	select {
	case v := <-got:
		return v
	default:
		t.Fatalf("the browser did not come back to the loopback listener: ended at %s (%d)", end, status)
		return nil
	}
}

// TestSingleSignOn (issue 20): people sign in with their organisation's OpenID provider, a real
// one (zitadel/oidc) reached over HTTP: the authorization code flow with PKCE through berth's
// callback to a loopback client, the user created on first sign-in with the groups claim mapped
// to directory groups (whose roles then apply), the one-time code redeemed once and only with
// its verifier; a user whose groups claim drops a group leaves it; SSO users have no password;
// the device flow for a machine without a browser; login events carry issuer and subject.
func TestSingleSignOn(t *testing.T) {
	clk := registrytest.NewClock()
	s := registrytest.New(t, registrytest.Options{Now: clk.Now, Config: func(c *config.Config) {
		c.Federation.AllowHTTP, c.Outbound.AllowedNetworks = true, []string{"127.0.0.0/8"}
	}})
	issuer := ssotest.Provider(t, s.URL+"/mgmt/v1/sso/callback")
	if st := s.Mgmt(t, "POST", "/mgmt/v1/groups", map[string]string{"name": "devs"}, nil); st >= 300 {
		t.Fatalf("group: %d", st)
	}
	if st := s.Mgmt(t, "POST", "/mgmt/v1/roleAssignments", map[string]any{"assignee": "devs", "role": "Reader", "scope": "/registries/default"}, nil); st >= 300 {
		t.Fatalf("assign: %d", st)
	}
	var idp client.IdentityProvider
	if st := s.Mgmt(t, "POST", "/mgmt/v1/identityProviders", client.IdentityProvider{Name: "corp", Issuer: issuer, ClientID: "berth", ClientSecret: "berth-secret",
		CreateUsers: true}, &idp); st != 201 || !idp.HasClientSecret || idp.ClientSecret != "" || idp.Endpoints.Callback != s.URL+"/mgmt/v1/sso/callback" {
		t.Fatalf("create identity provider: %d %+v", st, idp)
	}

	verifier, challenge := pkce()
	back := codeSignIn(t, s, "corp", "alice", ssotest.AlicePassword, challenge)
	code := back.Get("code")
	if code == "" || back.Get("state") != "client-state" {
		t.Fatalf("the loopback got %v", back)
	}
	redeem := func(code, verifier string) call {
		return do(t, "POST", s.URL+"/mgmt/v1/token", "", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
			"scope": {"offline_access"}})
	}
	if r := redeem(code, "a-wrong-verifier-a-wrong-verifier-a-wrong-verifier"); r.status != 401 {
		t.Errorf("a wrong verifier: %d %s", r.status, r.body)
	}
	// The code went with the wrong verifier: a new sign-in.
	verifier, challenge = pkce()
	code = codeSignIn(t, s, "corp", "alice", ssotest.AlicePassword, challenge).Get("code")
	r := redeem(code, verifier)
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &tok) != nil || tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("redeem: %d %s", r.status, r.body)
	}
	if r := redeem(code, verifier); r.status != 401 {
		t.Errorf("the code again: %d", r.status)
	}
	// alice exists now, in devs (not in a group berth does not have), and reads the registry
	// through devs' Reader role.
	alice := client.New(s.URL, tok.AccessToken)
	me, err := alice.Me(t.Context())
	if err != nil || me.Name != "alice" {
		t.Fatalf("me: %+v %v", me, err)
	}
	if _, err := alice.Registry(t.Context(), "default"); err != nil {
		t.Errorf("alice reads the registry through devs: %v", err)
	}
	var devs client.Group
	s.Mgmt(t, "GET", "/mgmt/v1/groups/devs", nil, &devs)
	if len(devs.Members) != 1 || devs.Members[0] != "alice" {
		t.Errorf("devs' members: %v", devs.Members)
	}
	// No password signs alice in.
	if r := do(t, "POST", s.URL+"/mgmt/v1/token", "", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {ssotest.AlicePassword}}); r.status != 401 {
		t.Errorf("alice with a password: %d", r.status)
	}

	// The device flow, with the provider's device client.
	if st := s.Mgmt(t, "POST", "/mgmt/v1/identityProviders", client.IdentityProvider{Name: "corp-device", Issuer: issuer, ClientID: "berth-device",
		ClientSecret: "device-secret", CreateUsers: true}, nil); st != 201 {
		t.Fatalf("device provider: %d", st)
	}
	r = do(t, "POST", s.URL+"/mgmt/v1/sso/corp-device/device", "", nil)
	var dev struct {
		DeviceCode      string `json:"device_code"`
		UserCode        string `json:"user_code"`
		VerificationURI string `json:"verification_uri"`
		Interval        int    `json:"interval"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &dev) != nil || dev.UserCode == "" || dev.Interval < 5 {
		t.Fatalf("device start: %d %s", r.status, r.body)
	}
	poll := func() call {
		return do(t, "POST", s.URL+"/mgmt/v1/token", "", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {dev.DeviceCode}})
	}
	if r := poll(); r.status != 400 || r.errCode() != "SLOW_DOWN" {
		t.Errorf("a poll before the interval: %d %s", r.status, r.body)
	}
	clk.Add(6 * time.Second)
	if r := poll(); r.status != 400 || r.errCode() != "AUTHORIZATION_PENDING" {
		t.Errorf("a poll before bob confirms: %d %s", r.status, r.body)
	}
	// Pending, the next poll waits the interval again: the provider is not asked sooner.
	if r := poll(); r.status != 400 || r.errCode() != "SLOW_DOWN" {
		t.Errorf("a poll right after a pending one: %d %s", r.status, r.body)
	}
	// bob, at the provider's device page in a browser elsewhere.
	ssotest.ConfirmDevice(t, issuer, dev.UserCode, "bob", ssotest.BobPassword)
	clk.Add(11 * time.Second)
	r = poll()
	if r.status != 200 || !strings.Contains(string(r.body), "access_token") {
		t.Fatalf("the poll after bob confirmed: %d %s", r.status, r.body)
	}
	if r := poll(); r.status != 401 {
		t.Errorf("the device code again: %d", r.status)
	}

	// Login events: the callbacks and the token grants, with the provider and the subject.
	s.SettleEvents(t)
	var events []client.LoginEvent
	s.Mgmt(t, "GET", "/mgmt/v1/events/login?identity=alice", nil, &events)
	var sso, grants int
	for _, e := range events {
		if e.Issuer == issuer && e.Subject == "alice" && e.Result == "success" {
			switch e.Operation {
			case "sso":
				sso++
			case "directory":
				grants++
			}
		}
	}
	if sso != 2 || grants != 1 {
		t.Errorf("alice's events: %d callbacks, %d grants: %+v", sso, grants, events)
	}
}

// TestSingleSignOnRefusals: an unknown person is refused when the provider creates no users; a
// local user's name is not taken over; a redirect that is not loopback, a plain challenge, an
// unknown provider are refused; only those who may assign roles add a provider.
func TestSingleSignOnRefusals(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) {
		c.Federation.AllowHTTP, c.Outbound.AllowedNetworks = true, []string{"127.0.0.0/8"}
	}})
	issuer := ssotest.Provider(t, s.URL+"/mgmt/v1/sso/callback")
	if st := s.Mgmt(t, "POST", "/mgmt/v1/identityProviders", client.IdentityProvider{Name: "corp", Issuer: issuer, ClientID: "berth", ClientSecret: "berth-secret"}, nil); st != 201 {
		t.Fatal(st)
	}
	_, challenge := pkce()
	if back := codeSignIn(t, s, "corp", "alice", ssotest.AlicePassword, challenge); back.Get("code") != "" || !strings.Contains(back.Get("error_description"), "does not create users") {
		t.Errorf("no user, no creation: %v", back)
	}
	// bob is a local user: a provider that creates users does not take him over.
	s.Mgmt(t, "POST", "/mgmt/v1/users", map[string]string{"name": "bob", "password": "a-local-password-1"}, nil)
	s.Mgmt(t, "PATCH", "/mgmt/v1/identityProviders/corp", map[string]any{"createUsers": true}, nil)
	if back := codeSignIn(t, s, "corp", "bob", ssotest.BobPassword, challenge); back.Get("code") != "" || !strings.Contains(back.Get("error_description"), "a local user named bob exists") {
		t.Errorf("a local user's name: %v", back)
	}
	for _, tc := range []struct {
		name, q string
		status  int
	}{
		{"redirect elsewhere", "redirect_uri=https://attacker.example/cb&code_challenge=" + challenge + "&code_challenge_method=S256", 400},
		{"plain challenge", "redirect_uri=http://127.0.0.1:9/cb&code_challenge=" + challenge + "&code_challenge_method=plain", 400},
		{"short challenge", "redirect_uri=http://127.0.0.1:9/cb&code_challenge=abc&code_challenge_method=S256", 400},
	} {
		if r := do(t, "GET", s.URL+"/mgmt/v1/sso/corp/login?"+tc.q, "", nil); r.status != tc.status {
			t.Errorf("%s: %d %s", tc.name, r.status, r.body)
		}
	}
	if r := do(t, "GET", s.URL+"/mgmt/v1/sso/nosuch/login?redirect_uri=http://127.0.0.1:9/cb&code_challenge="+challenge+"&code_challenge_method=S256", "", nil); r.status != 404 {
		t.Errorf("unknown provider: %d", r.status)
	}
	if r := do(t, "GET", s.URL+"/mgmt/v1/sso/callback?state=forged&code=x", "", nil); r.status != 400 {
		t.Errorf("a forged callback: %d", r.status)
	}
	// A Contributor (directory/write, no roleAssignments/write) may not add a provider: its
	// groups claim could name the Owners' group.
	s.Mgmt(t, "POST", "/mgmt/v1/users", map[string]string{"name": "carol", "password": "carol-password-1"}, nil)
	s.Mgmt(t, "POST", "/mgmt/v1/roleAssignments", map[string]any{"assignee": "carol", "role": "Contributor", "scope": "/"}, nil)
	r := do(t, "POST", s.URL+"/mgmt/v1/token", "", url.Values{"grant_type": {"password"}, "username": {"carol"}, "password": {"carol-password-1"}})
	var ct struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(r.body, &ct)
	ctok := ct.AccessToken
	if st := s.MgmtAs(t, ctok, "POST", "/mgmt/v1/identityProviders", client.IdentityProvider{Name: "mine", Issuer: issuer, ClientID: "x", CreateUsers: true}, nil); st != 403 {
		t.Errorf("a Contributor adds a provider: %d", st)
	}
}

// TestSingleSignOnStartsBounded: starting a sign-in needs no credentials and costs the provider
// a call, so one client address may have only so many in progress (429 past them).
func TestSingleSignOnStartsBounded(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) {
		c.Federation.AllowHTTP, c.Outbound.AllowedNetworks = true, []string{"127.0.0.0/8"}
	}})
	issuer := ssotest.Provider(t, s.URL+"/mgmt/v1/sso/callback")
	if st := s.Mgmt(t, "POST", "/mgmt/v1/identityProviders", client.IdentityProvider{Name: "corp", Issuer: issuer, ClientID: "berth", ClientSecret: "berth-secret"}, nil); st != 201 {
		t.Fatal(st)
	}
	_, challenge := pkce()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	statuses := map[int]int{}
	for range store.MaxSSOLoginsPerAddress + 5 {
		resp, err := noFollow.Get(s.URL + "/mgmt/v1/sso/corp/login?redirect_uri=http://127.0.0.1:9/cb&code_challenge_method=S256&code_challenge=" + challenge)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		statuses[resp.StatusCode]++
	}
	if statuses[http.StatusFound] != store.MaxSSOLoginsPerAddress || statuses[http.StatusTooManyRequests] != 5 {
		t.Errorf("statuses: %v", statuses)
	}
}

// TestSingleSignOnPublicClient: a provider registered without a client secret (a public client:
// PKCE alone between berth and the provider) signs people in as well.
func TestSingleSignOnPublicClient(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) {
		c.Federation.AllowHTTP, c.Outbound.AllowedNetworks = true, []string{"127.0.0.0/8"}
	}})
	issuer := ssotest.Provider(t, s.URL+"/mgmt/v1/sso/callback")
	var idp client.IdentityProvider
	if st := s.Mgmt(t, "POST", "/mgmt/v1/identityProviders", client.IdentityProvider{Name: "public", Issuer: issuer, ClientID: "berth-public", CreateUsers: true}, &idp); st != 201 || idp.HasClientSecret {
		t.Fatalf("create: %d %+v", st, idp)
	}
	verifier, challenge := pkce()
	back := codeSignIn(t, s, "public", "bob", ssotest.BobPassword, challenge)
	if back.Get("code") == "" {
		t.Fatalf("the loopback got %v", back)
	}
	r := do(t, "POST", s.URL+"/mgmt/v1/token", "", url.Values{"grant_type": {"authorization_code"}, "code": {back.Get("code")}, "code_verifier": {verifier}})
	if r.status != 200 {
		t.Errorf("redeem: %d %s", r.status, r.body)
	}
}

// TestSingleSignOnProviderWithoutEndpoints: an issuer whose discovery document names no
// authorization or device endpoint (a workload issuer, not a provider for people) is refused
// with the reason, before anything is stored.
func TestSingleSignOnProviderWithoutEndpoints(t *testing.T) {
	is := federationtest.New(t) // discovery: issuer and jwks_uri only
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) {
		c.Federation.AllowHTTP, c.Outbound.AllowedNetworks = true, []string{"127.0.0.0/8"}
	}})
	if st := s.Mgmt(t, "POST", "/mgmt/v1/identityProviders", client.IdentityProvider{Name: "workload", Issuer: is.URL, ClientID: "x", ClientSecret: "y"}, nil); st != 201 {
		t.Fatal(st)
	}
	_, challenge := pkce()
	if r := do(t, "GET", s.URL+"/mgmt/v1/sso/workload/login?redirect_uri=http://127.0.0.1:9/cb&code_challenge_method=S256&code_challenge="+challenge, "", nil); r.status != http.StatusBadGateway || !strings.Contains(r.message(), "discovery failed") {
		t.Errorf("no authorization endpoint: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", s.URL+"/mgmt/v1/sso/workload/device", "", nil); r.status != 400 || !strings.Contains(r.message(), "offers no device sign-in") {
		t.Errorf("no device endpoint: %d %s", r.status, r.body)
	}
}

// TestSingleSignOnProviderRefuses: the providers are named to anyone (a sign-in page's buttons);
// when the provider sends the browser back with an error (the person said no), berth ends the sign-in and sends the client that error with the provider's
// words; the same sign-in cannot be completed afterwards.
func TestSingleSignOnProviderRefuses(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) {
		c.Federation.AllowHTTP, c.Outbound.AllowedNetworks = true, []string{"127.0.0.0/8"}
	}})
	issuer := ssotest.Provider(t, s.URL+"/mgmt/v1/sso/callback")
	if st := s.Mgmt(t, "POST", "/mgmt/v1/identityProviders", client.IdentityProvider{Name: "corp", Issuer: issuer, ClientID: "berth", ClientSecret: "berth-secret"}, nil); st != 201 {
		t.Fatal(st)
	}
	// A sign-in page's buttons: the providers' names, without credentials.
	resp, err := http.Get(s.URL + "/mgmt/v1/sso/providers")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"providers":[{"name":"corp"}]}` ||
		resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("providers: %d %s %v", resp.StatusCode, body, resp.Header)
	}
	_, challenge := pkce()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.Get(s.URL + "/mgmt/v1/sso/corp/login?redirect_uri=http://127.0.0.1:9/cb&state=client-state&code_challenge_method=S256&code_challenge=" + challenge)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	to, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || to.Query().Get("state") == "" {
		t.Fatalf("the provider's URL: %v %v", resp.Header.Get("Location"), err)
	}
	back := s.URL + "/mgmt/v1/sso/callback?" + url.Values{"state": {to.Query().Get("state")}, "error": {"access_denied"}, "error_description": {"the person said no"}}.Encode()
	resp, err = noFollow.Get(back)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	client, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || client.Host != "127.0.0.1:9" || client.Query().Get("error") != "access_denied" ||
		!strings.Contains(client.Query().Get("error_description"), "the person said no") || client.Query().Get("state") != "client-state" {
		t.Fatalf("the client was sent to %s (%d)", resp.Header.Get("Location"), resp.StatusCode)
	}
	resp, err = noFollow.Get(s.URL + "/mgmt/v1/sso/callback?" + url.Values{"state": {to.Query().Get("state")}, "code": {"any"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("the refused sign-in completed afterwards: %d", resp.StatusCode)
	}
}

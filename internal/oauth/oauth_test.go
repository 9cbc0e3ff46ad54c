package oauth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/berth-registry/berth/internal/registrytest"
	"github.com/berth-registry/berth/internal/token"
)

const nullGUID = "00000000-0000-0000-0000-000000000000"

func TestChallenge(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	realm := `Bearer realm="http://` + s.Host + `/oauth2/token",service="` + s.Host + `"`
	for _, tc := range []struct {
		method, path, want string
	}{
		{"GET", "/v2/", realm},
		{"HEAD", "/v2/", realm},
		{"GET", "/v2/_catalog", realm + `,scope="registry:catalog:*"`},
		{"GET", "/v2/samples/a/tags/list", realm + `,scope="repository:samples/a:pull"`},
		{"POST", "/v2/samples/a/blobs/uploads/", realm + `,scope="repository:samples/a:pull,push"`},
		{"DELETE", "/v2/samples/a/manifests/sha256:" + strings.Repeat("a", 64), realm + `,scope="repository:samples/a:delete"`},
	} {
		c := do(t, tc.method, s.URL+tc.path, "", nil)
		if c.status != 401 || c.header.Get("WWW-Authenticate") != tc.want {
			t.Errorf("%s %s: %d %q; want 401 %q", tc.method, tc.path, c.status, c.header.Get("WWW-Authenticate"), tc.want)
		}
		if c.header.Get("Docker-Distribution-Api-Version") != "registry/2.0" || c.header.Get("X-Correlation-Id") == "" {
			t.Errorf("%s %s: headers %v", tc.method, tc.path, c.header)
		}
	}
	// A bad bearer token is named in the challenge.
	c := do(t, "GET", s.URL+"/v2/samples/a/tags/list", "Bearer not-a-jwt", nil)
	if c.status != 401 || !strings.HasSuffix(c.header.Get("WWW-Authenticate"), `,error="invalid_token"`) || c.errCode() != "UNAUTHORIZED" {
		t.Errorf("bad bearer: %d %q %s", c.status, c.header.Get("WWW-Authenticate"), c.body)
	}
}

func TestAdminUser(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	var reg struct {
		AdminUserEnabled bool
		Credentials      *struct {
			Passwords []struct{ Name, Value string }
		}
	}
	s.Mgmt(t, "GET", "/mgmt/v1/registries/default", nil, &reg)
	if reg.AdminUserEnabled {
		t.Fatal("the admin user is enabled on a new registry")
	}
	if st := s.Mgmt(t, "GET", "/mgmt/v1/registries/default/credentials", nil, nil); st != http.StatusConflict {
		t.Errorf("credential show with admin disabled: %d, want 409", st)
	}
	s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default", map[string]any{"adminUserEnabled": true}, &reg)
	if reg.Credentials == nil || len(reg.Credentials.Passwords) != 2 {
		t.Fatalf("enabling the admin user gave %+v; want two passwords", reg.Credentials)
	}
	pw1, pw2 := reg.Credentials.Passwords[0].Value, reg.Credentials.Passwords[1].Value
	v2 := s.URL + "/v2/"
	for i, pw := range []string{pw1, pw2} {
		if c := do(t, "GET", v2, basic("default", pw), nil); c.status != 200 {
			t.Errorf("admin password %d: %d %s", i+1, c.status, c.body)
		}
	}
	// Renewing password2 leaves password working.
	var creds struct {
		Passwords []struct{ Name, Value string }
	}
	s.Mgmt(t, "POST", "/mgmt/v1/registries/default/credentials/renew", map[string]string{"name": "password2"}, &creds)
	var newPw2 string
	for _, p := range creds.Passwords {
		if p.Name == "password2" {
			newPw2 = p.Value
		} else if p.Value != pw1 {
			t.Errorf("renew showed %s as %q, not the unchanged password (az acr credential renew shows both)", p.Name, p.Value)
		}
	}
	for _, tc := range []struct {
		pw   string
		want int
	}{{pw1, 200}, {newPw2, 200}, {pw2, 401}} {
		if c := do(t, "GET", v2, basic("default", tc.pw), nil); c.status != tc.want {
			t.Errorf("after renew: %d, want %d (%s)", c.status, tc.want, c.body)
		}
	}
	// Disabled again: the right password is told why.
	s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default", map[string]any{"adminUserEnabled": false}, nil)
	c := do(t, "GET", v2, basic("default", pw1), nil)
	if c.status != 401 || !strings.Contains(c.message(), "admin user is disabled") {
		t.Errorf("disabled admin: %d %s", c.status, c.body)
	}
	if c := do(t, "GET", v2, basic("default", "wrong"), nil); c.status != 401 || strings.Contains(c.message(), "disabled") {
		t.Errorf("disabled admin with a wrong password: %d %s (must not say why)", c.status, c.body)
	}
	// Shown once: credential show has no values.
	s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default", map[string]any{"adminUserEnabled": true}, nil)
	var show map[string]any
	s.Mgmt(t, "GET", "/mgmt/v1/registries/default/credentials", nil, &show)
	if b, _ := json.Marshal(show); strings.Contains(string(b), pw1) || show["username"] != "default" {
		t.Errorf("credential show = %s", b)
	}
}

func TestTokenProtocol(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	user, pass := s.Admin(t)

	// GET with Basic and several scopes: everything asked is granted to the admin.
	r, c := getToken(t, s, user, pass, nil, "repository:samples/a:pull,push", "registry:catalog:*", "repository:samples/b:pull unknown:x:y")
	if c.status != 200 || r.ExpiresIn != 75*60 || r.RefreshToken != "" {
		t.Fatalf("token: %d %s", c.status, c.body)
	}
	want := []string{"repository:samples/a:pull,push", "registry:catalog:*", "repository:samples/b:pull"}
	if got := access(t, r.AccessToken); !slices.Equal(got, want) {
		t.Errorf("access = %v; want %v", got, want)
	}
	cl := claims(t, r.AccessToken)
	if cl["iss"] != "berth" || cl["aud"] != "default" || cl["grant_type"] != "access_token" || cl["sub"] != "default" || cl["jti"] == "" {
		t.Errorf("claims = %v", cl)
	}
	if exp, nbf := cl["exp"].(float64), cl["nbf"].(float64); exp-nbf != 75*60 {
		t.Errorf("access token lives %v s; want 4500", exp-nbf)
	}
	// The access token works as a bearer token, within its grant.
	if c := do(t, "GET", s.URL+"/v2/_catalog", bearer(r.AccessToken), nil); c.status != 200 {
		t.Errorf("catalog with token: %d %s", c.status, c.body)
	}
	c = do(t, "POST", s.URL+"/v2/samples/b/blobs/uploads/", bearer(r.AccessToken), nil)
	if c.status != 401 || !strings.Contains(c.header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Errorf("push outside the grant: %d %q %s", c.status, c.header.Get("WWW-Authenticate"), c.body)
	}

	// A mount from a repository the token lacks pull on (but the policy allows) asks for both.
	c = do(t, "POST", s.URL+"/v2/samples/a/blobs/uploads/?mount=sha256:"+strings.Repeat("b", 64)+"&from=samples/src", bearer(r.AccessToken), nil)
	if want := `scope="repository:samples/a:pull,push repository:samples/src:pull",error="insufficient_scope"`; c.status != 401 ||
		!strings.HasSuffix(c.header.Get("WWW-Authenticate"), want) {
		t.Errorf("mount without pull on its source: %d %q; want 401 ending %s", c.status, c.header.Get("WWW-Authenticate"), want)
	}

	// POST grant_type=password.
	c = do(t, "POST", s.URL+"/oauth2/token", "", url.Values{"grant_type": {"password"}, "username": {user}, "password": {pass},
		"service": {s.Host}, "scope": {"repository:samples/a:pull"}})
	if c.status != 200 {
		t.Fatalf("password grant: %d %s", c.status, c.body)
	}
	// Wrong password: generic message.
	c = do(t, "POST", s.URL+"/oauth2/token", "", url.Values{"grant_type": {"password"}, "username": {user}, "password": {"nope"}, "service": {s.Host}})
	if c.status != 401 || c.errCode() != "UNAUTHORIZED" || !strings.Contains(c.message(), "authentication required") {
		t.Errorf("bad password grant: %d %s", c.status, c.body)
	}
	// Anonymous: a token with nothing in it (no anonymous pull yet).
	c = do(t, "POST", s.URL+"/oauth2/token", "", url.Values{"grant_type": {"password"}, "service": {s.Host}, "refresh_token": {""}, "scope": {"registry:catalog:*"}})
	if c.status != 200 {
		t.Errorf("anonymous token: %d %s", c.status, c.body)
	}
	// Unsupported grant types and malformed scopes are 400.
	for _, form := range []url.Values{{"grant_type": {"client_credentials"}}, {"grant_type": {"password"}, "scope": {"nocolons"}},
		{"grant_type": {"password"}, "scope": {"repository:UPPER:pull"}}} {
		if c := do(t, "POST", s.URL+"/oauth2/token", basic(user, pass), form); c.status != 400 {
			t.Errorf("%v: %d %s", form, c.status, c.body)
		}
	}

	// Directory token → /oauth2/exchange → refresh token (3 h) → access token.
	dir := s.OwnerToken(t)
	c = do(t, "POST", s.URL+"/oauth2/exchange", "", url.Values{"grant_type": {"access_token"}, "service": {s.Host}, "access_token": {dir}, "tenant": {"berth"}})
	var ex struct {
		RefreshToken string `json:"refresh_token"`
	}
	if c.status != 200 || json.Unmarshal(c.body, &ex) != nil || ex.RefreshToken == "" {
		t.Fatalf("exchange: %d %s", c.status, c.body)
	}
	rc := claims(t, ex.RefreshToken)
	if rc["grant_type"] != "refresh_token" || rc["sub"] != "owner" || rc["exp"].(float64)-rc["nbf"].(float64) != 3*3600 {
		t.Errorf("refresh claims = %v", rc)
	}
	c = do(t, "POST", s.URL+"/oauth2/token", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ex.RefreshToken},
		"service": {s.Host}, "scope": {"repository:samples/a:pull,push"}})
	var rt tokenReply
	json.Unmarshal(c.body, &rt)
	if c.status != 200 || !slices.Equal(access(t, rt.AccessToken), []string{"repository:samples/a:pull,push"}) {
		t.Errorf("refresh grant: %d %s", c.status, c.body)
	}
	// docker login with the null GUID: offline token requests echo the refresh token back.
	r, c = getToken(t, s, nullGUID, ex.RefreshToken, url.Values{"offline_token": {"true"}, "client_id": {"docker"}})
	if c.status != 200 || r.RefreshToken != ex.RefreshToken {
		t.Errorf("null-GUID offline token: %d %s", c.status, c.body)
	}
	// The null GUID with a refresh or an access token works as Basic auth on /v2/ directly.
	for name, pw := range map[string]string{"refresh": ex.RefreshToken, "access": rt.AccessToken} {
		if c := do(t, "GET", s.URL+"/v2/", basic(nullGUID, pw), nil); c.status != 200 {
			t.Errorf("null GUID with a %s token: %d %s", name, c.status, c.body)
		}
	}
	// The exchange refuses what is not a directory token.
	c = do(t, "POST", s.URL+"/oauth2/exchange", "", url.Values{"grant_type": {"access_token"}, "service": {s.Host}, "access_token": {ex.RefreshToken}})
	if c.status != 401 {
		t.Errorf("exchange of a refresh token: %d %s", c.status, c.body)
	}
}

func TestForgedAndExpiredTokens(t *testing.T) {
	clk := registrytest.NewClock()
	s := registrytest.New(t, registrytest.Options{Now: clk.Now})
	user, pass := s.Admin(t)
	var team struct{}
	s.Mgmt(t, "POST", "/mgmt/v1/registries", map[string]any{"name": "team", "loginServer": "team.example.test"}, &team)
	r, _ := getToken(t, s, user, pass, nil, "repository:samples/a:pull")
	good := r.AccessToken
	c := do(t, "POST", s.URL+"/oauth2/exchange", "", url.Values{"grant_type": {"access_token"}, "service": {s.Host}, "access_token": {s.OwnerToken(t)}})
	var ex struct {
		RefreshToken string `json:"refresh_token"`
	}
	json.Unmarshal(c.body, &ex)

	parts := strings.Split(good, ".")
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sign := func(method jwt.SigningMethod, key any, mutate func(jwt.MapClaims), kid string) string {
		cl := jwt.MapClaims(claims(t, good))
		mutate(cl)
		tk := jwt.NewWithClaims(method, cl)
		tk.Header["kid"] = kid
		out, err := tk.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	kid := func() string {
		var h map[string]any
		b, _ := jwt.NewParser().DecodeSegment(parts[0])
		json.Unmarshal(b, &h)
		return h["kid"].(string)
	}()
	// The server's own signing key, to forge with what an attacker cannot have (and so to show
	// that each refusal below is for the reason its name gives, not for a bad signature) and to
	// try the public key as an HMAC secret, the classic algorithm confusion.
	keys, err := s.Keys().SigningKeys(t.Context(), clk.Now()) // unsealed with the key-encryption key
	if err != nil || len(keys) == 0 {
		t.Fatalf("signing keys: %v", err)
	}
	pk, err := x509.ParsePKCS8PrivateKey(keys[0].PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	priv := pk.(*ecdsa.PrivateKey)
	if keys[0].KID != kid {
		t.Fatalf("the token was signed by %s, the newest key is %s", kid, keys[0].KID)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	pubPoint, err := priv.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	now := clk.Now()
	// Signed with the genuine key but otherwise unchanged: accepted, so the harness is sound.
	if c := do(t, "GET", s.URL+"/v2/samples/a/tags/list", bearer(sign(jwt.SigningMethodES256, priv, func(jwt.MapClaims) {}, kid)), nil); c.status != 404 {
		t.Fatalf("a token re-signed with the genuine key: %d %s; want 404 (accepted, no such repository)", c.status, c.body)
	}
	forged := map[string]struct{ token, reason string }{
		"alg none":  {sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, func(jwt.MapClaims) {}, kid), "does not verify"},
		"other key": {sign(jwt.SigningMethodES256, other, func(jwt.MapClaims) {}, kid), "signature does not verify"},
		"tampered payload": {parts[0] + "." + base64.RawURLEncoding.EncodeToString(func() []byte {
			cl := claims(t, good)
			cl["access"] = []any{map[string]any{"type": "repository", "name": "samples/a", "actions": []any{"pull", "push", "delete"}}}
			b, _ := json.Marshal(cl)
			return b
		}()) + "." + parts[2], "signature does not verify"},
		"HS256 with the PEM public key as secret":    {sign(jwt.SigningMethodHS256, pubPEM, func(jwt.MapClaims) {}, kid), "does not verify"},
		"HS256 with the DER public key as secret":    {sign(jwt.SigningMethodHS256, pubDER, func(jwt.MapClaims) {}, kid), "does not verify"},
		"HS256 with the public point as secret":      {sign(jwt.SigningMethodHS256, pubPoint, func(jwt.MapClaims) {}, kid), "does not verify"},
		"refresh token as bearer":                    {ex.RefreshToken, "a registry refresh token was sent where a registry access token is needed"},
		"directory token as bearer":                  {s.OwnerToken(t), "issued for another registry"},
		"unknown kid":                                {sign(jwt.SigningMethodES256, other, func(jwt.MapClaims) {}, "nope"), "does not verify"},
		"expired (genuine key)":                      {sign(jwt.SigningMethodES256, priv, func(c jwt.MapClaims) { c["exp"] = float64(now.Add(-time.Hour).Unix()) }, kid), "expired"},
		"not yet valid (genuine key)":                {sign(jwt.SigningMethodES256, priv, func(c jwt.MapClaims) { c["nbf"] = float64(now.Add(time.Hour).Unix()) }, kid), "not valid yet"},
		"issued in the future (genuine key)":         {sign(jwt.SigningMethodES256, priv, func(c jwt.MapClaims) { c["iat"] = float64(now.Add(time.Hour).Unix()) }, kid), "not valid yet"},
		"no expiry (genuine key)":                    {sign(jwt.SigningMethodES256, priv, func(c jwt.MapClaims) { delete(c, "exp") }, kid), "does not verify"},
		"other issuer (genuine key)":                 {sign(jwt.SigningMethodES256, priv, func(c jwt.MapClaims) { c["iss"] = "evil" }, kid), "not issued by berth"},
		"other audience (genuine key)":               {sign(jwt.SigningMethodES256, priv, func(c jwt.MapClaims) { c["aud"] = "team.example.test" }, kid), "issued for another registry"},
		"refresh grant type as access (genuine key)": {sign(jwt.SigningMethodES256, priv, func(c jwt.MapClaims) { c["grant_type"] = "refresh_token" }, kid), "refresh token was sent"},
	}
	for name, f := range forged {
		c := do(t, "GET", s.URL+"/v2/samples/a/tags/list", bearer(f.token), nil)
		if c.status != 401 || !strings.Contains(c.header.Get("WWW-Authenticate"), `error="invalid_token"`) || !strings.Contains(c.message(), f.reason) {
			t.Errorf("%s: %d %q %s; want 401 invalid_token saying %q", name, c.status, c.header.Get("WWW-Authenticate"), c.body, f.reason)
		}
	}
	// Wrong registry: a token for default is refused by team.
	req, _ := http.NewRequest("GET", s.URL+"/v2/samples/a/tags/list", nil)
	req.Host = "team.example.test"
	req.Header.Set("Authorization", bearer(good))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("token of another registry: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// The genuine token is accepted (404: no such repository), until it expires.
	if c := do(t, "GET", s.URL+"/v2/samples/a/tags/list", bearer(good), nil); c.status != 404 {
		t.Errorf("good token: %d %s", c.status, c.body)
	}
	clk.Add(76 * time.Minute)
	c = do(t, "GET", s.URL+"/v2/samples/a/tags/list", bearer(good), nil)
	if c.status != 401 || !strings.Contains(c.message(), "expired") {
		t.Errorf("expired token: %d %s", c.status, c.body)
	}
	clk.Add(2 * time.Hour) // the refresh token is 3 h 16 min old
	c = do(t, "POST", s.URL+"/oauth2/token", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ex.RefreshToken}, "service": {s.Host}})
	if c.status != 401 {
		t.Errorf("expired refresh token: %d %s", c.status, c.body)
	}
}

func TestKeyRotation(t *testing.T) {
	clk := registrytest.NewClock()
	s := registrytest.New(t, registrytest.Options{Now: clk.Now})
	user, pass := s.Admin(t)
	svc := s.Tokens()
	kid := func(tok string) string {
		b, _ := jwt.NewParser().DecodeSegment(strings.Split(tok, ".")[0])
		var h map[string]any
		json.Unmarshal(b, &h)
		return h["kid"].(string)
	}
	clk.Add(30*24*time.Hour - 10*time.Minute)
	before, _ := getToken(t, s, user, pass, nil, "repository:r/a:pull")
	// A long-lived token of the first key, to see it retire.
	long := &token.Claims{GrantType: token.GrantAccess, Kind: "admin", Registry: "default"}
	long.Subject, long.Audience = "default", []string{"default"}
	longTok, err := svc.Sign(t.Context(), long, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(11 * time.Minute) // the first key is due for rotation
	if err := svc.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	after, _ := getToken(t, s, user, pass, nil, "repository:r/a:pull")
	if kid(before.AccessToken) == kid(after.AccessToken) {
		t.Fatal("no new key after the rotation period")
	}
	for name, tok := range map[string]string{"old key": before.AccessToken, "new key": after.AccessToken, "long-lived": longTok} {
		if _, err := svc.Verify(t.Context(), tok, "default", token.GrantAccess); err != nil {
			t.Errorf("%s token during the overlap: %v", name, err)
		}
	}
	clk.Add(3 * time.Hour) // past the overlap: the first key is retired
	// Retired at once on the keys in memory, and on /v2/, before any reload …
	if _, err := svc.Verify(t.Context(), longTok, "default", token.GrantAccess); err == nil {
		t.Error("a token of a retired key still verifies (keys in memory)")
	}
	if c := do(t, "GET", s.URL+"/v2/", bearer(longTok), nil); c.status != 401 || !strings.Contains(c.header.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("a token of a retired key on /v2/: %d %q", c.status, c.header.Get("WWW-Authenticate"))
	}
	// … and after the keys are reloaded from the store.
	if err := svc.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Verify(t.Context(), longTok, "default", token.GrantAccess); err == nil {
		t.Error("a token of a retired key still verifies (after a reload)")
	}
}

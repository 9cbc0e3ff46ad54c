package federation_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/berth-registry/berth/internal/federation"
	"github.com/berth-registry/berth/internal/federation/federationtest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newVerifier(clk *clock, issuers ...string) *federation.Verifier {
	return federation.New(federation.Options{Issuers: issuers, AllowHTTP: true, MaxTokenAge: time.Hour, Leeway: time.Minute,
		RefreshInterval: time.Minute, Timeout: 2 * time.Second, Now: clk.Now})
}

// check parses, verifies and matches a token against creds as the sign-in does, and returns the
// refusal's reason and message ("" when it signs in).
func check(t *testing.T, v *federation.Verifier, raw string, static []byte, creds ...federation.Credential) (string, string) {
	t.Helper()
	tok, err := federation.Parse(raw)
	if err == nil {
		err = v.Verify(context.Background(), tok, static)
	}
	if err == nil {
		_, err = federation.Match(tok, creds)
	}
	if err == nil {
		return "", ""
	}
	var fe *federation.Error
	if !errors.As(err, &fe) {
		t.Fatalf("not a refusal: %v", err)
	}
	return fe.Reason, fe.Message
}

// TestExternalTokens (issue 20): each attack on the exchange is refused with its reason, and
// GitHub Actions- and Kubernetes-shaped tokens that a credential trusts sign in.
func TestExternalTokens(t *testing.T) {
	is := federationtest.New(t)
	other := federationtest.New(t) // an issuer the server does not allow
	clk := &clock{t: time.Now()}
	v := newVerifier(clk, is.URL)
	es := is.AddKey(t, "es", jose.ES256)
	ed := is.AddKey(t, "ed", jose.EdDSA)
	aud := []string{"api://BerthTokenExchange"}
	main := federation.Credential{Name: "main", Issuer: is.URL, Subject: "repo:acme/app:ref:refs/heads/main", Audiences: aud}
	branches := federation.Credential{Name: "branches", Issuer: is.URL, Expression: "claims['sub'] matches 'repo:acme/app:ref:refs/heads/*'", Audiences: aud}
	pods := federation.Credential{Name: "pods", Issuer: is.URL, Subject: "system:serviceaccount:ci:pusher", Audiences: aud}
	now := clk.Now()
	gh := federationtest.GitHub("acme/app", "refs/heads/main")
	with := func(c federationtest.Claims, f func(*federationtest.Claims)) federationtest.Claims { f(&c); return c }
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"` + is.URL + `","sub":"repo:acme/app:ref:refs/heads/main","aud":"api://BerthTokenExchange","exp":9999999999,"iat":` + "1" + `}`))
	stranger := federationtest.New(t).Key("k1") // a key nobody publishes as k1 here

	for _, tc := range []struct {
		name   string
		raw    string
		creds  []federation.Credential
		reason string
		says   string
	}{
		{"GitHub main, exact subject", is.Sign(t, nil, gh), []federation.Credential{main}, "", ""},
		{"ES256", is.Sign(t, es, gh), []federation.Credential{main}, "", ""},
		{"EdDSA", is.Sign(t, ed, gh), []federation.Credential{main}, "", ""},
		{"Kubernetes service account", is.Sign(t, nil, federationtest.Kubernetes("ci", "pusher")), []federation.Credential{main, pods}, "", ""},
		{"a branch through the expression", is.Sign(t, nil, federationtest.GitHub("acme/app", "refs/heads/feature/x")), []federation.Credential{main, branches}, "", ""},
		{"dev branch, exact subject only", is.Sign(t, nil, federationtest.GitHub("acme/app", "refs/heads/dev")), []federation.Credential{main}, federation.ReasonSubject,
			`subject repo:acme/app:ref:refs/heads/dev does not match the federated credential "main"`},
		{"a tag is no branch", is.Sign(t, nil, federationtest.GitHub("acme/app", "refs/tags/v1")), []federation.Credential{branches}, federation.ReasonSubject, "refs/heads/*"},
		{"another repository", is.Sign(t, nil, federationtest.GitHub("acme/other", "refs/heads/main")), []federation.Credential{main, branches}, federation.ReasonSubject, "acme/other"},
		{"wrong audience", is.Sign(t, nil, federationtest.GitHub("acme/app", "refs/heads/main", "sts.amazonaws.com")), []federation.Credential{main}, federation.ReasonAudience, "sts.amazonaws.com"},
		{"issuer not allowed", other.Sign(t, nil, gh), []federation.Credential{main}, federation.ReasonIssuerNotAllowed, other.URL},
		{"expired", is.Sign(t, nil, with(gh, func(c *federationtest.Claims) {
			c.IssuedAt, c.Expiry = now.Add(-20*time.Minute), now.Add(-10*time.Minute)
		})),
			[]federation.Credential{main}, federation.ReasonExpired, "expired"},
		{"expired within the leeway", is.Sign(t, nil, with(gh, func(c *federationtest.Claims) {
			c.IssuedAt, c.Expiry = now.Add(-20*time.Minute), now.Add(-30*time.Second)
		})),
			[]federation.Credential{main}, "", ""},
		{"not yet valid", is.Sign(t, nil, with(gh, func(c *federationtest.Claims) { c.NotBefore = now.Add(5 * time.Minute) })), []federation.Credential{main}, federation.ReasonNotYetValid, "not valid before"},
		{"issued in the future", is.Sign(t, nil, with(gh, func(c *federationtest.Claims) { c.IssuedAt = now.Add(5 * time.Minute) })), []federation.Credential{main}, federation.ReasonNotYetValid, "future"},
		{"too old", is.Sign(t, nil, with(gh, func(c *federationtest.Claims) { c.IssuedAt, c.Expiry = now.Add(-2*time.Hour), now.Add(time.Hour) })),
			[]federation.Credential{main}, federation.ReasonTooOld, "max_token_age"},
		{"no exp", is.Sign(t, nil, with(gh, func(c *federationtest.Claims) { c.NoExpiry = true })), []federation.Credential{main}, federation.ReasonMalformed, "exp"},
		{"no iat", is.Sign(t, nil, with(gh, func(c *federationtest.Claims) { c.NoIssuedAt = true })), []federation.Credential{main}, federation.ReasonMalformed, "iat"},
		{"alg none", header + "." + payload + ".", []federation.Credential{main}, federation.ReasonMalformed, "RS256, ES256 or EdDSA"},
		{"HS256 keyed with the published key set", federationtest.SignWith(t, is.JWKS(), jose.HS256, "k1", map[string]any{"iss": is.URL, "sub": main.Subject,
			"aud": aud, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}), []federation.Credential{main}, federation.ReasonMalformed, "RS256, ES256 or EdDSA"},
		{"signed by another key under a published kid", federationtest.SignWith(t, mustSigner(t, stranger), jose.RS256, "k1", map[string]any{"iss": is.URL,
			"sub": main.Subject, "aud": aud, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}), []federation.Credential{main}, federation.ReasonSignature, "does not verify"},
		{"unknown kid", federationtest.SignWith(t, mustSigner(t, stranger), jose.RS256, "nobody", map[string]any{"iss": is.URL, "sub": main.Subject, "aud": aud,
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}), []federation.Credential{main}, federation.ReasonSignature, `no key with kid "nobody"`},
		{"not a JWT", "eyJhbGciOiJSUzI1NiJ9.e30", []federation.Credential{main}, federation.ReasonMalformed, "not a signed JWT"},
		{"claims without sub", is.Sign(t, nil, with(gh, func(c *federationtest.Claims) { c.Subject = "" })), []federation.Credential{main}, federation.ReasonMalformed, "lacks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason, msg := check(t, v, tc.raw, nil, tc.creds...)
			if reason != tc.reason || !strings.Contains(msg, tc.says) {
				t.Errorf("refused %q: %s; want %q saying %q", reason, msg, tc.reason, tc.says)
			}
		})
	}
}

func mustSigner(t *testing.T, k *federationtest.Key) any {
	t.Helper()
	if k == nil {
		t.Fatal("no key")
	}
	return federationtest.Private(k)
}

// TestIssuerKeys (issue 20): the issuer's keys are fetched through discovery, kept as its
// Cache-Control says, fetched again for an unknown kid at most once per refresh interval, and
// a key the issuer stopped publishing stops verifying once the cache is renewed; a discovery
// document pointing at another host or naming another issuer, a key set that hangs, answers
// 500 or is 50 MB are refused with their reason, and a hanging issuer does not slow another.
func TestIssuerKeys(t *testing.T) {
	clk := &clock{t: time.Now()}
	aud := []string{"api://BerthTokenExchange"}
	cred := func(is *federationtest.Issuer) federation.Credential {
		return federation.Credential{Name: "main", Issuer: is.URL, Subject: "repo:acme/app:ref:refs/heads/main", Audiences: aud}
	}
	gh := federationtest.GitHub("acme/app", "refs/heads/main")

	t.Run("cache, unknown kid, removed key", func(t *testing.T) {
		is := federationtest.New(t)
		is.SetCacheControl("public, max-age=120")
		v := newVerifier(clk, is.URL)
		for range 3 {
			if reason, msg := check(t, v, is.Sign(t, nil, gh), nil, cred(is)); reason != "" {
				t.Fatalf("refused: %s", msg)
			}
		}
		if n := is.Fetches.Load(); n != 1 {
			t.Errorf("%d key set fetches for three tokens, want 1", n)
		}
		// A new key is fetched when a token names it, at most once a refresh interval; tokens
		// naming nothing known do not fetch again within it.
		k2 := is.AddKey(t, "k2", jose.ES256)
		if reason, _ := check(t, v, is.Sign(t, k2, gh), nil, cred(is)); reason != federation.ReasonSignature {
			t.Errorf("a new kid within a minute of the last fetch: %q", reason)
		}
		clk.Add(61 * time.Second)
		if reason, msg := check(t, v, is.Sign(t, k2, gh), nil, cred(is)); reason != "" {
			t.Fatalf("a token of a new key: %s", msg)
		}
		ghost := federationtest.SignWith(t, federationtest.Private(k2), jose.ES256, "ghost", map[string]any{"iss": is.URL, "sub": gh.Subject, "aud": aud,
			"iat": clk.Now().Unix(), "exp": clk.Now().Add(time.Minute).Unix()})
		for range 5 {
			if reason, _ := check(t, v, ghost, nil, cred(is)); reason != federation.ReasonSignature {
				t.Errorf("unknown kid: %q", reason)
			}
		}
		if n := is.Fetches.Load(); n != 2 {
			t.Errorf("%d key set fetches, want 2 (one for k2, none for the unknown kid within a minute)", n)
		}
		// k1 is withdrawn: it works until the cached set expires (two minutes), then not.
		old := is.Sign(t, nil, gh)
		is.RemoveKey("k1")
		if reason, _ := check(t, v, old, nil, cred(is)); reason != "" {
			t.Errorf("k1 within the cache's age: %q", reason)
		}
		clk.Add(3 * time.Minute)
		// The same token, verified (and remembered) before: its key is gone, so it is refused.
		if reason, _ := check(t, v, old, nil, cred(is)); reason != federation.ReasonSignature {
			t.Errorf("a remembered token of a withdrawn key: %q", reason)
		}
		old = is.Sign(t, is.Key("k2"), gh) // k2 is still published
		if reason, _ := check(t, v, old, nil, cred(is)); reason != "" {
			t.Errorf("k2 after the cache renewed: %q", reason)
		}
		k1old := federationtest.SignWith(t, federationtest.Private(k2), jose.ES256, "k1", map[string]any{"iss": is.URL, "sub": gh.Subject, "aud": aud,
			"iat": clk.Now().Unix(), "exp": clk.Now().Add(time.Minute).Unix()})
		if reason, _ := check(t, v, k1old, nil, cred(is)); reason != federation.ReasonSignature {
			t.Errorf("a kid withdrawn from the key set: %q", reason)
		}
	})

	for _, tc := range []struct {
		name  string
		setup func(is *federationtest.Issuer)
		says  string
	}{
		{"keys on another host", func(is *federationtest.Issuer) { is.SetJWKSURI("http://keys.attacker.example/keys") }, "not the issuer's"},
		{"discovery names another issuer", func(is *federationtest.Issuer) { is.SetDiscoveryIssuer("https://token.actions.githubusercontent.com") }, "names issuer"},
		{"key set answers 500", func(is *federationtest.Issuer) { is.Status(500) }, "500"},
		{"key set of 50 MB", func(is *federationtest.Issuer) { is.Huge(50 << 20) }, "more than 1048576 bytes"},
		{"key set declaring 50 MB", func(is *federationtest.Issuer) { is.Declare(50 << 20) }, "is 52428800 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := federationtest.New(t)
			tc.setup(is)
			v := newVerifier(clk, is.URL)
			reason, msg := check(t, v, is.Sign(t, nil, gh), nil, cred(is))
			if reason != federation.ReasonKeysUnavailable || !strings.Contains(msg, tc.says) {
				t.Errorf("refused %q: %s; want %s saying %q", reason, msg, federation.ReasonKeysUnavailable, tc.says)
			}
			// Failed fetches are not repeated within the refresh interval.
			before := is.Fetches.Load()
			check(t, v, is.Sign(t, nil, gh), nil, cred(is))
			if is.Fetches.Load() != before {
				t.Errorf("a failed fetch was repeated at once")
			}
		})
	}

	t.Run("a hanging issuer slows no other", func(t *testing.T) {
		slow, fast := federationtest.New(t), federationtest.New(t)
		release := make(chan struct{})
		defer close(release)
		slow.Hang(release)
		v := newVerifier(clk, slow.URL, fast.URL)
		done := make(chan string)
		go func() {
			reason, _ := check(t, v, slow.Sign(t, nil, gh), nil, cred(slow))
			done <- reason
		}()
		time.Sleep(100 * time.Millisecond) // the slow fetch is under way
		start := time.Now()
		if reason, msg := check(t, v, fast.Sign(t, nil, gh), nil, cred(fast)); reason != "" {
			t.Fatalf("the other issuer: %s", msg)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("the other issuer's sign-in waited %s", d)
		}
		select {
		case reason := <-done:
			if reason != federation.ReasonKeysUnavailable {
				t.Errorf("the hanging issuer: %q", reason)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the hanging fetch was not bounded by the timeout")
		}
	})

	t.Run("static key set, issuer unreachable", func(t *testing.T) {
		is := federationtest.New(t)
		static := is.JWKS()
		is.Status(503)
		v := newVerifier(clk, is.URL)
		if reason, msg := check(t, v, is.Sign(t, nil, gh), static, cred(is)); reason != "" {
			t.Errorf("with the static key set: %s", msg)
		}
		if is.Fetches.Load() != 0 {
			t.Error("a static key set still fetched the issuer's")
		}
	})
}

// TestExpressions: Entra's claims matching grammar, bounded.
func TestExpressions(t *testing.T) {
	claims := map[string]any{"sub": "repo:acme/app:ref:refs/heads/feature/x", "job_workflow_ref": "acme/wf/.github/workflows/ci.yml@refs/heads/main", "n": 1.0}
	for _, tc := range []struct {
		expr string
		ok   bool // parses
		want bool
	}{
		{`claims['sub'] matches 'repo:acme/app:ref:refs/heads/*'`, true, true},
		{`claims['sub'] matches 'repo:acme/app:ref:refs/heads/feature/?'`, true, true},
		{`claims['sub'] matches 'repo:acme/app:ref:refs/tags/*'`, true, false},
		{`claims['sub'] eq 'repo:acme/app:ref:refs/heads/feature/x'`, true, true},
		{`claims['sub'] eq 'repo:acme/app:ref:refs/heads/*'`, true, false},
		{`claims['sub'] matches 'repo:acme/*' and claims['job_workflow_ref'] matches 'acme/wf/*@refs/heads/main'`, true, true},
		{`claims['sub'] matches 'repo:acme/*' and claims['job_workflow_ref'] eq 'other'`, true, false},
		{`claims['n'] eq '1'`, true, false},
		{`claims['missing'] matches '*'`, true, false},
		{`claims['sub'] matches '.*'`, true, false}, // no regular expressions: '.' is a dot
		{`claims['sub'] like 'x'`, false, false},
		{`claims['sub'] matches 'x' or claims['sub'] matches 'y'`, false, false},
		{`claims["sub"] matches 'x'`, false, false},
		{``, false, false},
		{`claims['sub'] matches '` + strings.Repeat("*", 600) + `'`, false, false},
	} {
		e, err := federation.ParseExpression(tc.expr)
		if (err == nil) != tc.ok {
			t.Errorf("%q: parse error %v", tc.expr, err)
			continue
		}
		if err == nil && e.Eval(claims) != tc.want {
			t.Errorf("%q: %v, want %v", tc.expr, !tc.want, tc.want)
		}
	}
}

// TestParseKeySet: a key set is bounded (bytes, keys) and only public signing keys count: a
// private key, an encryption key or a kind berth does not verify is skipped.
func TestParseKeySet(t *testing.T) {
	is := federationtest.New(t)
	var pub struct{ Keys []map[string]any }
	json.Unmarshal(is.JWKS(), &pub)
	key := pub.Keys[0]
	set := func(keys ...any) []byte { b, _ := json.Marshal(map[string]any{"keys": keys}); return b }
	with := func(k map[string]any, f, v string) map[string]any {
		c := map[string]any{}
		for n, x := range k {
			c[n] = x
		}
		c[f] = v
		return c
	}
	priv, _ := json.Marshal(jose.JSONWebKey{Key: federationtest.Private(is.Key("k1")), KeyID: "p", Algorithm: "RS256"})
	var privKey map[string]any
	json.Unmarshal(priv, &privKey)
	many := make([]any, federation.MaxKeys+1)
	for i := range many {
		many[i] = key
	}
	for _, tc := range []struct {
		name string
		doc  []byte
		keys int
		says string
	}{
		{"one public key", set(key), 1, ""},
		{"a private key is no key", set(privKey), 0, "no public signing key"},
		{"an encryption key is skipped", set(with(key, "use", "enc"), key), 1, ""},
		{"a kind berth does not verify", set(map[string]any{"kty": "oct", "k": "AAAA"}), 0, "no public signing key"},
		{"too many keys", set(many...), 0, "at most 100"},
		{"too large", append(append([]byte(`{"keys":[],"pad":"`), bytes.Repeat([]byte("x"), federation.MaxDocumentBytes)...), `"}`...), 0, "more than"},
		{"not JSON", []byte("{"), 0, "not a JWKS"},
	} {
		keys, err := federation.ParseKeySet(tc.doc)
		if len(keys) != tc.keys || (tc.says == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %d keys, %v", tc.name, len(keys), err)
		}
	}
}

// Package federationtest is an OpenID Connect issuer for tests: a real HTTP server with a
// discovery document and a key set, whose keys, answers and cache headers a test controls, and
// which signs tokens shaped as GitHub Actions' or a Kubernetes service account's.
package federationtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Key is one signing key of the issuer.
type Key struct {
	ID   string
	Alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

// Issuer is a test OpenID Connect issuer.
type Issuer struct {
	URL string
	srv *httptest.Server

	mu           sync.Mutex
	keys         []*Key // published
	cacheControl string
	jwksURI      string          // overrides the discovery document's jwks_uri
	discoveryIss string          // overrides the discovery document's issuer
	hang         <-chan struct{} // the key set waits for this to close
	huge         int             // the key set is this many bytes of padding
	declared     int             // the key set declares this Content-Length
	status       int             // the key set answers this status

	// Fetches counts the key set's fetches.
	Fetches atomic.Int64
}

// New starts an issuer with one RS256 key, "k1".
func New(t testing.TB) *Issuer {
	t.Helper()
	is := &Issuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		is.mu.Lock()
		iss, uri := is.URL, is.URL+"/keys"
		if is.discoveryIss != "" {
			iss = is.discoveryIss
		}
		if is.jwksURI != "" {
			uri = is.jwksURI
		}
		is.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"issuer": iss, "jwks_uri": uri, "id_token_signing_alg_values_supported": []string{"RS256", "ES256", "EdDSA"}})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		is.Fetches.Add(1)
		is.mu.Lock()
		hang, huge, status, cc, declared := is.hang, is.huge, is.status, is.cacheControl, is.declared
		set := jose.JSONWebKeySet{}
		for _, k := range is.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.ID, Algorithm: string(k.Alg), Use: "sig"})
		}
		is.mu.Unlock()
		if hang != nil {
			select {
			case <-hang:
			case <-r.Context().Done():
				return
			}
		}
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		if status != 0 {
			w.WriteHeader(status)
			return
		}
		if declared > 0 {
			w.Header().Set("Content-Length", strconv.Itoa(declared))
			w.WriteHeader(http.StatusOK)
			return // the client refuses on the header alone
		}
		if huge > 0 {
			w.Write([]byte(`{"keys":[],"pad":"`))
			chunk := []byte(strings.Repeat("x", 64<<10))
			for n := 0; n < huge; n += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			w.Write([]byte(`"}`))
			return
		}
		json.NewEncoder(w).Encode(set)
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	is.URL = is.srv.URL
	is.AddKey(t, "k1", jose.RS256)
	return is
}

// AddKey makes and publishes a key.
func (is *Issuer) AddKey(t testing.TB, id string, alg jose.SignatureAlgorithm) *Key {
	t.Helper()
	k := &Key{ID: id, Alg: alg}
	var err error
	switch alg {
	case jose.RS256:
		k.priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		k.priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, k.priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("federationtest: no key for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	is.mu.Lock()
	is.keys = append(is.keys, k)
	is.mu.Unlock()
	return k
}

// Key returns the published key id, or nil.
func (is *Issuer) Key(id string) *Key {
	is.mu.Lock()
	defer is.mu.Unlock()
	for _, k := range is.keys {
		if k.ID == id {
			return k
		}
	}
	return nil
}

// RemoveKey stops publishing key id (tokens it signed stay signed).
func (is *Issuer) RemoveKey(id string) {
	is.mu.Lock()
	defer is.mu.Unlock()
	for i, k := range is.keys {
		if k.ID == id {
			is.keys = append(is.keys[:i], is.keys[i+1:]...)
			return
		}
	}
}

// JWKS is the published key set, as a static key set for a credential.
func (is *Issuer) JWKS() []byte {
	is.mu.Lock()
	defer is.mu.Unlock()
	set := jose.JSONWebKeySet{}
	for _, k := range is.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.ID, Algorithm: string(k.Alg), Use: "sig"})
	}
	b, _ := json.Marshal(set)
	return b
}

// SetCacheControl sets the key set's Cache-Control header.
func (is *Issuer) SetCacheControl(cc string) { is.mu.Lock(); is.cacheControl = cc; is.mu.Unlock() }

// SetJWKSURI makes the discovery document point its keys at uri.
func (is *Issuer) SetJWKSURI(uri string) { is.mu.Lock(); is.jwksURI = uri; is.mu.Unlock() }

// SetDiscoveryIssuer makes the discovery document name another issuer.
func (is *Issuer) SetDiscoveryIssuer(iss string) { is.mu.Lock(); is.discoveryIss = iss; is.mu.Unlock() }

// Hang makes the key set wait until release is closed (or the request ends).
func (is *Issuer) Hang(release <-chan struct{}) { is.mu.Lock(); is.hang = release; is.mu.Unlock() }

// Huge makes the key set n bytes long.
func (is *Issuer) Huge(n int) { is.mu.Lock(); is.huge = n; is.mu.Unlock() }

// Declare makes the key set declare a Content-Length of n bytes.
func (is *Issuer) Declare(n int) { is.mu.Lock(); is.declared = n; is.mu.Unlock() }

// Status makes the key set answer status (0: as usual).
func (is *Issuer) Status(status int) { is.mu.Lock(); is.status = status; is.mu.Unlock() }

// Claims of a token; Extra adds to or overrides the registered ones.
type Claims struct {
	Issuer    string // default: the issuer's URL
	Subject   string
	Audience  []string
	IssuedAt  time.Time // default: now
	Expiry    time.Time // default: IssuedAt + 10 minutes
	NotBefore time.Time
	Extra     map[string]any
	// NoExpiry, NoIssuedAt leave those claims out.
	NoExpiry, NoIssuedAt bool
}

// Sign makes a token signed with key (the first published key when nil).
func (is *Issuer) Sign(t testing.TB, key *Key, c Claims) string {
	t.Helper()
	if key == nil {
		is.mu.Lock()
		key = is.keys[0]
		is.mu.Unlock()
	}
	return SignWith(t, key.priv, key.Alg, key.ID, is.claims(c))
}

func (is *Issuer) claims(c Claims) map[string]any {
	if c.Issuer == "" {
		c.Issuer = is.URL
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = time.Now()
	}
	if c.Expiry.IsZero() {
		c.Expiry = c.IssuedAt.Add(10 * time.Minute)
	}
	m := map[string]any{"iss": c.Issuer, "sub": c.Subject, "aud": c.Audience, "jti": rand.Text()}
	if !c.NoIssuedAt {
		m["iat"] = c.IssuedAt.Unix()
	}
	if !c.NoExpiry {
		m["exp"] = c.Expiry.Unix()
	}
	if !c.NotBefore.IsZero() {
		m["nbf"] = c.NotBefore.Unix()
	}
	for k, v := range c.Extra {
		m[k] = v
	}
	return m
}

// SignWith signs claims with any key and algorithm (HS256 with a public key's bytes, for an
// attack).
func SignWith(t testing.TB, key any, alg jose.SignatureAlgorithm, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// GitHub is a GitHub Actions token's claims for a workflow of repo on ref.
func GitHub(repo, ref string, audience ...string) Claims {
	if len(audience) == 0 {
		audience = []string{"api://BerthTokenExchange"}
	}
	return Claims{Subject: "repo:" + repo + ":ref:" + ref, Audience: audience, Extra: map[string]any{
		"repository": repo, "ref": ref, "job_workflow_ref": repo + "/.github/workflows/ci.yml@" + ref, "runner_environment": "github-hosted"}}
}

// Kubernetes is a projected service-account token's claims.
func Kubernetes(namespace, name string, audience ...string) Claims {
	if len(audience) == 0 {
		audience = []string{"api://BerthTokenExchange"}
	}
	return Claims{Subject: "system:serviceaccount:" + namespace + ":" + name, Audience: audience, Extra: map[string]any{
		"kubernetes.io": map[string]any{"namespace": namespace, "serviceaccount": map[string]any{"name": name, "uid": rand.Text()}}}}
}

// Private is a key's private half, to sign what Sign would not.
func Private(k *Key) crypto.Signer { return k.priv }

package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/registrytest"
	"github.com/berth-registry/berth/internal/server"
	"github.com/berth-registry/berth/internal/store"
)

func TestHealth(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Correlation-Id") == "" {
			t.Errorf("%s: %d, correlation id %q", path, resp.StatusCode, resp.Header.Get("X-Correlation-Id"))
		}
	}
	// A client's own correlation id is echoed; an unsafe one is replaced.
	for _, tc := range []struct{ sent, want string }{{"abc-123", "abc-123"}, {"bad id; with spaces", ""}} {
		req, _ := http.NewRequest("GET", s.URL+"/v2/", nil)
		req.Header.Set("X-Correlation-Id", tc.sent)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.Header.Get("X-Correlation-Id")
		if tc.want != "" && got != tc.want || tc.want == "" && (got == "" || got == tc.sent) {
			t.Errorf("sent correlation id %q, got %q", tc.sent, got)
		}
	}
}

// clock is a settable test clock.
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

func TestPurgeUploads(t *testing.T) {
	clk := &clock{t: time.Now()}
	// On the filesystem driver, whose upload files the test plants and inspects.
	s := registrytest.New(t, registrytest.Options{Now: clk.Now, Config: func(c *config.Config) {
		c.Uploads.TTL, c.Storage = time.Hour, "fs:"+filepath.Join(c.DataDir, "blobs")
	}})
	user, pass := s.Admin(t)
	do := func(method, u string) *http.Response {
		req, _ := http.NewRequest(method, u, nil)
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	post := func() string {
		resp, err := do("POST", s.URL+"/v2/p/repo/blobs/uploads/"), error(nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return s.URL + resp.Header.Get("Location")
	}
	status := func(loc string) int {
		resp := do("GET", loc)
		resp.Body.Close()
		return resp.StatusCode
	}
	old := post()
	clk.Add(50 * time.Minute)
	fresh := post()
	clk.Add(20 * time.Minute) // old is 70 minutes idle, fresh 20
	// Upload data left behind by a crash, with no session.
	orphan := filepath.Join(s.Dir, "blobs", "uploads", "orphan")
	if err := os.WriteFile(orphan, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-2 * time.Hour)
	os.Chtimes(orphan, past, past)
	if err := s.PurgeUploads(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := status(old); got != 404 {
		t.Errorf("idle upload status %d after purge; want 404", got)
	}
	if got := status(fresh); got != 204 {
		t.Errorf("recent upload status %d after purge; want 204", got)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("orphaned upload data survived the purge: %v", err)
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pool := writeSelfSigned(t, certFile, keyFile)
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) { c.TLS.Cert, c.TLS.Key = certFile, keyFile }})
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get("https://" + s.Host + "/v2/")
	if err != nil {
		t.Fatalf("HTTPS request: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The challenge sends clients to the token endpoint over HTTPS too.
	want := `Bearer realm="https://` + s.Host + `/oauth2/token",service="` + s.Host + `"`
	if got := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 401 || got != want {
		t.Errorf("GET /v2/ over TLS: %d %q %s; want 401 with %s", resp.StatusCode, got, body, want)
	}
	// Plain HTTP on the TLS port is not served: Go's TLS layer answers 400 "Client sent an HTTP
	// request to an HTTPS server" and nothing of the registry (no challenge, no API header).
	plain, err := http.Get("http://" + s.Host + "/v2/")
	if err == nil {
		pb, _ := io.ReadAll(plain.Body)
		plain.Body.Close()
		if plain.StatusCode != http.StatusBadRequest || !strings.Contains(string(pb), "HTTP request to an HTTPS server") ||
			plain.Header.Get("WWW-Authenticate") != "" || plain.Header.Get("Docker-Distribution-Api-Version") != "" {
			t.Errorf("plain HTTP on the TLS port: %d %v %q; want the TLS layer's 400 and no registry reply", plain.StatusCode, plain.Header, pb)
		}
	}
}

func writeSelfSigned(t *testing.T, certFile, keyFile string) *x509.CertPool {
	certPEM, keyPEM, cert := selfSigned(t, "127.0.0.1", 1)
	os.WriteFile(certFile, certPEM, 0o600)
	os.WriteFile(keyFile, keyPEM, 0o600)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// TestManagementAllowList: network.management_allow keeps every address outside it away from
// /mgmt/v1/ and /metrics (before any authentication), and nothing else; explain says whether an
// address is inside it.
func TestManagementAllowList(t *testing.T) {
	get := func(t *testing.T, url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	outside := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) { c.Network.ManagementAllow = []string{"203.0.113.0/24"} }})
	for _, path := range []string{"/mgmt/v1/registries", "/mgmt/v1/token", "/metrics"} {
		st, body := get(t, outside.URL+path)
		if st != http.StatusForbidden || !strings.Contains(body, "client with IP '127.0.0.1' is not allowed to use the management API (network.management_allow)") {
			t.Errorf("%s from outside the allow-list: %d %s", path, st, body)
		}
	}
	for path, want := range map[string]int{"/v2/": http.StatusUnauthorized, "/healthz": http.StatusOK} {
		if st, body := get(t, outside.URL+path); st != want {
			t.Errorf("%s is not the management API: %d %s", path, st, body)
		}
	}

	inside := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) { c.Network.ManagementAllow = []string{"127.0.0.0/8", "203.0.113.7"} }})
	var e struct {
		Management *struct {
			Allow  bool   `json:"allow"`
			Code   string `json:"code"`
			Reason string `json:"reason"`
		} `json:"management"`
	}
	for _, tc := range []struct {
		ip    string
		allow bool
	}{{"203.0.113.7", true}, {"203.0.113.8", false}} {
		ip, allow := tc.ip, tc.allow
		if st := inside.Mgmt(t, "GET", "/mgmt/v1/registries/default/explain?identity=owner&action=pull&repository=a&ip="+ip, nil, &e); st != 200 ||
			e.Management == nil || e.Management.Allow != allow {
			t.Errorf("explain from %s: %d %+v", ip, st, e.Management)
		}
	}
	if e.Management.Code != "management_not_allowed" || !strings.Contains(e.Management.Reason, "'203.0.113.8'") {
		t.Errorf("explain of a refused address: %+v", e.Management)
	}
	e.Management = nil
	if st := inside.Mgmt(t, "GET", "/mgmt/v1/registries/default/explain?identity=owner&action=pull&repository=a", nil, &e); st != 200 || e.Management != nil {
		t.Errorf("explain without an address: %d %+v", st, e.Management)
	}
}

// TestDataIsPrivate (issue 16, finding 7): whatever the modes of an existing data folder and
// database, berth leaves the folder 0700 and every file in it (the database with the signing
// keys, its -wal and -shm, blobs; TestBootstrapGeneratedPassword checks the password file)
// readable by its owner only.
func TestDataIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "berth.db"), nil, 0o644); err != nil { // an empty database, as an older berth left it
		t.Fatal(err)
	}
	s := registrytest.New(t, registrytest.Options{Dir: dir, Config: func(c *config.Config) {
		c.Database = "sqlite:" + filepath.Join(dir, "berth.db")
		c.Storage = "fs:" + filepath.Join(dir, "blobs")
	}})
	user, pass := s.Admin(t)
	req, _ := http.NewRequest("POST", s.URL+"/v2/app/blobs/uploads/?digest=sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", strings.NewReader("hello"))
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push: %d", resp.StatusCode)
	}
	seen := map[string]bool{}
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		seen[filepath.Base(p)] = true
		switch {
		case d.IsDir() && fi.Mode().Perm() != 0o700:
			t.Errorf("folder %s is %v; want 0700", rel, fi.Mode().Perm())
		case !d.IsDir() && fi.Mode().Perm()&0o077 != 0:
			t.Errorf("file %s is %v; want no access for group or others", rel, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"berth.db", "berth.db-wal", "berth.db-shm", "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"} {
		if !seen[want] {
			t.Errorf("%s was not found in the data folder: the test checked less than it says", want)
		}
	}
}

// TestSigningKeysAreEncrypted (issue 16, secrets at rest): the signing keys are stored sealed
// with the key-encryption key (generated once in the data folder on SQLite), a restart reads
// them back, keys an older berth stored in clear are sealed on start, and another
// key-encryption key refuses to start with a clear error instead of signing with new keys.
func TestSigningKeysAreEncrypted(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	sqlite := func(c *config.Config) {
		c.Database = "sqlite:" + filepath.Join(dir, "berth.db")
		c.Storage = "fs:" + filepath.Join(dir, "blobs")
	}
	// A new server's first key is sealed as it is made.
	fresh := registrytest.New(t, registrytest.Options{})
	if keys, err := fresh.Meta().SigningKeys(ctx, time.Now()); err != nil || len(keys) != 1 || !bytes.HasPrefix(keys[0].PrivateKey, []byte("berth-kek1:")) {
		t.Errorf("a new server's signing key: %d keys, %v", len(keys), err)
	}
	// An older berth left a key in clear.
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "berth.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	now := time.Now()
	if err := st.AddSigningKey(ctx, store.SigningKey{KID: "legacy", Algorithm: "ES256", PrivateKey: der, CreatedAt: now.Add(-time.Hour), RetireAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	s := registrytest.New(t, registrytest.Options{Dir: dir, Config: sqlite})
	keys, err := s.Meta().SigningKeys(ctx, time.Now())
	if err != nil || len(keys) != 1 || keys[0].KID != "legacy" { // not due for rotation: still the one key
		t.Fatalf("signing keys: %+v, %v", keys, err)
	}
	for _, k := range keys {
		if !bytes.HasPrefix(k.PrivateKey, []byte("berth-kek1:")) {
			t.Errorf("key %s is stored in clear", k.KID)
		}
		if _, err := x509.ParsePKCS8PrivateKey(k.PrivateKey); err == nil {
			t.Errorf("key %s parses as a private key as stored", k.KID)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, server.KeyEncryptionKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the generated key-encryption key: %v", err)
	}
	signIn := func(s *registrytest.Server) int {
		user, pass := s.Admin(t)
		req, _ := http.NewRequest("GET", s.URL+"/oauth2/token?service="+s.Host+"&scope=repository:a:pull", nil)
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := signIn(s); st != 200 {
		t.Fatalf("a token before the restart: %d", st)
	}
	s.Stop()
	s = registrytest.New(t, registrytest.Options{Dir: dir, Config: sqlite})
	if st := signIn(s); st != 200 {
		t.Errorf("a token after the restart: %d", st)
	}
	s.Stop()
	cfg := config.Default()
	cfg.DataDir = dir
	sqlite(&cfg)
	cfg.Auth.KeyEncryptionKey = registrytest.TestKeyEncryptionKey
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := server.New(ctx, cfg, server.Options{BootstrapPassword: registrytest.OwnerPassword}); err == nil ||
		!strings.Contains(err.Error(), "cannot be decrypted") {
		t.Errorf("start with another key-encryption key: %v", err)
	}
}

// TestMetricsListen: with metrics.listen, /metrics is served on that address alone and the
// registry's address no longer answers it.
func TestMetricsListen(t *testing.T) {
	addr := registrytest.FreeAddr(t)
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) { c.Metrics.Listen = addr }})
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics on the registry's address with metrics.listen set: %d; want 404", resp.StatusCode)
	}
	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "berth_") {
		t.Errorf("/metrics on metrics.listen: %d %.200s", resp.StatusCode, b)
	}
}

// TestForwardedHTTPS: behind a TLS-terminating proxy that berth trusts, the URLs berth gives
// clients name https (the token realm, single sign-on's callback); the same header from a client
// berth does not trust changes nothing.
func TestForwardedHTTPS(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []string
		want    string
	}{
		{"trusted proxy", []string{"127.0.0.1/32"}, `Bearer realm="https://`},
		{"untrusted client", []string{"10.9.9.9/32"}, `Bearer realm="http://`},
		{"no proxies", nil, `Bearer realm="http://`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) { c.Network.TrustedProxies = tc.trusted }})
			req, _ := http.NewRequest("GET", s.URL+"/v2/", nil)
			req.Header.Set("X-Forwarded-Proto", "https")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, tc.want) {
				t.Errorf("challenge %q, want %s…", got, tc.want)
			}
		})
	}
}

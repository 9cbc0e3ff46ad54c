// Package registrytest runs a real berth server on a loopback socket for tests. With
// BERTH_TEST_BACKEND=postgres its metadata is in a PostgreSQL schema of its own
// (BERTH_TEST_POSTGRES), and with BERTH_TEST_STORAGE=s3 its blobs under a prefix of their own in
// the bucket of BERTH_TEST_S3, so that the same tests run on both kinds of backend.
package registrytest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/blob/s3blob/s3test"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/directory"
	"github.com/berth-registry/berth/internal/server"
	"github.com/berth-registry/berth/internal/store"
	"github.com/berth-registry/berth/internal/store/pgtest"
)

// Server is a berth serving on 127.0.0.1 for the length of a test.
type Server struct {
	*server.Server
	URL  string // http://127.0.0.1:PORT
	Host string // 127.0.0.1:PORT
	Dir  string // data folder
	Cfg  config.Config
	stop func()

	mu       sync.Mutex
	adminPwd string
}

// TestKeyEncryptionKey is the key-encryption key of test servers over PostgreSQL.
const TestKeyEncryptionKey = "dGVzdC1rZXktZW5jcnlwdGlvbi1rZXktMzItYnl0ZXM="

// OwnerPassword is the bootstrap owner's password on every test server.
const OwnerPassword = "registrytest-owner-password"

// cheap are argon2id costs for tests: the real ones would dominate the race detector's runs.
var cheap = directory.Params{Time: 1, Memory: 64, Threads: 1}

// Options adjust the server a test gets.
type Options struct {
	Dir    string               // data folder to reuse (for restarts); default a new temp dir
	Config func(*config.Config) // edits the default configuration
	Now    func() time.Time     // the server's clock; default time.Now
	// RealHashing keeps argon2id's production costs.
	RealHashing bool
	// GenerateOwnerPassword leaves the bootstrap password to the server, which writes it to a
	// file in Dir (OwnerToken then does not work).
	GenerateOwnerPassword bool
	// Log receives the server's log (text); default discarded unless BERTH_TEST_LOG is set.
	Log io.Writer
	// Listen is the address to serve on; default a free loopback port.
	Listen string
	// ManualWebhooks: webhook deliveries happen only when the test calls DeliverWebhooks.
	ManualWebhooks bool
}

// New starts a server and stops it when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	dir := opts.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	if os.Getenv("BERTH_TEST_BACKEND") == "postgres" {
		cfg.Database = postgresFor(t, dir)
	}
	if os.Getenv("BERTH_TEST_STORAGE") == "s3" {
		cfg.Storage = s3For(t, dir)
	}
	cfg.Auth.ThrottledDelay = 0 // tests count many refusals; TestThrottledDelay sets it
	if opts.Config != nil {
		opts.Config(&cfg)
	}
	if store.IsPostgres(cfg.Database) && cfg.Auth.KeyEncryptionKey == "" && cfg.Auth.KeyEncryptionKeyFile == "" {
		cfg.Auth.KeyEncryptionKey = TestKeyEncryptionKey // replicas over PostgreSQL share one
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	var out io.Writer = io.Discard
	if os.Getenv("BERTH_TEST_LOG") != "" {
		out = os.Stderr
	}
	if opts.Log != nil {
		out = opts.Log
	}
	bootstrap := OwnerPassword
	if opts.GenerateOwnerPassword {
		bootstrap = ""
	}
	hp := &cheap
	if opts.RealHashing {
		hp = nil
	}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, server.Options{Log: log, Now: opts.Now, BootstrapPassword: bootstrap, HashParams: hp, ManualWebhooks: opts.ManualWebhooks})
	if err != nil {
		cancel()
		t.Fatalf("server.New: %v", err)
	}
	listen := opts.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	s := &Server{Server: srv, URL: "http://" + ln.Addr().String(), Host: ln.Addr().String(), Dir: dir, Cfg: cfg}
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("server stopped with %v", err)
		}
		srv.Close()
	}
	t.Cleanup(s.stop)
	return s
}

// postgresFor is the PostgreSQL database of the data folder dir: a new, migrated schema, or the
// one a server on dir had before (a restart).
func postgresFor(t testing.TB, dir string) string {
	t.Helper()
	file := filepath.Join(dir, "postgres-dsn")
	if b, err := os.ReadFile(file); err == nil {
		return string(b)
	}
	dsn := pgtest.DSN(t)
	st, err := store.Open(context.Background(), dsn, store.Options{})
	if err != nil {
		t.Fatalf("migrate %s: %v", store.Redact(dsn), err)
	}
	st.Close()
	if err := os.WriteFile(file, []byte(dsn), 0o600); err != nil {
		t.Fatal(err)
	}
	return dsn
}

// s3For is the S3 storage of the data folder dir: a prefix of its own in the bucket of
// BERTH_TEST_S3, kept across restarts on dir.
func s3For(t testing.TB, dir string) string {
	t.Helper()
	file := filepath.Join(dir, "s3-storage")
	if b, err := os.ReadFile(file); err == nil {
		return string(b)
	}
	if os.Getenv("BERTH_TEST_S3") == "" {
		t.Fatalf("BERTH_TEST_STORAGE=s3 needs BERTH_TEST_S3 (scripts/minio.sh start DIR prints it)")
	}
	u := s3test.URL(t, "srv")
	if err := os.WriteFile(file, []byte(u), 0o600); err != nil {
		t.Fatal(err)
	}
	return u
}

// Stop shuts the server down now (it is also stopped at the end of the test).
func (s *Server) Stop() { s.stop() }

// OwnerToken signs in as the bootstrap owner and returns a directory token.
func (s *Server) OwnerToken(t testing.TB) string {
	t.Helper()
	return SignInOwner(t, s.URL, OwnerPassword)
}

// SignInOwner signs the owner in at the server at base with password and returns a directory
// token (for servers the test started itself, such as replicas).
func SignInOwner(t testing.TB, base, password string) string {
	t.Helper()
	return SignInAt(t, base, "owner", password)
}

// SignInAt signs a directory user in at the server at base and returns its directory token.
func SignInAt(t testing.TB, base, user, password string) string {
	t.Helper()
	resp, err := http.PostForm(base+"/mgmt/v1/token", url.Values{"grant_type": {"password"}, "username": {user}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		t.Fatalf("%s's sign-in at %s: status %d, %v", user, base, resp.StatusCode, err)
	}
	return body.AccessToken
}

// Mgmt calls the management API as the owner and decodes the JSON reply into out (may be nil).
// It returns the status.
func (s *Server) Mgmt(t testing.TB, method, path string, in, out any) int {
	t.Helper()
	return s.MgmtAs(t, s.OwnerToken(t), method, path, in, out)
}

// MgmtAs calls the management API with a directory token.
func (s *Server) MgmtAs(t testing.TB, tok, method, path string, in, out any) int {
	t.Helper()
	return MgmtAt(t, s.URL, tok, method, path, in, out)
}

// MgmtAt calls the management API of the server at base with a directory token, decodes a
// successful JSON reply into out (may be nil) and returns the status; other replies are logged.
func MgmtAt(t testing.TB, base, tok, method, path string, in, out any) int {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decoding %s: %v", method, path, b, err)
		}
	}
	if resp.StatusCode >= 300 {
		t.Logf("%s %s%s: %d %s", method, base, path, resp.StatusCode, b)
	}
	return resp.StatusCode
}

// Admin enables the admin user of the default registry (once) and returns its name and first
// password.
func (s *Server) Admin(t testing.TB) (user, password string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.adminPwd == "" {
		var reg struct {
			Credentials struct {
				Username  string
				Passwords []struct{ Name, Value string }
			}
		}
		if st := s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default", map[string]any{"adminUserEnabled": true}, &reg); st != http.StatusOK {
			t.Fatalf("enable admin: status %d", st)
		}
		s.adminPwd = ""
		if len(reg.Credentials.Passwords) > 0 {
			s.adminPwd = reg.Credentials.Passwords[0].Value
		} else { // enabled before (a restarted server): renew the first password
			var creds struct {
				Passwords []struct{ Name, Value string }
			}
			if st := s.Mgmt(t, "POST", "/mgmt/v1/registries/default/credentials/renew", map[string]string{"name": "password"}, &creds); st != http.StatusOK {
				t.Fatalf("renew admin password: status %d", st)
			}
			for _, p := range creds.Passwords {
				if p.Name == "password" {
					s.adminPwd = p.Value
				}
			}
		}
	}
	return "default", s.adminPwd
}

// Clock is a settable clock for servers under test.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock set to the current time.
func NewClock() *Clock { return &Clock{t: time.Now()} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock forward.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// SettleEvents waits until the login and repository events of the requests made so far are
// written: they go to the store in batches a few milliseconds after their request, so it waits
// until the count has not moved for three looks in a row.
func (s *Server) SettleEvents(t testing.TB) {
	t.Helper()
	for last, still := int64(-1), 0; still < 3; {
		l, r, err := s.Meta().CountEvents(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if l+r == last {
			still++
		} else {
			still = 0
		}
		last = l + r
		time.Sleep(50 * time.Millisecond)
	}
}

package checkhealth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ggauthn "github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/checkhealth"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/federation/federationtest"
	"github.com/berth-registry/berth/internal/registrytest"
)

// env is a client environment of its own: a home folder, docker and helm configs.
type env struct {
	vars map[string]string
	home string
}

func newEnv(t *testing.T) *env {
	home := t.TempDir()
	return &env{home: home, vars: map[string]string{"HOME": home, "DOCKER_CONFIG": filepath.Join(home, "docker"),
		"DOCKER_COMMAND": "no-such-container-tool"}}
}

func (e *env) getenv(k string) string { return e.vars[k] }

// storeDocker writes a docker config.json with one entry.
func (e *env) storeDocker(t *testing.T, key, user, password string) {
	t.Helper()
	writeAuth(t, filepath.Join(e.vars["DOCKER_CONFIG"], "config.json"), key, user, password)
}

// writeAuth writes an auth file (docker's, podman's and helm's share the format) with one entry.
func writeAuth(t *testing.T, path, key, user, password string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{"auths": map[string]any{key: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}}}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// codes runs check-health and returns the error codes found, in order, and the results.
func codes(t *testing.T, o checkhealth.Options) ([]string, []checkhealth.Result) {
	t.Helper()
	res, _ := checkhealth.Run(t.Context(), o)
	var out []string
	for _, r := range res {
		if r.Status == checkhealth.StatusError {
			out = append(out, r.Code)
			if r.Message == "" || r.Fix == "" || strings.ContainsAny(r.Message+r.Fix, "{}") {
				t.Errorf("%s: message %q, fix %q", r.Code, r.Message, r.Fix)
			}
		}
	}
	return out, res
}

func find(res []checkhealth.Result, code string) checkhealth.Result {
	for _, r := range res {
		if r.Code == code {
			return r
		}
	}
	return checkhealth.Result{}
}

func TestCheckHealthAgainstBerth(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	session := client.New(s.URL, s.OwnerToken(t))
	admin, adminPwd := s.Admin(t)
	img, _ := random.Image(256, 1)
	ref, _ := name.NewTag(s.Host+"/probe/app:v1", name.Insecure)
	if err := remote.Write(ref, img, remote.WithAuth(&ggauthn.Basic{Username: admin, Password: adminPwd})); err != nil {
		t.Fatal(err)
	}
	base := func(e *env) checkhealth.Options {
		return checkhealth.Options{Name: "default", Session: session, Getenv: e.getenv, IgnoreErrors: true, Yes: true, Version: "test"}
	}
	registryCodes := func(all []string) []string { // the codes of the registry checks, not of local tools
		var out []string
		for _, c := range all {
			if !strings.HasPrefix(c, "DOCKER_") && !strings.HasPrefix(c, "HELM_") {
				out = append(out, c)
			}
		}
		return out
	}
	patch := func(body map[string]any) {
		t.Helper()
		if st := s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default", body, nil); st != http.StatusOK {
			t.Fatalf("PATCH %v: %d", body, st)
		}
	}

	t.Run("healthy, with a pull", func(t *testing.T) {
		e := newEnv(t)
		e.storeDocker(t, s.Host, admin, adminPwd)
		o := base(e)
		o.Repository = "probe/app:v1"
		got, res := codes(t, o)
		if got[0] != "DOCKER_COMMAND_ERROR" || len(registryCodes(got)) != 0 {
			t.Fatalf("codes %v", got)
		}
		var checks []string
		for _, r := range res {
			checks = append(checks, r.Check+"="+string(r.Status))
		}
		want := "container tool=error berth version=ok login server=ok dns=ok clock=ok challenge=ok refresh token=ok access token=ok stored credentials=ok pull=ok"
		if !strings.HasPrefix(strings.Join(checks, " "), want) {
			t.Errorf("checks:\n %s\nwant prefix\n %s", strings.Join(checks, " "), want)
		}
	})
	t.Run("stops at the first error without --ignore-errors", func(t *testing.T) {
		o := base(newEnv(t))
		o.IgnoreErrors = false
		res, err := checkhealth.Run(t.Context(), o)
		if err == nil || len(res) != 1 || res[0].Code != "DOCKER_COMMAND_ERROR" {
			t.Fatalf("err %v, results %+v", err, res)
		}
	})
	for _, tc := range []struct {
		name    string
		setup   func(e *env, o *checkhealth.Options)
		want    []string
		detail  string // in the first registry error's detail
		cleanup func()
	}{
		{"upper-case name", func(e *env, o *checkhealth.Options) { o.Name = "DEFAULT" }, []string{"REGISTRY_NAME_UPPERCASE_ERROR"}, "", nil},
		{"unknown registry", func(e *env, o *checkhealth.Options) { o.Name = "nosuch" }, []string{"LOGIN_SERVER_ERROR"}, "not found", nil},
		{"not signed in", func(e *env, o *checkhealth.Options) { o.Session = nil }, []string{"LOGIN_SERVER_ERROR"}, "not signed in", nil},
		{"unknown host", func(e *env, o *checkhealth.Options) {
			o.Name, o.Session, o.PlainHTTP = "nosuch.invalid:5000", nil, true
		}, []string{"CONNECTIVITY_DNS_ERROR"}, "", nil},
		{"credentials under an upper-case key", func(e *env, o *checkhealth.Options) {
			e.storeDocker(t, "LOCALHOST"+s.Host[len("127.0.0.1"):], admin, adminPwd)
			o.Name = "localhost" + s.Host[len("127.0.0.1"):]
		},
			[]string{"REGISTRY_NAME_UPPERCASE_ERROR"}, "do not apply", nil},
		{"refused credentials", func(e *env, o *checkhealth.Options) { e.storeDocker(t, s.Host, admin, "wrong") }, []string{"STORED_CREDENTIALS_INVALID_ERROR"}, "unknown user name or wrong password", nil},
		{"refused credentials in helm's registry config", func(e *env, o *checkhealth.Options) {
			writeAuth(t, filepath.Join(e.home, ".config", "helm", "registry", "config.json"), s.Host, admin, "wrong")
		}, []string{"STORED_CREDENTIALS_INVALID_ERROR"}, "registry/config.json", nil},
		{"refused credentials in podman's auth file", func(e *env, o *checkhealth.Options) {
			e.vars["REGISTRY_AUTH_FILE"] = filepath.Join(e.home, "podman-auth.json")
			writeAuth(t, e.vars["REGISTRY_AUTH_FILE"], "https://"+s.Host+"/v1/", admin, "wrong")
		}, []string{"STORED_CREDENTIALS_INVALID_ERROR"}, "podman-auth.json", nil},
		{"expired token", func(e *env, o *checkhealth.Options) {
			exp := base64.RawURLEncoding.EncodeToString([]byte(`{"exp":1700000000}`))
			e.storeDocker(t, s.Host, "00000000-0000-0000-0000-000000000000", "eyJhbGciOiJSUzI1NiJ9."+exp+".c2ln")
		}, []string{"STORED_CREDENTIALS_EXPIRED_ERROR"}, "expired on 2023-11-14", nil},
		{"stale credentials and anonymous pull", func(e *env, o *checkhealth.Options) {
			e.storeDocker(t, s.Host, admin, "wrong")
			o.Repository = "probe/app:v1"
			patch(map[string]any{"anonymousPullEnabled": true})
		}, []string{"STORED_CREDENTIALS_ANONYMOUS_PULL_ERROR", "CONNECTIVITY_PULL_ERROR"}, "unknown user name or wrong password",
			func() { patch(map[string]any{"anonymousPullEnabled": false}) }},
		{"unknown repository", func(e *env, o *checkhealth.Options) { o.Repository = "probe/none:v1" }, []string{"CONNECTIVITY_PULL_ERROR"}, "probe/none", nil},
		{"network rules", func(e *env, o *checkhealth.Options) {
			patch(map[string]any{"networkRuleSet": map[string]string{"defaultAction": "Deny"}})
		},
			[]string{"CONNECTIVITY_FORBIDDEN_ERROR"}, "client with IP '127.0.0.1' is not allowed access",
			func() { patch(map[string]any{"networkRuleSet": map[string]string{"defaultAction": "Allow"}}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			o := base(e)
			tc.setup(e, &o)
			if tc.cleanup != nil {
				defer tc.cleanup()
			}
			all, res := codes(t, o)
			got := registryCodes(all)
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("codes %v, want %v\n%+v", got, tc.want, res)
			}
			if r := find(res, tc.want[0]); !strings.Contains(r.Detail+r.Message, tc.detail) {
				t.Errorf("%s: detail %q, message %q, want %q", r.Code, r.Detail, r.Message, tc.detail)
			}
		})
	}
}

func TestBadRepository(t *testing.T) {
	for _, repo := range []string{"UPPER/case", "a//b", "ok/repo:bad tag!", "a@sha256:zz"} {
		if _, err := checkhealth.Run(t.Context(), checkhealth.Options{Name: "127.0.0.1:1", Repository: repo}); err == nil || !strings.Contains(err.Error(), "--repository") {
			t.Errorf("--repository %q: %v", repo, err)
		}
	}
}

// challengeServer answers /v2/ with a bearer challenge and the Date it is given.
func challengeServer(date time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", date.UTC().Format(http.TimeFormat))
		w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+r.Host+`/oauth2/token",service="`+r.Host+`"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
}

func TestClockSkew(t *testing.T) {
	for _, tc := range []struct {
		skew time.Duration
		want string
	}{{0, ""}, {90 * time.Second, ""}, {-10 * time.Minute, "CLOCK_SKEW_ERROR"}, {time.Hour, "CLOCK_SKEW_ERROR"}} {
		srv := httptest.NewServer(challengeServer(time.Now().Add(tc.skew)))
		e := newEnv(t)
		got, res := codes(t, checkhealth.Options{Name: srv.Listener.Addr().String(), PlainHTTP: true, Getenv: e.getenv, IgnoreErrors: true})
		srv.Close()
		has := strings.Contains(strings.Join(got, " "), "CLOCK_SKEW_ERROR")
		if has != (tc.want != "") {
			t.Errorf("skew %s: codes %v\n%+v", tc.skew, got, res)
		}
	}
}

func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t, 10*24*time.Hour)
	srv := httptest.NewUnstartedServer(challengeServer(time.Now()))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()
	e := newEnv(t)
	addr := "localhost:" + srv.Listener.Addr().(*net.TCPAddr).AddrPort().String()[len("127.0.0.1:"):]
	trusted := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	got, res := codes(t, checkhealth.Options{Name: addr, Getenv: e.getenv, IgnoreErrors: true, HTTP: trusted})
	if !strings.Contains(strings.Join(got, " "), "CERTIFICATE_EXPIRY_ERROR") {
		t.Errorf("certificate expiring in 10 days: codes %v\n%+v", got, res)
	}
	got, res = codes(t, checkhealth.Options{Name: addr, Getenv: e.getenv, IgnoreErrors: true})
	if !strings.Contains(strings.Join(got, " "), "CONNECTIVITY_SSL_ERROR") {
		t.Errorf("untrusted certificate: codes %v\n%+v", got, res)
	}
}

// selfSigned makes a certificate for localhost valid for d, and a pool trusting it.
func selfSigned(t *testing.T, d time.Duration) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(d), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestFederationIssuers (issue 20): check-health asks the server whether it reaches the issuers
// it trusts: a reachable one passes, one it cannot reach (loopback not in
// outbound.allowed_networks) is FEDERATION_ISSUER_ERROR naming it.
func TestFederationIssuers(t *testing.T) {
	good, bad := federationtest.New(t), federationtest.New(t)
	bad.Status(http.StatusServiceUnavailable)
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) {
		c.Federation.Issuers, c.Federation.AllowHTTP, c.Outbound.AllowedNetworks = []string{good.URL, bad.URL}, true, []string{"127.0.0.0/8"}
	}})
	e := newEnv(t)
	got, res := codes(t, checkhealth.Options{Name: "default", Session: client.New(s.URL, s.OwnerToken(t)), Getenv: e.getenv, IgnoreErrors: true, Yes: true, Version: "test"})
	if !slices.Contains(got, "FEDERATION_ISSUER_ERROR") {
		t.Fatalf("codes %v", got)
	}
	if r := find(res, "FEDERATION_ISSUER_ERROR"); !strings.Contains(r.Detail, bad.URL) || strings.Contains(r.Detail, good.URL) || !strings.Contains(r.Detail, "503") {
		t.Errorf("detail: %q", r.Detail)
	}
	ok := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) {
		c.Federation.Issuers, c.Federation.AllowHTTP, c.Outbound.AllowedNetworks = []string{good.URL}, true, []string{"127.0.0.0/8"}
	}})
	if got, _ := codes(t, checkhealth.Options{Name: "default", Session: client.New(ok.URL, ok.OwnerToken(t)), Getenv: e.getenv, IgnoreErrors: true, Yes: true, Version: "test"}); slices.Contains(got, "FEDERATION_ISSUER_ERROR") {
		t.Errorf("a reachable issuer: %v", got)
	}
}

package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/registrytest"
)

// pebble is Let's Encrypt's ACME test server, run for one test with a DNS stand-in
// (pebble-challtestsrv) that answers 127.0.0.1 for every name.
type pebble struct {
	directory string // the ACME directory URL
	caFile    string // the CA of pebble's own HTTPS
	mgmt      string // pebble's management address (the roots it issues under)
	ca        *x509.CertPool
}

func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("BERTH_REQUIRE_CLIENTS") == "1" {
			t.Fatalf("%s is not installed (scripts/install-test-tools.sh)", name)
		}
		t.Skipf("%s is not installed (scripts/install-test-tools.sh)", name)
	}
	return p
}

// startPebble starts pebble, validating http-01 on httpPort and tls-alpn-01 on tlsPort.
func startPebble(t *testing.T, httpPort, tlsPort string) *pebble {
	pebbleBin, dnsBin := tool(t, "pebble"), tool(t, "pebble-challtestsrv")
	dir := t.TempDir()
	certPEM, keyPEM, cert := selfSigned(t, "pebble", 7)
	certFile, keyFile := filepath.Join(dir, "pebble.pem"), filepath.Join(dir, "pebble-key.pem")
	os.WriteFile(certFile, certPEM, 0o600)
	os.WriteFile(keyFile, keyPEM, 0o600)
	dns, listen, mgmt := registrytest.FreeAddr(t), registrytest.FreeAddr(t), registrytest.FreeAddr(t)
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress": listen, "managementListenAddress": mgmt, "certificate": certFile, "privateKey": keyFile,
		"httpPort": atoi(httpPort), "tlsPort": atoi(tlsPort), "ocspResponderURL": "", "externalAccountBindingRequired": false,
	}}
	b, _ := json.Marshal(conf)
	confFile := filepath.Join(dir, "pebble.json")
	os.WriteFile(confFile, b, 0o600)
	run := func(bin string, env []string, args ...string) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		var logs strings.Builder
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() {
				t.Logf("%s:\n%s", filepath.Base(bin), logs.String())
			}
		})
	}
	run(dnsBin, nil, "-dnsserver", dns, "-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "", "-management", registrytest.FreeAddr(t), "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	run(pebbleBin, []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"}, "-config", confFile, "-dnsserver", dns)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	p := &pebble{directory: "https://" + listen + "/dir", caFile: certFile, mgmt: mgmt, ca: pool}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := hc.Get(p.directory); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("pebble did not start")
		}
	}
}

func atoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}

// issuer is the pool of the roots pebble issues under.
func (p *pebble) issuer(t *testing.T) *x509.CertPool {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.ca}}}
	resp, err := hc.Get("https://" + p.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("pebble's root: %s", b)
	}
	return pool
}

// TestACME: berth gets a certificate for its host name from an ACME server (pebble) on the
// first handshake that names it and serves it, by TLS-ALPN-01 on its own port, or, when that
// cannot be reached, by HTTP-01 on tls.acme.http_listen (which sends every other request to
// HTTPS). The certificate is kept in the cache folder.
func TestACME(t *testing.T) {
	for _, tc := range []struct {
		name     string
		httpOnly bool // pebble cannot reach the registry's port: TLS-ALPN-01 fails, HTTP-01 must do
	}{{"tls-alpn-01", false}, {"http-01", true}} {
		t.Run(tc.name, func(t *testing.T) {
			addr, httpAddr := registrytest.FreeAddr(t), registrytest.FreeAddr(t)
			_, port, _ := net.SplitHostPort(addr)
			_, httpPort, _ := net.SplitHostPort(httpAddr)
			tlsPort := port
			if tc.httpOnly {
				_, tlsPort, _ = net.SplitHostPort(registrytest.FreeAddr(t)) // nothing listens there
			}
			p := startPebble(t, httpPort, tlsPort)
			cache := t.TempDir()
			s := registrytest.New(t, registrytest.Options{Listen: addr, Config: func(c *config.Config) {
				c.TLS.ACME = config.ACME{Domains: []string{"registry.berth.test"}, AcceptTerms: true, Email: "ops@berth.test",
					DirectoryURL: p.directory, CAFile: p.caFile, HTTPListen: httpAddr, CacheDir: cache}
			}})
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			// The first handshake waits for the issuance.
			d := tls.Dialer{Config: &tls.Config{ServerName: "registry.berth.test", InsecureSkipVerify: true}}
			conn, err := d.DialContext(ctx, "tcp", s.Host)
			if err != nil {
				t.Fatalf("the first handshake (issuance): %v", err)
			}
			conn.Close()
			hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{ServerName: "registry.berth.test", RootCAs: p.issuer(t)}}}
			resp, err := hc.Get("https://" + s.Host + "/v2/")
			if err != nil {
				t.Fatalf("HTTPS with the issued certificate, verified against pebble's root: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || len(resp.TLS.PeerCertificates) == 0 ||
				resp.TLS.PeerCertificates[0].DNSNames[0] != "registry.berth.test" {
				t.Errorf("/v2/ over the ACME certificate: %d %+v", resp.StatusCode, resp.TLS.PeerCertificates[0].DNSNames)
			}
			if files, _ := os.ReadDir(cache); len(files) < 2 { // the account key and the certificate
				t.Errorf("the ACME cache holds %d files; want the account key and the certificate", len(files))
			}
			// A name berth was not configured for gets no certificate.
			other := tls.Dialer{Config: &tls.Config{ServerName: "other.berth.test", InsecureSkipVerify: true}}
			if conn, err := other.DialContext(ctx, "tcp", s.Host); err == nil {
				conn.Close()
				t.Errorf("a handshake for a host name not in tls.acme.domains succeeded")
			}
			// The HTTP-01 listener sends everything else to HTTPS.
			noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			req, _ := http.NewRequest("GET", "http://"+httpAddr+"/v2/", nil)
			req.Host = "registry.berth.test"
			if resp, err := noFollow.Do(req); err != nil || resp.StatusCode != http.StatusFound ||
				!strings.HasPrefix(resp.Header.Get("Location"), "https://registry.berth.test/v2/") {
				t.Errorf("plain HTTP on http_listen: %v %+v; want a redirect to HTTPS", err, resp)
			}
		})
	}
}

package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/registrytest"
)

// TestTLSOptions: the CLI trusts a private CA given with --ca-file (and keeps it with the
// sign-in), skips verification only with --insecure, and says what to do when the CA is unknown
// or the scheme is wrong.
func TestTLSOptions(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lab"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	secure := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) { c.TLS.Cert, c.TLS.Key = certFile, keyFile }})
	plain := registrytest.New(t, registrytest.Options{})

	c := newCLI(t)
	login := func(server string, more ...string) (string, error) {
		return c.run(registrytest.OwnerPassword, append([]string{"auth", "login", "--server", server, "-u", "owner", "--password-stdin"}, more...)...)
	}
	for _, tc := range []struct {
		server string
		want   string
	}{
		{"https://" + secure.Host, "give its CA with --ca-file FILE (or BERTH_CA_FILE), or --insecure for a lab"},
		{"https://" + plain.Host, "did you mean http://" + plain.Host + "?"},
		{"http://" + secure.Host, "did you mean https://" + secure.Host + "?"},
	} {
		if _, err := login(tc.server); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("auth login --server %s: %v; want it to say %q", tc.server, err, tc.want)
		}
	}
	if _, err := login("https://"+secure.Host, "--ca-file", certFile); err != nil {
		t.Fatalf("auth login with --ca-file: %v", err)
	}
	// The sign-in keeps the CA: later commands trust it without the flag.
	if out, err := c.run("", "registry", "list", "--query", "[0].name", "-o", "tsv"); err != nil || out != "default\n" {
		t.Errorf("registry list after a sign-in with --ca-file: %q %v", out, err)
	}
	c2 := newCLI(t)
	if _, err := c2.run(registrytest.OwnerPassword, "auth", "login", "--server", "https://"+secure.Host, "-u", "owner", "--password-stdin", "--insecure"); err != nil {
		t.Errorf("auth login --insecure: %v", err)
	}
	if _, err := c2.run("", "auth", "login", "--server", "https://"+secure.Host, "-u", "owner", "--password-stdin", "--ca-file", filepath.Join(dir, "missing.pem")); err == nil ||
		!strings.Contains(err.Error(), "--ca-file") {
		t.Errorf("a missing --ca-file: %v", err)
	}
}

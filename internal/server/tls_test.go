package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/registrytest"
)

// selfSigned is a certificate for 127.0.0.1 named cn, in PEM, and its parsed form.
func selfSigned(t *testing.T, cn string, serial int64) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	cert, _ = x509.ParseCertificate(der)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), cert
}

// TestCertificateReload: a renewed certificate written over the files is served from the next
// handshake, without a restart, while clients asking in a loop (on kept-alive connections and
// on new ones) see no error; a half-written renewal (a certificate whose key is not there yet)
// is not served.
func TestCertificateReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certA, keyA, a := selfSigned(t, "berth-a", 1)
	certB, keyB, b := selfSigned(t, "berth-b", 2)
	os.WriteFile(certFile, certA, 0o600)
	os.WriteFile(keyFile, keyA, 0o600)
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) {
		c.TLS.Cert, c.TLS.Key, c.TLS.ReloadInterval = certFile, keyFile, 100*time.Millisecond
	}})
	pool := x509.NewCertPool()
	pool.AddCert(a)
	pool.AddCert(b)

	var served sync.Map // subject CN → requests
	var failures atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, keepAlive := range []bool{true, false} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: !keepAlive, TLSClientConfig: &tls.Config{RootCAs: pool}}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				// The registry's answer to a client without credentials: its challenge.
				resp, err := hc.Get("https://" + s.Host + "/v2/")
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
						err = &statusError{resp.StatusCode}
					}
				}
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				n, _ := served.LoadOrStore(resp.TLS.PeerCertificates[0].Subject.CommonName, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
			}
		}()
	}
	handshake := func() string {
		conn, err := tls.Dial("tcp", s.Host, &tls.Config{RootCAs: pool})
		if err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	time.Sleep(300 * time.Millisecond)
	// Half a renewal: the new certificate, the old key. Not served.
	os.WriteFile(certFile, certB, 0o600)
	time.Sleep(400 * time.Millisecond)
	if cn := handshake(); cn != "berth-a" {
		t.Errorf("a certificate without its key was served: %s", cn)
	}
	os.WriteFile(keyFile, keyB, 0o600)
	deadline := time.Now().Add(5 * time.Second)
	for handshake() != "berth-b" {
		if time.Now().After(deadline) {
			t.Fatal("the renewed certificate was not served within 5s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	count := func(cn string) int64 {
		if n, ok := served.Load(cn); ok {
			return n.(*atomic.Int64).Load()
		}
		return 0
	}
	if failures.Load() > 0 {
		t.Errorf("%d requests failed while the certificate was renewed, first: %v", failures.Load(), firstErr.Load())
	}
	if count("berth-a") == 0 || count("berth-b") == 0 {
		t.Errorf("requests served with the old certificate %d, the new one %d; want both", count("berth-a"), count("berth-b"))
	}
}

type statusError struct{ code int }

func (e *statusError) Error() string { return http.StatusText(e.code) }

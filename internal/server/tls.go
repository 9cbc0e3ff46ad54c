package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/berth-registry/berth/internal/config"
)

// certFiles serves the certificate in two PEM files and loads them again when they change, so
// that a renewed certificate is served without a restart: connections already open keep the
// one they started with, new handshakes get the new one. A pair that does not load (a renewal
// half-written) is logged and the previous one kept.
type certFiles struct {
	cert, key string
	log       *slog.Logger
	current   atomic.Pointer[tls.Certificate]
	stamp     string // the files' sizes and times when last loaded
}

func newCertFiles(cert, key string, log *slog.Logger) (*certFiles, error) {
	c := &certFiles{cert: cert, key: key, log: log}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certFiles) fingerprint() string {
	var s string
	for _, p := range []string{c.cert, c.key} {
		if fi, err := os.Stat(p); err == nil {
			s += fmt.Sprintf("%d/%d;", fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return s
}

func (c *certFiles) load() error {
	stamp := c.fingerprint()
	pair, err := tls.LoadX509KeyPair(c.cert, c.key)
	if err != nil {
		return fmt.Errorf("server: tls: %w", err)
	}
	c.current.Store(&pair)
	c.stamp = stamp
	return nil
}

func (c *certFiles) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.current.Load(), nil
}

// watch reloads the pair whenever the files change, until ctx ends.
func (c *certFiles) watch(ctx context.Context, every time.Duration) {
	repeat(ctx, every, false, func() {
		if c.fingerprint() == c.stamp {
			return
		}
		if err := c.load(); err != nil {
			c.log.Warn("the TLS certificate files changed but do not load; serving the previous certificate", "cert", c.cert, "err", err)
			c.stamp = c.fingerprint() // try again at the next change
			return
		}
		leaf := c.current.Load().Leaf
		c.log.Info("reloaded the TLS certificate", "cert", c.cert, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter)
	})
}

// tlsSetup is what serving TLS needs: the listener's configuration, and the goroutines and
// listeners that keep certificates current (file reloads, ACME's HTTP-01 answers).
type tlsSetup struct {
	config *tls.Config
	start  func(ctx context.Context) (stop func(), err error)
}

// setupTLS returns nil when cfg serves plain HTTP.
func setupTLS(cfg config.Config, log *slog.Logger) (*tlsSetup, error) {
	switch {
	case cfg.TLS.Cert != "":
		files, err := newCertFiles(cfg.TLS.Cert, cfg.TLS.Key, log)
		if err != nil {
			return nil, err
		}
		return &tlsSetup{
			config: &tls.Config{GetCertificate: files.getCertificate, MinVersion: tls.VersionTLS12},
			start: func(ctx context.Context) (func(), error) {
				ctx, cancel := context.WithCancel(ctx)
				go files.watch(ctx, cfg.TLS.ReloadInterval)
				return cancel, nil
			},
		}, nil
	case len(cfg.TLS.ACME.Domains) > 0:
		return setupACME(cfg, log)
	}
	return nil, nil
}

// setupACME gets and renews certificates for the configured host names from an ACME server
// (Let's Encrypt by default), answering TLS-ALPN-01 challenges on the registry's own port and,
// when tls.acme.http_listen is set, HTTP-01 challenges there (which otherwise redirects to
// HTTPS). Certificates and the account key are kept in tls.acme.cache_dir.
func setupACME(cfg config.Config, log *slog.Logger) (*tlsSetup, error) {
	a := cfg.TLS.ACME
	cache := a.CacheDir
	if cache == "" {
		cache = filepath.Join(cfg.DataDir, "acme")
	}
	if err := os.MkdirAll(cache, 0o700); err != nil {
		return nil, fmt.Errorf("server: tls.acme.cache_dir: %w", err)
	}
	client := &acme.Client{DirectoryURL: a.DirectoryURL, UserAgent: "berth"}
	if a.CAFile != "" {
		pem, err := os.ReadFile(a.CAFile)
		if err != nil {
			return nil, fmt.Errorf("server: tls.acme.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("server: tls.acme.ca_file %s holds no PEM certificate", a.CAFile)
		}
		client.HTTPClient = &http.Client{Timeout: 30 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	}
	m := &autocert.Manager{
		Prompt:     func(string) bool { return a.AcceptTerms },
		Cache:      autocert.DirCache(cache),
		HostPolicy: autocert.HostWhitelist(a.Domains...),
		Email:      a.Email,
		Client:     client,
	}
	tc := m.TLSConfig()
	tc.MinVersion = tls.VersionTLS12
	return &tlsSetup{
		config: tc,
		start: func(ctx context.Context) (func(), error) {
			if a.HTTPListen == "" {
				return func() {}, nil
			}
			ln, err := net.Listen("tcp", a.HTTPListen)
			if err != nil {
				return nil, fmt.Errorf("server: tls.acme.http_listen: %w", err)
			}
			challenges := m.HTTPHandler(nil)
			// The host policy sees the Host header: without its port (":80" sent explicitly,
			// or a listener behind a port mapping), as the names in tls.acme.domains are.
			hostOnly := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if h, _, err := net.SplitHostPort(r.Host); err == nil {
					r.Host = h
				}
				challenges.ServeHTTP(w, r)
			})
			hs := &http.Server{Handler: hostOnly, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
			go func() {
				if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					log.Warn("the ACME HTTP-01 listener stopped", "err", err)
				}
			}()
			log.Info("answering ACME HTTP-01 challenges; other plain HTTP requests are redirected to HTTPS", "addr", ln.Addr().String())
			return func() { hs.Close() }, nil
		},
	}, nil
}

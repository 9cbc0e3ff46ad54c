package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/berth-registry/berth/client"
)

// tlsOptions are how the CLI trusts a berth server over HTTPS: the system's CAs, plus a CA file
// (--ca-file, BERTH_CA_FILE) for a server with a private CA, or no verification at all
// (--insecure, explicit, for a lab). berth auth login keeps them with the sign-in.
type tlsOptions struct {
	CAFile   string `json:"caFile,omitempty"`
	Insecure bool   `json:"insecure,omitempty"`
}

// tlsFor is what the command line says, else what the sign-in kept.
func (a *app) tlsFor(s session) tlsOptions {
	o := s.TLS
	if a.caFile != "" {
		o.CAFile = a.caFile
	} else if v := a.getenv("BERTH_CA_FILE"); v != "" && o.CAFile == "" {
		o.CAFile = v
	}
	if a.insecure {
		o.Insecure = true
	}
	return o
}

// httpClient is the CLI's client for o.
func (a *app) httpClient(o tlsOptions, timeout time.Duration) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file %s holds no PEM certificate", o.CAFile)
		}
		tc.RootCAs = pool
	}
	if o.Insecure {
		a.warn("--insecure: the server's certificate is not verified; anyone on the path can read and change this session")
		tc.InsecureSkipVerify = true
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	var rt http.RoundTripper = tr
	if a.debug {
		rt = debugTransport{next: tr, mu: &a.debugMu, w: a.stderr, now: time.Now}
	}
	return &http.Client{Timeout: timeout, Transport: rt}, nil
}

// newClient is a management API client for server, with the TLS options of s and the command.
func (a *app) newClient(s session, server, token string) (*client.Client, error) {
	hc, err := a.httpClient(a.tlsFor(s), 60*time.Second)
	if err != nil {
		return nil, err
	}
	c := client.New(server, token)
	c.HTTP = hc
	return c, nil
}

// transportHint adds what to do to the errors of a wrong scheme or an unknown CA.
func transportHint(err error, server string) error {
	if err == nil {
		return nil
	}
	u, perr := url.Parse(server)
	if perr != nil || u.Host == "" {
		return err
	}
	msg := err.Error()
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	switch {
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("%w: did you mean http://%s? (the server speaks plain HTTP)", err, u.Host)
	case strings.Contains(msg, "Client sent an HTTP request to an HTTPS server"):
		return fmt.Errorf("%w: did you mean https://%s? (the server speaks HTTPS)", err, u.Host)
	case errors.As(err, &unknownCA), strings.Contains(msg, "certificate signed by unknown authority"):
		return fmt.Errorf("%w: the server's certificate is not signed by a CA this machine trusts: give its CA with --ca-file FILE (or BERTH_CA_FILE), or --insecure for a lab", err)
	case errors.As(err, &hostname):
		return fmt.Errorf("%w: the certificate is not for %s: use the host name it names", err, u.Hostname())
	}
	return err
}

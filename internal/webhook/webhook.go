// Package webhook delivers registry events to webhook receivers: the outbox rows the store
// writes with each push and delete (store.ClaimDeliveries), at least once, by one replica at a
// time, signed (HMAC-SHA256 over the body with the webhook's secret), retried with backoff, and
// through a client that cannot be pointed at what a registry's neighbours would not want called:
// no redirects, no proxies from the environment, link-local and cloud metadata addresses
// always refused, private and loopback networks only when configured.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-registry/berth/internal/seal"
	"github.com/berth-registry/berth/internal/store"
)

// Config is what a webhook keeps sealed: where to call, with which headers, and the secret that
// signs each delivery.
type Config struct {
	ServiceURI    string            `json:"serviceUri"`
	CustomHeaders map[string]string `json:"customHeaders"`
	Secret        string            `json:"secret"`
}

// SealedAD binds a webhook's sealed config to its registry and name.
func SealedAD(registryID int64, name string) []byte {
	return []byte("webhook:" + strconv.FormatInt(registryID, 10) + ":" + name)
}

// Seal seals a webhook's config.
func Seal(box *seal.Box, registryID int64, name string, c Config) ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return box.Seal(b, SealedAD(registryID, name))
}

// Open opens a webhook's config.
func Open(box *seal.Box, registryID int64, name string, sealed []byte) (Config, error) {
	var c Config
	b, err := box.Open(sealed, SealedAD(registryID, name))
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal(b, &c)
}

// Headers berth sets itself, which custom headers may not replace.
var reserved = map[string]bool{"Host": true, "Content-Type": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true,
	"User-Agent": true, "X-Berth-Delivery": true, "X-Berth-Event": true, "X-Berth-Signature-256": true}

// CheckHeader validates a custom header.
func CheckHeader(name, value string) error {
	if name == "" || len(name) > 256 || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, r) }) {
		return fmt.Errorf("header name %q is invalid", name)
	}
	if reserved[http.CanonicalHeaderKey(name)] {
		return fmt.Errorf("header %s is set by berth", http.CanonicalHeaderKey(name))
	}
	if len(value) > 4096 || strings.ContainsAny(value, "\r\n\x00") {
		return fmt.Errorf("the value of header %s is invalid (at most 4096 characters, no line breaks)", name)
	}
	return nil
}

// CheckURI validates a receiver's address: http or https, a host, no user information.
func CheckURI(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || len(s) > 2048 {
		return fmt.Errorf("serviceUri %q is not an http or https URL (at most 2048 characters, no user information)", s)
	}
	return nil
}

// Dialer refuses connections to addresses a webhook must not reach.
type Dialer struct {
	Allowed []netip.Prefix // private or loopback networks allowed anyway
}

// metadata are cloud metadata services outside link-local ranges.
var metadata = []netip.Prefix{netip.MustParsePrefix("fd00:ec2::254/128"), netip.MustParsePrefix("100.100.100.200/32")}

// Check reports why addr may not be called, or nil.
func (d Dialer) Check(addr netip.Addr) error {
	addr = addr.Unmap()
	for _, p := range metadata {
		if p.Contains(addr) {
			return fmt.Errorf("%s is a cloud metadata address", addr)
		}
	}
	switch {
	case addr.IsLinkLocalUnicast(), addr.IsLinkLocalMulticast():
		return fmt.Errorf("%s is link-local (cloud metadata lives there)", addr)
	case addr.IsUnspecified(), addr.IsMulticast(), addr.IsInterfaceLocalMulticast():
		return fmt.Errorf("%s is not a unicast address", addr)
	case addr.IsLoopback(), addr.IsPrivate():
		for _, p := range d.Allowed {
			if p.Contains(addr) {
				return nil
			}
		}
		return fmt.Errorf("%s is in a private or loopback network: list it in outbound.allowed_networks to allow it", addr)
	}
	return nil
}

// Transport is an HTTP transport whose every connection's address is checked after DNS (so a
// name cannot resolve to a refused address, nor a redirect lead to one), with no proxy; the
// connection, TLS handshake and the wait for an answer's headers are each bounded by timeout.
func (d Dialer) Transport(timeout time.Duration) *http.Transport {
	dialer := &net.Dialer{Timeout: timeout, Control: func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return err
		}
		return d.Check(ap.Addr())
	}}
	return &http.Transport{DialContext: dialer.DialContext, Proxy: nil, TLSHandshakeTimeout: timeout, ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}
}

// Client returns the HTTP client deliveries use: Transport, no redirect, the whole call bounded.
func (d Dialer) Client(timeout time.Duration) *http.Client {
	return &http.Client{Transport: d.Transport(timeout), Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Deliverer delivers due deliveries.
type Deliverer struct {
	Store   *store.Store
	Box     *seal.Box
	HTTP    *http.Client
	Log     *slog.Logger
	Holder  string // this replica, in the deliveries' leases
	Version string // in User-Agent
	Now     func() time.Time
	// GiveUp is how long a delivery is retried; 0 means 24h.
	GiveUp time.Duration
	// Lease is how long a claimed delivery is this replica's: longer than an attempt may take
	// (the client's timeout), so that no other replica sends it meanwhile; a replica that dies
	// leaves it to the others when it ends. 0 means a minute.
	Lease time.Duration
}

// batch bounds the deliveries claimed at once.
const batch = 50

// Run delivers every interval until ctx ends.
func (d *Deliverer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := d.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			d.Log.Warn("webhook deliveries", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// DeliverDue claims the due deliveries and attempts each once; it returns how many it attempted.
func (d *Deliverer) DeliverDue(ctx context.Context) (int, error) {
	lease := d.Lease
	if lease <= 0 {
		lease = time.Minute
	}
	due, err := d.Store.ClaimDeliveries(ctx, d.Holder, d.Now(), lease, batch)
	if err != nil {
		return 0, err
	}
	// Attempted side by side (a slow receiver does not hold the others back), recorded together:
	// one write transaction for the batch, which matters when the database has one writer.
	results := make(map[string]store.DeliveryResult, len(due))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, dl := range due {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			res := d.attempt(ctx, dl)
			mu.Lock()
			results[dl.ID] = res
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := d.Store.FinishDeliveries(ctx, d.Holder, results); err != nil {
		return 0, err
	}
	return len(due), nil
}

// Sign is the X-Berth-Signature-256 of a body: sha256= and the hex HMAC-SHA256 with the secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func (d *Deliverer) attempt(ctx context.Context, dl store.Delivery) store.DeliveryResult {
	now := d.Now()
	giveUp := d.GiveUp
	if giveUp <= 0 {
		giveUp = 24 * time.Hour
	}
	retry := func(status int, msg string, took time.Duration) store.DeliveryResult {
		// 1s, 2s, 4s … up to 5 minutes, with a little jitter; given up after GiveUp.
		back := time.Duration(1<<min(dl.Attempts, 9)) * time.Second
		back = min(back, 5*time.Minute) + time.Duration(rand.Int64N(int64(back/4)+1))
		r := store.DeliveryResult{Status: status, Error: msg, Latency: took, NextAt: now.Add(back)}
		if now.Sub(dl.CreatedAt) > giveUp {
			r.Final = true
		}
		return r
	}
	c, err := Open(d.Box, dl.RegistryID, dl.WebhookName, dl.ConfigSealed)
	if err != nil {
		return store.DeliveryResult{Error: "the webhook's configuration cannot be opened: " + err.Error(), Final: true, NextAt: now}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.ServiceURI, bytes.NewReader(dl.Payload))
	if err != nil {
		return store.DeliveryResult{Error: err.Error(), Final: true, NextAt: now}
	}
	for k, v := range c.CustomHeaders {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "berth-webhook/"+d.Version)
	req.Header.Set("X-Berth-Delivery", dl.ID)
	req.Header.Set("X-Berth-Event", dl.Action)
	req.Header.Set("X-Berth-Signature-256", Sign(c.Secret, dl.Payload))
	start := time.Now()
	resp, err := d.HTTP.Do(req)
	took := time.Since(start)
	if err != nil {
		var ue *url.Error
		msg := err.Error()
		if errors.As(err, &ue) {
			msg = ue.Err.Error()
		}
		return retry(0, msg, took)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return store.DeliveryResult{Status: resp.StatusCode, Latency: took, Delivered: true, NextAt: now}
	}
	return retry(resp.StatusCode, resp.Status, took)
}

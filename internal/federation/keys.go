package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// MaxDocumentBytes bounds a discovery document or key set berth reads.
const MaxDocumentBytes = 1 << 20

// MaxKeys bounds the keys of one key set.
const MaxKeys = 100

// How long fetched keys are kept: the issuer's Cache-Control max-age, within these bounds.
const (
	minKeysAge     = time.Minute
	maxKeysAge     = 24 * time.Hour
	defaultKeysAge = time.Hour
)

// issuerKeys are one issuer's keys as last fetched. mu is held by the one fetch in flight, so
// that requests for one issuer wait for it (bounded by the fetch's timeout) and requests for
// others do not.
type issuerKeys struct {
	fetch   sync.Mutex
	mu      sync.Mutex
	keys    []jose.JSONWebKey
	expires time.Time // when the keys must be fetched again
	tried   time.Time // the last fetch, whether it worked or not
	lastErr error
}

func (v *Verifier) issuer(iss string) *issuerKeys {
	v.mu.Lock()
	defer v.mu.Unlock()
	ik := v.issuers[iss]
	if ik == nil {
		ik = &issuerKeys{}
		v.issuers[iss] = ik
	}
	return ik
}

// keys returns the keys of issuer iss that kid names, fetching them when none are cached, when
// they are past their age, or when kid is unknown — at most once per RefreshInterval.
func (v *Verifier) keys(ctx context.Context, iss, kid string) ([]jose.JSONWebKey, error) {
	ik := v.issuer(iss)
	cached := func() ([]jose.JSONWebKey, bool, bool, error) {
		ik.mu.Lock()
		defer ik.mu.Unlock()
		now := v.opts.Now()
		fresh := ik.keys != nil && now.Before(ik.expires)
		mayFetch := ik.tried.IsZero() || now.Sub(ik.tried) >= v.opts.RefreshInterval
		return pick(ik.keys, kid), fresh, mayFetch, ik.lastErr
	}
	// settled answers from the cache when no fetch is due (keys found and fresh, or a fetch
	// tried within the refresh interval); ok is false when one is.
	settled := func() (keys []jose.JSONWebKey, err error, ok bool) {
		found, fresh, mayFetch, lastErr := cached()
		switch {
		case len(found) > 0 && (fresh || !mayFetch):
			return found, nil, true
		case mayFetch:
			return nil, nil, false
		case lastErr != nil:
			return nil, refuse(ReasonKeysUnavailable, "the keys of issuer %q could not be fetched: %v (tried again at most every %s)", truncate(iss), lastErr, v.opts.RefreshInterval), true
		}
		return nil, refuse(ReasonSignature, "issuer %q publishes no key with kid %q", truncate(iss), truncate(kid)), true
	}
	if keys, err, ok := settled(); ok {
		return keys, err
	}
	ik.fetch.Lock()
	defer ik.fetch.Unlock()
	if keys, err, ok := settled(); ok { // another request may have fetched while this one waited
		return keys, err
	}
	keys, age, err := v.fetchKeys(ctx, iss)
	now := v.opts.Now()
	ik.mu.Lock()
	ik.tried, ik.lastErr = now, err
	if err == nil {
		ik.keys, ik.expires = keys, now.Add(age)
	}
	stale := ik.keys
	ik.mu.Unlock()
	if err != nil {
		v.opts.Log.WarnContext(ctx, "federation: fetching an issuer's keys failed", "issuer", iss, "err", err)
		if found := pick(stale, kid); len(found) > 0 {
			return found, nil // the keys known before keep working while the issuer is away
		}
		return nil, refuse(ReasonKeysUnavailable, "the keys of issuer %q could not be fetched: %v", truncate(iss), err)
	}
	if found := pick(keys, kid); len(found) > 0 {
		return found, nil
	}
	return nil, refuse(ReasonSignature, "issuer %q publishes no key with kid %q", truncate(iss), truncate(kid))
}

// fetchKeys reads the issuer's discovery document, then its key set, and says how long to keep
// it. The key set must be on the issuer's own host.
func (v *Verifier) fetchKeys(ctx context.Context, iss string) ([]jose.JSONWebKey, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, v.opts.Timeout)
	defer cancel()
	issURL, err := v.checkURL(iss)
	if err != nil {
		return nil, 0, fmt.Errorf("issuer: %w", err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	body, _, err := v.get(ctx, strings.TrimSuffix(iss, "/")+"/.well-known/openid-configuration")
	if err != nil {
		return nil, 0, fmt.Errorf("discovery: %w", err)
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, 0, errors.New("discovery: the document is not JSON")
	}
	if doc.Issuer != iss {
		return nil, 0, fmt.Errorf("discovery: the document names issuer %q", truncate(doc.Issuer))
	}
	jwksURL, err := v.checkURL(doc.JWKSURI)
	if err != nil {
		return nil, 0, fmt.Errorf("discovery: jwks_uri: %w", err)
	}
	if !strings.EqualFold(jwksURL.Host, issURL.Host) {
		return nil, 0, fmt.Errorf("discovery: jwks_uri points at host %q, not the issuer's %q", truncate(jwksURL.Host), issURL.Host)
	}
	body, hdr, err := v.get(ctx, doc.JWKSURI)
	if err != nil {
		return nil, 0, fmt.Errorf("jwks: %w", err)
	}
	keys, err := ParseKeySet(body)
	if err != nil {
		return nil, 0, fmt.Errorf("jwks: %w", err)
	}
	return keys, keysAge(hdr.Get("Cache-Control")), nil
}

// Discovery is what an OpenID provider's discovery document says of its endpoints.
type Discovery struct {
	Issuer                      string `json:"issuer"`
	AuthorizationEndpoint       string `json:"authorization_endpoint"`
	TokenEndpoint               string `json:"token_endpoint"`
	UserinfoEndpoint            string `json:"userinfo_endpoint"`
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint"`
}

// discoveryAge is how long a discovery document is kept; a failed read is kept RefreshInterval
// (so that callers who cost berth a fetch — an unauthenticated sign-in's start — cannot make it
// fetch again and again).
const discoveryAge = 5 * time.Minute

type cachedDiscovery struct {
	d     Discovery
	err   error
	until time.Time
}

// Discover reads issuer iss's discovery document (bounded as every fetch, kept a few minutes),
// which must name iss and https (or, when allowed, http) endpoints.
func (v *Verifier) Discover(ctx context.Context, iss string) (Discovery, error) {
	now := v.opts.Now()
	v.mu.Lock()
	c, ok := v.discovery[iss]
	v.mu.Unlock()
	if ok && now.Before(c.until) {
		return c.d, c.err
	}
	ik := v.issuer(iss) // one fetch of an issuer at a time
	ik.fetch.Lock()
	defer ik.fetch.Unlock()
	v.mu.Lock()
	c, ok = v.discovery[iss]
	v.mu.Unlock()
	if ok && now.Before(c.until) {
		return c.d, c.err
	}
	d, err := v.discover(ctx, iss)
	c = cachedDiscovery{d: d, err: err, until: now.Add(discoveryAge)}
	if err != nil {
		c.until = now.Add(v.opts.RefreshInterval)
	}
	v.mu.Lock()
	if len(v.discovery) > 1000 {
		clear(v.discovery)
	}
	v.discovery[iss] = c
	v.mu.Unlock()
	return d, err
}

func (v *Verifier) discover(ctx context.Context, iss string) (Discovery, error) {
	ctx, cancel := context.WithTimeout(ctx, v.opts.Timeout)
	defer cancel()
	var d Discovery
	if _, err := v.checkURL(iss); err != nil {
		return d, fmt.Errorf("issuer: %w", err)
	}
	body, _, err := v.get(ctx, strings.TrimSuffix(iss, "/")+"/.well-known/openid-configuration")
	if err != nil {
		return d, fmt.Errorf("discovery: %w", err)
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return d, errors.New("discovery: the document is not JSON")
	}
	if d.Issuer != iss {
		return d, fmt.Errorf("discovery: the document names issuer %q", truncate(d.Issuer))
	}
	for _, u := range []string{d.AuthorizationEndpoint, d.TokenEndpoint, d.UserinfoEndpoint, d.DeviceAuthorizationEndpoint} {
		if u == "" {
			continue
		}
		if _, err := v.checkURL(u); err != nil {
			return d, fmt.Errorf("discovery: %w", err)
		}
	}
	return d, nil
}

// HTTP is the bounded client the verifier reaches issuers with.
func (v *Verifier) HTTP() *http.Client { return v.opts.HTTP }

// Get reads a JSON document of at most MaxDocumentBytes from an issuer's endpoint.
func (v *Verifier) Get(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, v.opts.Timeout)
	defer cancel()
	b, _, err := v.get(ctx, u)
	return b, err
}

// Timeout bounds one call to an issuer.
func (v *Verifier) Timeout() time.Duration { return v.opts.Timeout }

// checkURL accepts https URLs (http when allowed) without credentials.
func (v *Verifier) checkURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("%q is not an absolute URL", truncate(s))
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && v.opts.AllowHTTP) {
		return nil, fmt.Errorf("%q is not https (federation.allow_http lets labs use http)", truncate(s))
	}
	return u, nil
}

// get reads a document of at most MaxDocumentBytes.
func (v *Verifier) get(ctx context.Context, u string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.opts.HTTP.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("%s answered %s", truncate(u), resp.Status)
	}
	if resp.ContentLength > MaxDocumentBytes {
		return nil, nil, fmt.Errorf("%s is %d bytes; at most %d are read", truncate(u), resp.ContentLength, MaxDocumentBytes)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocumentBytes+1))
	if err != nil {
		return nil, nil, err
	}
	if len(b) > MaxDocumentBytes {
		return nil, nil, fmt.Errorf("%s is more than %d bytes", truncate(u), MaxDocumentBytes)
	}
	return b, resp.Header, nil
}

// ParseKeySet reads a JWKS document: the public signing keys in it of the kinds berth verifies
// (RSA, P-256, Ed25519); others are skipped. A set with none is an error.
func ParseKeySet(b []byte) ([]jose.JSONWebKey, error) {
	if len(b) > MaxDocumentBytes {
		return nil, fmt.Errorf("the key set is more than %d bytes", MaxDocumentBytes)
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, errors.New("the key set is not a JWKS document ({\"keys\": [...]})")
	}
	if len(raw.Keys) > MaxKeys {
		return nil, fmt.Errorf("the key set has %d keys; at most %d are read", len(raw.Keys), MaxKeys)
	}
	var keys []jose.JSONWebKey
	for _, r := range raw.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil || !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("the key set holds no public signing key berth can use (RSA, EC P-256, Ed25519)")
	}
	return keys, nil
}

// keysAge is how long to keep a key set served with this Cache-Control.
func keysAge(cc string) time.Duration {
	for _, d := range strings.Split(cc, ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		if d == "no-store" || d == "no-cache" {
			return minKeysAge
		}
		if v, ok := strings.CutPrefix(d, "max-age="); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				continue
			}
			return min(max(time.Duration(n)*time.Second, minKeysAge), maxKeysAge)
		}
	}
	return defaultKeysAge
}

// IssuerStatus is what a probe of an issuer found.
type IssuerStatus struct {
	Issuer string
	Keys   int
	Err    error
}

// Probe fetches each trusted issuer's discovery document and key set now (one probe of an issuer
// at a time; a probe within a second of the last answers what it found), for check-health. A
// fetched key set also renews the cache.
func (v *Verifier) Probe(ctx context.Context) []IssuerStatus {
	out := make([]IssuerStatus, len(v.opts.Issuers))
	var wg sync.WaitGroup
	for i, iss := range v.opts.Issuers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ik := v.issuer(iss)
			ik.fetch.Lock()
			defer ik.fetch.Unlock()
			now := v.opts.Now()
			ik.mu.Lock()
			recent := !ik.tried.IsZero() && now.Sub(ik.tried) < time.Second
			n, lastErr := len(ik.keys), ik.lastErr
			ik.mu.Unlock()
			if recent {
				out[i] = IssuerStatus{Issuer: iss, Keys: n, Err: lastErr}
				return
			}
			keys, age, err := v.fetchKeys(ctx, iss)
			ik.mu.Lock()
			ik.tried, ik.lastErr = now, err
			if err == nil {
				ik.keys, ik.expires = keys, now.Add(age)
			}
			ik.mu.Unlock()
			out[i] = IssuerStatus{Issuer: iss, Keys: len(keys), Err: err}
		}()
	}
	wg.Wait()
	return out
}

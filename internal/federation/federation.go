// Package federation checks tokens of external OpenID Connect issuers — GitHub Actions, GitLab
// CI, a Kubernetes cluster's service-account issuer — that a service principal's federated
// credentials trust: the issuer allowed by the server, the signature with the issuer's keys
// (discovered and cached, or a static key set), the times, then the credential's audience and
// subject. Every refusal is an *Error naming its reason.
package federation

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Reasons a federated sign-in is refused (login events' reason).
const (
	ReasonIssuerNotAllowed = "federated_issuer_not_allowed"
	ReasonMalformed        = "federated_token_malformed"
	ReasonSignature        = "federated_token_signature"
	ReasonExpired          = "federated_token_expired"
	ReasonNotYetValid      = "federated_token_not_yet_valid"
	ReasonTooOld           = "federated_token_too_old"
	ReasonKeysUnavailable  = "federated_keys_unavailable"
	ReasonNoCredential     = "federated_no_credential"
	ReasonAudience         = "federated_audience_mismatch"
	ReasonSubject          = "federated_subject_mismatch"
)

// Error is a refused external token: Reason is one of the reasons above, Message says why for
// the client and the login event.
type Error struct {
	Reason  string
	Message string
}

func (e *Error) Error() string { return e.Message }

func refuse(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Algorithms are the signature algorithms berth accepts in external tokens.
var Algorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// MaxTokenBytes bounds an external token.
const MaxTokenBytes = 16 << 10

// LooksLikeJWT reports whether s has the shape of a compact JWS (three base64url parts, a JSON
// header first): how a password that is an external token is told from a secret.
func LooksLikeJWT(s string) bool {
	return strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") == 2 && len(s) <= MaxTokenBytes
}

// Options configure a Verifier.
type Options struct {
	// Issuers are the iss values the server trusts at all; a credential naming another never
	// signs in.
	Issuers []string
	// AllowHTTP lets issuers be reached over plain http (tests, labs).
	AllowHTTP bool
	// MaxTokenAge refuses tokens issued longer ago; Leeway allows for clocks apart.
	MaxTokenAge, Leeway time.Duration
	// RefreshInterval is the least time between two fetches of one issuer's keys (an unknown
	// kid, a failed fetch); Timeout bounds a fetch.
	RefreshInterval, Timeout time.Duration
	// HTTP reaches the issuers: it must refuse what outbound calls refuse (webhook.Dialer) and
	// follow no redirect.
	HTTP *http.Client
	Now  func() time.Time
	Log  *slog.Logger
}

// Verifier checks external tokens; it caches each issuer's keys.
type Verifier struct {
	opts      Options
	mu        sync.Mutex
	issuers   map[string]*issuerKeys
	discovery map[string]cachedDiscovery
	// verified remembers tokens whose signature checked out (a pipeline sends the same token
	// with every request): the signature is not checked again while the key that made it is
	// still published; the times are.
	verified verifiedTokens
}

// New returns a Verifier.
func New(o Options) *Verifier {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &Verifier{opts: o, issuers: map[string]*issuerKeys{}, discovery: map[string]cachedDiscovery{}, verified: verifiedTokens{m: map[[32]byte]verifiedToken{}}}
}

// Allowed reports whether the server trusts issuer iss at all.
func (v *Verifier) Allowed(iss string) bool { return slices.Contains(v.opts.Issuers, iss) }

// Issuers are the issuers the server trusts.
func (v *Verifier) Issuers() []string { return slices.Clone(v.opts.Issuers) }

// Token is an external token: its registered claims, and every claim for expressions.
type Token struct {
	Issuer, Subject string
	Audience        []string
	Expiry          time.Time
	Claims          map[string]any
	raw             *jwt.JSONWebToken
	compact         string
}

// Parse reads an external token without verifying it, so that the caller can find the
// credentials of its issuer; Verify then checks it. Only the algorithms berth accepts parse.
func Parse(raw string) (*Token, error) {
	if len(raw) > MaxTokenBytes {
		return nil, refuse(ReasonMalformed, "the token is longer than %d bytes", MaxTokenBytes)
	}
	tok, err := jwt.ParseSigned(raw, Algorithms)
	if err != nil {
		if strings.Contains(err.Error(), "algorithm") {
			return nil, refuse(ReasonMalformed, "the token is not signed with RS256, ES256 or EdDSA")
		}
		return nil, refuse(ReasonMalformed, "the token is not a signed JWT")
	}
	var std struct {
		Issuer   string       `json:"iss"`
		Subject  string       `json:"sub"`
		Audience jwt.Audience `json:"aud"`
	}
	if err := tok.UnsafeClaimsWithoutVerification(&std); err != nil {
		return nil, refuse(ReasonMalformed, "the token's claims are not a JSON object with string iss, sub and aud")
	}
	if std.Issuer == "" || std.Subject == "" || len(std.Audience) == 0 {
		return nil, refuse(ReasonMalformed, "the token lacks iss, sub or aud")
	}
	return &Token{Issuer: std.Issuer, Subject: std.Subject, Audience: std.Audience, raw: tok, compact: raw}, nil
}

// Verify checks t's signature with the keys of its issuer — staticKeys (a JWKS document) when
// given, otherwise those the issuer publishes — and its times. The issuer must be allowed.
func (v *Verifier) Verify(ctx context.Context, t *Token, staticKeys []byte) error {
	if len(v.opts.Issuers) == 0 {
		return refuse(ReasonIssuerNotAllowed, "federated sign-in is off on this server: federation.issuers lists no issuer")
	}
	if !v.Allowed(t.Issuer) {
		return refuse(ReasonIssuerNotAllowed, "issuer %q is not one this server trusts (federation.issuers)", truncate(t.Issuer))
	}
	return v.verify(ctx, t, staticKeys)
}

// VerifyTrusted is Verify for an issuer the caller trusts by other means (an identity provider
// an administrator configured): the allow-list of federation.issuers does not apply.
func (v *Verifier) VerifyTrusted(ctx context.Context, t *Token) error {
	return v.verify(ctx, t, nil)
}

func (v *Verifier) verify(ctx context.Context, t *Token, staticKeys []byte) error {
	h := t.raw.Headers[0]
	memoKey := memoKeyOf(t.compact, staticKeys)
	if vt, ok := v.verified.get(memoKey); ok && (staticKeys != nil || v.published(t.Issuer, vt.kid)) {
		t.Claims = vt.claims
		return v.checkTimes(t)
	}
	var keys []jose.JSONWebKey
	if staticKeys != nil {
		set, err := ParseKeySet(staticKeys)
		if err != nil {
			return refuse(ReasonKeysUnavailable, "the federated credential's key set: %v", err)
		}
		keys = pick(set, h.KeyID)
		if len(keys) == 0 {
			return refuse(ReasonSignature, "no key of the federated credential's key set has kid %q", truncate(h.KeyID))
		}
	} else {
		var err error
		if keys, err = v.keys(ctx, t.Issuer, h.KeyID); err != nil {
			return err
		}
	}
	var payload map[string]any
	kid := ""
	verified := false
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != h.Algorithm {
			continue
		}
		if err := t.raw.Claims(k.Key, &payload); err == nil {
			verified, kid = true, k.KeyID
			break
		}
	}
	if !verified {
		return refuse(ReasonSignature, "the token's signature does not verify with issuer %q's key %q", truncate(t.Issuer), truncate(h.KeyID))
	}
	t.Claims = payload
	if err := v.checkTimes(t); err != nil {
		return err
	}
	v.verified.put(memoKey, verifiedToken{kid: kid, claims: payload, expires: t.Expiry.Add(v.opts.Leeway)}, v.opts.Now())
	return nil
}

// checkTimes checks a verified token's exp, nbf and iat.
func (v *Verifier) checkTimes(t *Token) error {
	var times struct {
		Expiry    *jwt.NumericDate `json:"exp"`
		NotBefore *jwt.NumericDate `json:"nbf"`
		IssuedAt  *jwt.NumericDate `json:"iat"`
	}
	b, _ := json.Marshal(t.Claims)
	if err := json.Unmarshal(b, &times); err != nil || times.Expiry == nil || times.IssuedAt == nil {
		return refuse(ReasonMalformed, "the token needs numeric exp and iat claims")
	}
	now, leeway := v.opts.Now(), v.opts.Leeway
	exp, iat := times.Expiry.Time(), times.IssuedAt.Time()
	t.Expiry = exp
	switch {
	case now.After(exp.Add(leeway)):
		return refuse(ReasonExpired, "the token expired at %s", exp.UTC().Format(time.RFC3339))
	case times.NotBefore != nil && now.Add(leeway).Before(times.NotBefore.Time()):
		return refuse(ReasonNotYetValid, "the token is not valid before %s", times.NotBefore.Time().UTC().Format(time.RFC3339))
	case now.Add(leeway).Before(iat):
		return refuse(ReasonNotYetValid, "the token was issued in the future (%s)", iat.UTC().Format(time.RFC3339))
	case v.opts.MaxTokenAge > 0 && now.Sub(iat) > v.opts.MaxTokenAge:
		return refuse(ReasonTooOld, "the token was issued at %s, more than %s ago (federation.max_token_age)", iat.UTC().Format(time.RFC3339), v.opts.MaxTokenAge)
	}
	return nil
}

// pick returns the keys a token's kid names; with no kid, every key (a one-key set, as some
// issuers publish).
func pick(set []jose.JSONWebKey, kid string) []jose.JSONWebKey {
	if kid == "" {
		return set
	}
	var out []jose.JSONWebKey
	for _, k := range set {
		if k.KeyID == kid {
			out = append(out, k)
		}
	}
	return out
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// maxVerified bounds the tokens remembered as verified (only tokens an allowed issuer signed get
// in); when full, the expired go, then everything.
const maxVerified = 10_000

type verifiedToken struct {
	kid     string
	claims  map[string]any
	expires time.Time
}

type verifiedTokens struct {
	mu sync.Mutex
	m  map[[32]byte]verifiedToken
}

func memoKeyOf(compact string, static []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(compact))
	h.Write([]byte{0})
	h.Write(static)
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (vt *verifiedTokens) get(k [32]byte) (verifiedToken, bool) {
	vt.mu.Lock()
	defer vt.mu.Unlock()
	e, ok := vt.m[k]
	return e, ok
}

func (vt *verifiedTokens) put(k [32]byte, e verifiedToken, now time.Time) {
	vt.mu.Lock()
	defer vt.mu.Unlock()
	if len(vt.m) >= maxVerified {
		for key, old := range vt.m {
			if now.After(old.expires) {
				delete(vt.m, key)
			}
		}
		if len(vt.m) >= maxVerified {
			clear(vt.m)
		}
	}
	vt.m[k] = e
}

// published reports whether issuer iss's cached key set still holds kid (a key withdrawn from
// it no longer vouches for the tokens it signed).
func (v *Verifier) published(iss, kid string) bool {
	ik := v.issuer(iss)
	ik.mu.Lock()
	defer ik.mu.Unlock()
	if !v.opts.Now().Before(ik.expires) {
		return false // the keys are due: verify again, which fetches them
	}
	for _, k := range ik.keys {
		if k.KeyID == kid {
			return true
		}
	}
	return false
}

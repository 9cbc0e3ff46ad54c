// Package authn turns a request into a Principal: who is asking. It does not decide what they
// may do; that is package policy's job. It checks passwords (through package directory), berth's
// JWTs (through package token), and throttles failed sign-ins per identity and per address.
package authn

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/httperr"
	"github.com/berth-registry/berth/internal/oci"
)

// NullGUID is the user name that says "the password is a berth token".
const NullGUID = "00000000-0000-0000-0000-000000000000"

// Error is a refused authentication. Message is safe to send to the client.
type Error struct {
	Reason       string // machine-readable: unknown_identity, bad_password, invalid_token, throttled, …
	Message      string
	RetryAfter   time.Duration // throttled: when to come back
	InvalidToken bool          // a bearer token was refused (challenge with error="invalid_token")
	Identity     string        // the user name that was tried, for the logs
	// Issuer and Subject name the external token of a refused federated sign-in, as it claimed.
	Issuer, Subject string
}

func (e *Error) Error() string { return e.Message }

// ReasonInvalidToken and ReasonThrottled complete the directory's reasons.
const (
	ReasonInvalidToken = "invalid_token"
	ReasonThrottled    = "throttled"
)

// Reply turns a refused authentication into its reply: 429 TOOMANYREQUESTS with Retry-After
// when throttled, else 401 UNAUTHORIZED (the caller adds its challenge). ok is false for an err
// that is no *Error (a technical failure).
func Reply(err error) (reply *httperr.Error, e *Error, ok bool) {
	e, ok = AsError(err)
	if !ok {
		return nil, nil, false
	}
	if e.RetryAfter > 0 {
		return httperr.New(oci.CodeTooManyRequests, "%s", e.Message).WithStatus(http.StatusTooManyRequests).
			WithHeader("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds()))).WithReason(e.Reason).Wrap(e), e, true
	}
	return httperr.New(oci.CodeUnauthorized, "%s", e.Message).WithReason(e.Reason).Wrap(e), e, true
}

// AsError returns err as an *Error, if it is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Authenticator identifies the caller of a request.
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request) (access.Principal, error)
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p access.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal ctx carries.
func PrincipalFrom(ctx context.Context) (access.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(access.Principal)
	return p, ok
}

type clientIPKey struct{}

// WithClientIP returns ctx carrying the client address the server resolved for a request.
func WithClientIP(ctx context.Context, ip netip.Addr) context.Context {
	return context.WithValue(ctx, clientIPKey{}, ip)
}

type httpsKey struct{}

// WithHTTPS records that the client reached berth over HTTPS at a trusted proxy (which said so in
// X-Forwarded-Proto).
func WithHTTPS(ctx context.Context) context.Context { return context.WithValue(ctx, httpsKey{}, true) }

// HTTPS reports whether the client reached berth over HTTPS: on this connection, or at a trusted
// proxy that terminated it. URLs berth gives clients (the token realm, single sign-on's callback)
// and the portal's cookies follow it.
func HTTPS(r *http.Request) bool {
	https, _ := r.Context().Value(httpsKey{}).(bool)
	return r.TLS != nil || https
}

// Scheme is "https" when HTTPS(r), else "http".
func Scheme(r *http.Request) string {
	if HTTPS(r) {
		return "https"
	}
	return "http"
}

// ClientAddr is the address a request came from: the one the server resolved (through trusted
// proxies) if any, else the peer's.
func ClientAddr(r *http.Request) netip.Addr {
	if ip, ok := r.Context().Value(clientIPKey{}).(netip.Addr); ok {
		return ip
	}
	return peerAddr(r)
}

// ClientIP is ClientAddr as text.
func ClientIP(r *http.Request) string {
	if ip := ClientAddr(r); ip.IsValid() {
		return ip.String()
	}
	return r.RemoteAddr
}

// PeerAddr is the address of the connection's other end (a proxy's, behind one).
func PeerAddr(r *http.Request) netip.Addr { return peerAddr(r) }

func peerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return ip.WithZone("").Unmap()
}

// maxForwardedHops bounds how much of X-Forwarded-For is read.
const maxForwardedHops = 32

// ResolveClientIP finds the client behind trusted proxies: when the peer is trusted, the
// X-Forwarded-For entries are walked from the right (the nearest hop) and the first address
// that is not a trusted proxy is the client. A peer that is not trusted is the client, whatever
// headers it sends.
func ResolveClientIP(r *http.Request, trusted func(netip.Addr) bool) netip.Addr {
	ip := peerAddr(r)
	if !ip.IsValid() || trusted == nil || !trusted(ip) {
		return ip
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
		if len(hops) > maxForwardedHops {
			hops = hops[len(hops)-maxForwardedHops:]
		}
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return ip // a garbled entry: believe nothing further left
		}
		ip = hop.WithZone("").Unmap()
		if !trusted(ip) {
			return ip
		}
	}
	return ip
}

// BearerToken returns the token of an "Authorization: Bearer" header.
func BearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:]), true
	}
	return "", false
}

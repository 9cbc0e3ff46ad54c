// Package authn turns a request into a Principal: who is asking. It does not decide what they
// may do; that is package policy's job.
package authn

import (
	"context"
	"errors"
	"net/http"
)

// Errors an Authenticator returns; anything else is a technical failure.
var (
	// ErrInvalidCredentials means credentials were sent and are wrong, expired or disabled.
	ErrInvalidCredentials = errors.New("authn: invalid credentials")
)

// Kind is the kind of identity a principal is.
type Kind string

// The kinds of principal.
const (
	KindAnonymous Kind = "anonymous"
)

// Principal is an authenticated identity, or the anonymous one.
type Principal struct {
	Kind Kind
	// Name is the identity's display name (user name, token name, client id).
	Name string
}

// Anonymous is the principal of a request without credentials.
var Anonymous = Principal{Kind: KindAnonymous}

// IsAnonymous reports whether p carries no identity.
func (p Principal) IsAnonymous() bool { return p.Kind == KindAnonymous || p.Kind == "" }

// Authenticator identifies the caller of a request.
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request) (Principal, error)
}

// AnonymousOnly is the authenticator of a server with no identities configured: every caller
// is anonymous, whatever it sends.
type AnonymousOnly struct{}

var _ Authenticator = AnonymousOnly{}

// Authenticate implements Authenticator.
func (AnonymousOnly) Authenticate(ctx context.Context, r *http.Request) (Principal, error) {
	return Anonymous, nil
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal ctx carries.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

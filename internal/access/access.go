// Package access is berth's vocabulary of who is asking: the principal a request was
// authenticated as, and the grant of the access token it carried. Package authn produces
// principals, package token signs and verifies grants, and package policy decides on both; this
// package sits below all three and imports only the standard library.
package access

import (
	"fmt"
	"slices"
)

// Kind is the kind of identity a principal is.
type Kind string

// The kinds of principal.
const (
	KindAnonymous Kind = "anonymous"
	KindAdmin     Kind = "admin"
	KindToken     Kind = "token"
	KindUser      Kind = "user"
	KindSP        Kind = "sp"
)

// Principal is an authenticated identity, or the anonymous one.
type Principal struct {
	Kind Kind
	// Name is the identity's display name (registry name for its admin, token name, user name,
	// client id).
	Name string
	// ID is the identity's row id (the registry's id for its admin user).
	ID int64
	// Registry is the registry an admin user or token belongs to.
	Registry string
	// Scoped is set when the request carried an access token: Grant then bounds what it may do,
	// whatever the policy would allow.
	Scoped bool
	Grant  Grant
	// TokenID is the jti of the token the request carried, if any.
	TokenID string
	// Via says how the principal proved itself: password, access_token, refresh_token, directory,
	// federated.
	Via string
	// Issuer and Subject name the external token a federated sign-in presented.
	Issuer, Subject string
}

// Anonymous is the principal of a request without credentials.
var Anonymous = Principal{Kind: KindAnonymous}

// IsAnonymous reports whether p carries no identity.
func (p Principal) IsAnonymous() bool { return p.Kind == KindAnonymous || p.Kind == "" }

// String names the principal for messages: `token "ci" of registry "default"`.
func (p Principal) String() string {
	switch p.Kind {
	case KindAdmin:
		return fmt.Sprintf("the admin user of registry %q", p.Registry)
	case KindToken:
		return fmt.Sprintf("token %q of registry %q", p.Name, p.Registry)
	case KindUser:
		return fmt.Sprintf("user %q", p.Name)
	case KindSP:
		return fmt.Sprintf("service principal %q", p.Name)
	}
	return "an anonymous client"
}

// Scope is one entry of an access token's grant, in the Docker JWT format (the access claim):
// actions on one resource, named exactly.
type Scope struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// String is the scope as a token request names it: "repository:samples/app:pull,push".
func (s Scope) String() string {
	out := s.Type + ":" + s.Name + ":"
	for i, a := range s.Actions {
		if i > 0 {
			out += ","
		}
		out += a
	}
	return out
}

// Grant is what an access token allows: the scopes the token endpoint granted.
type Grant []Scope

// Allows reports whether the grant includes action on the resource ("*" includes every action).
func (g Grant) Allows(typ, name, action string) bool {
	for _, s := range g {
		if s.Type == typ && s.Name == name && (slices.Contains(s.Actions, action) || slices.Contains(s.Actions, "*")) {
			return true
		}
	}
	return false
}

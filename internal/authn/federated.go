package authn

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/directory"
	"github.com/berth-registry/berth/internal/federation"
	"github.com/berth-registry/berth/internal/store"
)

// Federated signs in service principal appID with an external token that one of its federated
// credentials trusts: Entra's client assertion (/mgmt/v1/token), and beyond ACR, the token as a
// password (docker login -u APPID -p "$OIDC_TOKEN"). A refusal names its reason, with the
// token's issuer and subject for the login event. These sign-ins are not throttled: an external
// token has no secret to guess, and checking one costs a signature.
func (s *Service) Federated(ctx context.Context, appID, raw string) (access.Principal, error) {
	key := fedKey(appID, raw)
	now := s.now()
	if p, ok := s.fed.get(key, now); ok {
		return p, nil
	}
	p, exp, err := s.federated(ctx, appID, raw)
	if err == nil {
		until := now.Add(fedRecheck)
		if exp.Before(until) {
			until = exp
		}
		s.fed.put(key, p, until)
	}
	return p, err
}

// fedRecheck is how long a federated sign-in is remembered, so that a pipeline sending its token
// with every request costs one full check a second: a credential or principal deleted on
// another replica stops signing in within it (on this one at once: FederationChanged).
const fedRecheck = time.Second

// FederationChanged forgets the remembered federated sign-ins, after a change to federated
// credentials or service principals.
func (s *Service) FederationChanged() { s.fed.clear() }

// federated checks the token; exp is when it expires.
func (s *Service) federated(ctx context.Context, appID, raw string) (_ access.Principal, exp time.Time, _ error) {
	refuse := func(reason, msg string, t *federation.Token) error {
		e := &Error{Reason: reason, Message: "authentication required: " + msg, Identity: appID}
		if t != nil {
			e.Issuer, e.Subject = t.Issuer, t.Subject
		}
		return e
	}
	if !directory.IsGUID(appID) {
		return access.Principal{}, exp, refuse(directory.ReasonUnknownIdentity, "a service principal's client id must be a GUID", nil)
	}
	if s.Federation == nil {
		return access.Principal{}, exp, refuse(federation.ReasonIssuerNotAllowed, "federated sign-in is off on this server: federation.issuers lists no issuer", nil)
	}
	t, err := federation.Parse(raw)
	if err != nil {
		return access.Principal{}, exp, s.federationError(err, nil, refuse)
	}
	if !s.Federation.Allowed(t.Issuer) {
		return access.Principal{}, exp, s.federationError(s.Federation.Verify(ctx, t, nil), t, refuse)
	}
	sp, err := s.st.ServicePrincipalByAppID(ctx, appID)
	if errors.Is(err, store.ErrNotFound) {
		return access.Principal{}, exp, refuse(directory.ReasonUnknownIdentity, strings.TrimPrefix(directory.SPMessage, "authentication required: "), t)
	}
	if err != nil {
		return access.Principal{}, exp, err
	}
	all, err := s.st.FederatedCredentials(ctx, sp.ID)
	if err != nil {
		return access.Principal{}, exp, err
	}
	// The credentials of the token's issuer, grouped by the keys that verify them: the issuer's
	// published keys, or a credential's static key set.
	var order []string
	groups := map[string][]federation.Credential{}
	for _, fc := range all {
		if fc.Issuer != t.Issuer {
			continue
		}
		k := string(fc.JWKS)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], federation.Credential{Name: fc.Name, Issuer: fc.Issuer, Subject: fc.Subject, Expression: fc.Expression, Audiences: fc.Audiences})
	}
	if len(order) == 0 {
		return access.Principal{}, exp, refuse(federation.ReasonNoCredential, "service principal "+sp.AppID+" has no federated credential for issuer "+quote(t.Issuer), t)
	}
	var unverified, mismatch error
	for _, k := range order {
		var static []byte
		if k != "" {
			static = []byte(k)
		}
		if err := s.Federation.Verify(ctx, t, static); err != nil {
			unverified = cmpOr(unverified, err)
			continue
		}
		if _, err := federation.Match(t, groups[k]); err != nil {
			mismatch = cmpOr(mismatch, err)
			continue
		}
		return access.Principal{Kind: access.KindSP, Name: sp.AppID, ID: sp.ID, Via: "federated", Issuer: t.Issuer, Subject: t.Subject}, t.Expiry, nil
	}
	// A verified token's mismatch says more than another key set's refusal.
	return access.Principal{}, exp, s.federationError(cmpOr(mismatch, unverified), t, refuse)
}

func (s *Service) federationError(err error, t *federation.Token, refuse func(string, string, *federation.Token) error) error {
	var fe *federation.Error
	if errors.As(err, &fe) {
		return refuse(fe.Reason, fe.Message, t)
	}
	return err
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func quote(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return `"` + s + `"`
}

// fedMemo remembers successful federated sign-ins for a moment (fedRecheck), by client id and
// token; at most maxFedMemo.
type fedMemo struct {
	mu sync.Mutex
	m  map[[32]byte]fedEntry
}

type fedEntry struct {
	p     access.Principal
	until time.Time
}

const maxFedMemo = 10_000

func fedKey(appID, raw string) [32]byte {
	return sha256.Sum256([]byte(strings.ToLower(appID) + "\x00" + raw))
}

func (m *fedMemo) get(k [32]byte, now time.Time) (access.Principal, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.m[k]
	if !ok || !now.Before(e.until) {
		return access.Principal{}, false
	}
	return e.p, true
}

func (m *fedMemo) put(k [32]byte, p access.Principal, until time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil || len(m.m) >= maxFedMemo {
		m.m = map[[32]byte]fedEntry{}
	}
	m.m[k] = fedEntry{p, until}
}

func (m *fedMemo) clear() {
	m.mu.Lock()
	m.m = nil
	m.mu.Unlock()
}

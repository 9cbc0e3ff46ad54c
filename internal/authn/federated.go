package authn

import (
	"context"
	"errors"
	"strings"

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
	refuse := func(reason, msg string, t *federation.Token) error {
		e := &Error{Reason: reason, Message: "authentication required: " + msg, Identity: appID}
		if t != nil {
			e.Issuer, e.Subject = t.Issuer, t.Subject
		}
		return e
	}
	if !directory.IsGUID(appID) {
		return access.Principal{}, refuse(directory.ReasonUnknownIdentity, "a service principal's client id must be a GUID", nil)
	}
	if s.Federation == nil {
		return access.Principal{}, refuse(federation.ReasonIssuerNotAllowed, "federated sign-in is off on this server: federation.issuers lists no issuer", nil)
	}
	t, err := federation.Parse(raw)
	if err != nil {
		return access.Principal{}, s.federationError(err, nil, refuse)
	}
	if !s.Federation.Allowed(t.Issuer) {
		return access.Principal{}, s.federationError(s.Federation.Verify(ctx, t, nil), t, refuse)
	}
	sp, err := s.st.ServicePrincipalByAppID(ctx, appID)
	if errors.Is(err, store.ErrNotFound) {
		return access.Principal{}, refuse(directory.ReasonUnknownIdentity, strings.TrimPrefix(directory.SPMessage, "authentication required: "), t)
	}
	if err != nil {
		return access.Principal{}, err
	}
	all, err := s.st.FederatedCredentials(ctx, sp.ID)
	if err != nil {
		return access.Principal{}, err
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
		return access.Principal{}, refuse(federation.ReasonNoCredential, "service principal "+sp.AppID+" has no federated credential for issuer "+quote(t.Issuer), t)
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
		return access.Principal{Kind: access.KindSP, Name: sp.AppID, ID: sp.ID, Via: "federated", Issuer: t.Issuer, Subject: t.Subject}, nil
	}
	// A verified token's mismatch says more than another key set's refusal.
	return access.Principal{}, s.federationError(cmpOr(mismatch, unverified), t, refuse)
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

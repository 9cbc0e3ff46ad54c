package directory

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/store"
)

// Identity is who a checked credential belongs to.
type Identity struct {
	Kind     string // store.KindAdmin, KindToken, KindUser or KindSP
	ID       int64  // registry id for the admin user
	Name     string // registry name (admin), token name, user name or client id
	Registry string // admin and token: the registry they belong to
}

// Machine-readable reasons a sign-in fails.
const (
	ReasonUnknownIdentity = "unknown_identity"
	ReasonBadPassword     = "bad_password"
	ReasonAdminDisabled   = "admin_disabled"
	ReasonTokenDisabled   = "token_disabled"
	ReasonPasswordExpired = "password_expired"
	ReasonSSOOnly         = "sso_only"
)

// GenericMessage answers an unknown identity and a wrong secret alike, so that neither tells an
// attacker which names exist.
const GenericMessage = "authentication required: unknown user name or wrong password"

// SigninError is a refused sign-in. Message is safe to show the client: it names the cause only
// when the secret was right.
type SigninError struct {
	Reason   string
	Message  string
	Identity Identity // as far as it is known
}

func (e *SigninError) Error() string { return e.Message }

// SecretWrong reports whether the failure is a wrong secret or unknown name, the failures that
// count toward throttling.
func (e *SigninError) SecretWrong() bool {
	return e.Reason == ReasonUnknownIdentity || e.Reason == ReasonBadPassword
}

// Directory checks credentials against the store.
type Directory struct {
	st  *store.Store
	h   *Hasher
	now func() time.Time
}

// New returns a directory over st.
func New(st *store.Store, h *Hasher, now func() time.Time) *Directory {
	if now == nil {
		now = time.Now
	}
	return &Directory{st: st, h: h, now: now}
}

// Hasher returns the directory's hasher.
func (d *Directory) Hasher() *Hasher { return d.h }

// CheckRegistryCredential checks a user name and password sent to a registry: its admin user
// (the registry's name), one of its tokens, or a service principal's client id.
func (d *Directory) CheckRegistryCredential(ctx context.Context, reg store.Registry, username, password string) (Identity, error) {
	switch {
	case strings.EqualFold(username, reg.Name):
		id := Identity{Kind: store.KindAdmin, ID: reg.ID, Name: reg.Name, Registry: reg.Name}
		if _, err := d.match(ctx, id, store.KindAdmin, reg.ID, password); err != nil {
			return id, err
		}
		if !reg.AdminEnabled {
			return id, &SigninError{Reason: ReasonAdminDisabled, Identity: id,
				Message: fmt.Sprintf("admin user is disabled: enable it with 'berth registry update -n %s --admin-enabled true'", reg.Name)}
		}
		return id, nil
	}
	tok, err := d.st.Token(ctx, reg.ID, username)
	switch {
	case err == nil:
		id := Identity{Kind: store.KindToken, ID: tok.ID, Name: tok.Name, Registry: reg.Name}
		if _, err := d.match(ctx, id, store.KindToken, tok.ID, password); err != nil {
			return id, err
		}
		if tok.Status != "enabled" {
			return id, &SigninError{Reason: ReasonTokenDisabled, Identity: id,
				Message: fmt.Sprintf("token is disabled: token %q of registry %q has status %s", tok.Name, reg.Name, tok.Status)}
		}
		return id, nil
	case !errors.Is(err, store.ErrNotFound):
		return Identity{}, err
	}
	if IsGUID(username) {
		return d.CheckServicePrincipal(ctx, username, password)
	}
	return Identity{}, d.unknown(ctx, password)
}

// CheckUser checks a directory user's password.
func (d *Directory) CheckUser(ctx context.Context, name, password string) (Identity, error) {
	u, err := d.st.UserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return Identity{}, d.unknown(ctx, password)
	}
	if err != nil {
		return Identity{}, err
	}
	id := Identity{Kind: store.KindUser, ID: u.ID, Name: u.Name}
	if u.SSOOnly {
		// No password signs in: the client is answered as for a wrong one (spending what a check
		// costs), so that SSO users cannot be told apart; the login event says sso_only.
		if _, err := d.h.Match(ctx, nil, password); err != nil {
			return id, err
		}
		return id, &SigninError{Reason: ReasonSSOOnly, Identity: id, Message: GenericMessage}
	}
	_, err = d.match(ctx, id, store.KindUser, u.ID, password)
	return id, err
}

// SPMessage answers an unknown client id and a wrong client secret alike; ACR's words for it are
// "Application not registered with AAD".
const SPMessage = "authentication required: application not registered with the directory, or wrong client secret"

// CheckServicePrincipal checks a service principal's client id and secret.
func (d *Directory) CheckServicePrincipal(ctx context.Context, appID, secret string) (Identity, error) {
	sp, err := d.st.ServicePrincipalByAppID(ctx, appID)
	if errors.Is(err, store.ErrNotFound) {
		return Identity{}, spMessage(d.unknown(ctx, secret))
	}
	if err != nil {
		return Identity{}, err
	}
	id := Identity{Kind: store.KindSP, ID: sp.ID, Name: sp.AppID}
	_, err = d.match(ctx, id, store.KindSP, sp.ID, secret)
	return id, spMessage(err)
}

func spMessage(err error) error {
	var se *SigninError
	if errors.As(err, &se) && se.Message == GenericMessage {
		se.Message = SPMessage
	}
	return err
}

// unknown spends what a real check would, then refuses.
func (d *Directory) unknown(ctx context.Context, password string) error {
	if _, err := d.h.Match(ctx, nil, password); err != nil {
		return err
	}
	return &SigninError{Reason: ReasonUnknownIdentity, Message: GenericMessage}
}

// match checks password against the identity's secrets and refuses an expired one.
func (d *Directory) match(ctx context.Context, id Identity, kind string, ownerID int64, password string) (store.Secret, error) {
	secs, err := d.st.Secrets(ctx, kind, ownerID)
	if err != nil {
		return store.Secret{}, err
	}
	hashes := make([]string, len(secs))
	for i, s := range secs {
		hashes[i] = s.Hash
	}
	i, err := d.h.Match(ctx, hashes, password)
	if err != nil {
		return store.Secret{}, err
	}
	if i < 0 {
		return store.Secret{}, &SigninError{Reason: ReasonBadPassword, Message: GenericMessage, Identity: id}
	}
	sec := secs[i]
	if !sec.ExpiresAt.IsZero() && !d.now().Before(sec.ExpiresAt) {
		when := sec.ExpiresAt.UTC().Format(time.RFC3339)
		msg := fmt.Sprintf("password expired: %s of token %s expired on %s; generate a new one with 'berth token credential generate'", sec.Name, id.Name, when)
		if kind == store.KindSP {
			msg = fmt.Sprintf("password expired: secret %s of service principal %s expired on %s; reset it with 'berth sp credential reset'", sec.Name, id.Name, when)
		}
		return sec, &SigninError{Reason: ReasonPasswordExpired, Message: msg, Identity: id}
	}
	return sec, nil
}

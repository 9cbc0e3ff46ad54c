package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/directory"
	"github.com/berth-registry/berth/internal/federation"
	"github.com/berth-registry/berth/internal/hosts"
	"github.com/berth-registry/berth/internal/store"
	"github.com/berth-registry/berth/internal/token"
)

// Throttling limits failed sign-ins so that a guesser slows itself and not the identity's owner.
// Failures are counted in the database, so every replica sees the same counts:
//   - Pair: per identity and client address. A guesser at one address is blocked for that
//     identity; the owner at another address is not.
//   - Address: per client address, whatever the identity (one address guessing many names).
//   - Identity: per identity over every address (a guesser at many addresses), with a ceiling
//     far above Pair's; it blocks only addresses that never signed in as the identity
//     (RememberFor), so its owner keeps working from where it works.
//
// Each block lasts Lockout, doubling when the same key is blocked again soon after (up to
// MaxLockout). ACR leaves this to Entra ID's smart lockout (10 failures, then a minute,
// growing; familiar locations are spared), which this follows; Harbor has a 1.5 s in-memory
// delay per user, and Quay an exponential backoff per user that any guesser can set off for
// everyone.
type Throttling struct {
	Pair     store.ThrottleRule
	Address  store.ThrottleRule
	Identity store.ThrottleRule
	// RememberFor is how long a successful sign-in makes its address familiar to the identity.
	RememberFor time.Duration
	// Tarpit is how long a sign-in that is already blocked waits before its 429: a guesser
	// that keeps asking while blocked is slowed to a few attempts a second per connection,
	// and costs the server little meanwhile.
	Tarpit time.Duration
}

// DefaultThrottling: 10 failures in 5 minutes block an identity at one address, 50 an address,
// 100 an identity from unfamiliar addresses; a minute at first, doubling up to an hour; an
// address stays familiar for 30 days. (Tarpit comes from auth.throttled_delay, 500ms by default.)
var DefaultThrottling = Throttling{
	Pair:        store.ThrottleRule{Max: 10, Window: 5 * time.Minute, Lockout: time.Minute, MaxLockout: time.Hour},
	Address:     store.ThrottleRule{Max: 50, Window: 5 * time.Minute, Lockout: time.Minute, MaxLockout: time.Hour},
	Identity:    store.ThrottleRule{Max: 100, Window: 5 * time.Minute, Lockout: time.Minute, MaxLockout: time.Hour},
	RememberFor: 30 * 24 * time.Hour,
}

// RememberedPrefix starts the store keys of familiar addresses (see Throttling).
const RememberedPrefix = "ok:"

// ModeSource tells the role assignment mode a registry is in now ("rbac" or "rbac-abac").
type ModeSource interface {
	RegistryMode(registry string) string
}

// ReasonModeChanged is the reason of a token issued before its registry's mode changed.
const ReasonModeChanged = "mode_changed"

// Service authenticates requests and sign-ins.
type Service struct {
	// Modes, when set, binds registry tokens to the mode they were issued under.
	Modes ModeSource
	// DirectoryRefreshTTL is the lifetime of the directory refresh tokens the CLI renews its
	// sign-in with; 0 issues none.
	DirectoryRefreshTTL time.Duration
	// Federation checks external tokens for federated credentials; nil: federated sign-in is off.
	Federation *federation.Verifier
	fed        fedMemo
	st         *store.Store
	dir        *directory.Directory
	tok        *token.Service
	throttle   Throttling
	log        *slog.Logger
	now        func() time.Time
}

// NewService returns the authenticator of a server with identities.
func NewService(st *store.Store, dir *directory.Directory, tok *token.Service, t Throttling, log *slog.Logger, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, dir: dir, tok: tok, throttle: t, log: log, now: now}
}

// Tokens returns the token service.
func (s *Service) Tokens() *token.Service { return s.tok }

// Audience is the aud claim of tokens for reg: its login server, or its name when it has none.
func Audience(reg store.Registry) string {
	if reg.LoginServer != "" {
		return reg.LoginServer
	}
	return reg.Name
}

var _ Authenticator = (*Service)(nil)

// Authenticate implements Authenticator for /v2/: Basic credentials, a bearer access token, or
// nothing (anonymous). The request's registry must be in ctx.
func (s *Service) Authenticate(ctx context.Context, r *http.Request) (access.Principal, error) {
	reg, ok := hosts.RegistryFrom(ctx)
	if !ok {
		return access.Principal{}, errors.New("authn: request has no registry")
	}
	if raw, ok := BearerToken(r); ok {
		return s.AccessToken(ctx, reg, raw)
	}
	if user, pass, ok := r.BasicAuth(); ok {
		return s.Password(ctx, reg, ClientIP(r), user, pass)
	}
	if r.Header.Get("Authorization") != "" {
		return access.Principal{}, &Error{Reason: ReasonInvalidToken, Message: "the Authorization header is neither Basic nor Bearer"}
	}
	return access.Anonymous, nil
}

// AccessToken checks a bearer access token for reg.
func (s *Service) AccessToken(ctx context.Context, reg store.Registry, raw string) (access.Principal, error) {
	c, err := s.tok.Verify(ctx, raw, Audience(reg), token.GrantAccess)
	if err != nil {
		return access.Principal{}, s.tokenError(err)
	}
	if err := s.checkMode(reg, c); err != nil {
		return access.Principal{}, err
	}
	p := fromClaims(c, "access_token")
	p.Scoped, p.Grant = true, c.Access
	return p, nil
}

// RefreshToken checks a refresh token for reg.
func (s *Service) RefreshToken(ctx context.Context, reg store.Registry, raw string) (access.Principal, error) {
	c, err := s.tok.Verify(ctx, raw, Audience(reg), token.GrantRefresh)
	if err != nil {
		return access.Principal{}, s.tokenError(err)
	}
	if err := s.checkMode(reg, c); err != nil {
		return access.Principal{}, err
	}
	return fromClaims(c, "refresh_token"), nil
}

// Mode is the mode that tokens for reg are issued under now ("" without a ModeSource).
func (s *Service) Mode(reg store.Registry) string {
	if s.Modes == nil {
		return ""
	}
	return s.Modes.RegistryMode(reg.Name)
}

// checkMode refuses a token issued under another role assignment mode than reg's current one.
// Tokens without the claim predate modes and count as rbac.
func (s *Service) checkMode(reg store.Registry, c *token.Claims) error {
	now := s.Mode(reg)
	issued := c.Mode
	if issued == "" {
		issued = "rbac"
	}
	if now == "" || issued == now {
		return nil
	}
	return &Error{Reason: ReasonModeChanged, InvalidToken: true, Identity: c.Subject,
		Message: fmt.Sprintf("the token was issued when registry %q was in role assignment mode %s; it is now in mode %s, which invalidates older tokens: sign in again", reg.Name, issued, now)}
}

// DirectoryToken checks a directory token (the management API and /oauth2/exchange).
func (s *Service) DirectoryToken(ctx context.Context, raw string) (access.Principal, error) {
	c, err := s.tok.Verify(ctx, raw, token.DirectoryAudience, token.GrantDirectory)
	if err != nil {
		return access.Principal{}, s.tokenError(err)
	}
	return fromClaims(c, "directory"), nil
}

func (s *Service) tokenError(err error) error {
	if errors.Is(err, token.ErrInvalid) {
		return &Error{Reason: ReasonInvalidToken, Message: err.Error(), InvalidToken: true}
	}
	return err
}

func fromClaims(c *token.Claims, via string) access.Principal {
	return access.Principal{Kind: access.Kind(c.Kind), Name: c.Subject, ID: c.PID, Registry: c.Registry, TokenID: c.ID, Via: via}
}

// Password checks a user name and password sent to reg: the admin user, a token, a service
// principal, or the null GUID with a berth refresh or access token as the password.
//
// An empty user name and password are no credentials: the caller is anonymous, as with no
// Authorization header (the conformance suite and some clients send "Basic Og==" when they have
// none). They name no identity, so they are neither checked nor counted as a failed sign-in.
func (s *Service) Password(ctx context.Context, reg store.Registry, ip, user, pass string) (access.Principal, error) {
	if user == "" && pass == "" {
		return access.Anonymous, nil
	}
	if user == NullGUID {
		if p, err := s.RefreshToken(ctx, reg, pass); err == nil {
			return p, nil
		}
		return s.AccessToken(ctx, reg, pass)
	}
	if directory.IsGUID(user) && federation.LooksLikeJWT(pass) {
		// Secrets are base64url without dots: a password shaped as a JWT is an external token.
		return s.Federated(ctx, user, pass)
	}
	key := "id:" + reg.Name + ":" + strings.ToLower(user)
	if directory.IsGUID(user) {
		key = "sp:" + strings.ToLower(user)
	}
	return s.signIn(ctx, key, ip, user, func() (directory.Identity, error) {
		return s.dir.CheckRegistryCredential(ctx, reg, user, pass)
	})
}

// User checks a directory user's password, for the directory token endpoint.
func (s *Service) User(ctx context.Context, ip, name, pass string) (access.Principal, error) {
	return s.signIn(ctx, "user:"+name, ip, name, func() (directory.Identity, error) { return s.dir.CheckUser(ctx, name, pass) })
}

// ServicePrincipal checks a client id and secret, for the directory token endpoint.
func (s *Service) ServicePrincipal(ctx context.Context, ip, appID, secret string) (access.Principal, error) {
	if !directory.IsGUID(appID) {
		return access.Principal{}, &Error{Reason: directory.ReasonUnknownIdentity, Identity: appID,
			Message: "authentication required: a service principal's client id must be a GUID"}
	}
	return s.signIn(ctx, "sp:"+strings.ToLower(appID), ip, appID, func() (directory.Identity, error) {
		return s.dir.CheckServicePrincipal(ctx, appID, secret)
	})
}

func (s *Service) signIn(ctx context.Context, key, ip, user string, check func() (directory.Identity, error)) (access.Principal, error) {
	now := s.now()
	pairKey, ipKey := key+"@"+ip, "ip:"+ip
	okKey := RememberedPrefix + pairKey
	states, err := s.st.SigninStates(ctx, pairKey, ipKey, key, okKey)
	if err != nil {
		return access.Principal{}, err
	}
	ok, known := states[okKey]
	familiar := known && now.Sub(ok.WindowStart) < s.throttle.RememberFor
	until := later(states[pairKey].BlockedUntil, states[ipKey].BlockedUntil)
	if !familiar {
		until = later(until, states[key].BlockedUntil)
	}
	if until.After(now) {
		if s.throttle.Tarpit > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(s.throttle.Tarpit):
			}
		}
		return access.Principal{}, throttled(user, until.Sub(now))
	}
	id, err := check()
	var se *directory.SigninError
	switch {
	case errors.As(err, &se):
		if !se.SecretWrong() {
			return access.Principal{}, &Error{Reason: se.Reason, Message: se.Message, Identity: user}
		}
		u1, err1 := s.st.RecordSigninFailure(ctx, pairKey, now, s.throttle.Pair)
		u2, err2 := s.st.RecordSigninFailure(ctx, ipKey, now, s.throttle.Address)
		u3, err3 := s.st.RecordSigninFailure(ctx, key, now, s.throttle.Identity)
		if err := errors.Join(err1, err2, err3); err != nil {
			return access.Principal{}, err
		}
		until = later(u1, u2)
		if !familiar {
			until = later(until, u3)
		}
		if until.After(now) {
			return access.Principal{}, throttled(user, until.Sub(now))
		}
		return access.Principal{}, &Error{Reason: se.Reason, Message: se.Message, Identity: user}
	case err != nil:
		return access.Principal{}, err
	}
	// Most sign-ins have no failures to forget and a fresh familiar mark: no write.
	if _, failed := states[pairKey]; failed {
		if err := s.st.ClearSigninFailures(ctx, pairKey, now); err != nil {
			s.log.WarnContext(ctx, "could not clear sign-in failures", "err", err)
		}
	}
	if !familiar || now.Sub(ok.WindowStart) > 24*time.Hour {
		if err := s.st.RememberSignin(ctx, okKey, now); err != nil {
			s.log.WarnContext(ctx, "could not remember the sign-in's address", "err", err)
		}
	}
	return access.Principal{Kind: access.Kind(id.Kind), Name: id.Name, ID: id.ID, Registry: id.Registry, Via: "password"}, nil
}

// later is the later of two times.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func throttled(user string, d time.Duration) *Error {
	secs := int(math.Ceil(d.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return &Error{Reason: ReasonThrottled, RetryAfter: time.Duration(secs) * time.Second, Identity: user,
		Message: fmt.Sprintf("too many failed sign-ins for this identity or address: try again in %d seconds", secs)}
}

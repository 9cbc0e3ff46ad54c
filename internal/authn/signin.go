package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/directory"
	"github.com/berth-registry/berth/internal/hosts"
	"github.com/berth-registry/berth/internal/store"
	"github.com/berth-registry/berth/internal/token"
)

// Throttling limits failed sign-ins. Failures are counted in the database, so every replica
// sees the same counts.
type Throttling struct {
	Identity store.ThrottleRule // per user name (and registry)
	Address  store.ThrottleRule // per client address
}

// DefaultThrottling blocks an identity for a minute after 10 failures in 5 minutes, and an
// address after 50.
var DefaultThrottling = Throttling{
	Identity: store.ThrottleRule{Max: 10, Window: 5 * time.Minute, Lockout: time.Minute},
	Address:  store.ThrottleRule{Max: 50, Window: 5 * time.Minute, Lockout: time.Minute},
}

// ModeSource tells the role assignment mode a registry is in now ("rbac" or "rbac-abac").
type ModeSource interface {
	RegistryMode(registry string) string
}

// ReasonModeChanged is the reason of a token issued before its registry's mode changed.
const ReasonModeChanged = "mode_changed"

// Service authenticates requests and sign-ins.
type Service struct {
	// Modes, when set, binds registry tokens to the mode they were issued under.
	Modes    ModeSource
	st       *store.Store
	dir      *directory.Directory
	tok      *token.Service
	throttle Throttling
	log      *slog.Logger
	now      func() time.Time
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
func (s *Service) Password(ctx context.Context, reg store.Registry, ip, user, pass string) (access.Principal, error) {
	if user == NullGUID {
		if p, err := s.RefreshToken(ctx, reg, pass); err == nil {
			return p, nil
		}
		return s.AccessToken(ctx, reg, pass)
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
	ipKey := "ip:" + ip
	until, recorded, err := s.st.SigninBlockedUntil(ctx, now, key, ipKey)
	if err != nil {
		return access.Principal{}, err
	}
	if !until.IsZero() {
		return access.Principal{}, throttled(user, until.Sub(now))
	}
	id, err := check()
	var se *directory.SigninError
	switch {
	case errors.As(err, &se):
		if !se.SecretWrong() {
			return access.Principal{}, &Error{Reason: se.Reason, Message: se.Message, Identity: user}
		}
		u1, err1 := s.st.RecordSigninFailure(ctx, key, now, s.throttle.Identity)
		u2, err2 := s.st.RecordSigninFailure(ctx, ipKey, now, s.throttle.Address)
		if err := errors.Join(err1, err2); err != nil {
			return access.Principal{}, err
		}
		if u2.After(u1) {
			u1 = u2
		}
		if !u1.IsZero() {
			return access.Principal{}, throttled(user, u1.Sub(now))
		}
		return access.Principal{}, &Error{Reason: se.Reason, Message: se.Message, Identity: user}
	case err != nil:
		return access.Principal{}, err
	}
	if slices.Contains(recorded, key) { // most sign-ins have no failures to forget: no write
		if err := s.st.ClearSigninFailures(ctx, key, now); err != nil {
			s.log.WarnContext(ctx, "could not clear sign-in failures", "err", err)
		}
	}
	return access.Principal{Kind: access.Kind(id.Kind), Name: id.Name, ID: id.ID, Registry: id.Registry, Via: "password"}, nil
}

func throttled(user string, d time.Duration) *Error {
	secs := int(math.Ceil(d.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return &Error{Reason: ReasonThrottled, RetryAfter: time.Duration(secs) * time.Second, Identity: user,
		Message: fmt.Sprintf("too many failed sign-ins for this identity or address: try again in %d seconds", secs)}
}

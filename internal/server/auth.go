package server

import (
	"context"
	"runtime"
	"time"

	"github.com/berth-registry/berth/internal/authn"
	"github.com/berth-registry/berth/internal/directory"
	"github.com/berth-registry/berth/internal/federation"
	"github.com/berth-registry/berth/internal/policy"
	"github.com/berth-registry/berth/internal/seal"
	"github.com/berth-registry/berth/internal/store"
	"github.com/berth-registry/berth/internal/token"
	"github.com/berth-registry/berth/internal/webhook"
)

// The bootstrap owner, and the file of its generated password, as package directory names them.
const (
	BootstrapUser         = directory.BootstrapUser
	BootstrapPasswordFile = directory.BootstrapPasswordFile
)

func (s *Server) buildAuth(ctx context.Context, opts Options) error {
	params := directory.DefaultParams
	if opts.HashParams != nil {
		params = *opts.HashParams
	}
	// One argon2 computation per core at a time: each holds Params.Memory (19 MiB), so more
	// would add memory, not speed.
	s.dir = directory.New(s.meta, directory.NewHasher(params, runtime.GOMAXPROCS(0), s.now), s.now)
	a := s.cfg.Auth
	kek, err := loadKEK(s.cfg)
	if err != nil {
		return err
	}
	keys, err := KeyStore(s.meta, kek)
	if err != nil {
		return err
	}
	if s.box, err = seal.New(kek); err != nil {
		return err
	}
	if err := keys.(keyStore).encryptLegacyKeys(ctx, s.now()); err != nil {
		return err
	}
	s.keys = keys
	s.tokens = token.New(keys, token.Options{
		Lifetimes: token.Lifetimes{Access: a.AccessTokenTTL, Refresh: a.RefreshTokenTTL, Directory: a.DirectoryTokenTTL},
		Rotation:  a.KeyRotation, Now: s.now,
	})
	if err := s.tokens.Ensure(ctx); err != nil {
		return err
	}
	s.authn = authn.NewService(s.meta, s.dir, s.tokens, authn.Throttling{
		Pair:        store.ThrottleRule{Max: a.MaxFailures, Window: a.FailureWindow, Lockout: a.Lockout, MaxLockout: a.MaxLockout},
		Address:     store.ThrottleRule{Max: a.AddressMaxFailures, Window: a.FailureWindow, Lockout: a.Lockout, MaxLockout: a.MaxLockout},
		Identity:    store.ThrottleRule{Max: a.IdentityMaxFailures, Window: a.FailureWindow, Lockout: a.Lockout, MaxLockout: a.MaxLockout},
		RememberFor: authn.DefaultThrottling.RememberFor,
		Tarpit:      a.ThrottledDelay,
	}, s.log, s.now)
	// External OpenID Connect tokens: federated credentials' (issuers of federation.issuers) and
	// identity providers' ID tokens (single sign-on), reached with the outbound bounds.
	f := s.cfg.Federation
	s.authn.Federation = federation.New(federation.Options{Issuers: f.Issuers, AllowHTTP: f.AllowHTTP, MaxTokenAge: f.MaxTokenAge, Leeway: f.Leeway,
		RefreshInterval: f.RefreshInterval, Timeout: f.Timeout, HTTP: webhook.Dialer{Allowed: outboundAllowed(s.cfg)}.Client(f.Timeout),
		Now: s.now, Log: s.log.With("component", "federation")})
	if err := s.dir.Bootstrap(ctx, s.cfg.DataDir, opts.BootstrapPassword, s.log); err != nil {
		return err
	}
	s.policy = policy.NewEngine(nil)
	s.authn.Modes = s.policy
	s.authn.DirectoryRefreshTTL = a.DirectoryRefreshTokenTTL
	return s.policy.Refresh(ctx, s.meta)
}

// maintainAuth rotates signing keys and forgets old sign-in failures until ctx ends.
func (s *Server) maintainAuth(ctx context.Context) {
	repeat(ctx, time.Minute, false, func() {
		if err := s.tokens.Ensure(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("signing key maintenance failed", "err", err)
		}
		if err := s.meta.PurgeSigninFailures(ctx, s.now(), s.cfg.Auth.FailureWindow, authn.RememberedPrefix, authn.DefaultThrottling.RememberFor); err != nil && ctx.Err() == nil {
			s.log.Warn("purging sign-in failures failed", "err", err)
		}
		if err := s.meta.PurgeDirectoryRefresh(ctx, s.now()); err != nil && ctx.Err() == nil {
			s.log.Warn("purging expired refresh tokens failed", "err", err)
		}
	})
}

// Tokens exposes the token service, for tests that forge or age tokens.
func (s *Server) Tokens() *token.Service { return s.tokens }

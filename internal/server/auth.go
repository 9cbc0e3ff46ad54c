package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/berth-registry/berth/internal/authn"
	"github.com/berth-registry/berth/internal/directory"
	"github.com/berth-registry/berth/internal/policy"
	"github.com/berth-registry/berth/internal/store"
	"github.com/berth-registry/berth/internal/token"
)

// BootstrapUser is the directory user created on an empty database, with Owner at "/".
const BootstrapUser = "owner"

// BootstrapPasswordFile is the file, in the data folder, that receives a generated bootstrap
// password.
const BootstrapPasswordFile = "bootstrap-owner-password"

func (s *Server) buildAuth(ctx context.Context, opts Options) error {
	params := directory.DefaultParams
	if opts.HashParams != nil {
		params = *opts.HashParams
	}
	// One argon2 computation per core at a time: each holds Params.Memory (19 MiB), so more
	// would add memory, not speed.
	s.dir = directory.New(s.meta, directory.NewHasher(params, runtime.GOMAXPROCS(0), s.now), s.now)
	a := s.cfg.Auth
	s.tokens = token.New(KeyStore(s.meta), token.Options{
		Lifetimes: token.Lifetimes{Access: a.AccessTokenTTL, Refresh: a.RefreshTokenTTL, Directory: a.DirectoryTokenTTL},
		Rotation:  a.KeyRotation, Now: s.now,
	})
	if err := s.tokens.Ensure(ctx); err != nil {
		return err
	}
	s.authn = authn.NewService(s.meta, s.dir, s.tokens, authn.Throttling{
		Identity: store.ThrottleRule{Max: a.MaxFailures, Window: a.FailureWindow, Lockout: a.Lockout},
		Address:  store.ThrottleRule{Max: a.AddressMaxFailures, Window: a.FailureWindow, Lockout: a.Lockout},
	}, s.log, s.now)
	if err := s.bootstrap(ctx, opts.BootstrapPassword); err != nil {
		return err
	}
	s.policy = policy.NewEngine(nil)
	s.authn.Modes = s.policy
	return s.policy.Refresh(ctx, s.meta)
}

// bootstrap creates the owner user on a database without users. Its password is the given one,
// or a generated one written once to a 0600 file in the data folder.
func (s *Server) bootstrap(ctx context.Context, password string) error {
	n, err := s.meta.CountUsers(ctx)
	if err != nil || n > 0 {
		return err
	}
	file := ""
	if password == "" {
		password = directory.GenerateSecret()
		file = filepath.Join(s.cfg.DataDir, BootstrapPasswordFile)
		if err := os.MkdirAll(s.cfg.DataDir, 0o750); err != nil {
			return fmt.Errorf("server: bootstrap: %w", err)
		}
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("server: bootstrap: cannot write the owner's password: %w", err)
		}
		_, err = f.WriteString(password + "\n")
		if err := errors.Join(err, f.Sync(), f.Close()); err != nil {
			return fmt.Errorf("server: bootstrap: %w", err)
		}
	}
	hash, err := s.dir.Hasher().Hash(ctx, password)
	if err != nil {
		return err
	}
	u, err := s.meta.CreateUser(ctx, BootstrapUser, hash)
	if errors.Is(err, store.ErrExists) {
		return nil // another replica bootstrapped first
	}
	if err != nil {
		return err
	}
	if err := s.meta.CreateRoleAssignment(ctx, store.RoleAssignment{ID: directory.NewGUID(), PrincipalKind: store.KindUser,
		PrincipalID: u.ID, Role: policy.RoleOwner, Scope: "/"}); err != nil {
		return err
	}
	if file != "" {
		s.log.Info("created the bootstrap user with the Owner role at '/'; its generated password is in the file named here (shown once: move it somewhere safe)",
			"user", BootstrapUser, "password_file", file)
	} else {
		s.log.Info("created the bootstrap user with the Owner role at '/', with the password from BERTH_BOOTSTRAP_PASSWORD", "user", BootstrapUser)
	}
	return nil
}

// maintainAuth rotates signing keys and forgets old sign-in failures until ctx ends.
func (s *Server) maintainAuth(ctx context.Context) {
	repeat(ctx, time.Minute, false, func() {
		if err := s.tokens.Ensure(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("signing key maintenance failed", "err", err)
		}
		if err := s.meta.PurgeSigninFailures(ctx, s.now(), s.cfg.Auth.FailureWindow+s.cfg.Auth.Lockout); err != nil && ctx.Err() == nil {
			s.log.Warn("purging sign-in failures failed", "err", err)
		}
	})
}

// Tokens exposes the token service, for tests that forge or age tokens.
func (s *Server) Tokens() *token.Service { return s.tokens }

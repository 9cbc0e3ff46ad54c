// Package token issues and verifies berth's JWTs: registry access and refresh tokens (the
// Docker token protocol, with ACR's claims) and directory tokens (what `berth auth login` gets).
// Signing keys are ECDSA P-256, generated on first start, stored in the database so that every
// replica signs and verifies with the same set, and rotated with an overlap window.
package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/berth-registry/berth/internal/access"
)

func init() {
	// aud is a single string in ACR's tokens, as most clients expect; the library would make
	// it an array.
	jwt.MarshalSingleStringAsArray = false
}

// Issuer is the iss claim of every berth token.
const Issuer = "berth"

// DirectoryAudience is the aud claim of directory tokens.
const DirectoryAudience = "berth:directory"

// Grant types, the grant_type claim.
const (
	GrantAccess    = "access_token"
	GrantRefresh   = "refresh_token"
	GrantDirectory = "directory"
)

// Permissions is the permissions claim of a refresh token (ACR's form).
type Permissions struct {
	Actions    []string `json:"actions"`
	NotActions []string `json:"notActions"`
}

// Claims are the claims of every berth token. Kind and PID name the principal in berth's terms.
type Claims struct {
	jwt.RegisteredClaims
	Version     string       `json:"version"`
	GrantType   string       `json:"grant_type"`
	Access      access.Grant `json:"access,omitempty"`
	Permissions *Permissions `json:"permissions,omitempty"`
	Roles       []string     `json:"roles"`
	Kind        string       `json:"berth_kind"`
	PID         int64        `json:"berth_pid"`
	Registry    string       `json:"berth_registry,omitempty"`
	// Mode is the role assignment mode of the registry when the token was issued: a token from
	// before a mode switch is refused.
	Mode string `json:"berth_mode,omitempty"`
}

// Lifetimes of the tokens issued.
type Lifetimes struct {
	Access    time.Duration
	Refresh   time.Duration
	Directory time.Duration
}

// DefaultLifetimes are ACR's: 75 minutes, 3 hours; directory tokens 1 hour.
var DefaultLifetimes = Lifetimes{Access: 75 * time.Minute, Refresh: 3 * time.Hour, Directory: time.Hour}

// Options configure a Service.
type Options struct {
	Lifetimes Lifetimes
	// Rotation is how long a key signs before a new one replaces it; it keeps verifying for the
	// longest token lifetime after that.
	Rotation time.Duration
	Now      func() time.Time
}

// StoredKey is a private key that signs berth's JWTs, as the key store keeps it. It verifies
// until RetireAt.
type StoredKey struct {
	KID        string
	Algorithm  string
	PrivateKey []byte // PKCS #8 DER
	CreatedAt  time.Time
	RetireAt   time.Time
}

// KeyStore keeps the signing keys where every replica finds them (the database).
type KeyStore interface {
	AddSigningKey(ctx context.Context, k StoredKey) error
	// SigningKeys lists the keys not retired at now, newest first.
	SigningKeys(ctx context.Context, now time.Time) ([]StoredKey, error)
	// DeleteRetiredSigningKeys removes the keys retired at now.
	DeleteRetiredSigningKeys(ctx context.Context, now time.Time) error
}

// Service signs and verifies tokens with the keys in the key store.
type Service struct {
	st   KeyStore
	opts Options

	mu     sync.RWMutex
	keys   []key // newest first
	loaded time.Time
	// lastMiss limits reloads caused by unknown key ids.
	lastMiss time.Time

	verified verifiedCache
}

type key struct {
	kid      string
	priv     *ecdsa.PrivateKey
	created  time.Time
	retireAt time.Time
}

// ErrInvalid wraps every reason a token is refused.
var ErrInvalid = errors.New("invalid token")

// reload is how often a replica rereads the key table.
const reload = time.Minute

// New returns a service; call Ensure before signing.
func New(st KeyStore, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Lifetimes == (Lifetimes{}) {
		opts.Lifetimes = DefaultLifetimes
	}
	if opts.Rotation <= 0 {
		opts.Rotation = 30 * 24 * time.Hour
	}
	return &Service{st: st, opts: opts}
}

// Lifetimes returns the configured lifetimes.
func (s *Service) Lifetimes() Lifetimes { return s.opts.Lifetimes }

func (s *Service) overlap() time.Duration {
	l := s.opts.Lifetimes
	return max(l.Access, l.Refresh, l.Directory)
}

// Ensure loads the keys and creates a new signing key when there is none or the newest is due
// for rotation. It is safe to call often and from several replicas.
func (s *Service) Ensure(ctx context.Context) error {
	now := s.opts.Now()
	keys, err := s.load(ctx, now)
	if err != nil {
		return err
	}
	if len(keys) > 0 && now.Sub(keys[0].created) < s.opts.Rotation {
		return nil
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("token: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	var id [12]byte
	if _, err := rand.Read(id[:]); err != nil {
		return fmt.Errorf("token: %w", err)
	}
	k := StoredKey{KID: hex.EncodeToString(id[:]), Algorithm: "ES256", PrivateKey: der, CreatedAt: now,
		RetireAt: now.Add(s.opts.Rotation + s.overlap())}
	if err := s.st.AddSigningKey(ctx, k); err != nil {
		return err
	}
	if err := s.st.DeleteRetiredSigningKeys(ctx, now); err != nil {
		return err
	}
	_, err = s.load(ctx, now)
	return err
}

func (s *Service) load(ctx context.Context, now time.Time) ([]key, error) {
	rows, err := s.st.SigningKeys(ctx, now)
	if err != nil {
		return nil, err
	}
	keys := make([]key, 0, len(rows))
	for _, r := range rows {
		if r.Algorithm != "ES256" {
			continue
		}
		p, err := x509.ParsePKCS8PrivateKey(r.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("token: key %s: %w", r.KID, err)
		}
		priv, ok := p.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("token: key %s is not ECDSA", r.KID)
		}
		keys = append(keys, key{kid: r.KID, priv: priv, created: r.CreatedAt, retireAt: r.RetireAt})
	}
	s.mu.Lock()
	s.keys, s.loaded = keys, now
	s.mu.Unlock()
	return keys, nil
}

// Sign returns the signed token for c, filling in iss, iat, nbf, exp and jti from the lifetime.
func (s *Service) Sign(ctx context.Context, c *Claims, lifetime time.Duration) (string, error) {
	now := s.opts.Now()
	k := s.newest()
	if k.priv == nil || now.Sub(k.created) >= s.opts.Rotation {
		// Due for rotation (the periodic Ensure has not run yet): rotate before signing, so that
		// no token is signed with a key that retires before the token expires.
		if err := s.Ensure(ctx); err != nil {
			return "", err
		}
		k = s.newest()
	}
	if k.priv == nil {
		return "", errors.New("token: no signing key (Ensure was not called)")
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	c.Issuer = Issuer
	c.ID = hex.EncodeToString(jti[:])
	c.IssuedAt = jwt.NewNumericDate(now)
	c.NotBefore = jwt.NewNumericDate(now)
	c.ExpiresAt = jwt.NewNumericDate(now.Add(lifetime))
	c.Version = "1.0"
	if c.Roles == nil {
		c.Roles = []string{}
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	t.Header["kid"] = k.kid
	out, err := t.SignedString(k.priv)
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	return out, nil
}

func (s *Service) newest() key {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.keys) == 0 {
		return key{}
	}
	return s.keys[0]
}

// Verify parses a token and checks its signature, issuer, audience, time window and grant type.
// Every refusal wraps ErrInvalid and says why.
//
// A token that verified is remembered until it expires or its key retires (see verifiedCache):
// a client sends the same bearer token on every request, and an ECDSA verification costs far
// more than the rest of a manifest HEAD. The returned claims are shared and must not be changed.
func (s *Service) Verify(ctx context.Context, raw, audience, grantType string) (*Claims, error) {
	if len(raw) > 8192 {
		return nil, fmt.Errorf("%w: token is longer than 8192 bytes", ErrInvalid)
	}
	ck := s.verified.key(raw, audience, grantType)
	now := s.opts.Now()
	if c := s.verified.get(ck, now); c != nil {
		return c, nil
	}
	c, retire, err := s.verify(ctx, raw, audience, grantType)
	if err != nil {
		return nil, err
	}
	s.verified.put(ck, c, retire, now)
	return c, nil
}

// verify checks raw; it also returns when the key that signed it retires.
func (s *Service) verify(ctx context.Context, raw, audience, grantType string) (*Claims, time.Time, error) {
	var c Claims
	var retire time.Time
	_, err := jwt.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, err := s.publicKey(ctx, kid)
		if err != nil {
			return nil, err
		}
		retire = k.retireAt
		return &k.priv.PublicKey, nil
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(Issuer), jwt.WithAudience(audience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithTimeFunc(s.opts.Now), jwt.WithLeeway(30*time.Second))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %s", ErrInvalid, describe(err))
	}
	if c.GrantType != grantType {
		return nil, time.Time{}, fmt.Errorf("%w: a %s token was sent where a %s token is needed", ErrInvalid, name(c.GrantType), name(grantType))
	}
	return &c, retire, nil
}

func name(grant string) string {
	switch grant {
	case GrantAccess:
		return "registry access"
	case GrantRefresh:
		return "registry refresh"
	case GrantDirectory:
		return "directory"
	}
	return fmt.Sprintf("%q", grant)
}

func describe(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "the token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "the token is not valid yet (is the clock of its issuer ahead?)"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "the token was issued for another registry or service"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "the token was not issued by berth"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "the token's signature does not verify"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "the token is malformed"
	}
	return "the token does not verify"
}

// publicKey returns the key called kid while it has not retired.
func (s *Service) publicKey(ctx context.Context, kid string) (key, error) {
	find := func() (key, bool) {
		s.mu.RLock()
		defer s.mu.RUnlock()
		now := s.opts.Now()
		for _, k := range s.keys {
			if k.kid == kid && now.Before(k.retireAt) {
				return k, true
			}
		}
		return key{}, false
	}
	if k, ok := find(); ok {
		return k, nil
	}
	// Another replica may have rotated: reread the table, at most once a second.
	now := s.opts.Now()
	s.mu.Lock()
	stale := now.Sub(s.lastMiss) >= time.Second || now.Sub(s.loaded) >= reload
	if stale {
		s.lastMiss = now
	}
	s.mu.Unlock()
	if stale {
		if _, err := s.load(ctx, now); err != nil {
			return key{}, err
		}
		if k, ok := find(); ok {
			return k, nil
		}
	}
	return key{}, fmt.Errorf("%w: unknown key id %q", jwt.ErrTokenUnverifiable, kid)
}

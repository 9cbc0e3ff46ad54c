// Package directory holds berth's identities — users, groups, service principals, the admin user
// of each registry and repository-scoped tokens — and checks their secrets. Secrets are kept only
// as argon2id hashes; a new secret is shown once, by whoever created it.
package directory

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/sync/singleflight"
)

// Params are argon2id's cost parameters.
type Params struct {
	Time    uint32
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultParams follow OWASP's recommendation for argon2id (19 MiB, two passes, one lane).
var DefaultParams = Params{Time: 2, Memory: 19 * 1024, Threads: 1}

// Hasher hashes and checks secrets. It bounds how many argon2 computations run at once (each
// takes Params.Memory), and remembers recently verified secrets so that a client sending Basic
// auth on every request pays for argon2 once: the memo is keyed by a hash of the stored hash and
// the secret, so a renewed secret can never match a stale entry.
type Hasher struct {
	p     Params
	sem   chan struct{}
	dummy string
	salt  [32]byte

	mu   sync.Mutex
	memo map[[32]byte]time.Time // verified → until
	now  func() time.Time

	computed atomic.Int64 // argon2 computations by Match, for tests
	flight   singleflight.Group
}

// memoTTL is how long a verified secret is remembered; memoMax bounds the memo's size.
const (
	memoTTL = 5 * time.Minute
	memoMax = 10_000
)

// NewHasher returns a hasher with the given costs; concurrency bounds parallel computations.
func NewHasher(p Params, concurrency int, now func() time.Time) *Hasher {
	if concurrency < 1 {
		concurrency = 1
	}
	if now == nil {
		now = time.Now
	}
	h := &Hasher{p: p, sem: make(chan struct{}, concurrency), memo: make(map[[32]byte]time.Time), now: now}
	if _, err := rand.Read(h.salt[:]); err != nil {
		panic(err)
	}
	h.dummy = h.hash(context.Background(), GenerateSecret())
	return h
}

// GenerateSecret returns a new random secret: 32 bytes from crypto/rand, base64url (43 characters).
func GenerateSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// NewGUID returns a random (version 4) GUID in its lower-case text form.
func NewGUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// IsGUID reports whether s has the form of a GUID.
func IsGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}

// Hash returns the PHC-format argon2id hash of secret with a fresh salt.
func (h *Hasher) Hash(ctx context.Context, secret string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return h.hash(ctx, secret), nil
}

func (h *Hasher) hash(_ context.Context, secret string) string {
	var salt [16]byte
	if _, err := rand.Read(salt[:]); err != nil {
		panic(err)
	}
	key := argon2.IDKey([]byte(secret), salt[:], h.p.Time, h.p.Memory, h.p.Threads, 32)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, h.p.Memory, h.p.Time, h.p.Threads,
		base64.RawStdEncoding.EncodeToString(salt[:]), base64.RawStdEncoding.EncodeToString(key))
}

// slots is how many hashes Match always computes, so that the time a check takes does not tell
// whether the identity exists or how many secrets it has.
const slots = 2

// Match returns the index of the hash in hashes that secret matches, or -1. Unless a memo
// answers, it computes exactly max(slots, len(hashes)) argon2 hashes.
func (h *Hasher) Match(ctx context.Context, hashes []string, secret string) (int, error) {
	for i, stored := range hashes {
		if h.remembered(stored, secret) {
			return i, nil
		}
	}
	// Identical checks at the same moment (a CI fleet starting with one credential) share one
	// computation: each costs Params.Memory, and a herd of them would otherwise all wait for
	// the semaphore and compute the same answer in turn.
	ch := h.flight.DoChan(h.flightKey(hashes, secret), func() (any, error) {
		return h.match(context.WithoutCancel(ctx), hashes, secret)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return -1, r.Err
		}
		return r.Val.(int), nil
	case <-ctx.Done():
		return -1, ctx.Err()
	}
}

func (h *Hasher) flightKey(hashes []string, secret string) string {
	m := sha256.New()
	m.Write(h.salt[:])
	for _, s := range hashes {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	m.Write([]byte(secret))
	return string(m.Sum(nil))
}

func (h *Hasher) match(ctx context.Context, hashes []string, secret string) (int, error) {
	if err := h.acquire(ctx); err != nil {
		return -1, err
	}
	defer h.release()
	found := -1
	for i := 0; i < max(slots, len(hashes)); i++ {
		stored := h.dummy
		if i < len(hashes) {
			stored = hashes[i]
		}
		ok, err := verify(stored, secret)
		h.computed.Add(1)
		if err != nil && i < len(hashes) {
			return -1, err
		}
		if ok && i < len(hashes) && found < 0 {
			found = i
		}
	}
	if found >= 0 {
		h.remember(hashes[found], secret)
	}
	return found, nil
}

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() { <-h.sem }

func (h *Hasher) memoKey(stored, secret string) [32]byte {
	m := sha256.New()
	m.Write(h.salt[:])
	m.Write([]byte(stored))
	m.Write([]byte{0})
	m.Write([]byte(secret))
	var k [32]byte
	m.Sum(k[:0])
	return k
}

func (h *Hasher) remembered(stored, secret string) bool {
	k := h.memoKey(stored, secret)
	h.mu.Lock()
	defer h.mu.Unlock()
	until, ok := h.memo[k]
	if ok && h.now().After(until) {
		delete(h.memo, k)
		return false
	}
	return ok
}

func (h *Hasher) remember(stored, secret string) {
	k := h.memoKey(stored, secret)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.memo) >= memoMax {
		clear(h.memo)
	}
	h.memo[k] = h.now().Add(memoTTL)
}

var errBadHash = errors.New("directory: stored hash is not argon2id")

// verify checks secret against a PHC-format argon2id hash in constant time.
func verify(stored, secret string) (bool, error) {
	parts := strings.Split(stored, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errBadHash
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil || p.Time == 0 || p.Memory == 0 || p.Threads == 0 {
		return false, errBadHash
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, errBadHash
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, errBadHash
	}
	got := argon2.IDKey([]byte(secret), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

package token

import (
	"crypto/sha256"
	"sync"
	"time"
)

// verifiedCache remembers tokens that verified, keyed by a hash of the token with the audience
// and grant type it was verified for, until they expire or the key that signed them retires,
// whichever is first. Only a token whose signature, issuer, audience, time window and grant
// type all checked out is ever stored, so a hit answers what a new verification would.
type verifiedCache struct {
	mu sync.RWMutex
	m  map[[32]byte]verified
}

type verified struct {
	claims *Claims
	until  time.Time
}

// maxVerified bounds the cache (a few hundred bytes an entry); when it is full, expired entries
// go, then arbitrary ones until half is left.
const maxVerified = 8192

func (vc *verifiedCache) key(raw, audience, grantType string) [32]byte {
	h := sha256.New()
	h.Write([]byte(audience))
	h.Write([]byte{0})
	h.Write([]byte(grantType))
	h.Write([]byte{0})
	h.Write([]byte(raw))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (vc *verifiedCache) get(k [32]byte, now time.Time) *Claims {
	vc.mu.RLock()
	v, ok := vc.m[k]
	vc.mu.RUnlock()
	if !ok || !now.Before(v.until) {
		return nil
	}
	return v.claims
}

func (vc *verifiedCache) put(k [32]byte, c *Claims, retire, now time.Time) {
	if c.ExpiresAt == nil {
		return
	}
	until := c.ExpiresAt.Time
	if retire.Before(until) {
		until = retire
	}
	if !now.Before(until) {
		return
	}
	vc.mu.Lock()
	defer vc.mu.Unlock()
	if vc.m == nil {
		vc.m = make(map[[32]byte]verified)
	}
	if len(vc.m) >= maxVerified {
		for k, v := range vc.m {
			if !now.Before(v.until) {
				delete(vc.m, k)
			}
		}
		for k := range vc.m {
			if len(vc.m) < maxVerified/2 {
				break
			}
			delete(vc.m, k)
		}
	}
	vc.m[k] = verified{claims: c, until: until}
}

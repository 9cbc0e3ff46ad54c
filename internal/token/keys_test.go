package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// memKeys is a KeyStore in memory with the store's semantics (package store's own suite tests
// those): times kept to the millisecond, keys listed while retire_at > now, newest first.
type memKeys struct {
	mu   sync.Mutex
	keys []StoredKey
}

func openStore(testing.TB) *memKeys { return &memKeys{} }

func ms(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()) }

func (m *memKeys) AddSigningKey(_ context.Context, k StoredKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.keys {
		if o.KID == k.KID {
			return fmt.Errorf("key %s exists", k.KID)
		}
	}
	k.CreatedAt, k.RetireAt = ms(k.CreatedAt), ms(k.RetireAt)
	m.keys = append(m.keys, k)
	return nil
}

func (m *memKeys) SigningKeys(_ context.Context, now time.Time) ([]StoredKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []StoredKey
	for _, k := range m.keys {
		if k.RetireAt.UnixMilli() > now.UnixMilli() {
			out = append(out, k)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].KID < out[j].KID
	})
	return out, nil
}

func (m *memKeys) DeleteRetiredSigningKeys(_ context.Context, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	kept := m.keys[:0]
	for _, k := range m.keys {
		if k.RetireAt.UnixMilli() > now.UnixMilli() {
			kept = append(kept, k)
		}
	}
	m.keys = kept
	return nil
}

func kidOf(t *testing.T, raw string) string {
	t.Helper()
	tok, _, err := jwt.NewParser().ParseUnverified(raw, &Claims{})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Header["kid"].(string)
}

// TestDefaultsAndRotationBoundary: zero options take the defaults (a key signs for 30 days, not
// once), Sign works before any Ensure, and a key is replaced exactly when its rotation period
// has passed, by Sign and by Ensure alike.
func TestDefaultsAndRotationBoundary(t *testing.T) {
	ctx := context.Background()
	for _, rot := range []time.Duration{0, -time.Hour} {
		clk := &clock{t: time.UnixMilli(time.Now().UnixMilli())} // the store keeps milliseconds: the boundary is exact
		s := New(openStore(t), Options{Now: clk.now, Rotation: rot})
		if s.Lifetimes() != DefaultLifetimes {
			t.Errorf("lifetimes %+v; want the defaults", s.Lifetimes())
		}
		a := sign(t, s, "r", time.Minute) // no Ensure before: Sign makes the first key
		clk.add(30*24*time.Hour - time.Second)
		if b := sign(t, s, "r", time.Minute); kidOf(t, a) != kidOf(t, b) {
			t.Errorf("rotation %v: a new key before 30 days", rot)
		}
		clk.add(time.Second)
		if b := sign(t, s, "r", time.Minute); kidOf(t, a) == kidOf(t, b) {
			t.Errorf("rotation %v: the same key after exactly 30 days", rot)
		}
	}
	clk := &clock{t: time.UnixMilli(time.Now().UnixMilli())} // the store keeps milliseconds: the boundary is exact
	s := New(openStore(t), Options{Now: clk.now, Rotation: time.Hour})
	if err := s.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	first := s.newest().kid
	clk.add(time.Hour - time.Millisecond)
	if err := s.Ensure(ctx); err != nil || s.newest().kid != first {
		t.Errorf("Ensure before the rotation period replaced the key (%v)", err)
	}
	clk.add(time.Millisecond)
	if err := s.Ensure(ctx); err != nil || s.newest().kid == first {
		t.Errorf("Ensure at the rotation period kept the key (%v)", err)
	}
}

// TestVerifyFindsAnotherReplicasKey: a token signed by a key another replica just made verifies
// here (an unknown key id rereads the table), and the reread is not repeated for every unknown
// id within a second.
func TestVerifyFindsAnotherReplicasKey(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	clk := &clock{t: time.Now()}
	a, b := New(st, Options{Now: clk.now, Rotation: time.Hour}), New(st, Options{Now: clk.now, Rotation: time.Hour})
	if err := a.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	clk.add(2 * time.Hour)
	raw := sign(t, b, "r", time.Minute) // b rotates: a new key a has not loaded
	if _, err := a.Verify(ctx, raw, "r", GrantAccess); err != nil {
		t.Fatalf("a token of another replica's new key: %v", err)
	}
	// A key added behind this replica's back within a second of its last reread is not seen
	// until that second has passed (unknown key ids cannot force a reread per request), and
	// then it is.
	_, _ = a.Verify(ctx, signWith(t, st, clk.now(), "k-miss", false), "r", GrantAccess) // a miss: reread now
	raw2 := signWith(t, st, clk.now(), "k-new", true)
	clk.add(999 * time.Millisecond)
	if _, err := a.Verify(ctx, raw2, "r", GrantAccess); err == nil {
		t.Error("an unknown key id reread the table within a second of the last reread")
	}
	clk.add(time.Millisecond)
	if _, err := a.Verify(ctx, raw2, "r", GrantAccess); err != nil {
		t.Errorf("a second after the last reread: %v", err)
	}
}

// signWith makes a key called kid (stored when store is true) and returns an access token for
// audience "r" signed with it.
func signWith(t *testing.T, st KeyStore, now time.Time, kid string, stored bool) string {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if stored {
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.AddSigningKey(context.Background(), StoredKey{KID: kid, Algorithm: "ES256", PrivateKey: der, CreatedAt: now,
			RetireAt: now.Add(10 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	c := Claims{GrantType: GrantAccess, Kind: "admin"}
	c.Issuer, c.Subject, c.Audience = Issuer, "default", []string{"r"}
	c.IssuedAt, c.NotBefore, c.ExpiresAt = jwt.NewNumericDate(now), jwt.NewNumericDate(now), jwt.NewNumericDate(now.Add(time.Hour))
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tok.Header["kid"] = kid
	raw, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestVerifiedCacheEviction: a full cache drops expired entries first, then half of the rest;
// what cannot be remembered (no expiry, already expired) is not; a remembered token is not
// answered after its key retires; keys of other audiences and grant types never collide.
func TestVerifiedCacheEviction(t *testing.T) {
	now := time.Now()
	c := &Claims{}
	c.ExpiresAt = jwt.NewNumericDate(now.Add(time.Hour))
	key := func(i int) [32]byte {
		var k [32]byte
		k[0], k[1], k[2] = byte(i), byte(i>>8), byte(i>>16)
		return k
	}
	t.Run("expired first", func(t *testing.T) {
		var vc verifiedCache
		for i := range maxVerified {
			vc.put(key(i), c, now.Add(time.Second), now)
		}
		if len(vc.m) != maxVerified {
			t.Fatalf("%d entries, want %d", len(vc.m), maxVerified)
		}
		vc.put(key(maxVerified), c, now.Add(time.Hour), now.Add(2*time.Second))
		if len(vc.m) != 1 {
			t.Errorf("%d entries after a put into a cache of expired ones; want 1", len(vc.m))
		}
	})
	t.Run("then half", func(t *testing.T) {
		var vc verifiedCache
		for i := range maxVerified {
			vc.put(key(i), c, now.Add(time.Hour), now)
		}
		vc.put(key(maxVerified), c, now.Add(time.Hour), now)
		if len(vc.m) != maxVerified/2 {
			t.Errorf("%d entries; want %d", len(vc.m), maxVerified/2)
		}
		if vc.get(key(maxVerified), now) == nil {
			t.Error("the newest entry was dropped")
		}
	})
	t.Run("not remembered", func(t *testing.T) {
		var vc verifiedCache
		vc.put(key(1), &Claims{}, now.Add(time.Hour), now) // no expiry
		vc.put(key(2), c, now, now)                        // its key retires now
		past := &Claims{}
		past.ExpiresAt = jwt.NewNumericDate(now)
		vc.put(key(3), past, now.Add(time.Hour), now) // expires now
		if len(vc.m) != 0 {
			t.Errorf("%d entries remembered; want none", len(vc.m))
		}
		vc.put(key(4), c, now.Add(time.Minute), now)
		if vc.get(key(4), now.Add(time.Minute-time.Nanosecond)) == nil || vc.get(key(4), now.Add(time.Minute)) != nil {
			t.Error("a remembered token must be answered until its key retires, and not at that moment")
		}
	})
	t.Run("keys", func(t *testing.T) {
		var vc verifiedCache
		ks := map[[32]byte]string{}
		for _, p := range [][3]string{{"ab", "c", "t"}, {"a", "bc", "t"}, {"a", "b", "ct"}, {"abc", "", "t"}, {"", "abc", "t"}} {
			k := vc.key(p[2], p[0], p[1])
			if other, dup := ks[k]; dup {
				t.Errorf("audience/grant/token %v has the key of %s", p, other)
			}
			ks[k] = strings.Join(p[:], "|")
		}
	})
}

// TestVerifyLengthLimit: a token over 8192 bytes is refused before parsing, one of 8192 is parsed.
func TestVerifyLengthLimit(t *testing.T) {
	s, _ := newService(t)
	for n, wantLong := range map[int]bool{8192: false, 8193: true} {
		_, err := s.Verify(context.Background(), strings.Repeat("a", n), "r", GrantAccess)
		if !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "longer than 8192") != wantLong {
			t.Errorf("%d bytes: %v", n, err)
		}
	}
}

// TestVerifyLeeway: a token is still accepted 30 seconds past its expiry (clocks differ), and
// refused after.
func TestVerifyLeeway(t *testing.T) {
	s, clk := newService(t)
	raw := sign(t, s, "r", time.Minute)
	clk.add(time.Minute + 29*time.Second)
	if _, _, err := s.verify(context.Background(), raw, "r", GrantAccess); err != nil {
		t.Errorf("29 s past its expiry: %v", err)
	}
	clk.add(2 * time.Second)
	if _, _, err := s.verify(context.Background(), raw, "r", GrantAccess); !errors.Is(err, ErrInvalid) {
		t.Errorf("31 s past its expiry: %v", err)
	}
}

package token

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/access"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newService(t testing.TB) (*Service, *clock) {
	t.Helper()
	st := openStore(t)
	c := &clock{t: time.Now()}
	s := New(st, Options{Now: c.now})
	if err := s.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, c
}

func sign(t testing.TB, s *Service, aud string, life time.Duration) string {
	t.Helper()
	c := Claims{GrantType: GrantAccess, Kind: "admin", Access: access.Grant{{Type: "repository", Name: "a/b", Actions: []string{"pull"}}}}
	c.Subject, c.Audience = "default", []string{aud}
	raw, err := s.Sign(context.Background(), &c, life)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestVerifyRemembers checks that a remembered token answers exactly as a verification would:
// for its audience and grant type only, and not after it expires.
func TestVerifyRemembers(t *testing.T) {
	s, clk := newService(t)
	ctx := context.Background()
	raw := sign(t, s, "reg.example", time.Minute)
	first, err := s.Verify(ctx, raw, "reg.example", GrantAccess)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Verify(ctx, raw, "reg.example", GrantAccess)
	if err != nil || again != first {
		t.Fatalf("second verification: %v, same claims %v", err, again == first)
	}
	tests := []struct {
		name       string
		aud, grant string
		advance    time.Duration
		wantValid  bool
		tamper     bool
	}{
		{"other audience", "other.example", GrantAccess, 0, false, false},
		{"other grant type", "reg.example", GrantRefresh, 0, false, false},
		{"altered token", "reg.example", GrantAccess, 0, false, true},
		{"still valid", "reg.example", GrantAccess, 50 * time.Second, true, false},
		{"expired (past the leeway)", "reg.example", GrantAccess, 2 * time.Minute, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk.add(tt.advance)
			tok := raw
			if tt.tamper {
				tok = raw[:len(raw)-4] + "AAAA"
			}
			_, err := s.Verify(ctx, tok, tt.aud, tt.grant)
			if tt.wantValid != (err == nil) {
				t.Errorf("err = %v, want valid %v", err, tt.wantValid)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("err %v does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestVerifiedCacheStaysBounded(t *testing.T) {
	var vc verifiedCache
	now := time.Now()
	s, _ := newService(t)
	c, err := s.Verify(context.Background(), sign(t, s, "a", time.Hour), "a", GrantAccess)
	if err != nil {
		t.Fatal(err)
	}
	for i := range maxVerified + 10 {
		var k [32]byte
		k[0], k[1], k[2] = byte(i), byte(i>>8), byte(i>>16)
		vc.put(k, c, now.Add(time.Hour), now)
	}
	if n := len(vc.m); n > maxVerified || n < 10 {
		t.Errorf("%d entries after %d puts, want at most %d", n, maxVerified+10, maxVerified)
	}
}

// BenchmarkSign is the cost of one access token: an ES256 signature over its claims.
func BenchmarkSign(b *testing.B) {
	s, _ := newService(b)
	c := Claims{GrantType: GrantAccess, Kind: "admin", Access: access.Grant{{Type: "repository", Name: "a/b", Actions: []string{"pull"}}}}
	c.Subject, c.Audience = "default", []string{"reg.example"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(ctx, &c, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is a bearer token's check on every request: the first time (an ECDSA
// verification) and every later time (remembered).
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	b.Run("first", func(b *testing.B) {
		s, _ := newService(b)
		raw := sign(b, s, "reg.example", time.Hour)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := s.verify(ctx, raw, "reg.example", GrantAccess); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("remembered", func(b *testing.B) {
		s, _ := newService(b)
		raw := sign(b, s, "reg.example", time.Hour)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Verify(ctx, raw, "reg.example", GrantAccess); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestRetiredKeyStopsVerifying checks that a key stops verifying the moment it retires, on the
// keys this service holds in memory (no Ensure or reload in between), for a token verified
// before (remembered) and for one never seen, even though both would still be unexpired.
func TestRetiredKeyStopsVerifying(t *testing.T) {
	st := openStore(t)
	clk := &clock{t: time.Now()}
	s := New(st, Options{Now: clk.now, Rotation: time.Hour}) // retires 1 h + 3 h (the overlap) after it is made
	ctx := context.Background()
	if err := s.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	seen, unseen := sign(t, s, "reg.example", 24*time.Hour), sign(t, s, "reg.example", 24*time.Hour)
	if _, err := s.Verify(ctx, seen, "reg.example", GrantAccess); err != nil {
		t.Fatal(err)
	}
	clk.add(4*time.Hour - time.Minute)
	for name, raw := range map[string]string{"seen": seen, "unseen": unseen} {
		if _, err := s.Verify(ctx, raw, "reg.example", GrantAccess); err != nil {
			t.Errorf("%s token a minute before its key retires: %v", name, err)
		}
	}
	clk.add(2 * time.Minute)
	for name, raw := range map[string]string{"seen": seen, "unseen": unseen} {
		if _, err := s.Verify(ctx, raw, "reg.example", GrantAccess); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s token of a retired key: %v; want ErrInvalid", name, err)
		}
	}
	// Signing now rotates to a new key (nothing is signed by a retired one), which verifies.
	if _, err := s.Verify(ctx, sign(t, s, "reg.example", time.Hour), "reg.example", GrantAccess); err != nil {
		t.Errorf("token of the new key: %v", err)
	}
}

package directory

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestMatchEdges: the first of two hashes of one secret is the match; a malformed stored hash
// is an error, not a miss; the memo keeps the last memoMax checks and is cleared, not grown,
// past that; remembering one secret does not forget another.
func TestMatchEdges(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	h := NewHasher(cheap, 2, func() time.Time { return now })
	a1, _ := h.Hash(ctx, "same")
	a2, _ := h.Hash(ctx, "same")
	if got, err := h.Match(ctx, []string{a1, a2}, "same"); got != 0 || err != nil {
		t.Errorf("two hashes of one secret: %d, %v; want 0", got, err)
	}
	if got, err := h.Match(ctx, []string{a1, "$argon2id$v=19$m=64,t=1,p=0$c2FsdA$aGFzaA"}, "other"); err == nil || got != -1 {
		t.Errorf("a malformed stored hash: %d, %v; want an error", got, err)
	}
	b, _ := h.Hash(ctx, "bravo")
	h.Match(ctx, []string{b}, "bravo") // remembered now, as "same" with a1 is
	before := h.computed.Load()
	if got, _ := h.Match(ctx, []string{a1}, "same"); got != 0 || h.computed.Load() != before {
		t.Errorf("remembering a second secret forgot the first (%d computations)", h.computed.Load()-before)
	}
	h.mu.Lock()
	clear(h.memo)
	for i := range memoMax - 1 {
		h.memo[h.memoKey("x", strings.Repeat("y", i))] = now.Add(time.Minute)
	}
	h.mu.Unlock()
	h.remember("x", "full") // memoMax entries: not cleared yet
	if n := len(h.memo); n != memoMax {
		t.Errorf("%d entries after filling the memo; want %d", n, memoMax)
	}
	h.remember("x", "over") // one more: cleared first
	if n := len(h.memo); n != 1 {
		t.Errorf("%d entries past the bound; want 1", n)
	}
}

func TestVerifyRejectsZeroCosts(t *testing.T) {
	for _, costs := range []string{"m=0,t=1,p=1", "m=64,t=0,p=1", "m=64,t=1,p=0"} {
		if ok, err := verify("$argon2id$v=19$"+costs+"$c2FsdA$aGFzaA", "x"); ok || err == nil {
			t.Errorf("%s: %v, %v; want an error", costs, ok, err)
		}
	}
	if ra, err := ParseARMAction("repositories/a/content/read"); err != nil || ra.Repository != "a" {
		t.Errorf("the shortest ARM action: %+v, %v", ra, err)
	}
}

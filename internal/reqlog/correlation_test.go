package reqlog

import (
	"math/rand/v2"
	"regexp"
	"testing"
	"time"
)

// TestCorrelationIDOrder: a new correlation id is 16 characters of [0-9A-V]; ids of later
// milliseconds sort after earlier ones (as text, which is how the event indexes order them),
// across every digit boundary; two of one millisecond differ.
func TestCorrelationIDOrder(t *testing.T) {
	form := regexp.MustCompile(`^[0-9A-V]{16}$`)
	base := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 10_000; i++ {
		a := base.Add(time.Duration(r.Int64N(int64(50 * 365 * 24 * time.Hour))))
		b := a.Add(time.Duration(1+r.Int64N(1<<uint(r.IntN(40)))) * time.Millisecond)
		ia, ib := newCorrelationID(a), newCorrelationID(b)
		if !form.MatchString(ia) || !form.MatchString(ib) {
			t.Fatalf("ids %q and %q: want 16 characters of [0-9A-V]", ia, ib)
		}
		if ia >= ib {
			t.Fatalf("id of %s is %q, of the later %s is %q: want it to sort after", a, ia, b, ib)
		}
	}
	seen := map[string]bool{}
	for i := 0; i < 100; i++ { // 32 random bits: a repeat among 100 is one chance in 850 000
		id := newCorrelationID(base)
		if seen[id] {
			t.Fatalf("id %q given twice in one millisecond", id)
		}
		seen[id] = true
	}
}

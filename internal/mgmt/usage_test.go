package mgmt

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/store"
)

// clock is a test clock that computations move forward.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (f *usageFlights) held() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.kept)
}

// TestUsageFlights: figures are shared while computed, reused only when they took long (for ten
// times as long, at most a minute), never when they failed; keys do not share; a caller that
// leaves does not cancel a computation others wait for.
func TestUsageFlights(t *testing.T) {
	ctx := context.Background()
	k := usageKey{1, ""}
	// computing returns a computation that takes d on the clock and counts its calls.
	computing := func(c *clock, calls *atomic.Int64, d time.Duration, err error) func(context.Context) (store.Usage, error) {
		return func(context.Context) (store.Usage, error) {
			n := calls.Add(1)
			c.add(d)
			return store.Usage{Manifests: n}, err
		}
	}
	for _, tc := range []struct {
		name  string
		took  time.Duration
		err   error
		after time.Duration // the second call, this long after the first ended
		calls int64         // computations for both calls
	}{
		{"quick: never reused", usageSlow - time.Millisecond, nil, 0, 2},
		{"as slow as the mark: reused", usageSlow, nil, 0, 1},
		{"slow: reused", 100 * time.Millisecond, nil, 999 * time.Millisecond, 1},
		{"slow: ten times as long, then computed again", 100 * time.Millisecond, nil, time.Second, 2},
		{"very slow: a minute at most", 30 * time.Second, nil, time.Minute, 2},
		{"very slow: within the minute", 30 * time.Second, nil, time.Minute - time.Second, 1},
		{"failed: never reused", time.Second, errors.New("database gone"), 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{t: time.Unix(1e9, 0)}
			f := newUsageFlights(c.now)
			var calls atomic.Int64
			compute := computing(c, &calls, tc.took, tc.err)
			u, err := f.do(ctx, k, compute)
			if !errors.Is(err, tc.err) || (err == nil && u.Manifests != 1) {
				t.Fatalf("first: %+v, %v", u, err)
			}
			c.add(tc.after)
			u, err = f.do(ctx, k, compute)
			if !errors.Is(err, tc.err) || (err == nil && u.Manifests != tc.calls) {
				t.Errorf("second: %+v, %v; want the figures of computation %d", u, err, tc.calls)
			}
			if got := calls.Load(); got != tc.calls {
				t.Errorf("%d computations, want %d", got, tc.calls)
			}
			if held := f.held(); (tc.took < usageSlow || tc.err != nil) && held != 0 {
				t.Errorf("%d figures held after quick or failed computations, want none", held)
			}
		})
	}

	t.Run("shared while computed", func(t *testing.T) {
		// The computation takes a minute on the test's clock: a caller that comes only after
		// it ended (a slow machine) is given the same figures, so one computation is the
		// answer however the callers are scheduled.
		c := &clock{t: time.Unix(1e9, 0)}
		f := newUsageFlights(c.now)
		release := make(chan struct{})
		var calls atomic.Int64
		compute := func(ctx context.Context) (store.Usage, error) {
			calls.Add(1)
			<-release
			c.add(time.Minute)
			return store.Usage{Tags: 7}, ctx.Err()
		}
		// The first caller leaves before the figures come: the others still get them.
		first, leave := context.WithCancel(ctx)
		firstErr := make(chan error)
		go func() { _, err := f.do(first, k, compute); firstErr <- err }()
		for calls.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		var wg sync.WaitGroup
		got := make([]store.Usage, 8)
		errs := make([]error, 8)
		for i := range got {
			wg.Go(func() { got[i], errs[i] = f.do(ctx, k, compute) })
		}
		other := make(chan error)
		go func() {
			_, err := f.do(ctx, usageKey{1, "team/app"}, func(context.Context) (store.Usage, error) { return store.Usage{}, nil })
			other <- err
		}()
		if err := <-other; err != nil { // another key does not wait for this one
			t.Fatal(err)
		}
		leave()
		if err := <-firstErr; !errors.Is(err, context.Canceled) {
			t.Errorf("the caller that left: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // the others are waiting
		close(release)
		wg.Wait()
		for i := range got {
			if errs[i] != nil || got[i].Tags != 7 {
				t.Errorf("caller %d: %+v, %v", i, got[i], errs[i])
			}
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("%d computations for 9 callers at once, want 1", n)
		}
	})

	t.Run("bounded", func(t *testing.T) {
		c := &clock{t: time.Unix(1e9, 0)}
		f := newUsageFlights(c.now)
		var calls atomic.Int64
		slow := computing(c, &calls, time.Second, nil)
		for i := range usageMaxKept + 5 {
			if _, err := f.do(ctx, usageKey{int64(i), ""}, slow); err != nil {
				t.Fatal(err)
			}
			c.add(-time.Second) // every one still reused
		}
		if held := f.held(); held != usageMaxKept {
			t.Errorf("%d figures held, want %d", held, usageMaxKept)
		}
		if n := calls.Load(); n != usageMaxKept+5 {
			t.Errorf("%d computations, want %d", n, usageMaxKept+5)
		}
		c.add(usageMaxReuse) // every one is old now: the next call sweeps them away
		if _, err := f.do(ctx, usageKey{-1, ""}, slow); err != nil {
			t.Fatal(err)
		}
		if held := f.held(); held != 1 {
			t.Errorf("%d figures held after they all expired, want 1", held)
		}
	})
}

package mgmt

import (
	"context"
	"sync"
	"time"

	"github.com/berth-registry/berth/internal/store"
)

// Adding up a registry's usage reads every manifest, blob link and tag it has (1.2–1.5 s at
// 1.2 million manifests), and anyone who may read the registry may ask. usageFlights keeps that
// from becoming a way to keep the database busy: callers asking for the same figures while they
// are being added up wait for that computation instead of starting their own, and figures that
// took long to compute are reused for a while. Figures that are quick to add up are never
// reused, so that a small registry's usage is always current.
const (
	usageSlow     = 50 * time.Millisecond // a computation at least this long is reused
	usageReuse    = 10                    // for this many times its own duration
	usageMaxReuse = time.Minute           // and never longer
	// usageTimeout bounds a computation, which outlives the request that started it (others
	// may be waiting for it).
	usageTimeout = 5 * time.Minute
	// usageMaxFlights bounds the figures held; past it, a computation is not shared.
	usageMaxFlights = 10_000
)

type usageKey struct {
	registry   int64
	repository string // "" for the whole registry
}

type usageFlight struct {
	done  chan struct{} // closed when u and err are set
	u     store.Usage
	err   error
	until time.Time // reuse the figures until then
}

type usageFlights struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[usageKey]*usageFlight
}

func newUsageFlights(now func() time.Time) *usageFlights {
	return &usageFlights{now: now, m: map[usageKey]*usageFlight{}}
}

// do returns the usage compute finds for k: that of a computation in progress, that of a recent
// slow one, or its own.
func (f *usageFlights) do(ctx context.Context, k usageKey, compute func(context.Context) (store.Usage, error)) (store.Usage, error) {
	f.mu.Lock()
	fl := f.m[k]
	if fl != nil {
		select {
		case <-fl.done:
			if f.now().Before(fl.until) {
				f.mu.Unlock()
				return fl.u, nil
			}
			fl = nil // too old: compute again
		default: // in progress
		}
	}
	if fl == nil {
		if len(f.m) >= usageMaxFlights {
			f.sweep()
		}
		if len(f.m) >= usageMaxFlights {
			f.mu.Unlock()
			return compute(ctx)
		}
		fl = &usageFlight{done: make(chan struct{})}
		f.m[k] = fl
		go f.run(ctx, k, fl, compute)
	}
	f.mu.Unlock()
	select {
	case <-fl.done:
		return fl.u, fl.err
	case <-ctx.Done():
		return store.Usage{}, ctx.Err()
	}
}

// run computes fl's figures on a context of its own (the request that started it may leave
// while others wait), then keeps them only if they took long.
func (f *usageFlights) run(parent context.Context, k usageKey, fl *usageFlight, compute func(context.Context) (store.Usage, error)) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), usageTimeout)
	defer cancel()
	start := f.now()
	u, err := compute(ctx)
	took := f.now().Sub(start)
	f.mu.Lock()
	defer f.mu.Unlock()
	fl.u, fl.err = u, err
	if err == nil && took >= usageSlow {
		fl.until = f.now().Add(min(usageReuse*took, usageMaxReuse))
	} else if f.m[k] == fl {
		delete(f.m, k)
	}
	close(fl.done)
}

// sweep drops figures no longer reused. f.mu is held.
func (f *usageFlights) sweep() {
	now := f.now()
	for k, fl := range f.m {
		select {
		case <-fl.done:
			if !now.Before(fl.until) {
				delete(f.m, k)
			}
		default:
		}
	}
}

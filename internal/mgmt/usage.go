package mgmt

import (
	"context"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

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
	// usageMaxKept bounds the figures kept; past it, slow figures are not kept.
	usageMaxKept = 10_000
)

type usageKey struct {
	registry   int64
	repository string // "" for the whole registry
}

// usageFlights shares computations with singleflight (as the directory's password checks do) and
// keeps the figures of slow ones.
type usageFlights struct {
	now    func() time.Time
	flight singleflight.Group
	mu     sync.Mutex
	kept   map[usageKey]keptUsage
}

type keptUsage struct {
	u     store.Usage
	until time.Time // reuse the figures until then
}

func newUsageFlights(now func() time.Time) *usageFlights {
	return &usageFlights{now: now, kept: map[usageKey]keptUsage{}}
}

// do returns the usage compute finds for k: that of a recent slow computation, that of one in
// progress, or its own. The computation runs on a context of its own (the request that started
// it may leave while others wait).
func (f *usageFlights) do(ctx context.Context, k usageKey, compute func(context.Context) (store.Usage, error)) (store.Usage, error) {
	f.mu.Lock()
	e, ok := f.kept[k]
	f.mu.Unlock()
	if ok && f.now().Before(e.until) {
		return e.u, nil
	}
	ch := f.flight.DoChan(strconv.FormatInt(k.registry, 10)+"/"+k.repository, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), usageTimeout)
		defer cancel()
		start := f.now()
		u, err := compute(ctx)
		if took := f.now().Sub(start); err == nil && took >= usageSlow {
			f.keep(k, keptUsage{u, f.now().Add(min(usageReuse*took, usageMaxReuse))})
		}
		return u, err
	})
	select {
	case r := <-ch:
		u, _ := r.Val.(store.Usage)
		return u, r.Err
	case <-ctx.Done():
		return store.Usage{}, ctx.Err()
	}
}

// keep holds e for k, unless usageMaxKept figures still in use are held already.
func (f *usageFlights) keep(k usageKey, e keptUsage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.kept) >= usageMaxKept {
		now := f.now()
		for k, e := range f.kept {
			if !now.Before(e.until) {
				delete(f.kept, k)
			}
		}
	}
	if len(f.kept) < usageMaxKept {
		f.kept[k] = e
	}
}

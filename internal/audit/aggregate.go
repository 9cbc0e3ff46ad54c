package audit

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/berth-registry/berth/internal/store"
)

// aggregatedReasons are the refusals of sign-ins that name no verified identity: a malformed or
// forged token, a name nobody has, an address the registry refuses, a caller already throttled,
// one over its share of anonymous requests. Anyone can send them as fast as the network allows,
// so for each registry, address, operation and reason only the first few in an interval are
// written as they happen (their correlation ids find them: a user retrying by hand is never
// past them), the others as one event with their number (Attempts) at the interval's end —
// while every attempt at an identity that exists, success or failure, stays an event of its own.
var aggregatedReasons = map[string]bool{
	"invalid_token": true, "unknown_identity": true, "throttled": true, "ip_denied": true,
	"public_access_disabled": true, "anonymous_limit": true,
}

// firstFew is how many of a kind an interval writes as they happen.
const firstFew = 10

// maxAggregates bounds the keys counted in one interval; beyond it, addresses are counted
// together (the event's address then says so).
const maxAggregates = 10_000

// manyAddresses is the address of an event that counts the attempts of many addresses.
const manyAddresses = "(many addresses)"

type aggregate struct {
	seen int              // attempts of the interval
	n    int              // attempts counted, not written (after the first few)
	last store.LoginEvent // the latest of them
}

type aggregator struct {
	every time.Duration
	mu    sync.Mutex
	m     map[string]*aggregate
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// count takes e if its kind was written firstFew times in this interval already (the caller
// then writes nothing); the first few are left to the caller.
func (a *aggregator) count(e store.LoginEvent) bool {
	if a == nil || e.Result != store.ResultFailure || !aggregatedReasons[e.Reason] {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil { // finished: every event is written on its own
		return false
	}
	key := e.Registry + "\x00" + e.Operation + "\x00" + e.Reason + "\x00" + e.IP
	g, ok := a.m[key]
	if !ok && len(a.m) >= maxAggregates {
		key = e.Registry + "\x00" + e.Operation + "\x00" + e.Reason + "\x00" + manyAddresses
		g, ok = a.m[key]
	}
	if !ok {
		g = &aggregate{}
		a.m[key] = g
	}
	if g.seen++; g.seen <= firstFew {
		return false
	}
	g.n++
	g.last = e
	return true
}

// take returns the interval's counted events and starts a new interval.
func (a *aggregator) take() []store.LoginEvent { return a.swap(map[string]*aggregate{}) }

// finish returns what was counted and counts nothing more.
func (a *aggregator) finish() []store.LoginEvent { return a.swap(nil) }

func (a *aggregator) swap(next map[string]*aggregate) []store.LoginEvent {
	a.mu.Lock()
	m := a.m
	a.m = next
	a.mu.Unlock()
	var out []store.LoginEvent
	for key, g := range m {
		if g.n == 0 {
			continue
		}
		e := g.last
		e.Attempts = g.n
		if len(key) >= len(manyAddresses) && key[len(key)-len(manyAddresses):] == manyAddresses {
			e.IP = manyAddresses
		}
		e.Message = fmt.Sprintf("%s (%d more such attempts in %s, after the %d written one by one)", e.Message, g.n, a.every, firstFew)
		out = append(out, e)
	}
	return out
}

// run writes the counted events at the end of each interval, until stop.
func (a *aggregator) run(w *Writer) {
	defer close(a.done)
	t := time.NewTicker(a.every)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
			for _, e := range a.take() {
				w.put(context.Background(), item{login: &e})
			}
		}
	}
}

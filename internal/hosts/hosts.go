// Package hosts maps the Host a request was sent to onto one of the server's registries. A host
// no registry claims is answered by the default registry.
package hosts

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/berth-registry/berth/internal/store"
)

// Resolver caches the registries table and refreshes it after a TTL.
type Resolver struct {
	st  *store.Store
	ttl time.Duration
	now func() time.Time

	mu     sync.RWMutex
	byHost map[string]store.Registry
	def    store.Registry
	loaded time.Time
}

// New returns a resolver over st.
func New(st *store.Store, ttl time.Duration, now func() time.Time) *Resolver {
	if now == nil {
		now = time.Now
	}
	return &Resolver{st: st, ttl: ttl, now: now}
}

// Resolve returns the registry answering for host.
func (r *Resolver) Resolve(ctx context.Context, host string) (store.Registry, error) {
	r.mu.RLock()
	fresh := !r.loaded.IsZero() && r.now().Sub(r.loaded) < r.ttl
	byHost, def := r.byHost, r.def
	r.mu.RUnlock()
	if !fresh {
		var err error
		if byHost, def, err = r.reload(ctx); err != nil {
			return store.Registry{}, err
		}
	}
	host = strings.ToLower(host)
	if reg, ok := byHost[host]; ok {
		return reg, nil
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		if reg, ok := byHost[h]; ok {
			return reg, nil
		}
	}
	return def, nil
}

// Invalidate makes the next Resolve reload the table.
func (r *Resolver) Invalidate() {
	r.mu.Lock()
	r.loaded = time.Time{}
	r.mu.Unlock()
}

func (r *Resolver) reload(ctx context.Context) (map[string]store.Registry, store.Registry, error) {
	regs, err := r.st.Registries(ctx)
	if err != nil {
		return nil, store.Registry{}, fmt.Errorf("hosts: %w", err)
	}
	byHost := make(map[string]store.Registry, len(regs))
	var def store.Registry
	for _, reg := range regs {
		if reg.LoginServer != "" {
			byHost[reg.LoginServer] = reg
		}
		if reg.Default {
			def = reg
		}
	}
	if def.ID == 0 {
		return nil, store.Registry{}, errors.New("hosts: no default registry")
	}
	r.mu.Lock()
	r.byHost, r.def, r.loaded = byHost, def, r.now()
	r.mu.Unlock()
	return byHost, def, nil
}

type registryKey struct{}

// WithRegistry returns ctx carrying the registry a request is for.
func WithRegistry(ctx context.Context, reg store.Registry) context.Context {
	return context.WithValue(ctx, registryKey{}, reg)
}

// RegistryFrom returns the registry ctx carries.
func RegistryFrom(ctx context.Context) (store.Registry, bool) {
	reg, ok := ctx.Value(registryKey{}).(store.Registry)
	return reg, ok
}

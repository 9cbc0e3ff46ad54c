// Package policy decides whether a principal may perform an action on a resource. Decide is a
// pure function of an immutable Snapshot; the Engine publishes snapshots and answers requests.
package policy

import (
	"context"
	"sync/atomic"

	"github.com/berth-registry/berth/internal/authn"
)

// Action is a data-plane action, named as in Docker token scopes.
type Action string

// The actions of the data plane.
const (
	ActionPull          Action = "pull"
	ActionPush          Action = "push"
	ActionDelete        Action = "delete"
	ActionMetadataRead  Action = "metadata_read"
	ActionMetadataWrite Action = "metadata_write"
	ActionCatalog       Action = "*" // on the registry:catalog resource
)

// Resource types.
const (
	TypeRepository = "repository"
	TypeRegistry   = "registry"
)

// Resource is what an action is done to: a repository of a registry, or the registry catalog.
type Resource struct {
	Registry string
	Type     string
	Name     string // repository name, or "catalog"
}

// Decision is the answer to one question, with the reason that explains it.
type Decision struct {
	Allow  bool
	Reason string
}

// Snapshot is the compiled policy of the server at one moment. It is immutable.
type Snapshot struct {
	// Version increases with every change, so replicas can tell whether theirs is current.
	Version int64
}

// Decide answers whether p may do a on res under snapshot s. It does no I/O.
//
// Access control arrives with identities and role assignments; until a snapshot holds any, the
// registry is open and every action is allowed.
func Decide(s *Snapshot, p authn.Principal, a Action, res Resource) Decision {
	return Decision{Allow: true, Reason: "no access control is configured on this server: every request is allowed"}
}

// Engine holds the current snapshot.
type Engine struct {
	snap atomic.Pointer[Snapshot]
}

// NewEngine returns an engine holding s.
func NewEngine(s *Snapshot) *Engine {
	e := &Engine{}
	e.snap.Store(s)
	return e
}

// Decide answers with the current snapshot.
func (e *Engine) Decide(ctx context.Context, p authn.Principal, a Action, res Resource) Decision {
	return Decide(e.snap.Load(), p, a, res)
}

// Publish makes s the current snapshot.
func (e *Engine) Publish(s *Snapshot) { e.snap.Store(s) }

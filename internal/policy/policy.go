// Package policy decides whether a principal may perform an action on a resource. Decide is a
// pure function of an immutable Snapshot, compiled from the store by Load; the Engine publishes
// snapshots and reloads when the store's policy version changes.
package policy

import (
	"context"
	"fmt"
	"strings"
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

// RepositoryActions are the actions on a repository, in a stable order.
var RepositoryActions = []Action{ActionPull, ActionPush, ActionDelete, ActionMetadataRead, ActionMetadataWrite}

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

// Role names honoured so far.
const (
	RoleOwner = "Owner"
)

// Snapshot is the compiled policy of the server at one moment. It is immutable.
type Snapshot struct {
	// Version increases with every change, so replicas can tell whether theirs is current.
	Version    int64
	registries map[string]registryPolicy
	tokens     map[int64]tokenPolicy
	// assignments by principal ("user:7", "group:2", "sp:3")
	assignments map[string][]assignment
	groups      map[int64][]int64 // user id → group ids
	// names of users and service principals by id, so that a token of a deleted identity never
	// speaks for a new one that got the same id
	users, sps map[int64]string
}

type registryPolicy struct {
	id           int64
	adminEnabled bool
}

type tokenPolicy struct {
	name, registry string
	enabled        bool
	scopeMap       string
	rules          []rule
}

type rule struct {
	pattern string
	prefix  string // "samples/" for "samples/*"; "" with all for "*"
	all     bool
	action  string
}

func (r rule) matches(repo string) bool {
	switch {
	case r.all:
		return true
	case r.prefix != "":
		return strings.HasPrefix(repo, r.prefix)
	}
	return r.pattern == repo
}

type assignment struct {
	id, role, scope string
}

// scopeMapAction is the scope-map action an action needs.
func scopeMapAction(a Action) string {
	switch a {
	case ActionPull:
		return "content/read"
	case ActionPush:
		return "content/write"
	case ActionDelete:
		return "content/delete"
	case ActionMetadataRead:
		return "metadata/read"
	case ActionMetadataWrite:
		return "metadata/write"
	}
	return ""
}

// Decide answers whether p may do a on res under snapshot s. It does no I/O.
func Decide(s *Snapshot, p authn.Principal, a Action, res Resource) Decision {
	reg, ok := s.registries[res.Registry]
	if !ok {
		return deny("registry %q does not exist", res.Registry)
	}
	switch p.Kind {
	case authn.KindAdmin:
		if p.Registry != res.Registry {
			return deny("the admin user of registry %q has no rights on registry %q", p.Registry, res.Registry)
		}
		if !reg.adminEnabled {
			return deny("admin user is disabled on registry %q", res.Registry)
		}
		return allow("the admin user of registry %q may do everything in it", res.Registry)
	case authn.KindToken:
		return decideToken(s, p, a, res)
	case authn.KindUser, authn.KindSP:
		return decideRoles(s, p, a, res)
	}
	return deny("authentication required: anonymous access is not enabled on registry %q", res.Registry)
}

func decideToken(s *Snapshot, p authn.Principal, a Action, res Resource) Decision {
	t, ok := s.tokens[p.ID]
	switch {
	case !ok || t.name != p.Name:
		return deny("token %q no longer exists", p.Name)
	case t.registry != res.Registry:
		return deny("token %q belongs to registry %q, not %q", t.name, t.registry, res.Registry)
	case !t.enabled:
		return deny("token is disabled: token %q", t.name)
	case t.scopeMap == "":
		return deny("token %q has no scope map", t.name)
	}
	if res.Type == TypeRegistry {
		// The catalog is listed only by tokens whose map reads the whole registry, as in ACR.
		for _, r := range t.rules {
			if r.all && (r.action == "content/read" || r.action == "metadata/read") {
				return allow("scope map %q of token %q grants %s on '*'", t.scopeMap, t.name, r.action)
			}
		}
		return deny("scope map %q of token %q does not cover the whole registry ('*'), which listing the catalog needs", t.scopeMap, t.name)
	}
	want := scopeMapAction(a)
	for _, r := range t.rules {
		if r.action == want && r.matches(res.Name) {
			return allow("scope map %q of token %q grants %s on '%s'", t.scopeMap, t.name, want, r.pattern)
		}
	}
	return deny("scope map %q of token %q does not grant %s on repository %q", t.scopeMap, t.name, want, res.Name)
}

func decideRoles(s *Snapshot, p authn.Principal, a Action, res Resource) Decision {
	if !s.exists(p) {
		return deny("%s no longer exists", p)
	}
	for _, k := range s.keys(p) {
		for _, as := range s.assignments[k] {
			if as.role == RoleOwner && (as.scope == "/" || as.scope == "/registries/"+res.Registry) {
				return allow("role assignment %s gives %s the role %s at scope %s", as.id, p, as.role, as.scope)
			}
		}
	}
	return deny("no role assignment gives %s the right to %s on registry %q", p, a, res.Registry)
}

// IsServerOwner reports whether p holds Owner at "/", directly or through a group.
func IsServerOwner(s *Snapshot, p authn.Principal) bool {
	if !s.exists(p) {
		return false
	}
	for _, k := range s.keys(p) {
		for _, as := range s.assignments[k] {
			if as.role == RoleOwner && as.scope == "/" {
				return true
			}
		}
	}
	return false
}

// keys are the assignment keys that speak for p: its own and, for a user, its groups'.
func (s *Snapshot) keys(p authn.Principal) []string {
	keys := []string{fmt.Sprintf("%s:%d", p.Kind, p.ID)}
	if p.Kind == authn.KindUser {
		for _, g := range s.groups[p.ID] {
			keys = append(keys, fmt.Sprintf("group:%d", g))
		}
	}
	return keys
}

// exists reports whether a user or service principal still exists under its id.
func (s *Snapshot) exists(p authn.Principal) bool {
	switch p.Kind {
	case authn.KindUser:
		return s.users[p.ID] == p.Name
	case authn.KindSP:
		return s.sps[p.ID] == p.Name
	}
	return false
}

func allow(format string, args ...any) Decision {
	return Decision{Allow: true, Reason: fmt.Sprintf(format, args...)}
}

func deny(format string, args ...any) Decision {
	return Decision{Reason: fmt.Sprintf(format, args...)}
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

// Snapshot returns the current snapshot.
func (e *Engine) Snapshot() *Snapshot { return e.snap.Load() }

// Decide answers with the current snapshot.
func (e *Engine) Decide(ctx context.Context, p authn.Principal, a Action, res Resource) Decision {
	return Decide(e.snap.Load(), p, a, res)
}

// Publish makes s the current snapshot.
func (e *Engine) Publish(s *Snapshot) { e.snap.Store(s) }

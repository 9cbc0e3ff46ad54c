// Package policy decides whether a principal may perform an action: on the data plane (pull,
// push, delete … on a repository, or listing the catalog), on the control plane (the management
// API's permissions), and whether a client address may reach a registry at all. Decide is a pure
// function of an immutable Snapshot, compiled from the store by Load; the Engine publishes
// snapshots and reloads when the store's policy version changes. Every decision carries its
// reason, and Explain traces every rule that was considered.
package policy

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/berth-registry/berth/internal/access"
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
	Allow bool
	// Filtered, on a catalog decision, means the principal may list the catalog but sees only
	// the repositories it may pull.
	Filtered bool
	// Code is the reason in a word (see the Code constants); Reason is the sentence.
	Code   string
	Reason string
}

// Reason codes.
const (
	CodeAdmin             = "admin_user"
	CodeScopeMap          = "scope_map"
	CodeRoleAssignment    = "role_assignment"
	CodeAnonymousPull     = "anonymous_pull"
	CodeCatalogFiltered   = "catalog_filtered"
	CodeNoRegistry        = "registry_not_found"
	CodeAdminDisabled     = "admin_disabled"
	CodeOtherRegistry     = "other_registry"
	CodeTokenGone         = "token_not_found"
	CodeTokenDisabled     = "token_disabled"
	CodeNoScopeMap        = "no_scope_map"
	CodeNotInScopeMap     = "not_in_scope_map"
	CodeIdentityGone      = "identity_not_found"
	CodeNoAssignment      = "no_role_assignment"
	CodeNotHonoured       = "role_not_honoured"
	CodeConditionFalse    = "condition_not_met"
	CodeAnonymous         = "anonymous"
	CodeNetworkAllowed    = "network_allowed"
	CodeIPDenied          = "ip_denied"
	CodePublicAccessOff   = "public_access_disabled"
	CodeControlPermission = "control_permission"
	CodeInsufficientScope = "insufficient_scope"
	CodeManagementDenied  = "management_not_allowed"
)

// Snapshot is the compiled policy of the server at one moment. It is immutable.
type Snapshot struct {
	// Version increases with every change, so replicas can tell whether theirs is current.
	Version    int64
	registries map[string]*registryPolicy
	tokens     map[int64]*tokenPolicy
	// assignments by principal
	assignments map[principalKey][]*assignment
	groups      map[int64][]int64 // user id → group ids
	// names by id: a token of a deleted identity never speaks for a new one that got the same id
	users, sps, groupNames map[int64]string
}

type principalKey struct {
	kind string // user, group, sp
	id   int64
}

type registryPolicy struct {
	id           int64
	name         string
	adminEnabled bool
	adminReason  string
	mode         Mode
	anonAll      bool
	anonReason   string
	anonRules    []rule
	network      networkPolicy
}

type tokenPolicy struct {
	name, registry string
	enabled        bool
	scopeMap       string
	rules          []rule
	catalogRule    *rule // the first '*' read rule, which lists the whole catalog
}

type rule struct {
	pattern string
	prefix  string // "samples/" for "samples/*"
	all     bool   // "*"
	action  string // scope-map action: content/read …
	desc    string // "scope map "m" grants content/read on 'samples/*'"
}

func (r *rule) matches(repo string) bool {
	switch {
	case r.all:
		return true
	case r.prefix != "":
		return strings.HasPrefix(repo, r.prefix)
	}
	return r.pattern == repo
}

type assignment struct {
	id        string
	principal principalKey
	role      *Role
	roleName  string // as stored, for an unknown role
	registry  string // "" for the scope "/"
	scope     string
	cond      *Condition
	condErr   string // a stored condition that no longer compiles grants nothing
	desc      string
}

func (as *assignment) covers(registry string) bool {
	return as.registry == "" || as.registry == registry
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

// Decide answers whether p may do a on res under snapshot s: the policy must allow it and, when
// p holds an access token (p.Scoped), the token's grant must include it (else
// CodeInsufficientScope, which tells the client to ask the token endpoint for more). The same
// question is asked by the data plane for a request and by the token endpoint for each scope it
// grants. Decide does no I/O, and allocates nothing when it allows.
func Decide(s *Snapshot, p access.Principal, a Action, res Resource) Decision {
	return decide(s, p, a, res, nil)
}

// DecideVisible answers whether repository res may be shown to p in a listing: the filtered
// catalog, or the candidates of a blob mount that names no source. The policy alone decides
// (pull on the repository): the request that lists was itself decided with the access token's
// grant, and a client cannot know which repositories to ask a token for.
func DecideVisible(s *Snapshot, p access.Principal, res Resource) Decision {
	return decidePolicy(s, p, ActionPull, res, nil)
}

// DecideMount answers whether p may mount a blob from repository src (the push on the target
// was decided with the request). A source the client named must be pullable under both the
// policy and the access token's grant, so a token without pull on it gets CodeInsufficientScope
// and the client asks for that scope; a mount that names no source may take the blob from any
// repository visible to p (DecideVisible).
func DecideMount(s *Snapshot, p access.Principal, src Resource, named bool) Decision {
	if named {
		return decide(s, p, ActionPull, src, nil)
	}
	return DecideVisible(s, p, src)
}

func decide(s *Snapshot, p access.Principal, a Action, res Resource, tr *trace) Decision {
	d := decidePolicy(s, p, a, res, tr)
	if !p.Scoped {
		return d
	}
	if p.Grant.Allows(res.Type, res.Name, string(a)) {
		if tr != nil {
			tr.add("access token", scopeName(res, a), true, "the access token includes "+string(a)+" on "+resourceName(res))
		}
		return d
	}
	if tr != nil {
		tr.add("access token", scopeName(res, a), false, grantSummary(p.Grant, res)+"; this request needs "+string(a))
	}
	if !d.Allow {
		return d // the policy's reason comes first: a broader token would not help
	}
	return deny(CodeInsufficientScope, "the access token does not include %s on %s %q", a, res.Type, res.Name)
}

func scopeName(res Resource, a Action) string { return res.Type + ":" + res.Name + ":" + string(a) }

// grantSummary says what an access token holds on res, for explain.
func grantSummary(g access.Grant, res Resource) string {
	var on []string
	all := make([]string, 0, len(g))
	for _, sc := range g {
		all = append(all, sc.String())
		if sc.Type == res.Type && sc.Name == res.Name {
			on = append(on, sc.Actions...)
		}
	}
	switch {
	case len(g) == 0:
		return "the access token grants nothing"
	case len(on) > 0:
		return fmt.Sprintf("the access token grants %s on %s", strings.Join(on, ","), resourceName(res))
	}
	return "the access token grants only " + strings.Join(all, " ")
}

func decidePolicy(s *Snapshot, p access.Principal, a Action, res Resource, tr *trace) Decision {
	reg, ok := s.registries[res.Registry]
	if !ok {
		return deny(CodeNoRegistry, "registry %q does not exist", res.Registry)
	}
	switch p.Kind {
	case access.KindAdmin:
		var d Decision
		switch {
		case p.Registry != res.Registry:
			d = deny(CodeOtherRegistry, "the admin user of registry %q has no rights on registry %q", p.Registry, res.Registry)
		case p.ID != reg.id:
			// Registry ids are never reused: this is the admin user of a registry of the same
			// name that was deleted.
			d = deny(CodeIdentityGone, "the admin user's registry %q was deleted and created again since the credentials were issued", res.Registry)
		case !reg.adminEnabled:
			d = deny(CodeAdminDisabled, "admin user is disabled on registry %q", res.Registry)
		default:
			d = Decision{Allow: true, Code: CodeAdmin, Reason: reg.adminReason}
		}
		tr.add("admin user", res.Registry, d.Allow, d.Reason)
		return d
	case access.KindToken:
		return decideToken(s, p, a, res, tr)
	case access.KindUser, access.KindSP:
		return decideRoles(s, reg, p, a, res, tr)
	}
	return decideAnonymous(reg, a, res, tr)
}

func decideAnonymous(reg *registryPolicy, a Action, res Resource, tr *trace) Decision {
	if a == ActionPull && res.Type == TypeRepository {
		if reg.anonAll {
			tr.add("anonymous pull", "registry-wide", true, "anonymous pull is enabled for the whole registry")
			return Decision{Allow: true, Code: CodeAnonymousPull, Reason: reg.anonReason}
		}
		for i := range reg.anonRules {
			if r := &reg.anonRules[i]; r.matches(res.Name) {
				tr.add("anonymous pull", r.pattern, true, r.desc)
				return Decision{Allow: true, Code: CodeAnonymousPull, Reason: r.desc}
			}
		}
		if tr != nil {
			tr.add("anonymous pull", "", false, anonymousSummary(reg))
		}
		return deny(CodeAnonymous, "authentication required: anonymous pull is not enabled for repository %q of registry %q", res.Name, res.Registry)
	}
	tr.add("anonymous", "", false, "anonymous clients may only pull (and list tags)")
	if res.Type == TypeRegistry {
		return deny(CodeAnonymous, "authentication required: anonymous clients cannot list the catalog of registry %q", res.Registry)
	}
	return deny(CodeAnonymous, "authentication required: anonymous clients may only pull, not %s", a)
}

func anonymousSummary(reg *registryPolicy) string {
	if len(reg.anonRules) == 0 {
		return "anonymous pull is off"
	}
	var ps []string
	for _, r := range reg.anonRules {
		ps = append(ps, r.pattern)
	}
	return "anonymous pull covers only " + strings.Join(ps, ", ")
}

func decideToken(s *Snapshot, p access.Principal, a Action, res Resource, tr *trace) Decision {
	t, ok := s.tokens[p.ID]
	var d Decision
	switch {
	case !ok || t.name != p.Name:
		d = deny(CodeTokenGone, "token %q no longer exists", p.Name)
	case t.registry != res.Registry:
		d = deny(CodeOtherRegistry, "token %q belongs to registry %q, not %q", t.name, t.registry, res.Registry)
	case !t.enabled:
		d = deny(CodeTokenDisabled, "token is disabled: token %q", t.name)
	case t.scopeMap == "":
		d = deny(CodeNoScopeMap, "token %q has no scope map", t.name)
	}
	if d.Code != "" {
		tr.add("token", p.Name, false, d.Reason)
		return d
	}
	if tr != nil {
		tr.add("token", t.name, true, fmt.Sprintf("enabled, scope map %q", t.scopeMap))
	}
	if res.Type == TypeRegistry {
		if t.catalogRule != nil {
			tr.add("scope map", t.scopeMap, true, t.catalogRule.desc+", which lists the whole catalog")
			return Decision{Allow: true, Code: CodeScopeMap, Reason: t.catalogRule.desc}
		}
		tr.add("scope map", t.scopeMap, false, "no rule on '*': the catalog is filtered to the repositories the token may pull")
		return Decision{Allow: true, Filtered: true, Code: CodeCatalogFiltered, Reason: "the catalog lists only the repositories the token may pull"}
	}
	want := scopeMapAction(a)
	for i := range t.rules {
		if r := &t.rules[i]; r.action == want && r.matches(res.Name) {
			tr.add("scope map", t.scopeMap, true, r.desc)
			return Decision{Allow: true, Code: CodeScopeMap, Reason: r.desc}
		}
	}
	d = deny(CodeNotInScopeMap, "scope map %q of token %q does not grant %s on repository %q", t.scopeMap, t.name, want, res.Name)
	tr.add("scope map", t.scopeMap, false, d.Reason)
	return d
}

func decideRoles(s *Snapshot, reg *registryPolicy, p access.Principal, a Action, res Resource, tr *trace) Decision {
	if !s.exists(p) {
		d := deny(CodeIdentityGone, "%s no longer exists", p)
		tr.add("identity", p.Name, false, d.Reason)
		return d
	}
	bit := a.bit()
	var notHonoured, condFalse, found *assignment
	s.eachAssignment(p, func(as *assignment) bool {
		switch {
		case !as.covers(res.Registry):
			if tr != nil {
				tr.add("role assignment", as.id, false, as.desc+": its scope does not cover registry "+quote(res.Registry))
			}
		case as.role == nil:
			if tr != nil {
				tr.add("role assignment", as.id, false, as.desc+": "+as.condErr)
			}
		case as.role.data[reg.mode]&bit == 0:
			if as.role.data[1-reg.mode]&bit != 0 && notHonoured == nil {
				notHonoured = as
			}
			if tr != nil {
				tr.add("role assignment", as.id, false, as.desc+": "+notGiven(as.role, reg.mode, a))
			}
		case as.cond != nil && res.Type == TypeRepository && !as.cond.Eval(DataAction(a), res.Name):
			if condFalse == nil {
				condFalse = as
			}
			if tr != nil {
				tr.add("role assignment", as.id, false, fmt.Sprintf("%s: its condition is false for %s on repository %q", as.desc, DataAction(a), res.Name))
			}
		default:
			if tr != nil {
				detail := as.desc
				if as.cond != nil {
					detail += fmt.Sprintf(": its condition holds for %s on repository %q", DataAction(a), res.Name)
				}
				tr.add("role assignment", as.id, true, detail)
			}
			found = as
			return true
		}
		return false
	})
	if found != nil {
		return Decision{Allow: true, Code: CodeRoleAssignment, Reason: found.desc}
	}
	if a == ActionCatalog {
		return Decision{Allow: true, Filtered: true, Code: CodeCatalogFiltered,
			Reason: "no role gives the whole catalog, so it lists only the repositories the identity may pull"}
	}
	switch {
	case condFalse != nil:
		return deny(CodeConditionFalse, "%s has %s on registry %q, but the condition of role assignment %s does not allow %s on repository %q",
			p, condFalse.role.Name, res.Registry, condFalse.id, DataAction(a), res.Name)
	case notHonoured != nil:
		return deny(CodeNotHonoured, "role %s (assignment %s) is not honoured in mode %s on registry %q; assign '%s'",
			notHonoured.role.Name, notHonoured.id, reg.mode, res.Registry, replacement(notHonoured.role, reg.mode))
	}
	return deny(CodeNoAssignment, "no role assignment gives %s %s on %s in registry %q (mode %s)", p, DataAction(a), resourceName(res), res.Registry, reg.mode)
}

func notGiven(r *Role, m Mode, a Action) string {
	if r.data[1-m]&a.bit() != 0 {
		return fmt.Sprintf("%s is not honoured in mode %s; assign '%s'", r.Name, m, replacement(r, m))
	}
	return fmt.Sprintf("%s does not give %s", r.Name, DataAction(a))
}

func replacement(r *Role, m Mode) string {
	if m == ModeRBACABAC {
		return r.Replacement
	}
	switch r.Name {
	case RoleRepositoryReader:
		return RoleAcrPull
	case RoleRepositoryWriter:
		return RoleAcrPush
	case RoleRepositoryContributor:
		return RoleAcrPush + "' and '" + RoleAcrDelete
	}
	return RoleAcrPull
}

func resourceName(res Resource) string {
	if res.Type == TypeRegistry {
		return "the catalog"
	}
	return "repository " + quote(res.Name)
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// exists reports whether a user or service principal still exists under its id.
func (s *Snapshot) exists(p access.Principal) bool {
	switch p.Kind {
	case access.KindUser:
		return s.users[p.ID] == p.Name
	case access.KindSP:
		return s.sps[p.ID] == p.Name
	}
	return false
}

// Mode returns a registry's role assignment mode.
func (s *Snapshot) Mode(registry string) (Mode, bool) {
	r, ok := s.registries[registry]
	if !ok {
		return 0, false
	}
	return r.mode, true
}

func deny(code, format string, args ...any) Decision {
	return Decision{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// Engine holds the current snapshot, and the server's management allow-list.
type Engine struct {
	snap            atomic.Pointer[Snapshot]
	managementAllow AddressList
	// OnReload, if set, is called after a new snapshot is loaded (caches of settings drop theirs).
	OnReload func()
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
func (e *Engine) Decide(ctx context.Context, p access.Principal, a Action, res Resource) Decision {
	return Decide(e.snap.Load(), p, a, res)
}

// DecideVisible answers with the current snapshot.
func (e *Engine) DecideVisible(ctx context.Context, p access.Principal, res Resource) Decision {
	return DecideVisible(e.snap.Load(), p, res)
}

// DecideMount answers with the current snapshot.
func (e *Engine) DecideMount(ctx context.Context, p access.Principal, src Resource, named bool) Decision {
	return DecideMount(e.snap.Load(), p, src, named)
}

// AllowManagement sets the management allow-list (network.management_allow); call it before
// the engine is shared.
func (e *Engine) AllowManagement(l AddressList) { e.managementAllow = l }

// Management answers whether ip may use the management API.
func (e *Engine) Management(ip netip.Addr) Decision { return ManagementAccess(e.managementAllow, ip) }

// Explain explains with the current snapshot; with a valid ip it also says whether that address
// may use the management API.
func (e *Engine) Explain(p access.Principal, a Action, res Resource, ip netip.Addr) Explanation {
	x := Explain(e.snap.Load(), p, a, res, ip)
	if ip.IsValid() {
		m := e.Management(ip)
		x.Management = &m
	}
	return x
}

// Network answers with the current snapshot whether ip may reach registry.
func (e *Engine) Network(registry string, ip netip.Addr) Decision {
	return e.snap.Load().Network(registry, ip)
}

// RegistryMode returns a registry's mode as tokens record it ("" for an unknown registry).
func (e *Engine) RegistryMode(registry string) string {
	if m, ok := e.snap.Load().Mode(registry); ok {
		return m.String()
	}
	return ""
}

// Publish makes s the current snapshot.
func (e *Engine) Publish(s *Snapshot) { e.snap.Store(s) }

package mgmt

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/authn"
	"github.com/berth-registry/berth/internal/directory"
	"github.com/berth-registry/berth/internal/httperr"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/policy"
	"github.com/berth-registry/berth/internal/store"
)

func (h *Handler) listNetworkRules(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	reg, err := h.registry(r.Context(), r)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, toRegistryJSON(reg, r).NetworkRuleSet)
}

func (h *Handler) addNetworkRule(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	ctx := r.Context()
	reg, err := h.registry(ctx, r)
	if err != nil {
		return err
	}
	var req client.NetworkRuleAdd
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Action != "" && !strings.EqualFold(req.Action, store.ActionAllow) {
		return invalid("network rule action %q is invalid: rules allow; the registry's default action decides the rest", req.Action)
	}
	p, err := policy.ParseNetworkRule(req.Value)
	if err != nil {
		return invalid("%v", err)
	}
	if err := h.Store.AddNetworkRule(ctx, reg.Name, p.String()); err != nil {
		if errors.Is(err, store.ErrLimit) {
			return httperr409("registry %q already has %d network rules, the most allowed; combine addresses into CIDR ranges", reg.Name, store.MaxNetworkRules)
		}
		return storeError(err, fmt.Sprintf("network rule %s", p))
	}
	if reg, err = h.Store.RegistryByName(ctx, reg.Name); err != nil {
		return err
	}
	return h.commit(ctx, w, http.StatusCreated, toRegistryJSON(reg, r).NetworkRuleSet)
}

func (h *Handler) removeNetworkRule(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	ctx := r.Context()
	reg, err := h.registry(ctx, r)
	if err != nil {
		return err
	}
	p, err := policy.ParseNetworkRule(r.PathValue("value"))
	if err != nil {
		return invalid("%v", err)
	}
	if err := h.Store.RemoveNetworkRule(ctx, reg.Name, p.String()); err != nil {
		return storeError(err, fmt.Sprintf("network rule %s of registry %q", p, reg.Name))
	}
	if reg, err = h.Store.RegistryByName(ctx, reg.Name); err != nil {
		return err
	}
	return h.commit(ctx, w, http.StatusOK, toRegistryJSON(reg, r).NetworkRuleSet)
}

func (h *Handler) listRoleDefinitions(w http.ResponseWriter, r *http.Request, _ access.Principal) error {
	return replyList(w, policy.Roles, func(role *policy.Role) (client.RoleDefinition, error) {
		out := client.RoleDefinition{RoleName: role.Name, ID: role.ID, Name: role.ID, RoleType: "BuiltInRole", Type: client.TypeRoleDefinition,
			Description: role.Description, Actions: []string{}, AssignableScopes: []string{policy.ServerScope},
			ConditionsAllowed: role.Conditions, DataActions: map[string][]string{}}
		for _, perm := range role.Control() {
			out.Actions = append(out.Actions, string(perm))
		}
		for _, m := range []policy.Mode{policy.ModeRBAC, policy.ModeRBACABAC} {
			da := role.DataActions(m)
			if da == nil {
				da = []string{}
			}
			out.DataActions[m.String()] = da
		}
		perm := client.RolePermission{Actions: out.Actions, NotActions: []string{}, DataActions: []string{}, NotDataActions: []string{}}
		for _, m := range []string{"rbac", "rbac-abac"} {
			for _, da := range out.DataActions[m] {
				if !slices.Contains(perm.DataActions, da) {
					perm.DataActions = append(perm.DataActions, da)
				}
			}
		}
		out.Permissions = []client.RolePermission{perm}
		out.HonouredInRBAC = len(out.DataActions["rbac"]) > 0 || len(out.Actions) > 0
		out.HonouredInRBACABAC = len(out.DataActions["rbac-abac"]) > 0 || len(out.Actions) > 0
		if len(out.DataActions["rbac"]) > 0 && len(out.DataActions["rbac-abac"]) == 0 {
			out.ReplacementInABAC = "'" + role.Replacement + "'" // 'A' or 'A' and 'B'
		}
		return out, nil
	})
}

var principalTypes = map[string]string{store.KindUser: "User", store.KindGroup: "Group", store.KindSP: "ServicePrincipal"}

// directoryNames maps principals to their names, for listings.
type directoryNames map[string]map[int64]string

func (h *Handler) directoryNames(ctx context.Context) (directoryNames, error) {
	out := directoryNames{store.KindUser: {}, store.KindGroup: {}, store.KindSP: {}}
	users, err := h.Store.Users(ctx)
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		out[store.KindUser][u.ID] = u.Name
	}
	groups, err := h.Store.Groups(ctx)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		out[store.KindGroup][g.ID] = g.Name
	}
	sps, err := h.Store.ServicePrincipals(ctx)
	if err != nil {
		return nil, err
	}
	for _, sp := range sps {
		out[store.KindSP][sp.ID] = sp.AppID
	}
	return out, nil
}

func toAssignmentJSON(a store.RoleAssignment, names directoryNames) client.RoleAssignment {
	out := client.RoleAssignment{ID: a.ID, Type: client.TypeRoleAssignment, Name: a.ID, PrincipalID: fmt.Sprintf("%s:%d", a.PrincipalKind, a.PrincipalID),
		PrincipalName: names[a.PrincipalKind][a.PrincipalID], PrincipalType: principalTypes[a.PrincipalKind],
		RoleDefinitionName: a.Role, Scope: a.Scope, CreatedOn: timeOrNil(a.CreatedAt)}
	if role, ok := policy.RoleByName(a.Role); ok {
		out.RoleDefinitionID = role.ID
	}
	if a.Condition != "" {
		out.Condition, out.ConditionVersion = &a.Condition, &a.ConditionVersion
	}
	return out
}

// scopeRegistry reads a scope: "/" (→ "") or "/registries/NAME" (→ NAME).
func scopeRegistry(scope string) (string, error) {
	if scope == policy.ServerScope {
		return "", nil
	}
	name, ok := strings.CutPrefix(scope, "/registries/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", invalid("scope %q is invalid: use '/' for the whole server or '/registries/NAME' for one registry", scope)
	}
	return name, nil
}

func (h *Handler) listRoleAssignments(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	ctx := r.Context()
	q := r.URL.Query()
	all, err := h.Store.RoleAssignments(ctx)
	if err != nil {
		return err
	}
	names, err := h.directoryNames(ctx)
	if err != nil {
		return err
	}
	snap := h.Policy.Snapshot()
	var kind string
	var id int64
	if a := q.Get("assignee"); a != "" {
		if kind, id, err = h.resolveAssignee(ctx, a); err != nil {
			return err
		}
	}
	var out []store.RoleAssignment
	for _, a := range all {
		reg, _ := scopeRegistry(a.Scope)
		switch {
		case !policy.DecideControl(snap, p, policy.PermAssignmentsRead, reg).Allow:
		case q.Get("scope") != "" && q.Get("scope") != a.Scope:
		case q.Get("role") != "" && !strings.EqualFold(q.Get("role"), a.Role):
		case kind != "" && (a.PrincipalKind != kind || a.PrincipalID != id):
		default:
			out = append(out, a)
		}
	}
	return replyList(w, out, func(a store.RoleAssignment) (client.RoleAssignment, error) { return toAssignmentJSON(a, names), nil })
}

// resolveAssignee finds a principal by "user:NAME", "group:NAME", "sp:APPID", a client id, or a
// bare name (a user, else a group).
func (h *Handler) resolveAssignee(ctx context.Context, assignee string) (kind string, id int64, err error) {
	prefix, name, explicit := strings.Cut(assignee, ":")
	if !explicit {
		name = assignee
		switch {
		case directory.IsGUID(strings.ToLower(assignee)):
			prefix = store.KindSP
		default:
			u, uerr := h.Store.UserByName(ctx, name)
			g, gerr := h.Store.GroupByName(ctx, name)
			switch {
			case uerr == nil && gerr == nil:
				return "", 0, invalid("%q is both a user and a group: say user:%s or group:%s", name, name, name)
			case uerr == nil:
				return store.KindUser, u.ID, nil
			case gerr == nil:
				return store.KindGroup, g.ID, nil
			case errors.Is(uerr, store.ErrNotFound) && errors.Is(gerr, store.ErrNotFound):
				return "", 0, httperr.New(CodeNotFound, "no user or group is named %q (a service principal is named by its client id)", name).WithStatus(http.StatusNotFound)
			}
			return "", 0, errors.Join(uerr, gerr)
		}
	}
	switch strings.ToLower(prefix) {
	case store.KindUser:
		u, err := h.Store.UserByName(ctx, name)
		return store.KindUser, u.ID, storeError(err, fmt.Sprintf("user %q", name))
	case store.KindGroup:
		g, err := h.Store.GroupByName(ctx, name)
		return store.KindGroup, g.ID, storeError(err, fmt.Sprintf("group %q", name))
	case store.KindSP, "serviceprincipal":
		sp, err := h.Store.ServicePrincipalByAppID(ctx, strings.ToLower(name))
		return store.KindSP, sp.ID, storeError(err, fmt.Sprintf("service principal %q", name))
	}
	return "", 0, invalid("assignee %q is invalid: use a user or group name, a service principal's client id, or user:NAME, group:NAME, sp:CLIENT_ID", assignee)
}

func (h *Handler) createRoleAssignment(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	ctx := r.Context()
	var req client.RoleAssignmentCreate
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Scope == "" {
		return invalid("scope is required: '/' or '/registries/NAME'")
	}
	reg, err := scopeRegistry(req.Scope)
	if err != nil {
		return err
	}
	if err := h.require(p, policy.PermAssignmentsWrite, reg); err != nil {
		return err
	}
	role, ok := policy.RoleByName(req.Role)
	if !ok {
		return invalid("role %q is not a built-in role: see 'berth role definition list'", req.Role)
	}
	if req.Condition == "" && req.ConditionVersion != "" {
		return invalid("conditionVersion is set but there is no condition")
	}
	if req.Condition != "" {
		if !role.Conditions {
			return invalid("role %q does not take conditions; the repository roles (%s, %s, %s) do", role.Name,
				policy.RoleRepositoryReader, policy.RoleRepositoryWriter, policy.RoleRepositoryContributor)
		}
		if req.ConditionVersion == "" {
			req.ConditionVersion = policy.ConditionVersion
		}
		if _, err := policy.ParseCondition(req.Condition, req.ConditionVersion); err != nil {
			return invalid("%v", err)
		}
	}
	kind, id, err := h.resolveAssignee(ctx, req.Assignee)
	if err != nil {
		return err
	}
	existing, err := h.Store.RoleAssignments(ctx)
	if err != nil {
		return err
	}
	for _, a := range existing {
		if a.PrincipalKind == kind && a.PrincipalID == id && a.Role == role.Name && a.Scope == req.Scope && a.Condition == req.Condition {
			return httperr.New(CodeAlreadyExists, "the role assignment already exists: %s", a.ID).WithStatus(http.StatusConflict)
		}
	}
	a := store.RoleAssignment{ID: directory.NewGUID(), PrincipalKind: kind, PrincipalID: id, Role: role.Name, Scope: req.Scope,
		Condition: req.Condition, ConditionVersion: req.ConditionVersion}
	if err := h.Store.CreateRoleAssignment(ctx, a); err != nil {
		return storeError(err, "role assignment")
	}
	created, err := h.Store.RoleAssignmentByID(ctx, a.ID)
	if err != nil {
		return err
	}
	names, err := h.directoryNames(ctx)
	if err != nil {
		return err
	}
	h.Log.InfoContext(ctx, "role assignment created", "id", a.ID, "role", a.Role, "scope", a.Scope, "principal_kind", kind, "principal_id", id, "by", p.String())
	return h.commit(ctx, w, http.StatusCreated, toAssignmentJSON(created, names))
}

func (h *Handler) deleteRoleAssignment(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	ctx := r.Context()
	id := r.PathValue("id")
	a, err := h.Store.RoleAssignmentByID(ctx, id)
	if err != nil {
		return storeError(err, fmt.Sprintf("role assignment %q", id))
	}
	reg, err := scopeRegistry(a.Scope)
	if err != nil {
		return err
	}
	if err := h.require(p, policy.PermAssignmentsWrite, reg); err != nil {
		return err
	}
	// The store refuses to take the last Owner at "/" away (store.ErrLastOwner).
	if err := h.Store.DeleteRoleAssignment(ctx, id); err != nil {
		return storeError(err, fmt.Sprintf("role assignment %q", id))
	}
	h.Log.InfoContext(ctx, "role assignment deleted", "id", id, "role", a.Role, "scope", a.Scope, "by", p.String())
	return h.commit(ctx, w, http.StatusNoContent, nil)
}

// explain answers GET …/explain?identity=&repository=&action=&ip=&grant=. Anyone with a role on the
// registry may explain their own identity; explaining another's needs roleAssignments/read.
func (h *Handler) explain(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	ctx := r.Context()
	reg, err := h.registry(ctx, r)
	if err != nil {
		return err
	}
	// A registry the caller holds no role on is as missing here as on every other route, and
	// nothing of it (its tokens, its network rules) is named.
	if !policy.HasAnyRole(h.Policy.Snapshot(), p, reg.Name) {
		return httperr.New(CodeNotFound, "registry %q was not found", reg.Name).WithStatus(http.StatusNotFound)
	}
	q := r.URL.Query()
	who, err := h.explainIdentity(ctx, reg, q.Get("identity"))
	if err != nil {
		return err
	}
	if who.Kind != p.Kind || who.ID != p.ID {
		// Explaining someone else reads what roles they hold.
		if err := h.require(p, policy.PermAssignmentsRead, reg.Name); err != nil {
			return err
		}
	}
	action := policy.Action(q.Get("action"))
	if action == "catalog" {
		action = policy.ActionCatalog
	}
	// repository may name a tag or a manifest (REPO:TAG, REPO@DIGEST): their locks are explained too.
	repo, tag, digest := splitRef(q.Get("repository"))
	res := policy.Resource{Registry: reg.Name, Type: policy.TypeRepository, Name: repo}
	switch {
	case action == policy.ActionCatalog:
		res = policy.Resource{Registry: reg.Name, Type: policy.TypeRegistry, Name: "catalog"}
	case policy.DataAction(action) == "":
		return invalid("action %q is invalid: use pull, push, delete, metadata_read, metadata_write or catalog", action)
	case res.Name == "":
		return invalid("repository is required for action %s", action)
	default:
		if err := oci.ValidateName(res.Name); err != nil {
			return invalid("repository: %v", err)
		}
	}
	// grant=repository:samples/app:pull (repeatable) explains a request made with an access
	// token holding that grant: the policy, then the grant.
	if gs := q["grant"]; len(gs) > 0 {
		g, err := policy.ParseScopes(gs)
		if err != nil {
			return invalid("grant: %v", err)
		}
		who.Scoped, who.Grant = true, g
	}
	var ip netip.Addr
	if s := q.Get("ip"); s != "" {
		if ip, err = netip.ParseAddr(s); err != nil {
			return invalid("ip %q is not an IP address", s)
		}
	}
	if digest != "" {
		if _, err := oci.ParseDigest(digest); err != nil {
			return invalid("repository: %v", err)
		}
	}
	out := toExplanation(h.Policy.Explain(who, action, res, ip))
	if res.Type == policy.TypeRepository {
		if err := h.explainLocks(ctx, reg, action, repo, tag, oci.Digest(digest), &out); err != nil {
			return err
		}
	}
	if who.Kind == access.KindSP {
		if err := h.explainFederated(ctx, who, q.Get("subject"), &out); err != nil {
			return err
		}
	} else if q.Get("subject") != "" {
		return invalid("subject: only a service principal signs in with federated credentials")
	}
	return reply(w, http.StatusOK, out)
}

// splitRef reads REPO, REPO:TAG or REPO@DIGEST.
func splitRef(s string) (repo, tag, digest string) {
	if r, d, ok := strings.Cut(s, "@"); ok {
		return r, "", d
	}
	if i := strings.LastIndexByte(s, ':'); i > 0 && !strings.Contains(s[i:], "/") {
		return s[:i], s[i+1:], ""
	}
	return s, "", ""
}

// explainLocks adds to an explanation the locks (ACR's changeable attributes) that refuse the
// action for everyone, whatever the policy says: the repository's, the tag's, the manifest's.
func (h *Handler) explainLocks(ctx context.Context, reg store.Registry, action policy.Action, repo, tag string, digest oci.Digest, out *client.Explanation) error {
	type lock struct {
		what string
		a    store.Attributes
	}
	var locks []lock
	info, err := h.Store.RepositoryInfo(ctx, reg.ID, repo)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil // nothing stored: nothing locked
	case err != nil:
		return err
	}
	locks = append(locks, lock{"repository " + repo, info.Attributes})
	if tag != "" {
		if t, err := h.Store.TagInfo(ctx, reg.ID, repo, tag); err == nil {
			locks = append(locks, lock{"tag " + tag + " of repository " + repo, t.Attributes})
			if digest == "" {
				digest = t.Digest
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	if digest != "" && (action == policy.ActionDelete || action == policy.ActionPull) {
		if m, err := h.Store.ManifestInfo(ctx, reg.ID, repo, digest); err == nil {
			locks = append(locks, lock{"manifest " + string(digest) + " of repository " + repo, m.Attributes})
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	for _, l := range locks {
		var attr, refuses string
		switch {
		case action == policy.ActionPush && !l.a.WriteEnabled:
			attr, refuses = "write", "pushes and deletes"
		case action == policy.ActionDelete && !l.a.WriteEnabled:
			attr, refuses = "write", "pushes and deletes"
		case action == policy.ActionDelete && !l.a.DeleteEnabled:
			attr, refuses = "delete", "deletes"
		case action == policy.ActionPull && !l.a.ReadEnabled:
			attr, refuses = "read", "pulls"
		}
		if attr == "" {
			continue
		}
		reason := fmt.Sprintf("the %s is %s-disabled: %s are refused for everyone, whatever their roles (berth repository update … --%s-enabled true lifts it)", l.what, attr, refuses, attr)
		out.Steps = append(out.Steps, client.Step{Source: "lock", Ref: l.what, Matched: true, Detail: reason})
		out.Allowed = false
		out.Decision = client.Decision{Allow: false, Code: "locked", Reason: reason}
		return nil
	}
	return nil
}

// toExplanation is an explanation as the API shows it.
func toExplanation(e policy.Explanation) client.Explanation {
	decision := func(d *policy.Decision) *client.Decision {
		if d == nil {
			return nil
		}
		return &client.Decision{Allow: d.Allow, Filtered: d.Filtered, Code: d.Code, Reason: d.Reason}
	}
	out := client.Explanation{Identity: e.Identity, Registry: e.Registry, Mode: e.Mode, Resource: e.Resource, Action: e.Action,
		DataAction: e.DataAction, IP: e.IP, Allowed: e.Allowed, Network: decision(e.Network), Management: decision(e.Management),
		Decision: *decision(&e.Decision), Steps: make([]client.Step, len(e.Steps))}
	for i, st := range e.Steps {
		out.Steps[i] = client.Step(st)
	}
	return out
}

// explainIdentity reads who to explain: anonymous, admin, token:NAME, user:NAME, sp:CLIENT_ID,
// a client id, or a bare name (a user, else a token of the registry).
func (h *Handler) explainIdentity(ctx context.Context, reg store.Registry, s string) (access.Principal, error) {
	kind, name, explicit := strings.Cut(s, ":")
	if !explicit {
		kind, name = "", s
	}
	switch {
	case s == "":
		return access.Principal{}, invalid("identity is required: a user name, a service principal's client id, token:NAME, admin or anonymous")
	case s == "anonymous":
		return access.Anonymous, nil
	case s == "admin":
		return access.Principal{Kind: access.KindAdmin, Name: reg.Name, ID: reg.ID, Registry: reg.Name}, nil
	case kind == "token":
		t, err := h.Store.Token(ctx, reg.ID, name)
		if err != nil {
			return access.Principal{}, storeError(err, fmt.Sprintf("token %q of registry %q", name, reg.Name))
		}
		return access.Principal{Kind: access.KindToken, Name: t.Name, ID: t.ID, Registry: reg.Name}, nil
	case kind == "sp" || kind == "" && directory.IsGUID(strings.ToLower(name)):
		sp, err := h.Store.ServicePrincipalByAppID(ctx, strings.ToLower(name))
		if err != nil {
			return access.Principal{}, storeError(err, fmt.Sprintf("service principal %q", name))
		}
		return access.Principal{Kind: access.KindSP, Name: sp.AppID, ID: sp.ID}, nil
	case kind == "user" || kind == "":
		u, err := h.Store.UserByName(ctx, name)
		if err == nil {
			return access.Principal{Kind: access.KindUser, Name: u.Name, ID: u.ID}, nil
		}
		if kind == "" && errors.Is(err, store.ErrNotFound) {
			if t, terr := h.Store.Token(ctx, reg.ID, name); terr == nil {
				return access.Principal{Kind: access.KindToken, Name: t.Name, ID: t.ID, Registry: reg.Name}, nil
			}
		}
		return access.Principal{}, storeError(err, fmt.Sprintf("user %q", name))
	}
	return access.Principal{}, invalid("identity %q is invalid: use a user name, a client id, token:NAME, admin or anonymous", s)
}

// permissions answers GET …/permissions[?repository=R]: what the caller may do at the registry —
// its control-plane permissions there and its data actions on the repository (or on the catalog)
// under the policy, with the network's answer for the caller's address. It is how a client (the
// portal) offers only what the caller may do, from the same decisions as every other route.
func (h *Handler) permissions(w http.ResponseWriter, r *http.Request, p access.Principal) error {
	reg, err := h.registry(r.Context(), r)
	if err != nil {
		return err
	}
	snap := h.Policy.Snapshot()
	if !policy.HasAnyRole(snap, p, reg.Name) {
		return httperr.New(CodeNotFound, "registry %q was not found", reg.Name).WithStatus(http.StatusNotFound)
	}
	out := client.Permissions{Registry: reg.Name, Permissions: []string{}, Actions: []string{}}
	for _, perm := range policy.Permissions(snap, p, reg.Name) {
		out.Permissions = append(out.Permissions, string(perm))
	}
	res := policy.Resource{Registry: reg.Name, Type: policy.TypeRegistry, Name: "catalog"}
	actions := []policy.Action{policy.ActionCatalog}
	if repo := r.URL.Query().Get("repository"); repo != "" {
		if err := oci.ValidateName(repo); err != nil {
			return invalid("repository: %v", err)
		}
		out.Repository = repo
		res = policy.Resource{Registry: reg.Name, Type: policy.TypeRepository, Name: repo}
		actions = []policy.Action{policy.ActionPull, policy.ActionPush, policy.ActionDelete, policy.ActionMetadataRead, policy.ActionMetadataWrite}
	}
	for _, a := range actions {
		if policy.Decide(snap, p, a, res).Allow {
			name := string(a)
			if a == policy.ActionCatalog {
				name = "catalog"
			}
			out.Actions = append(out.Actions, name)
		}
	}
	d := snap.Network(reg.Name, authn.ClientAddr(r))
	out.Network = client.Decision{Allow: d.Allow, Code: d.Code, Reason: d.Reason}
	return reply(w, http.StatusOK, out)
}

package policy

import (
	"context"
)

// Input is everything a snapshot is compiled from: the store's registries, identities, tokens,
// scope maps and role assignments, in policy's own terms (package store reads them:
// store.Store.PolicyInput).
type Input struct {
	Version           int64
	Registries        []Registry
	ScopeMaps         []ScopeMap
	Tokens            []Token
	Assignments       []RoleAssignment
	Memberships       map[int64][]int64 // user id → group ids
	Users             []User
	Groups            []Group
	ServicePrincipals []ServicePrincipal
}

// Registry is what the policy needs of a registry.
type Registry struct {
	ID                        int64
	Name                      string
	AdminEnabled              bool
	RoleAssignmentMode        string // rbac or rbac-abac
	AnonymousPullEnabled      bool
	AnonymousPullRepositories []string // names and "prefix/*" patterns
	PublicNetworkAccess       bool
	DefaultAction             string // DefaultActionAllow or DefaultActionDeny
	NetworkRules              []NetworkRule
}

// The network default actions.
const (
	DefaultActionAllow = "Allow"
	DefaultActionDeny  = "Deny"
)

// NetworkRule is an allowed address range.
type NetworkRule struct {
	Value string // canonical CIDR
}

// ScopeMap is a named set of rules of one registry.
type ScopeMap struct {
	ID, RegistryID int64
	Name           string
	Rules          []ScopeRule
}

// ScopeRule grants an action (content/read …) on a repository, a "prefix/*" or "*".
type ScopeRule struct {
	Repository, Action string
}

// Token is a repository-scoped token.
type Token struct {
	ID, RegistryID int64
	Name           string
	ScopeMapID     int64  // 0: none
	ScopeMap       string // its name
	Status         string // enabled or disabled
}

// RoleAssignment gives a role to a user, group or service principal at a scope.
type RoleAssignment struct {
	ID                          string
	PrincipalKind               string // AssigneeUser, AssigneeGroup or AssigneeSP
	PrincipalID                 int64
	Role, Scope                 string
	Condition, ConditionVersion string
}

// The kinds of assignee.
const (
	AssigneeUser  = "user"
	AssigneeGroup = "group"
	AssigneeSP    = "sp"
)

// User is a directory user.
type User struct {
	ID   int64
	Name string
}

// Group is a directory group.
type Group struct {
	ID   int64
	Name string
}

// ServicePrincipal is a directory application, named by its client id.
type ServicePrincipal struct {
	ID    int64
	AppID string
}

// Source is where snapshots come from (the store).
type Source interface {
	// PolicyVersion increases with every change of what Input holds.
	PolicyVersion(ctx context.Context) (int64, error)
	// PolicyInput reads everything, its Version read first.
	PolicyInput(ctx context.Context) (Input, error)
}

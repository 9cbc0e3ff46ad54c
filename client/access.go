package client

import (
	"context"
	"net/http"
	"net/url"
	"slices"
)

// NetworkRuleAdd allows an address or CIDR (Action is Allow).
type NetworkRuleAdd struct {
	Value  string `json:"value"`
	Action string `json:"action,omitempty"`
}

// NetworkRules lists a registry's network rules.
func (c *Client) NetworkRules(ctx context.Context, registry string) (NetworkRuleSet, error) {
	var out NetworkRuleSet
	return out, c.Do(ctx, http.MethodGet, reg(registry)+"/networkRules", nil, &out)
}

// AddNetworkRule allows an IPv4/IPv6 address or CIDR.
func (c *Client) AddNetworkRule(ctx context.Context, registry, value string) (NetworkRuleSet, error) {
	var out NetworkRuleSet
	return out, c.Do(ctx, http.MethodPost, reg(registry)+"/networkRules", NetworkRuleAdd{Value: value, Action: "Allow"}, &out)
}

// RemoveNetworkRule removes the rule for an address or CIDR.
func (c *Client) RemoveNetworkRule(ctx context.Context, registry, value string) (NetworkRuleSet, error) {
	var out NetworkRuleSet
	return out, c.Do(ctx, http.MethodDelete, reg(registry)+"/networkRules/"+url.PathEscape(value), nil, &out)
}

// RoleDefinition is a built-in role.
type RoleDefinition struct {
	RoleName string `json:"roleName"`
	// ID and Name are ACR's role definition GUID (az prints the GUID as name and a path as id).
	ID          string `json:"id"`
	Name        string `json:"name"`
	RoleType    string `json:"roleType"` // BuiltInRole
	Type        string `json:"type"`
	Description string `json:"description"`
	// Permissions is az's shape: the control-plane actions and the data actions of both modes.
	Permissions      []RolePermission `json:"permissions"`
	AssignableScopes []string         `json:"assignableScopes"`
	// DataActions are the data actions per mode, rbac and rbac-abac (berth's).
	DataActions        map[string][]string `json:"dataActions"`
	Actions            []string            `json:"actions"`
	ConditionsAllowed  bool                `json:"conditionsAllowed"`
	ReplacementInABAC  string              `json:"replacementInRbacAbac,omitempty"`
	HonouredInRBAC     bool                `json:"honouredInRbac"`
	HonouredInRBACABAC bool                `json:"honouredInRbacAbac"`
}

// RolePermission is az's permissions entry of a role definition.
type RolePermission struct {
	Actions        []string `json:"actions"`
	NotActions     []string `json:"notActions"`
	DataActions    []string `json:"dataActions"`
	NotDataActions []string `json:"notDataActions"`
}

// RoleDefinitions lists the built-in roles.
func (c *Client) RoleDefinitions(ctx context.Context) ([]RoleDefinition, error) {
	var out []RoleDefinition
	return out, c.Do(ctx, http.MethodGet, "/mgmt/v1/roleDefinitions", nil, &out)
}

// RoleAssignment gives a principal a role at a scope.
type RoleAssignment struct {
	ID                 string  `json:"id"`
	Type               string  `json:"type"`
	Name               string  `json:"name"`
	PrincipalID        string  `json:"principalId"`
	PrincipalName      string  `json:"principalName"`
	PrincipalType      string  `json:"principalType"`
	RoleDefinitionName string  `json:"roleDefinitionName"`
	RoleDefinitionID   string  `json:"roleDefinitionId,omitempty"`
	Scope              string  `json:"scope"`
	Condition          *string `json:"condition"`
	ConditionVersion   *string `json:"conditionVersion"`
	CreatedOn          *string `json:"createdOn"`
}

// RoleAssignmentCreate is a new assignment. Assignee is a user or group name, a service
// principal's client id, or user:NAME, group:NAME, sp:CLIENT_ID.
type RoleAssignmentCreate struct {
	Assignee         string `json:"assignee"`
	Role             string `json:"role"`
	Scope            string `json:"scope"`
	Condition        string `json:"condition,omitempty"`
	ConditionVersion string `json:"conditionVersion,omitempty"`
}

// RoleAssignmentFilter narrows a listing; empty fields match everything.
type RoleAssignmentFilter struct {
	Assignee, Role, Scope string
}

// RoleAssignments lists the assignments the caller may read.
func (c *Client) RoleAssignments(ctx context.Context, f RoleAssignmentFilter) ([]RoleAssignment, error) {
	q := url.Values{}
	for k, v := range map[string]string{"assignee": f.Assignee, "role": f.Role, "scope": f.Scope} {
		if v != "" {
			q.Set(k, v)
		}
	}
	path := "/mgmt/v1/roleAssignments"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out []RoleAssignment
	return out, c.Do(ctx, http.MethodGet, path, nil, &out)
}

// CreateRoleAssignment assigns a role.
func (c *Client) CreateRoleAssignment(ctx context.Context, a RoleAssignmentCreate) (RoleAssignment, error) {
	var out RoleAssignment
	return out, c.Do(ctx, http.MethodPost, "/mgmt/v1/roleAssignments", a, &out)
}

// DeleteRoleAssignment removes an assignment by id.
func (c *Client) DeleteRoleAssignment(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/mgmt/v1/roleAssignments/"+url.PathEscape(id), nil, nil)
}

// Explanation is a decision with every rule considered.
type Explanation struct {
	Identity   string    `json:"identity"`
	Registry   string    `json:"registry"`
	Mode       string    `json:"mode,omitempty"`
	Resource   string    `json:"resource"`
	Action     string    `json:"action"`
	DataAction string    `json:"dataAction"`
	IP         string    `json:"ip,omitempty"`
	Allowed    bool      `json:"allowed"`
	Network    *Decision `json:"network,omitempty"`
	Management *Decision `json:"management,omitempty"`
	Decision   Decision  `json:"decision"`
	Steps      []Step    `json:"steps"`
}

// Decision is allow or deny with its reason.
type Decision struct {
	Allow    bool   `json:"allow"`
	Filtered bool   `json:"filtered,omitempty"`
	Code     string `json:"code"`
	Reason   string `json:"reason"`
}

// Step is one rule a decision considered.
type Step struct {
	Source  string `json:"source"`
	Ref     string `json:"ref,omitempty"`
	Matched bool   `json:"matched"`
	Detail  string `json:"detail"`
}

// ExplainRequest names the question.
type ExplainRequest struct {
	Registry, Identity, Repository, Action, IP string
	// Grant, when set, is the access token's grant the request would carry
	// ("repository:samples/app:pull"): the answer then also says whether it includes the action.
	Grant []string
	// Subject, for a service principal, says which of its federated credentials an external
	// token with this subject (sub) would match.
	Subject string
}

// Explain asks why identity may or may not do action on repository.
func (c *Client) Explain(ctx context.Context, r ExplainRequest) (Explanation, error) {
	q := url.Values{"identity": {r.Identity}, "action": {r.Action}}
	if r.Repository != "" {
		q.Set("repository", r.Repository)
	}
	if r.IP != "" {
		q.Set("ip", r.IP)
	}
	for _, g := range r.Grant {
		q.Add("grant", g)
	}
	if r.Subject != "" {
		q.Set("subject", r.Subject)
	}
	var out Explanation
	return out, c.Do(ctx, http.MethodGet, reg(r.Registry)+"/explain?"+q.Encode(), nil, &out)
}

// Permissions are what the caller may do at a registry: its control-plane permissions there
// (registries/write, roleAssignments/read …) and its data actions on a repository (pull, push,
// delete, metadata_read, metadata_write) or, without one, "catalog"; Network is the network
// rules' answer for the caller's address.
type Permissions struct {
	Registry    string   `json:"registry"`
	Repository  string   `json:"repository,omitempty"`
	Permissions []string `json:"permissions"`
	Actions     []string `json:"actions"`
	Network     Decision `json:"network"`
}

// Has reports whether the control-plane permission perm is among p's.
func (p Permissions) Has(perm string) bool { return slices.Contains(p.Permissions, perm) }

// Can reports whether the data action is among p's.
func (p Permissions) Can(action string) bool { return slices.Contains(p.Actions, action) }

// MyPermissions asks what the caller may do at registry and, when repository is not "", on it.
func (c *Client) MyPermissions(ctx context.Context, registry, repository string) (Permissions, error) {
	path := reg(registry) + "/permissions"
	if repository != "" {
		path += "?" + url.Values{"repository": {repository}}.Encode()
	}
	var out Permissions
	return out, c.Do(ctx, http.MethodGet, path, nil, &out)
}

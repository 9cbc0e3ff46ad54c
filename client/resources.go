package client

import (
	"context"
	"net/http"
	"net/url"
)

// The resource types of az's output, kept so that scripts filtering on type keep working.
const (
	TypeRegistry       = "Microsoft.ContainerRegistry/registries"
	TypeToken          = "Microsoft.ContainerRegistry/registries/tokens"
	TypeScopeMap       = "Microsoft.ContainerRegistry/registries/scopeMaps"
	TypeRoleAssignment = "Microsoft.Authorization/roleAssignments"
	TypeRoleDefinition = "Microsoft.Authorization/roleDefinitions"
	// ProvisioningSucceeded is every resource's provisioningState: berth makes them at once.
	ProvisioningSucceeded = "Succeeded"
)

// Registry is a registry of the server.
type Registry struct {
	ID                string `json:"id"`
	Type              string `json:"type"`
	ProvisioningState string `json:"provisioningState"`
	Name              string `json:"name"`
	LoginServer       string `json:"loginServer"`
	Default           bool   `json:"default"`
	AdminUserEnabled  bool   `json:"adminUserEnabled"`
	// RoleAssignmentMode is rbac or rbac-abac.
	RoleAssignmentMode        string         `json:"roleAssignmentMode"`
	AnonymousPullEnabled      bool           `json:"anonymousPullEnabled"`
	AnonymousPullRepositories []string       `json:"anonymousPullRepositories"`
	PublicNetworkAccess       string         `json:"publicNetworkAccess"`
	NetworkRuleSet            NetworkRuleSet `json:"networkRuleSet"`
	CreationDate              *string        `json:"creationDate"`
	Credentials               *Credentials   `json:"credentials,omitempty"`
	Policies                  Policies       `json:"policies"`
}

// Policies are a registry's content policies, as az acr show prints them.
type Policies struct {
	RetentionPolicy  RetentionPolicy  `json:"retentionPolicy"`
	SoftDeletePolicy SoftDeletePolicy `json:"softDeletePolicy"`
}

// RetentionPolicy deletes untagged manifests Days after they lost their last tag.
type RetentionPolicy struct {
	Days            int     `json:"days"`
	LastUpdatedTime *string `json:"lastUpdatedTime"`
	// Status is enabled or disabled.
	Status string `json:"status"`
}

// SoftDeletePolicy keeps deleted manifests, restorable, for RetentionDays.
type SoftDeletePolicy struct {
	RetentionDays   int     `json:"retentionDays"`
	LastUpdatedTime *string `json:"lastUpdatedTime"`
	Status          string  `json:"status"`
}

// PoliciesUpdate changes a registry's content policies; nil fields stay.
type PoliciesUpdate struct {
	RetentionPolicy  *RetentionPolicyUpdate  `json:"retentionPolicy,omitempty"`
	SoftDeletePolicy *SoftDeletePolicyUpdate `json:"softDeletePolicy,omitempty"`
}

// RetentionPolicyUpdate changes the retention policy (days 0–365; status enabled or disabled).
type RetentionPolicyUpdate struct {
	Days   *int    `json:"days,omitempty"`
	Status *string `json:"status,omitempty"`
}

// SoftDeletePolicyUpdate changes the soft-delete policy (days 1–90).
type SoftDeletePolicyUpdate struct {
	RetentionDays *int    `json:"retentionDays,omitempty"`
	Status        *string `json:"status,omitempty"`
}

// NetworkRuleSet is a registry's network access: the default action and the allow rules.
type NetworkRuleSet struct {
	DefaultAction string   `json:"defaultAction"`
	IPRules       []IPRule `json:"ipRules"`
}

// IPRule allows an address or CIDR: ipAddressOrRange as in ACR, and value, berth's first name
// for it, the same.
type IPRule struct {
	Action           string `json:"action"`
	IPAddressOrRange string `json:"ipAddressOrRange"`
	Value            string `json:"value"`
}

// Credentials are the user name and passwords of an admin user or token. A password's Value is
// set only in the reply that generated it.
type Credentials struct {
	Username  string     `json:"username"`
	Passwords []Password `json:"passwords"`
	// Certificates is a token's (always empty: berth tokens have passwords only); absent for the
	// admin user, as in az.
	Certificates *[]TokenCertificate `json:"certificates,omitempty"`
}

// TokenCertificate is ACR's token certificate, which berth does not issue.
type TokenCertificate struct {
	Name       string  `json:"name"`
	Expiry     *string `json:"expiry"`
	Thumbprint string  `json:"thumbprint"`
}

// Password is one named password.
type Password struct {
	Name         string  `json:"name"`
	Value        *string `json:"value"`
	CreationTime *string `json:"creationTime,omitempty"`
	Expiry       *string `json:"expiry"`
}

// RegistryUpdate changes a registry; nil fields stay.
type RegistryUpdate struct {
	Name                      string                `json:"name,omitempty"`
	LoginServer               *string               `json:"loginServer,omitempty"`
	AdminUserEnabled          *bool                 `json:"adminUserEnabled,omitempty"`
	RoleAssignmentMode        *string               `json:"roleAssignmentMode,omitempty"`
	AnonymousPullEnabled      *bool                 `json:"anonymousPullEnabled,omitempty"`
	AnonymousPullRepositories *[]string             `json:"anonymousPullRepositories,omitempty"`
	PublicNetworkAccess       *string               `json:"publicNetworkAccess,omitempty"`
	NetworkRuleSet            *NetworkRuleSetUpdate `json:"networkRuleSet,omitempty"`
	Policies                  *PoliciesUpdate       `json:"policies,omitempty"`
}

// NetworkRuleSetUpdate changes the default action.
type NetworkRuleSetUpdate struct {
	DefaultAction *string `json:"defaultAction,omitempty"`
}

func reg(name string) string { return "/mgmt/v1/registries/" + url.PathEscape(name) }

// Registries lists the registries.
func (c *Client) Registries(ctx context.Context) ([]Registry, error) {
	var out []Registry
	return out, c.Do(ctx, http.MethodGet, "/mgmt/v1/registries", nil, &out)
}

// Registry returns one registry.
func (c *Client) Registry(ctx context.Context, name string) (Registry, error) {
	var out Registry
	return out, c.Do(ctx, http.MethodGet, reg(name), nil, &out)
}

// CreateRegistry creates a registry.
func (c *Client) CreateRegistry(ctx context.Context, r RegistryUpdate) (Registry, error) {
	var out Registry
	return out, c.Do(ctx, http.MethodPost, "/mgmt/v1/registries", r, &out)
}

// UpdateRegistry changes a registry's settings.
func (c *Client) UpdateRegistry(ctx context.Context, name string, r RegistryUpdate) (Registry, error) {
	var out Registry
	return out, c.Do(ctx, http.MethodPatch, reg(name), r, &out)
}

// DeleteRegistry deletes a registry.
func (c *Client) DeleteRegistry(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, reg(name), nil, nil)
}

// AdminCredentials shows the admin user's name and password names.
func (c *Client) AdminCredentials(ctx context.Context, registry string) (Credentials, error) {
	var out Credentials
	return out, c.Do(ctx, http.MethodGet, reg(registry)+"/credentials", nil, &out)
}

// ListCredentials returns the admin user's name and both passwords (ACR's listCredentials). A
// password made before berth kept admin passwords has no value until it is renewed.
func (c *Client) ListCredentials(ctx context.Context, registry string) (Credentials, error) {
	var out Credentials
	return out, c.Do(ctx, http.MethodPost, reg(registry)+"/listCredentials", nil, &out)
}

// RegistryUsage is az acr show-usage: the bytes, repositories, manifests and tags a registry
// holds.
func (c *Client) RegistryUsage(ctx context.Context, registry string) (Usage, error) {
	var out Usage
	return out, c.Do(ctx, http.MethodGet, reg(registry)+"/usage", nil, &out)
}

// RepositoryUsage is the bytes, manifests and tags of one repository.
func (c *Client) RepositoryUsage(ctx context.Context, registry, repository string) (Usage, error) {
	var out Usage
	return out, c.Do(ctx, http.MethodGet, reg(registry)+"/usage?"+url.Values{"repository": {repository}}.Encode(), nil, &out)
}

// CredentialRenew names the admin password to regenerate: password or password2.
type CredentialRenew struct {
	Name string `json:"name"`
}

// RenewAdminCredential regenerates password or password2 of the admin user.
func (c *Client) RenewAdminCredential(ctx context.Context, registry, name string) (Credentials, error) {
	var out Credentials
	return out, c.Do(ctx, http.MethodPost, reg(registry)+"/credentials/renew", CredentialRenew{Name: name}, &out)
}

// Token is a repository-scoped token.
type Token struct {
	ID                string `json:"id"`
	Type              string `json:"type"`
	ProvisioningState string `json:"provisioningState"`
	// ScopeMapID is the scope map's id, as az prints it; ScopeMapName its name.
	ScopeMapID   *string      `json:"scopeMapId"`
	Name         string       `json:"name"`
	Status       string       `json:"status"`
	ScopeMapName string       `json:"scopeMapName"`
	CreationDate *string      `json:"creationDate"`
	Credentials  *Credentials `json:"credentials"`
}

// RepositoryActions is one repository pattern with its scope-map actions.
type RepositoryActions struct {
	Repository string   `json:"repository"`
	Actions    []string `json:"actions"`
}

// TokenCreate describes a new token: a scope map, or repositories to make one from.
type TokenCreate struct {
	Name         string              `json:"name"`
	ScopeMap     *string             `json:"scopeMap,omitempty"`
	Repositories []RepositoryActions `json:"repositories,omitempty"`
	Status       *string             `json:"status,omitempty"`
	NoPasswords  bool                `json:"noPasswords,omitempty"`
	Expiry       string              `json:"expiry,omitempty"`
	ExpiryInDays int                 `json:"expiryInDays,omitempty"`
}

// TokenUpdate changes a token; an empty ScopeMap detaches it.
type TokenUpdate struct {
	Status   *string `json:"status,omitempty"`
	ScopeMap *string `json:"scopeMap,omitempty"`
}

// TokenCredentials asks for new token passwords (both when neither is set).
type TokenCredentials struct {
	Password1    bool   `json:"password1,omitempty"`
	Password2    bool   `json:"password2,omitempty"`
	Expiry       string `json:"expiry,omitempty"`
	ExpiryInDays int    `json:"expiryInDays,omitempty"`
}

func tok(registry, name string) string { return reg(registry) + "/tokens/" + url.PathEscape(name) }

// Tokens lists a registry's tokens.
func (c *Client) Tokens(ctx context.Context, registry string) ([]Token, error) {
	var out []Token
	return out, c.Do(ctx, http.MethodGet, reg(registry)+"/tokens", nil, &out)
}

// Token returns one token.
func (c *Client) Token(ctx context.Context, registry, name string) (Token, error) {
	var out Token
	return out, c.Do(ctx, http.MethodGet, tok(registry, name), nil, &out)
}

// CreateToken creates a token; the reply shows its passwords once.
func (c *Client) CreateToken(ctx context.Context, registry string, t TokenCreate) (Token, error) {
	var out Token
	return out, c.Do(ctx, http.MethodPost, reg(registry)+"/tokens", t, &out)
}

// UpdateToken changes a token's status or scope map.
func (c *Client) UpdateToken(ctx context.Context, registry, name string, u TokenUpdate) (Token, error) {
	var out Token
	return out, c.Do(ctx, http.MethodPatch, tok(registry, name), u, &out)
}

// DeleteToken deletes a token.
func (c *Client) DeleteToken(ctx context.Context, registry, name string) error {
	return c.Do(ctx, http.MethodDelete, tok(registry, name), nil, nil)
}

// GenerateTokenCredentials regenerates token passwords.
func (c *Client) GenerateTokenCredentials(ctx context.Context, registry, name string, r TokenCredentials) (Token, error) {
	var out Token
	return out, c.Do(ctx, http.MethodPost, tok(registry, name)+"/credentials", r, &out)
}

// DeleteTokenCredential deletes password1 or password2 of a token.
func (c *Client) DeleteTokenCredential(ctx context.Context, registry, name, password string) error {
	return c.Do(ctx, http.MethodDelete, tok(registry, name)+"/credentials/"+url.PathEscape(password), nil, nil)
}

// ScopeMap is a named set of repository actions.
type ScopeMap struct {
	ID                string `json:"id"`
	ProvisioningState string `json:"provisioningState"`
	Name              string `json:"name"`
	Description       string `json:"description"`
	// Type is SystemDefined or UserDefined (az's table column TYPE).
	Type         string   `json:"type"`
	Actions      []string `json:"actions"`
	CreationDate *string  `json:"creationDate"`
}

// ScopeMapCreate describes a new scope map.
type ScopeMapCreate struct {
	Name         string              `json:"name"`
	Description  string              `json:"description,omitempty"`
	Repositories []RepositoryActions `json:"repositories"`
}

// ScopeMapUpdate adds and removes actions, and may change the description.
type ScopeMapUpdate struct {
	Description        *string             `json:"description,omitempty"`
	AddRepositories    []RepositoryActions `json:"addRepositories,omitempty"`
	RemoveRepositories []RepositoryActions `json:"removeRepositories,omitempty"`
}

func smap(registry, name string) string { return reg(registry) + "/scopeMaps/" + url.PathEscape(name) }

// ScopeMaps lists a registry's scope maps.
func (c *Client) ScopeMaps(ctx context.Context, registry string) ([]ScopeMap, error) {
	var out []ScopeMap
	return out, c.Do(ctx, http.MethodGet, reg(registry)+"/scopeMaps", nil, &out)
}

// ScopeMap returns one scope map.
func (c *Client) ScopeMap(ctx context.Context, registry, name string) (ScopeMap, error) {
	var out ScopeMap
	return out, c.Do(ctx, http.MethodGet, smap(registry, name), nil, &out)
}

// CreateScopeMap creates a scope map.
func (c *Client) CreateScopeMap(ctx context.Context, registry string, m ScopeMapCreate) (ScopeMap, error) {
	var out ScopeMap
	return out, c.Do(ctx, http.MethodPost, reg(registry)+"/scopeMaps", m, &out)
}

// UpdateScopeMap changes a scope map; the change applies at once to its tokens.
func (c *Client) UpdateScopeMap(ctx context.Context, registry, name string, u ScopeMapUpdate) (ScopeMap, error) {
	var out ScopeMap
	return out, c.Do(ctx, http.MethodPatch, smap(registry, name), u, &out)
}

// DeleteScopeMap deletes a scope map no token uses.
func (c *Client) DeleteScopeMap(ctx context.Context, registry, name string) error {
	return c.Do(ctx, http.MethodDelete, smap(registry, name), nil, nil)
}

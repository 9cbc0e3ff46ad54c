package client

import (
	"context"
	"net/http"
	"net/url"
)

// User is a directory user. Password is set only when the server generated it.
type User struct {
	Name         string  `json:"name"`
	CreationDate *string `json:"creationDate"`
	Password     string  `json:"password,omitempty"`
	// SSOOnly users sign in with single sign-on only (berth auth login --sso).
	SSOOnly bool `json:"ssoOnly"`
}

// Group is a directory group.
type Group struct {
	Name         string   `json:"name"`
	Description  string   `json:"description"`
	Members      []string `json:"members"`
	CreationDate *string  `json:"creationDate"`
}

// ServicePrincipal is a directory application identity.
type ServicePrincipal struct {
	// ID is the object id in Entra; berth's principals have one id, the app id.
	ID                  string         `json:"id"`
	AppID               string         `json:"appId"`
	DisplayName         string         `json:"displayName"`
	CreationDate        *string        `json:"creationDate"`
	PasswordCredentials []SPCredential `json:"passwordCredentials"`
	Tenant              string         `json:"appOwnerOrganizationId"`
}

// SPCredential describes one secret of a service principal (never its value).
type SPCredential struct {
	KeyID         string  `json:"keyId"`
	StartDateTime *string `json:"startDateTime"`
	EndDateTime   *string `json:"endDateTime"`
}

// SPSecret is what creating a service principal or resetting its secret returns, as
// `az ad sp create-for-rbac` prints it.
type SPSecret struct {
	AppID       string `json:"appId"`
	Password    string `json:"password"`
	DisplayName string `json:"displayName,omitempty"`
	Tenant      string `json:"tenant"`
}

func user(name string) string  { return "/mgmt/v1/users/" + url.PathEscape(name) }
func group(name string) string { return "/mgmt/v1/groups/" + url.PathEscape(name) }
func sp(id string) string      { return "/mgmt/v1/servicePrincipals/" + url.PathEscape(id) }

// UserCreate is a new user; an empty Password makes the server generate one (returned once).
type UserCreate struct {
	Name     string `json:"name"`
	Password string `json:"password,omitempty"`
}

// UserUpdate sets a user's password (empty: the server generates one, returned once).
type UserUpdate struct {
	Password string `json:"password,omitempty"`
	// SSOOnly, when set, turns password sign-in off (true) or on (false) for the user; without
	// Password, the password is not reset.
	SSOOnly *bool `json:"ssoOnly,omitempty"`
}

// GroupCreate is a new group.
type GroupCreate struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// GroupMemberAdd names the user to add to a group.
type GroupMemberAdd struct {
	User string `json:"user"`
}

// SPCreate is a new service principal; its secret lasts Years (0: one).
type SPCreate struct {
	DisplayName string `json:"displayName,omitempty"`
	Years       int    `json:"years,omitempty"`
}

// SPSecretReset makes a new secret, replacing the others unless Append.
type SPSecretReset struct {
	Append bool `json:"append,omitempty"`
	Years  int  `json:"years,omitempty"`
}

// Users lists the users.
func (c *Client) Users(ctx context.Context) ([]User, error) {
	var out []User
	return out, c.Do(ctx, http.MethodGet, "/mgmt/v1/users", nil, &out)
}

// User returns one user.
func (c *Client) User(ctx context.Context, name string) (User, error) {
	var out User
	return out, c.Do(ctx, http.MethodGet, user(name), nil, &out)
}

// CreateUser creates a user; an empty password makes the server generate one (returned once).
func (c *Client) CreateUser(ctx context.Context, name, password string) (User, error) {
	var out User
	return out, c.Do(ctx, http.MethodPost, "/mgmt/v1/users", UserCreate{Name: name, Password: password}, &out)
}

// SetUserPassword sets (or, empty, regenerates) a user's password.
func (c *Client) SetUserPassword(ctx context.Context, name, password string) (User, error) {
	var out User
	return out, c.Do(ctx, http.MethodPatch, user(name), UserUpdate{Password: password}, &out)
}

// SetUserSSOOnly turns a user's password sign-in off (true: single sign-on only) or on.
func (c *Client) SetUserSSOOnly(ctx context.Context, name string, only bool) (User, error) {
	var out User
	return out, c.Do(ctx, http.MethodPatch, user(name), UserUpdate{SSOOnly: &only}, &out)
}

// DeleteUser deletes a user.
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, user(name), nil, nil)
}

// Groups lists the groups.
func (c *Client) Groups(ctx context.Context) ([]Group, error) {
	var out []Group
	return out, c.Do(ctx, http.MethodGet, "/mgmt/v1/groups", nil, &out)
}

// Group returns one group with its members.
func (c *Client) Group(ctx context.Context, name string) (Group, error) {
	var out Group
	return out, c.Do(ctx, http.MethodGet, group(name), nil, &out)
}

// CreateGroup creates a group.
func (c *Client) CreateGroup(ctx context.Context, name, description string) (Group, error) {
	var out Group
	return out, c.Do(ctx, http.MethodPost, "/mgmt/v1/groups", GroupCreate{Name: name, Description: description}, &out)
}

// DeleteGroup deletes a group.
func (c *Client) DeleteGroup(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, group(name), nil, nil)
}

// AddGroupMember adds a user to a group.
func (c *Client) AddGroupMember(ctx context.Context, name, member string) (Group, error) {
	var out Group
	return out, c.Do(ctx, http.MethodPost, group(name)+"/members", GroupMemberAdd{User: member}, &out)
}

// RemoveGroupMember removes a user from a group.
func (c *Client) RemoveGroupMember(ctx context.Context, name, member string) error {
	return c.Do(ctx, http.MethodDelete, group(name)+"/members/"+url.PathEscape(member), nil, nil)
}

// ServicePrincipals lists the service principals.
func (c *Client) ServicePrincipals(ctx context.Context) ([]ServicePrincipal, error) {
	var out []ServicePrincipal
	return out, c.Do(ctx, http.MethodGet, "/mgmt/v1/servicePrincipals", nil, &out)
}

// ServicePrincipal returns one service principal.
func (c *Client) ServicePrincipal(ctx context.Context, appID string) (ServicePrincipal, error) {
	var out ServicePrincipal
	return out, c.Do(ctx, http.MethodGet, sp(appID), nil, &out)
}

// CreateServicePrincipal creates a service principal whose secret lasts years (0: one).
func (c *Client) CreateServicePrincipal(ctx context.Context, displayName string, years int) (SPSecret, error) {
	var out SPSecret
	return out, c.Do(ctx, http.MethodPost, "/mgmt/v1/servicePrincipals", SPCreate{DisplayName: displayName, Years: years}, &out)
}

// ResetServicePrincipalSecret makes a new secret, replacing the others unless appendSecret.
func (c *Client) ResetServicePrincipalSecret(ctx context.Context, appID string, appendSecret bool, years int) (SPSecret, error) {
	var out SPSecret
	return out, c.Do(ctx, http.MethodPost, sp(appID)+"/credentials/reset", SPSecretReset{Append: appendSecret, Years: years}, &out)
}

// DeleteServicePrincipal deletes a service principal.
func (c *Client) DeleteServicePrincipal(ctx context.Context, appID string) error {
	return c.Do(ctx, http.MethodDelete, sp(appID), nil, nil)
}

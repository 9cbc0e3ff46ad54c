package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/registrytest"
)

// strict reads the reply of GET path as T, refusing any field T does not have, and checks that
// T written back is the reply: the client's types are the whole wire format, in both directions.
func strict[T any](t *testing.T, c *client.Client, path string) T {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.BaseURL+path, nil)
	req.Header.Set("Authorization", "Bearer "+c.AuthToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, raw)
	}
	var v T
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("GET %s: the reply has what %T lacks: %v\n%s", path, v, err, raw)
	}
	again, _ := json.Marshal(v)
	var a, b any
	json.Unmarshal(raw, &a)
	json.Unmarshal(again, &b)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("GET %s: %T does not carry the whole reply:\nserver: %s\nclient: %s", path, v, raw, again)
	}
	return v
}

func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

func ptr[T any](v T) *T { return &v }

// TestRoundTrip drives every method of the client against a real server, with every field of
// every request set, and reads every resource back both through the client and strictly.
func TestRoundTrip(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := client.New(s.URL, s.OwnerToken(t))
	ctx := context.Background()

	me := must[client.Me](t, "me")(c.Me(ctx))
	if me.Name != "owner" || me.Type != "user" || !me.ServerOwner || len(me.Permissions) != 10 {
		t.Errorf("me: %+v", me)
	}
	strict[client.Me](t, c, "/mgmt/v1/me")

	// Registries, with every setting.
	reg := must[client.Registry](t, "create registry")(c.CreateRegistry(ctx, client.RegistryUpdate{Name: "team-a", LoginServer: ptr("team-a.example:5000"),
		AdminUserEnabled: ptr(true), RoleAssignmentMode: ptr("rbac-abac"), AnonymousPullEnabled: ptr(false),
		AnonymousPullRepositories: ptr([]string{"public/*"}), PublicNetworkAccess: ptr("Enabled"),
		NetworkRuleSet: &client.NetworkRuleSetUpdate{DefaultAction: ptr("Allow")}}))
	if reg.Name != "team-a" || reg.LoginServer != "team-a.example:5000" || !reg.AdminUserEnabled || reg.RoleAssignmentMode != "rbac-abac" ||
		len(reg.AnonymousPullRepositories) != 1 || reg.Credentials == nil || len(reg.Credentials.Passwords) != 2 || reg.Credentials.Passwords[0].Value == nil {
		t.Errorf("created registry: %+v", reg)
	}
	reg0 := reg
	reg = must[client.Registry](t, "update registry")(c.UpdateRegistry(ctx, "team-a", client.RegistryUpdate{RoleAssignmentMode: ptr("rbac"),
		NetworkRuleSet: &client.NetworkRuleSetUpdate{DefaultAction: ptr("Deny")}}))
	if reg.RoleAssignmentMode != "rbac" || reg.NetworkRuleSet.DefaultAction != "Deny" || reg.Credentials != nil {
		t.Errorf("updated registry: %+v", reg)
	}
	if got := strict[client.Registry](t, c, "/mgmt/v1/registries/team-a"); got.LoginServer != reg.LoginServer || got.CreationDate == nil {
		t.Errorf("registry read back: %+v", got)
	}
	strict[[]client.Registry](t, c, "/mgmt/v1/registries")
	creds := must[client.Credentials](t, "renew")(c.RenewAdminCredential(ctx, "team-a", "password2"))
	if len(creds.Passwords) != 2 || creds.Passwords[1].Value == nil || creds.Passwords[0].Value == nil || *creds.Passwords[0].Value != *reg0.Credentials.Passwords[0].Value {
		t.Errorf("renewed: %+v", creds)
	}
	listed := must[client.Credentials](t, "list credentials")(c.ListCredentials(ctx, "team-a"))
	if listed.Username != "team-a" || len(listed.Passwords) != 2 || listed.Passwords[1].Value == nil || *listed.Passwords[1].Value != *creds.Passwords[1].Value {
		t.Errorf("listed: %+v", listed)
	}
	strict[client.Credentials](t, c, "/mgmt/v1/registries/team-a/credentials")
	rules := must[client.NetworkRuleSet](t, "add network rule")(c.AddNetworkRule(ctx, "team-a", "203.0.113.0/24"))
	if len(rules.IPRules) != 1 || rules.IPRules[0].Value != "203.0.113.0/24" || rules.IPRules[0].Action != "Allow" {
		t.Errorf("network rules: %+v", rules)
	}
	strict[client.NetworkRuleSet](t, c, "/mgmt/v1/registries/team-a/networkRules")
	if rules = must[client.NetworkRuleSet](t, "remove network rule")(c.RemoveNetworkRule(ctx, "team-a", "203.0.113.0/24")); len(rules.IPRules) != 0 {
		t.Errorf("after removing: %+v", rules)
	}

	perms := must[client.Permissions](t, "permissions")(c.MyPermissions(ctx, "team-a", ""))
	if perms.Registry != "team-a" || !perms.Has("registries/write") || !perms.Has("roleAssignments/write") || len(perms.Actions) != 1 || !perms.Can("catalog") || perms.Network.Allow || perms.Network.Code != "ip_denied" {
		t.Errorf("permissions: %+v", perms)
	}
	perms = must[client.Permissions](t, "repository permissions")(c.MyPermissions(ctx, "team-a", "team/app"))
	if perms.Repository != "team/app" || len(perms.Actions) != 5 || !perms.Can("delete") || perms.Can("catalog") {
		t.Errorf("repository permissions: %+v", perms)
	}
	strict[client.Permissions](t, c, "/mgmt/v1/registries/team-a/permissions?repository=team/app")
	if _, err := c.MyPermissions(ctx, "team-a", "Bad Name"); !client.IsStatus(err, http.StatusBadRequest) {
		t.Errorf("a bad repository name: %v", err)
	}

	// Tokens and scope maps.
	m := must[client.ScopeMap](t, "create scope map")(c.CreateScopeMap(ctx, "team-a", client.ScopeMapCreate{Name: "readers", Description: "read team/*",
		Repositories: []client.RepositoryActions{{Repository: "team/*", Actions: []string{"content/read", "metadata/read"}}}}))
	if m.Type != "UserDefined" || len(m.Actions) != 2 {
		t.Errorf("scope map: %+v", m)
	}
	m = must[client.ScopeMap](t, "update scope map")(c.UpdateScopeMap(ctx, "team-a", "readers", client.ScopeMapUpdate{Description: ptr("more"),
		AddRepositories:    []client.RepositoryActions{{Repository: "other", Actions: []string{"content/write"}}},
		RemoveRepositories: []client.RepositoryActions{{Repository: "team/*", Actions: []string{"metadata/read"}}}}))
	if m.Description != "more" || len(m.Actions) != 2 {
		t.Errorf("updated scope map: %+v", m)
	}
	strict[client.ScopeMap](t, c, "/mgmt/v1/registries/team-a/scopeMaps/readers")
	strict[[]client.ScopeMap](t, c, "/mgmt/v1/registries/team-a/scopeMaps")
	expiry := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	tok := must[client.Token](t, "create token")(c.CreateToken(ctx, "team-a", client.TokenCreate{Name: "ci-bot", ScopeMap: ptr("readers"),
		Status: ptr("enabled"), Expiry: expiry}))
	if tok.ScopeMapName != "readers" || tok.Credentials == nil || len(tok.Credentials.Passwords) != 2 || tok.Credentials.Passwords[0].Value == nil ||
		tok.Credentials.Passwords[0].Expiry == nil {
		t.Errorf("token: %+v", tok)
	}
	tok = must[client.Token](t, "create token")(c.CreateToken(ctx, "team-a", client.TokenCreate{Name: "ci-two", NoPasswords: true, ExpiryInDays: 3,
		Repositories: []client.RepositoryActions{{Repository: "two", Actions: []string{"content/read"}}}}))
	if tok.ScopeMapName != "ci-two-scope-map" || len(tok.Credentials.Passwords) != 0 {
		t.Errorf("token with repositories: %+v", tok)
	}
	tok = must[client.Token](t, "update token")(c.UpdateToken(ctx, "team-a", "ci-two", client.TokenUpdate{Status: ptr("disabled"), ScopeMap: ptr("readers")}))
	if tok.Status != "disabled" || tok.ScopeMapName != "readers" {
		t.Errorf("updated token: %+v", tok)
	}
	tok = must[client.Token](t, "generate")(c.GenerateTokenCredentials(ctx, "team-a", "ci-two", client.TokenCredentials{Password1: true, ExpiryInDays: 1}))
	if len(tok.Credentials.Passwords) != 1 || tok.Credentials.Passwords[0].Value == nil {
		t.Errorf("generated: %+v", tok)
	}
	tok = must[client.Token](t, "generate")(c.GenerateTokenCredentials(ctx, "team-a", "ci-two", client.TokenCredentials{Password2: true, Expiry: expiry}))
	if len(tok.Credentials.Passwords) != 2 {
		t.Errorf("generated password2: %+v", tok)
	}
	strict[client.Token](t, c, "/mgmt/v1/registries/team-a/tokens/ci-two")
	strict[[]client.Token](t, c, "/mgmt/v1/registries/team-a/tokens")
	if err := c.DeleteTokenCredential(ctx, "team-a", "ci-two", "password2"); err != nil {
		t.Error(err)
	}
	if err := c.DeleteToken(ctx, "team-a", "ci-two"); err != nil {
		t.Error(err)
	}

	// The directory.
	u := must[client.User](t, "create user")(c.CreateUser(ctx, "alice", ""))
	if u.Password == "" || u.CreationDate == nil {
		t.Errorf("user: %+v", u)
	}
	if u = must[client.User](t, "set password")(c.SetUserPassword(ctx, "alice", "a-chosen-password-123")); u.Password != "" {
		t.Errorf("a chosen password is not shown back: %+v", u)
	}
	strict[client.User](t, c, "/mgmt/v1/users/alice")
	strict[[]client.User](t, c, "/mgmt/v1/users")
	g := must[client.Group](t, "create group")(c.CreateGroup(ctx, "devs", "developers"))
	if g.Description != "developers" || len(g.Members) != 0 {
		t.Errorf("group: %+v", g)
	}
	if g = must[client.Group](t, "add member")(c.AddGroupMember(ctx, "devs", "alice")); len(g.Members) != 1 {
		t.Errorf("members: %+v", g)
	}
	strict[client.Group](t, c, "/mgmt/v1/groups/devs")
	strict[[]client.Group](t, c, "/mgmt/v1/groups")
	sp := must[client.SPSecret](t, "create sp")(c.CreateServicePrincipal(ctx, "puller", 2))
	if sp.AppID == "" || sp.Password == "" || sp.DisplayName != "puller" || sp.Tenant == "" {
		t.Errorf("sp: %+v", sp)
	}
	if again := must[client.SPSecret](t, "reset")(c.ResetServicePrincipalSecret(ctx, sp.AppID, true, 1)); again.Password == "" || again.Password == sp.Password {
		t.Errorf("reset: %+v", again)
	}
	if got := strict[client.ServicePrincipal](t, c, "/mgmt/v1/servicePrincipals/"+sp.AppID); len(got.PasswordCredentials) != 2 {
		t.Errorf("sp read back: %+v", got)
	}
	strict[[]client.ServicePrincipal](t, c, "/mgmt/v1/servicePrincipals")

	// Roles.
	defs := must[[]client.RoleDefinition](t, "role definitions")(c.RoleDefinitions(ctx))
	if len(defs) != 13 {
		t.Errorf("%d role definitions", len(defs))
	}
	strict[[]client.RoleDefinition](t, c, "/mgmt/v1/roleDefinitions")
	a := must[client.RoleAssignment](t, "assign")(c.CreateRoleAssignment(ctx, client.RoleAssignmentCreate{Assignee: "devs",
		Role: "Container Registry Repository Reader", Scope: "/registries/team-a",
		Condition:        "@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase 'team/'",
		ConditionVersion: "2.0"}))
	if a.PrincipalType != "Group" || a.PrincipalName != "devs" || a.Condition == nil || *a.ConditionVersion != "2.0" || a.RoleDefinitionID == "" {
		t.Errorf("assignment: %+v", a)
	}
	list := must[[]client.RoleAssignment](t, "list")(c.RoleAssignments(ctx, client.RoleAssignmentFilter{Assignee: "devs"}))
	if len(list) != 1 || list[0].ID != a.ID {
		t.Errorf("assignments of devs: %+v", list)
	}
	strict[[]client.RoleAssignment](t, c, "/mgmt/v1/roleAssignments")
	e := must[client.Explanation](t, "explain")(c.Explain(ctx, client.ExplainRequest{Registry: "team-a", Identity: "alice", Repository: "team/app",
		Action: "push", IP: "203.0.113.9", Grant: []string{"repository:team/app:pull"}}))
	if e.Allowed || e.Network == nil || e.Management == nil || e.Decision.Code == "" || len(e.Steps) == 0 {
		t.Errorf("explanation: %+v", e)
	}
	strict[client.Explanation](t, c, "/mgmt/v1/registries/team-a/explain?identity=alice&repository=team/app&action=pull&ip=203.0.113.9&grant=repository:team/app:pull")
	if err := c.DeleteRoleAssignment(ctx, a.ID); err != nil {
		t.Error(err)
	}

	// Events: the sign-ins above, and a pull of a manifest that is not there.
	user, pass := s.Admin(t)
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/v2/team/app/manifests/latest", nil)
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	s.SettleEvents(t)
	logins := must[[]client.LoginEvent](t, "login events")(c.LoginEvents(ctx, client.EventFilter{Limit: 5}))
	if len(logins) == 0 || logins[0].Time == "" || logins[0].CorrelationID == "" {
		t.Errorf("login events: %+v", logins)
	}
	strict[[]client.LoginEvent](t, c, "/mgmt/v1/events/login?limit=5")
	repos := must[[]client.RepositoryEvent](t, "repository events")(c.RepositoryEvents(ctx, client.EventFilter{Registry: "default"}))
	if len(repos) != 1 || repos[0].Operation != "pull" || repos[0].Status != http.StatusNotFound || repos[0].Repository != "team/app" {
		t.Errorf("repository events: %+v", repos)
	}
	strict[[]client.RepositoryEvent](t, c, "/mgmt/v1/registries/default/events/repository")
	var export strings.Builder
	if err := c.ExportEvents(ctx, "repository", client.EventFilter{Registry: "default"}, &export); err != nil || strings.Count(export.String(), "\n") != 1 {
		t.Errorf("export: %v %q", err, export.String())
	}

	// Deletes.
	if err := c.RemoveGroupMember(ctx, "devs", "alice"); err != nil {
		t.Error(err)
	}
	for _, err := range []error{c.DeleteGroup(ctx, "devs"), c.DeleteUser(ctx, "alice"), c.DeleteServicePrincipal(ctx, sp.AppID),
		c.DeleteScopeMap(ctx, "team-a", "ci-two-scope-map"), c.DeleteToken(ctx, "team-a", "ci-bot"), c.DeleteRegistry(ctx, "team-a")} {
		if err != nil {
			t.Error(err)
		}
	}
	if _, err := c.Registry(ctx, "team-a"); !client.IsStatus(err, http.StatusNotFound) {
		t.Errorf("deleted registry: %v", err)
	}
}

package mgmt_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/registrytest"
)

// TestControlPlaneRoles: what a Reader, a data-access administrator and an RBAC administrator at
// one registry may do through the management API.
func TestControlPlaneRoles(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	token := func(name string) string {
		var u struct{ Password string }
		if st := s.Mgmt(t, "POST", "/mgmt/v1/users", map[string]string{"name": name}, &u); st != http.StatusCreated {
			t.Fatalf("create user %s: %d", name, st)
		}
		_, tok, _ := signIn(t, s, url.Values{"grant_type": {"password"}, "username": {name}, "password": {u.Password}})
		return "Bearer " + tok
	}
	assign := func(user, role, scope string) {
		if st := s.Mgmt(t, "POST", "/mgmt/v1/roleAssignments", map[string]string{"assignee": user, "role": role, "scope": scope}, nil); st != http.StatusCreated {
			t.Fatalf("assign %s to %s: %d", role, user, st)
		}
	}
	reader, admin, rbac := token("reader1"), token("dataadmin"), token("rbacadmin")
	assign("reader1", "Reader", "/registries/default")
	assign("dataadmin", "Container Registry Contributor and Data Access Configuration Administrator", "/registries/default")
	assign("rbacadmin", "Role Based Access Control Administrator", "/registries/default")
	for _, tc := range []struct {
		who, auth, method, path, body string
		status                        int
	}{
		{"reader", reader, "GET", "/mgmt/v1/registries/default", "", 200},
		{"reader", reader, "GET", "/mgmt/v1/registries/default/tokens", "", 200},
		{"reader", reader, "PATCH", "/mgmt/v1/registries/default", `{"anonymousPullEnabled":true}`, 403},
		{"reader", reader, "POST", "/mgmt/v1/registries/default/tokens", `{"name":"tok-1","scopeMap":"_repositories_pull"}`, 403},
		{"reader", reader, "POST", "/mgmt/v1/roleAssignments", `{"assignee":"reader1","role":"Owner","scope":"/registries/default"}`, 403},
		{"reader", reader, "GET", "/mgmt/v1/users", "", 403}, // the directory needs a role at "/"
		{"data admin", admin, "PATCH", "/mgmt/v1/registries/default", `{"networkRuleSet":{"defaultAction":"Deny"}}`, 200},
		{"data admin", admin, "POST", "/mgmt/v1/registries/default/tokens", `{"name":"tok-1","scopeMap":"_repositories_pull"}`, 201},
		{"data admin", admin, "POST", "/mgmt/v1/roleAssignments", `{"assignee":"dataadmin","role":"Owner","scope":"/registries/default"}`, 403},
		{"data admin", admin, "POST", "/mgmt/v1/registries", `{"name":"elsewhere"}`, 403}, // creating needs a role at "/"
		{"rbac admin", rbac, "POST", "/mgmt/v1/roleAssignments", `{"assignee":"reader1","role":"AcrPush","scope":"/registries/default"}`, 201},
		{"rbac admin", rbac, "POST", "/mgmt/v1/roleAssignments", `{"assignee":"reader1","role":"AcrPush","scope":"/"}`, 403},
		{"rbac admin", rbac, "PATCH", "/mgmt/v1/registries/default", `{"anonymousPullEnabled":true}`, 403},
	} {
		if st, body := raw(t, s, tc.method, tc.path, tc.auth, tc.body); st != tc.status {
			t.Errorf("%s: %s %s = %d %s; want %d", tc.who, tc.method, tc.path, st, body, tc.status)
		}
	}
}

func TestNetworkRules(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	owner := "Bearer " + s.OwnerToken(t)
	add := func(value string) (int, string) {
		return raw(t, s, "POST", "/mgmt/v1/registries/default/networkRules", owner, fmt.Sprintf(`{"value":%q}`, value))
	}
	for _, tc := range []struct {
		value  string
		status int
		want   string
	}{
		{"203.0.113.7", 201, `"value":"203.0.113.7/32"`},
		{"2001:DB8::/32", 201, `"value":"2001:db8::/32"`},
		{"203.0.113.7/32", 409, "already exists"},
		{"10.0.0.0/33", 400, "not an IP address or CIDR"},
		{"example.com", 400, "not an IP address or CIDR"},
	} {
		if st, body := add(tc.value); st != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("add %q: %d %s; want %d with %q", tc.value, st, body, tc.status, tc.want)
		}
	}
	for i := 0; i < 198; i++ {
		if st, body := add(fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)); st != 201 {
			t.Fatalf("rule %d: %d %s", i, st, body)
		}
	}
	if st, body := add("192.0.2.1"); st != 409 || !strings.Contains(body, "200 network rules") {
		t.Errorf("rule 201: %d %s", st, body)
	}
	if st, body := raw(t, s, "DELETE", "/mgmt/v1/registries/default/networkRules/"+url.PathEscape("2001:db8::/32"), owner, ""); st != 200 || strings.Contains(body, "2001:db8") {
		t.Errorf("remove: %d %s", st, body)
	}
	if st, _ := raw(t, s, "DELETE", "/mgmt/v1/registries/default/networkRules/"+url.PathEscape("2001:db8::/32"), owner, ""); st != 404 {
		t.Errorf("remove twice: %d", st)
	}
	if st, body := raw(t, s, "PATCH", "/mgmt/v1/registries/default", owner, `{"networkRuleSet":{"defaultAction":"Block"}}`); st != 400 || !strings.Contains(body, "use Allow or Deny") {
		t.Errorf("bad default action: %d %s", st, body)
	}
}

// TestHostTakeover: host names belong to the whole server. An administrator of one registry
// cannot make it answer for another's host (exact host:port, other case or port, or the bare
// host); even the server's owner cannot give two registries one host; teamb keeps its traffic.
func TestHostTakeover(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	var teamb struct {
		Credentials struct {
			Username  string
			Passwords []struct{ Value string }
		}
	}
	if st := s.Mgmt(t, "POST", "/mgmt/v1/registries", map[string]any{"name": "teamb", "loginServer": "teamb.example:5000", "adminUserEnabled": true}, &teamb); st != http.StatusCreated {
		t.Fatalf("create teamb: %d", st)
	}
	if st := s.Mgmt(t, "POST", "/mgmt/v1/registries", map[string]any{"name": "teama", "loginServer": "teama.example"}, nil); st != http.StatusCreated {
		t.Fatalf("create teama: %d", st)
	}
	var u struct{ Password string }
	s.Mgmt(t, "POST", "/mgmt/v1/users", map[string]string{"name": "teama-owner"}, &u)
	s.Mgmt(t, "POST", "/mgmt/v1/roleAssignments", map[string]string{"assignee": "teama-owner", "role": "Owner", "scope": "/registries/teama"}, nil)
	_, tok, _ := signIn(t, s, url.Values{"grant_type": {"password"}, "username": {"teama-owner"}, "password": {u.Password}})
	teamaOwner := "Bearer " + tok

	for _, ls := range []string{"teamb.example:5000", "TEAMB.example:5000", "teamb.example", "teamb.example:6000", "elsewhere.example"} {
		if st, body := raw(t, s, "PATCH", "/mgmt/v1/registries/teama", teamaOwner, fmt.Sprintf(`{"loginServer":%q}`, ls)); st != http.StatusForbidden {
			t.Errorf("teama's owner sets its login server to %s: %d %s; want 403", ls, st, body)
		}
	}
	// Other settings, and the login server it already has, stay teama's owner's to change.
	if st, body := raw(t, s, "PATCH", "/mgmt/v1/registries/teama", teamaOwner, `{"loginServer":"teama.example","anonymousPullEnabled":true}`); st != http.StatusOK {
		t.Errorf("teama's owner changes teama's settings: %d %s", st, body)
	}
	owner := "Bearer " + s.OwnerToken(t)
	for _, ls := range []string{"teamb.example:5000", "TeamB.Example:5000", "teamb.example", "teamb.example:443", "teamb.example:6000"} {
		if st, body := raw(t, s, "PATCH", "/mgmt/v1/registries/teama", owner, fmt.Sprintf(`{"loginServer":%q}`, ls)); st != http.StatusConflict || !strings.Contains(body, "teamb") {
			t.Errorf("the server's owner gives teama teamb's host as %s: %d %s; want 409 naming teamb", ls, st, body)
		}
	}
	if st, body := raw(t, s, "POST", "/mgmt/v1/registries", owner, `{"name":"teamc","loginServer":"teamb.example:7000"}`); st != http.StatusConflict {
		t.Errorf("a new registry on teamb's host: %d %s; want 409", st, body)
	}
	if st, body := raw(t, s, "PATCH", "/mgmt/v1/registries/teama", owner, `{"loginServer":"https://teama.example/v2"}`); st != http.StatusBadRequest {
		t.Errorf("a URL as login server: %d %s; want 400", st, body)
	}
	// teamb's host still reaches teamb: its admin user signs in there.
	req, _ := http.NewRequest("GET", s.URL+"/v2/", nil)
	req.Host = "teamb.example:5000"
	req.SetBasicAuth(teamb.Credentials.Username, teamb.Credentials.Passwords[0].Value)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("teamb's admin user at teamb.example:5000: %d", resp.StatusCode)
	}
}

// TestLastOwner: the server always keeps someone with Owner at "/". A caller who may manage the
// directory and assign every role at "/" without being an Owner (Contributor and Role Based
// Access Control Administrator there) cannot delete the only Owner, nor the group or service
// principal that holds the role, nor the membership through which the last one holds it.
func TestLastOwner(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	var u struct{ Password string }
	s.Mgmt(t, "POST", "/mgmt/v1/users", map[string]string{"name": "contrib"}, &u)
	s.Mgmt(t, "POST", "/mgmt/v1/roleAssignments", map[string]string{"assignee": "contrib", "role": "Contributor", "scope": "/"}, nil)
	s.Mgmt(t, "POST", "/mgmt/v1/roleAssignments", map[string]string{"assignee": "contrib", "role": "Role Based Access Control Administrator", "scope": "/"}, nil)
	_, tok, _ := signIn(t, s, url.Values{"grant_type": {"password"}, "username": {"contrib"}, "password": {u.Password}})
	contrib := "Bearer " + tok
	owner := "Bearer " + s.OwnerToken(t)

	if st, body := raw(t, s, "DELETE", "/mgmt/v1/users/owner", contrib, ""); st != http.StatusConflict || !strings.Contains(body, "Owner role at '/'") {
		t.Errorf("delete the only Owner: %d %s; want 409", st, body)
	}
	// The role moves to a group whose only member is a second user, and owner's own assignment goes.
	var other struct{ Password string }
	s.Mgmt(t, "POST", "/mgmt/v1/users", map[string]string{"name": "second"}, &other)
	s.Mgmt(t, "POST", "/mgmt/v1/groups", map[string]string{"name": "admins"}, nil)
	s.Mgmt(t, "POST", "/mgmt/v1/groups/admins/members", map[string]string{"user": "second"}, nil)
	s.Mgmt(t, "POST", "/mgmt/v1/roleAssignments", map[string]string{"assignee": "admins", "role": "Owner", "scope": "/"}, nil)
	var list []struct{ ID, RoleDefinitionName, Scope string }
	s.Mgmt(t, "GET", "/mgmt/v1/roleAssignments?assignee=owner", nil, &list)
	deleted := 0
	for _, a := range list {
		if a.RoleDefinitionName == "Owner" && a.Scope == "/" {
			deleted++
			if st, body := raw(t, s, "DELETE", "/mgmt/v1/roleAssignments/"+a.ID, owner, ""); st != http.StatusNoContent {
				t.Fatalf("delete owner's own Owner assignment while the group holds it: %d %s", st, body)
			}
		}
	}
	if deleted != 1 {
		t.Fatalf("owner had %d Owner assignments at /: %+v", deleted, list)
	}
	for _, tc := range []struct{ what, path string }{
		{"the group", "/mgmt/v1/groups/admins"},
		{"the membership", "/mgmt/v1/groups/admins/members/second"},
		{"the member", "/mgmt/v1/users/second"},
	} {
		if st, body := raw(t, s, "DELETE", tc.path, contrib, ""); st != http.StatusConflict {
			t.Errorf("delete %s that holds the last Owner: %d %s; want 409", tc.what, st, body)
		}
	}
	if st, body := raw(t, s, "GET", "/mgmt/v1/groups/admins", contrib, ""); st != http.StatusOK || !strings.Contains(body, `"members":["second"]`) {
		t.Errorf("after the refusals: %d %s", st, body)
	}
}

// TestNoPermissionGrantsAnother (issue 15, attack 1): a Contributor at "/" manages the directory
// but cannot assign roles, so it cannot become anyone who holds one: no password reset of an
// Owner (or of anyone with a role), no joining a group that holds one, no new secret for a
// service principal that holds one. It still manages identities without roles and its own
// password; an Owner does all of it.
func TestNoPermissionGrantsAnother(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	newUser := func(name string) string {
		var u struct{ Password string }
		if st := s.Mgmt(t, "POST", "/mgmt/v1/users", map[string]string{"name": name}, &u); st != http.StatusCreated {
			t.Fatalf("create %s: %d", name, st)
		}
		return u.Password
	}
	assign := func(who, role, scope string) {
		if st := s.Mgmt(t, "POST", "/mgmt/v1/roleAssignments", map[string]string{"assignee": who, "role": role, "scope": scope}, nil); st != http.StatusCreated {
			t.Fatalf("assign %s to %s: %d", role, who, st)
		}
	}
	pw := newUser("contrib")
	assign("contrib", "Contributor", "/")
	_, tok, _ := signIn(t, s, url.Values{"grant_type": {"password"}, "username": {"contrib"}, "password": {pw}})
	contrib := "Bearer " + tok
	newUser("reader")
	assign("reader", "Reader", "/registries/default")
	newUser("plain")
	s.Mgmt(t, "POST", "/mgmt/v1/groups", map[string]string{"name": "admins"}, nil)
	assign("admins", "Owner", "/")
	s.Mgmt(t, "POST", "/mgmt/v1/groups", map[string]string{"name": "nobody"}, nil)
	var sp, plainSP struct{ AppID string }
	s.Mgmt(t, "POST", "/mgmt/v1/servicePrincipals", map[string]any{"displayName": "deployer"}, &sp)
	assign(sp.AppID, "Owner", "/")
	s.Mgmt(t, "POST", "/mgmt/v1/servicePrincipals", map[string]any{"displayName": "idle"}, &plainSP)

	for _, tc := range []struct {
		what, method, path, body string
		status                   int
	}{
		{"reset the Owner's password", "PATCH", "/mgmt/v1/users/owner", `{}`, 403},
		{"reset a Reader's password", "PATCH", "/mgmt/v1/users/reader", `{}`, 403},
		{"join a group that holds Owner", "POST", "/mgmt/v1/groups/admins/members", `{"user":"contrib"}`, 403},
		{"reset an Owner service principal's secret", "POST", "/mgmt/v1/servicePrincipals/" + sp.AppID + "/credentials/reset", `{}`, 403},
		{"reset the password of a user without roles", "PATCH", "/mgmt/v1/users/plain", `{}`, 200},
		{"reset its own password", "PATCH", "/mgmt/v1/users/contrib", `{}`, 200},
		{"join a group without roles", "POST", "/mgmt/v1/groups/nobody/members", `{"user":"contrib"}`, 200},
		{"reset a service principal without roles", "POST", "/mgmt/v1/servicePrincipals/" + plainSP.AppID + "/credentials/reset", `{}`, 200},
	} {
		st, body := raw(t, s, tc.method, tc.path, contrib, tc.body)
		if st != tc.status {
			t.Errorf("Contributor: %s: %d %s; want %d", tc.what, st, body, tc.status)
		}
		if st == 403 && !strings.Contains(body, "needs the right to assign roles") {
			t.Errorf("Contributor: %s: the refusal does not say why: %s", tc.what, body)
		}
	}
	// The refused password did not change: the Owner still signs in with its own.
	if st, _, body := signIn(t, s, url.Values{"grant_type": {"password"}, "username": {"owner"}, "password": {registrytest.OwnerPassword}}); st != http.StatusOK {
		t.Errorf("the Owner's password changed: %d %s", st, body)
	}
	owner := "Bearer " + s.OwnerToken(t)
	for _, path := range []string{"/mgmt/v1/users/reader", "/mgmt/v1/users/plain"} {
		if st, body := raw(t, s, "PATCH", path, owner, `{}`); st != http.StatusOK {
			t.Errorf("Owner: reset %s: %d %s", path, st, body)
		}
	}
	if st, body := raw(t, s, "POST", "/mgmt/v1/groups/admins/members", owner, `{"user":"plain"}`); st != http.StatusOK {
		t.Errorf("Owner: add to admins: %d %s", st, body)
	}
}

// TestExplainObeysVisibility (issue 15, attack 5): explain answers a registry the caller holds no
// role on with the same 404 as every other route (nothing of it, such as its network rules, is
// named), and explaining someone else needs the right to read role assignments.
func TestExplainObeysVisibility(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	s.Mgmt(t, "POST", "/mgmt/v1/registries", map[string]any{"name": "secret-reg"}, nil)
	if st := s.Mgmt(t, "POST", "/mgmt/v1/registries/secret-reg/networkRules", map[string]any{"value": "198.51.100.0/24"}, nil); st != http.StatusCreated && st != http.StatusOK {
		t.Fatalf("network rule: %d", st)
	}
	token := func(name, role, scope string) string {
		var u struct{ Password string }
		s.Mgmt(t, "POST", "/mgmt/v1/users", map[string]string{"name": name}, &u)
		if st := s.Mgmt(t, "POST", "/mgmt/v1/roleAssignments", map[string]string{"assignee": name, "role": role, "scope": scope}, nil); st != http.StatusCreated {
			t.Fatalf("assign %s: %d", name, st)
		}
		_, tok, _ := signIn(t, s, url.Values{"grant_type": {"password"}, "username": {name}, "password": {u.Password}})
		return "Bearer " + tok
	}
	outsider := token("outsider", "AcrPull", "/registries/default")
	dataAdmin := token("data-admin", "Container Registry Contributor and Data Access Configuration Administrator", "/registries/secret-reg")
	reader := token("reader", "Reader", "/registries/secret-reg")

	_, missing := raw(t, s, "GET", "/mgmt/v1/registries/no-such/explain?identity=outsider&action=pull&repository=a", outsider, "")
	st, body := raw(t, s, "GET", "/mgmt/v1/registries/secret-reg/explain?identity=outsider&action=pull&repository=a", outsider, "")
	if st != http.StatusNotFound || strings.Contains(body, "198.51.100") || !strings.Contains(body, `registry \"secret-reg\" was not found`) {
		t.Errorf("explain of oneself at a registry one has no role on: %d %s", st, body)
	}
	if st, show := raw(t, s, "GET", "/mgmt/v1/registries/secret-reg", outsider, ""); st != http.StatusNotFound || codeOf(show) != codeOf(body) || codeOf(missing) != codeOf(body) {
		t.Errorf("explain's 404 differs from the other routes': explain %s, show %s, missing %s", body, show, missing)
	}
	if st, body := raw(t, s, "GET", "/mgmt/v1/registries/secret-reg/explain?identity=token:nope&action=pull&repository=a", outsider, ""); st != http.StatusNotFound || strings.Contains(body, "nope") {
		t.Errorf("explain of a token at a registry one has no role on: %d %s", st, body)
	}
	// Oneself, with a role there: answered.
	if st, body := raw(t, s, "GET", "/mgmt/v1/registries/secret-reg/explain?identity=data-admin&action=pull&repository=a", dataAdmin, ""); st != http.StatusOK {
		t.Errorf("explain of oneself: %d %s", st, body)
	}
	// Someone else: needs roleAssignments/read there.
	if st, body := raw(t, s, "GET", "/mgmt/v1/registries/secret-reg/explain?identity=outsider&action=pull&repository=a", dataAdmin, ""); st != http.StatusForbidden {
		t.Errorf("explain of another without roleAssignments/read: %d %s; want 403", st, body)
	}
	if st, body := raw(t, s, "GET", "/mgmt/v1/registries/secret-reg/explain?identity=outsider&action=pull&repository=a", reader, ""); st != http.StatusOK {
		t.Errorf("a Reader explains another: %d %s", st, body)
	}
}

// codeOf is the first error code of a reply body, with the correlation id left out.
func codeOf(body string) string {
	i := strings.Index(body, `"code":"`)
	if i < 0 {
		return ""
	}
	rest := body[i+8:]
	return rest[:strings.IndexByte(rest, '"')]
}

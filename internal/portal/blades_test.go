package portal_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/registrytest"
)

// TestTokenBlade: a token made from repository actions (rows with their boxes) gets a scope map
// with exactly those actions and passwords shown once that sign in; a password generated later
// is shown; disabling refuses its sign-in; a scope map made on the blade lists its actions.
func TestTokenBlade(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	b := newBrowser(t, s.URL)
	b.signIn("owner", registrytest.OwnerPassword)
	b.get("/portal/r/default/tokens")
	form := url.Values{"name": {"ci-pusher"}, "repository1": {"ci/*"}, "actions1": {"content/read", "content/write"}, "repository2": {" "},
		"repository3": {"docs"}, "actions3": {"metadata/read"}, "expiryInDays": {"30"}}
	resp, page := b.post("/portal/r/default/tokens/create", form)
	pw := regexp.MustCompile(`id="token-password1">([^<]+)<`).FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || pw == nil || !strings.Contains(page, "(expires ") || !strings.Contains(page, "Its passwords are shown on this page only") {
		t.Fatalf("create: %d %s", resp.StatusCode, errorText(page))
	}
	var m client.ScopeMap
	s.Mgmt(t, "GET", "/mgmt/v1/registries/default/scopeMaps/ci-pusher-scope-map", nil, &m)
	if got := strings.Join(m.Actions, " "); got != "repositories/ci/*/content/read repositories/ci/*/content/write repositories/docs/metadata/read" {
		t.Errorf("the token's scope map: %q", got)
	}
	signIn := func(password string) int {
		req, _ := http.NewRequest("GET", s.URL+"/oauth2/token?service="+s.Host+"&scope=repository:ci/app:pull", nil)
		req.SetBasicAuth("ci-pusher", password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := signIn(pw[1]); st != http.StatusOK {
		t.Fatalf("the shown password: %d", st)
	}
	_, page = b.post("/portal/r/default/tokens/password", url.Values{"token": {"ci-pusher"}, "password": {"password2"}})
	pw2 := regexp.MustCompile(`id="token-password2">([^<]+)<`).FindStringSubmatch(page)
	if pw2 == nil || strings.Contains(page, `id="token-password1">`) || signIn(pw2[1]) != http.StatusOK {
		t.Fatalf("password2: %s", errorText(page))
	}
	page = b.change("/portal/r/default/tokens/status", url.Values{"token": {"ci-pusher"}, "enabled": {"false"}, "back": {"/portal/r/default/tokens"}}, "The token was updated.")
	if st := signIn(pw[1]); st != http.StatusUnauthorized {
		t.Errorf("a disabled token signs in: %d", st)
	}
	if !strings.Contains(page, "<td>ci-pusher</td><td>ci-pusher-scope-map</td><td>disabled</td>") {
		t.Errorf("the listed token: %s", page)
	}
	// No expiry ("0", or empty) is no expiry; a negative one is refused on the page, before the API.
	if resp, page := b.post("/portal/r/default/tokens/create", url.Values{"name": {"no-expiry"}, "scopeMap": {"_repositories_pull"}, "expiryInDays": {"0"}}); resp.StatusCode != http.StatusOK ||
		!strings.Contains(page, `id="token-password1"`) || strings.Contains(page, "(expires ") {
		t.Errorf("expiry 0: %d %s", resp.StatusCode, errorText(page))
	}
	if resp, page := b.post("/portal/r/default/tokens/create", url.Values{"name": {"other-token"}, "expiryInDays": {"-1"}}); resp.StatusCode != http.StatusBadRequest ||
		!strings.Contains(errorText(page), "whole number of days") {
		t.Errorf("expiry -1: %d %s", resp.StatusCode, errorText(page))
	}
	// A token on an existing scope map; a scope map made on the blade.
	page = b.change("/portal/r/default/scopemaps/create", url.Values{"name": {"readers"}, "description": {"read docs"}, "repository1": {"docs/*"}, "actions1": {"content/read"},
		"back": {"/portal/r/default/tokens"}}, "The scope map was created.")
	if !strings.Contains(page, "<li><code>repositories/docs/*/content/read</code></li></ul></td><td>read docs</td>") {
		t.Errorf("the new scope map: %s", errorText(page))
	}
	if resp, page := b.post("/portal/r/default/tokens/create", url.Values{"name": {"reader-one"}, "scopeMap": {"readers"}}); resp.StatusCode != http.StatusOK ||
		!strings.Contains(page, `id="token-password1"`) {
		t.Fatalf("a token on a scope map: %d %s", resp.StatusCode, errorText(page))
	}
	b.change("/portal/r/default/tokens/delete", url.Values{"token": {"reader-one"}, "back": {"/portal/r/default/tokens"}}, "The token was deleted.")
	page = b.change("/portal/r/default/scopemaps/delete", url.Values{"map": {"readers"}, "back": {"/portal/r/default/tokens"}}, "The scope map was deleted.")
	if strings.Contains(page, "reader-one") || strings.Contains(page, "<td>readers</td>") {
		t.Error("the deleted token or scope map is listed")
	}
}

// TestAccessAndNetworkBlades: a role assigned with a repository prefix carries the condition
// berth checks; removing it takes it away; the network blade saves the default action, adds the
// user's own address and removes a rule; retention is saved.
func TestAccessAndNetworkBlades(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	withUser(t, s, "dana", "Dana-Pass-123", "")
	s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default", map[string]any{"roleAssignmentMode": "rbac-abac"}, nil)
	if st := s.Mgmt(t, "POST", "/mgmt/v1/registries", map[string]any{"name": "other", "loginServer": "other.example:5000"}, nil); st != http.StatusCreated {
		t.Fatalf("registry other: %d", st)
	}
	if st := s.Mgmt(t, "POST", "/mgmt/v1/roleAssignments", map[string]string{"assignee": "dana", "role": "AcrPull", "scope": "/registries/other"}, nil); st != http.StatusCreated {
		t.Fatalf("assign at other: %d", st)
	}
	b := newBrowser(t, s.URL)
	b.signIn("owner", registrytest.OwnerPassword)
	_, page := b.get("/portal/r/default/access")
	if !strings.Contains(page, `id="repositoryPrefix"`) {
		t.Fatal("no condition field in mode rbac-abac")
	}
	page = b.change("/portal/r/default/access/assign", url.Values{"assignee": {"dana"}, "role": {"Container Registry Repository Reader"},
		"scope": {"/registries/default"}, "repositoryPrefix": {"team-a/"}, "back": {"/portal/r/default/access"}}, "The role was assigned.")
	// The blade lists the registry's assignments and those at "/" (the owner's), not another
	// registry's.
	if !regexp.MustCompile(`<td>dana</td><td>User</td><td>Container Registry Repository Reader</td><td><code>/registries/default</code></td><td><code>@Request`).MatchString(page) ||
		!strings.Contains(page, "<td>owner</td><td>User</td><td>Owner</td><td><code>/</code></td>") || strings.Contains(page, "/registries/other") {
		t.Errorf("the assignments listed: %s", page[strings.Index(page, "<h2>Role assignments</h2>"):][:800])
	}
	var as []client.RoleAssignment
	s.Mgmt(t, "GET", "/mgmt/v1/roleAssignments?assignee=dana&scope=/registries/default", nil, &as)
	if len(as) != 1 || as[0].Condition == nil || *as[0].Condition != "@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase 'team-a/'" ||
		as[0].ConditionVersion == nil || *as[0].ConditionVersion != "2.0" {
		t.Fatalf("the assignment: %+v", as)
	}
	for repo, want := range map[string]string{"team-a/app": "Allowed", "team-b/app": "Denied"} {
		_, page := b.get("/portal/r/default/access/check?" + url.Values{"identity": {"dana"}, "repository": {repo}, "action": {"pull"}, "ip": {"mine"}}.Encode())
		if !strings.Contains(page, "<strong>"+want+"</strong>: user &#34;dana&#34;") || !strings.Contains(page, " from 127.0.0.1") {
			t.Errorf("check %s: want %s: %s", repo, want, page[strings.Index(page, `id="check"`):][:400])
		}
	}
	b.change("/portal/r/default/access/remove", url.Values{"id": {as[0].Name}, "back": {"/portal/r/default/access"}}, "The role assignment was removed.")
	// Without a prefix or a condition, no condition; a condition typed wins over a prefix.
	b.change("/portal/r/default/access/assign", url.Values{"assignee": {"dana"}, "role": {"Container Registry Repository Writer"}, "scope": {"/registries/default"},
		"back": {"/portal/r/default/access"}}, "The role was assigned.")
	cond := "@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase 'ops/'"
	b.change("/portal/r/default/access/assign", url.Values{"assignee": {"dana"}, "role": {"Container Registry Repository Reader"}, "scope": {"/registries/default"},
		"repositoryPrefix": {"team-a/"}, "condition": {cond}, "back": {"/portal/r/default/access"}}, "The role was assigned.")
	s.Mgmt(t, "GET", "/mgmt/v1/roleAssignments?assignee=dana&scope=/registries/default", nil, &as)
	got := map[string]string{}
	for _, a := range as {
		got[a.RoleDefinitionName] = "none"
		if a.Condition != nil {
			got[a.RoleDefinitionName] = *a.Condition
		}
	}
	if got["Container Registry Repository Writer"] != "none" || got["Container Registry Repository Reader"] != cond {
		t.Errorf("conditions: %v", got)
	}
	for _, a := range as {
		b.post("/portal/r/default/access/remove", url.Values{"id": {a.Name}})
	}
	s.Mgmt(t, "GET", "/mgmt/v1/roleAssignments?assignee=dana&scope=/registries/default", nil, &as)
	s.Mgmt(t, "GET", "/mgmt/v1/roleAssignments?assignee=dana&scope=/registries/default", nil, &as)
	if len(as) != 0 {
		t.Errorf("after removing: %+v", as)
	}

	b.get("/portal/r/default/network")
	b.change("/portal/r/default/network/add", url.Values{"value": {" 203.0.113.0/24 "}, "back": {"/portal/r/default/network"}}, "The IP rule was added.")
	b.change("/portal/r/default/network/add", url.Values{"mine": {"true"}, "value": {"198.51.100.1"}, "back": {"/portal/r/default/network"}}, "The IP rule was added.")
	b.change("/portal/r/default/network/settings", url.Values{"publicNetworkAccess": {"Enabled"}, "defaultAction": {"Deny"}, "anonymousPull": {"true"},
		"back": {"/portal/r/default/network"}}, "The network settings were saved.")
	var reg client.Registry
	s.Mgmt(t, "GET", "/mgmt/v1/registries/default", nil, &reg)
	var rules []string
	for _, r := range reg.NetworkRuleSet.IPRules {
		rules = append(rules, r.Value)
	}
	if got := strings.Join(rules, " "); got != "203.0.113.0/24 127.0.0.1/32" || reg.NetworkRuleSet.DefaultAction != "Deny" || !reg.AnonymousPullEnabled {
		t.Errorf("network: rules %q, %+v", got, reg.NetworkRuleSet)
	}
	if _, page := b.get("/portal/r/default/network"); !strings.Contains(page, "the rules <strong>allow</strong> it now") {
		t.Error("the blade does not say the user's address is allowed")
	}
	b.change("/portal/r/default/network/remove", url.Values{"value": {"127.0.0.1/32"}, "back": {"/portal/r/default/network"}}, "The IP rule was removed.")
	if _, page := b.get("/portal/r/default/network"); !strings.Contains(page, "the rules <strong>refuse</strong> it now") {
		t.Error("the blade does not say the user's address is refused")
	}
	b.change("/portal/r/default/policies", url.Values{"retention": {"true"}, "retentionDays": {"7"}, "softDelete": {"true"}, "softDeleteDays": {"14"},
		"back": {"/portal/r/default/policies"}}, "The policies were saved.")
	s.Mgmt(t, "GET", "/mgmt/v1/registries/default", nil, &reg)
	if p := reg.Policies; p.RetentionPolicy.Days != 7 || p.RetentionPolicy.Status != "enabled" || p.SoftDeletePolicy.RetentionDays != 14 || p.SoftDeletePolicy.Status != "enabled" {
		t.Errorf("policies: %+v", p)
	}
	if resp, page := b.post("/portal/r/default/policies", url.Values{"retentionDays": {"seven"}, "softDeleteDays": {"14"}}); resp.StatusCode != http.StatusBadRequest ||
		!strings.Contains(errorText(page), "whole numbers") {
		t.Errorf("policies with words: %d %s", resp.StatusCode, errorText(page))
	}
}

// TestBladesWithoutRead: an identity whose role reads the registry's configuration but not its
// role assignments or the directory is told what each blade needs instead of seeing its lists,
// and may still check its own access. A data role alone (AcrPull) shows no registry, as in ACR's
// portal, and the portal says why.
func TestBladesWithoutRead(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	withUser(t, s, "cora", "Cora-Pass-123", "Container Registry Configuration Reader and Data Access Configuration Reader")
	withUser(t, s, "paul", "Paul-Pass-123", "AcrPull")
	b := newBrowser(t, s.URL)
	b.signIn("cora", "Cora-Pass-123")
	for path, want := range map[string]string{
		"/portal/r/default/access": "Reading role assignments needs roleAssignments/read.",
		"/portal/directory":        "Reading the directory needs directory/read",
		"/portal/r/default/tokens": "<td>_repositories_pull</td>",
		"/portal/r/default/usage":  "<td>Size</td>",
		// the catalog, filtered to what cora may pull: nothing
		"/portal/r/default/repositories": "No repositories you may see.",
	} {
		resp, page := b.get(path)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, want) {
			t.Errorf("%s: %d, want %q: %s", path, resp.StatusCode, want, errorText(page))
		}
		if strings.Contains(page, `id="assignments"`) || strings.Contains(page, `id="users"`) || len(formActions(page)) != 1 {
			t.Errorf("%s shows cora more than she may: %v", path, formActions(page))
		}
	}
	if _, page := b.get("/portal/r/default/access/check?identity=cora&repository=team/app&action=pull"); !strings.Contains(page, "<strong>Denied</strong>") ||
		!strings.Contains(page, `id="steps"`) {
		t.Errorf("cora's own access: %s", errorText(page))
	}
	// Explaining someone else needs roleAssignments/read: said beside the form, on the blade.
	if resp, page := b.get("/portal/r/default/access/check?identity=owner&repository=team/app&action=pull"); resp.StatusCode != http.StatusOK ||
		!strings.Contains(page, "roleAssignments/read") || strings.Contains(page, `id="verdict"`) || !strings.Contains(page, `id="check-identity"`) {
		t.Errorf("cora explaining the owner: %d %s", resp.StatusCode, errorText(page))
	}
	p := newBrowser(t, s.URL)
	p.signIn("paul", "Paul-Pass-123")
	if _, page := p.get("/portal/?list=1"); !strings.Contains(page, "AcrPull") {
		t.Errorf("paul's registries: %s", errorText(page))
	}
	if resp, _ := p.get("/portal/r/default/"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("paul's view of the registry: %d", resp.StatusCode)
	}
}

// TestKeysBlade: the admin user is enabled on the blade; its passwords are shown only in the reply
// that asked (a login event records the read); one regenerated is shown once and the old one
// stops signing in; a repository's locks are saved from its blade.
func TestKeysBlade(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	b := newBrowser(t, s.URL)
	b.signIn("owner", registrytest.OwnerPassword)
	b.get("/portal/r/default/keys")
	page := b.change("/portal/r/default/keys/admin", url.Values{"enabled": {"true"}, "back": {"/portal/r/default/keys"}}, "The admin user is enabled.")
	if strings.Contains(page, `id="value-password"`) || !strings.Contains(page, `id="show-passwords"`) {
		t.Fatal("the keys blade shows passwords before they were asked for")
	}
	_, page = b.post("/portal/r/default/keys/show", nil)
	value := regexp.MustCompile(`id="value-password2">([^<]+)<`).FindStringSubmatch(page)
	if value == nil || !strings.Contains(page, "The passwords are shown on this page only") {
		t.Fatalf("show passwords: %s", errorText(page))
	}
	signIn := func(password string) int {
		req, _ := http.NewRequest("GET", s.URL+"/oauth2/token?service="+s.Host+"&scope=repository:a:pull", nil)
		req.SetBasicAuth("default", password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if signIn(value[1]) != http.StatusOK {
		t.Fatal("the shown password2 does not sign in")
	}
	_, page = b.post("/portal/r/default/keys/regenerate", url.Values{"name": {"password2"}})
	renewed := regexp.MustCompile(`id="value-password2">([^<]+)<`).FindStringSubmatch(page)
	if renewed == nil || renewed[1] == value[1] || !strings.Contains(page, "password2 was regenerated") {
		t.Fatalf("regenerate: %s", errorText(page))
	}
	if signIn(value[1]) != http.StatusUnauthorized || signIn(renewed[1]) != http.StatusOK {
		t.Error("after regenerating: the old password2 or the new one is wrong")
	}
	if resp, page := b.post("/portal/r/default/keys/regenerate", url.Values{"name": {"password3"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("password3: %d %s", resp.StatusCode, errorText(page))
	}
	s.SettleEvents(t)
	var evs []client.LoginEvent
	s.Mgmt(t, "GET", "/mgmt/v1/registries/default/events/login?operation=list_credentials", nil, &evs)
	if len(evs) == 0 || !strings.HasPrefix(evs[0].UserAgent, "berth-portal (") || evs[0].Identity != "owner" {
		t.Errorf("the read of the passwords: %+v", evs)
	}
	// A repository's locks, from its blade.
	pushManifest(t, s, "team/app", "v1", nil)
	b.change("/portal/r/default/repository/locks", url.Values{"repository": {"team/app"}, "readEnabled": {"true"}, "listEnabled": {"true"},
		"back": {"/portal/r/default/repository?name=team/app"}}, "The locks were saved.")
	var attrs client.RepositoryAttributes
	user, pass := s.Admin(t)
	req, _ := http.NewRequest("GET", s.URL+"/acr/v1/team/app", nil)
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&attrs)
	resp.Body.Close()
	if a := attrs.ChangeableAttributes; a.WriteEnabled || a.DeleteEnabled || !a.ReadEnabled || !a.ListEnabled {
		t.Errorf("the repository's locks: %+v", a)
	}
}

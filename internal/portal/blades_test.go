package portal_test

import (
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
	if resp.StatusCode != http.StatusOK || pw == nil || !strings.Contains(page, "(expires ") {
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
	if resp, _ := b.post("/portal/r/default/tokens/status", url.Values{"token": {"ci-pusher"}, "enabled": {"false"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("disable: %d", resp.StatusCode)
	}
	if st := signIn(pw[1]); st != http.StatusUnauthorized {
		t.Errorf("a disabled token signs in: %d", st)
	}
	if _, page := b.get("/portal/r/default/tokens?done=token-updated"); !strings.Contains(page, "<td>ci-pusher</td><td>ci-pusher-scope-map</td><td>disabled</td>") {
		t.Errorf("the listed token: %s", page)
	}
	// A negative expiry is refused on the page, before the API.
	if resp, page := b.post("/portal/r/default/tokens/create", url.Values{"name": {"other-token"}, "expiryInDays": {"-1"}}); resp.StatusCode != http.StatusBadRequest ||
		!strings.Contains(errorText(page), "whole number of days") {
		t.Errorf("expiry -1: %d %s", resp.StatusCode, errorText(page))
	}
	// A token on an existing scope map; a scope map made on the blade.
	b.post("/portal/r/default/scopemaps/create", url.Values{"name": {"readers"}, "description": {"read docs"}, "repository1": {"docs/*"}, "actions1": {"content/read"}})
	if _, page := b.get("/portal/r/default/tokens"); !strings.Contains(page, "<li><code>repositories/docs/*/content/read</code></li></ul></td><td>read docs</td>") {
		t.Errorf("the new scope map: %s", errorText(page))
	}
	if resp, page := b.post("/portal/r/default/tokens/create", url.Values{"name": {"reader-one"}, "scopeMap": {"readers"}}); resp.StatusCode != http.StatusOK ||
		!strings.Contains(page, `id="token-password1"`) {
		t.Fatalf("a token on a scope map: %d %s", resp.StatusCode, errorText(page))
	}
	b.post("/portal/r/default/tokens/delete", url.Values{"token": {"reader-one"}})
	if resp, _ := b.post("/portal/r/default/scopemaps/delete", url.Values{"map": {"readers"}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("delete the scope map: %d", resp.StatusCode)
	}
	if _, page := b.get("/portal/r/default/tokens"); strings.Contains(page, "reader-one") || strings.Contains(page, "<td>readers</td>") {
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
	b := newBrowser(t, s.URL)
	b.signIn("owner", registrytest.OwnerPassword)
	_, page := b.get("/portal/r/default/access")
	if !strings.Contains(page, `id="repositoryPrefix"`) {
		t.Fatal("no condition field in mode rbac-abac")
	}
	resp, page := b.post("/portal/r/default/access/assign", url.Values{"assignee": {"dana"}, "role": {"Container Registry Repository Reader"},
		"scope": {"/registries/default"}, "repositoryPrefix": {"team-a/"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("assign: %d %s", resp.StatusCode, errorText(page))
	}
	var as []client.RoleAssignment
	s.Mgmt(t, "GET", "/mgmt/v1/roleAssignments?assignee=dana", nil, &as)
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
	if resp, _ := b.post("/portal/r/default/access/remove", url.Values{"id": {as[0].Name}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove: %d", resp.StatusCode)
	}
	s.Mgmt(t, "GET", "/mgmt/v1/roleAssignments?assignee=dana", nil, &as)
	if len(as) != 0 {
		t.Errorf("after removing: %+v", as)
	}

	b.get("/portal/r/default/network")
	b.post("/portal/r/default/network/add", url.Values{"value": {" 203.0.113.0/24 "}})
	b.post("/portal/r/default/network/add", url.Values{"mine": {"true"}, "value": {"198.51.100.1"}})
	b.post("/portal/r/default/network/settings", url.Values{"publicNetworkAccess": {"Enabled"}, "defaultAction": {"Deny"}, "anonymousPull": {"true"}})
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
	b.post("/portal/r/default/network/remove", url.Values{"value": {"127.0.0.1/32"}})
	if _, page := b.get("/portal/r/default/network"); !strings.Contains(page, "the rules <strong>refuse</strong> it now") {
		t.Error("the blade does not say the user's address is refused")
	}
	if resp, page := b.post("/portal/r/default/policies", url.Values{"retention": {"true"}, "retentionDays": {"7"}, "softDelete": {"true"}, "softDeleteDays": {"14"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("policies: %d %s", resp.StatusCode, errorText(page))
	}
	s.Mgmt(t, "GET", "/mgmt/v1/registries/default", nil, &reg)
	if p := reg.Policies; p.RetentionPolicy.Days != 7 || p.RetentionPolicy.Status != "enabled" || p.SoftDeletePolicy.RetentionDays != 14 || p.SoftDeletePolicy.Status != "enabled" {
		t.Errorf("policies: %+v", p)
	}
	if resp, page := b.post("/portal/r/default/policies", url.Values{"retentionDays": {"seven"}, "softDeleteDays": {"14"}}); resp.StatusCode != http.StatusBadRequest ||
		!strings.Contains(errorText(page), "whole numbers") {
		t.Errorf("policies with words: %d %s", resp.StatusCode, errorText(page))
	}
}

package portal_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/registrytest"
)

// TestDirectoryBlade: an Owner creates a user and a group, adds the user to it, creates a
// service principal whose secret, shown once, signs in; a refusal (deleting oneself) is shown on
// the blade with the API's reason; a webhook is created, disabled and deleted.
func TestDirectoryBlade(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) { c.Federation.Issuers = []string{"https://issuer.example"} }})
	b := newBrowser(t, s.URL)
	b.signIn("owner", registrytest.OwnerPassword)
	b.get("/portal/directory")
	// Without a page to go back to, a change goes to the portal's start.
	if resp, _ := b.post("/portal/directory/users/create", url.Values{"name": {"dave"}, "password": {"Dave-Pass-123"}}); resp.Header.Get("Location") != "/portal/?done=user-created" {
		t.Errorf("no back: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// dave, signed in, is deleted: his next page sends him to sign in again.
	d := newBrowser(t, s.URL)
	d.signIn("dave", "Dave-Pass-123")
	b.change("/portal/directory/users/delete", url.Values{"name": {"dave"}, "back": {"/portal/directory"}}, "The user was deleted.")
	if resp, _ := d.get("/portal/directory"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/portal/signin" {
		t.Errorf("a deleted user's page: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := d.get("/portal/directory"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/portal/signin?next=") {
		t.Errorf("the session was not ended: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for path, form := range map[string]url.Values{
		"/portal/directory/users/create":  {"name": {"carol"}, "password": {"Carol-Pass-123"}},
		"/portal/directory/groups/create": {"name": {"ops"}, "description": {"operators"}},
	} {
		form.Set("back", "/portal/directory")
		if resp, page := b.post(path, form); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, errorText(page))
		}
	}
	if resp, page := b.post("/portal/directory/groups/add", url.Values{"group": {"ops"}, "member": {"carol"}, "back": {"/portal/directory"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("add member: %d %s", resp.StatusCode, errorText(page))
	}
	_, page := b.get("/portal/directory?done=member-added")
	if !regexp.MustCompile(`<td>ops</td><td>operators</td>\s*<td><ul class="plain"><li>carol`).MatchString(page) || !strings.Contains(page, "The member was added.") {
		t.Errorf("the group's members: %s", page[strings.Index(page, `id="groups"`):][:600])
	}
	if resp, page := b.post("/portal/directory/sps/create", url.Values{"displayName": {"pipeline"}, "years": {"0"}}); resp.StatusCode != http.StatusBadRequest ||
		!strings.Contains(errorText(page), "at least 1") {
		t.Errorf("years 0: %d %s", resp.StatusCode, errorText(page))
	}
	_, page = b.post("/portal/directory/sps/create", url.Values{"displayName": {"pipeline"}}) // a year
	appID := regexp.MustCompile(`id="sp-appid">([^<]+)<`).FindStringSubmatch(page)
	secret := regexp.MustCompile(`id="sp-password">([^<]+)<`).FindStringSubmatch(page)
	if appID == nil || secret == nil {
		t.Fatalf("the new secret is not shown: %s", errorText(page))
	}
	resp, err := http.PostForm(s.URL+"/mgmt/v1/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {appID[1]}, "client_secret": {secret[1]}})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the shown secret signs in: %v %v", resp, err)
	}
	resp.Body.Close()
	if st := s.Mgmt(t, "POST", "/mgmt/v1/servicePrincipals/"+appID[1]+"/federatedCredentials", map[string]any{"name": "main", "issuer": "https://issuer.example",
		"subject": "repo:acme/app:ref:refs/heads/main", "audiences": []string{"api://BerthTokenExchange"}}, nil); st != http.StatusCreated {
		t.Fatalf("federated credential: %d", st)
	}
	if _, page := b.get("/portal/directory"); strings.Contains(page, secret[1]) || !strings.Contains(page, "<li>main: <code>https://issuer.example</code> <code>repo:acme/app:ref:refs/heads/main</code>") {
		t.Errorf("the directory after creating: the secret again, or no federated credential: %s", errorText(page))
	}
	// A new secret: shown once, and the old one stops signing in.
	_, page = b.post("/portal/directory/sps/reset", url.Values{"appId": {appID[1]}})
	secret2 := regexp.MustCompile(`id="sp-password">([^<]+)<`).FindStringSubmatch(page)
	if secret2 == nil || secret2[1] == secret[1] {
		t.Fatalf("the new secret: %s", errorText(page))
	}
	signIn := func(secret string) int {
		resp, err := http.PostForm(s.URL+"/mgmt/v1/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {appID[1]}, "client_secret": {secret}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if signIn(secret[1]) != http.StatusUnauthorized || signIn(secret2[1]) != http.StatusOK {
		t.Error("after a new secret: the old one or the new one is wrong")
	}
	page = b.change("/portal/directory/groups/remove", url.Values{"group": {"ops"}, "member": {"carol"}, "back": {"/portal/directory"}}, "The member was removed.")
	if strings.Contains(page, "<li>carol") {
		t.Error("carol is still listed in ops")
	}
	page = b.change("/portal/directory/sps/delete", url.Values{"appId": {appID[1]}, "back": {"/portal/directory"}}, "The service principal was deleted.")
	if strings.Contains(page, appID[1]) || signIn(secret2[1]) != http.StatusUnauthorized {
		t.Error("the deleted service principal is listed or signs in")
	}
	b.change("/portal/directory/groups/delete", url.Values{"name": {"ops"}, "back": {"/portal/directory"}}, "The group was deleted.")
	page = b.change("/portal/directory/users/delete", url.Values{"name": {"carol"}, "back": {"/portal/directory"}}, "The user was deleted.")
	if strings.Contains(page, "<td>carol</td>") || strings.Contains(page, "<td>ops</td>") {
		t.Error("the deleted user or group is listed")
	}
	resp, page = b.post("/portal/directory/users/delete", url.Values{"name": {"owner"}, "back": {"/portal/directory"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(errorText(page), "you cannot delete the user you are signed in as") || !strings.Contains(page, `id="users"`) {
		t.Errorf("deleting oneself: %d %s", resp.StatusCode, errorText(page))
	}

	b.get("/portal/r/default/webhooks")
	if resp, page := b.post("/portal/r/default/webhooks/create", url.Values{"name": {"hook1"}, "uri": {"https://hooks.example/berth"}, "actions": {"push", "delete"},
		"back": {"/portal/r/default/webhooks"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create webhook: %d %s", resp.StatusCode, errorText(page))
	}
	b.post("/portal/r/default/webhooks/status", url.Values{"webhook": {"hook1"}, "enabled": {"false"}, "back": {"/portal/r/default/webhooks"}})
	if _, page := b.get("/portal/r/default/webhooks"); !strings.Contains(page, "<dt>Status</dt><dd>disabled</dd>") || !strings.Contains(page, "push, delete") {
		t.Errorf("the webhook after disabling: %s", errorText(page))
	}
	if page := b.change("/portal/r/default/webhooks/ping", url.Values{"webhook": {"hook1"}, "back": {"/portal/r/default/webhooks"}}, "A ping was queued: its delivery is listed below."); !strings.Contains(page, "<caption>Latest deliveries</caption>") {
		t.Errorf("the ping's delivery is not listed: %s", errorText(page))
	}
	if resp, _ := b.post("/portal/r/default/webhooks/delete", url.Values{"webhook": {"hook1"}, "back": {"/portal/r/default/webhooks"}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("delete webhook: %d", resp.StatusCode)
	}
	if _, page := b.get("/portal/r/default/webhooks"); strings.Contains(page, "hook1") {
		t.Error("the webhook is still listed")
	}
}

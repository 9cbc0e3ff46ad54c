package portal_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/registrytest"
)

// pushManifest pushes a small image as the admin user (Basic) with the given annotations and
// returns its digest.
func pushManifest(t testing.TB, s *registrytest.Server, repo, tag string, annotations map[string]string) string {
	t.Helper()
	user, pass := s.Admin(t)
	do := func(method, path, ct string, body []byte) {
		req, _ := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
		req.SetBasicAuth(user, pass)
		req.Header.Set("Content-Type", ct)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("%s %s: %d", method, path, resp.StatusCode)
		}
	}
	digest := func(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }
	cfg, layer := []byte(`{"architecture":"arm64","os":"linux"}`), []byte("layer of "+repo+":"+tag)
	for _, b := range [][]byte{cfg, layer} {
		do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+digest(b), "application/octet-stream", b)
	}
	ann := ""
	if len(annotations) > 0 {
		var parts []string
		for k, v := range annotations {
			parts = append(parts, fmt.Sprintf("%q:%q", k, v))
		}
		ann = `,"annotations":{` + strings.Join(parts, ",") + `}`
	}
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]%s}`,
		digest(cfg), len(cfg), digest(layer), len(layer), ann))
	do("PUT", "/v2/"+repo+"/manifests/"+tag, "application/vnd.oci.image.manifest.v1+json", m)
	return digest(m)
}

// xss is markup a user may store in free-text fields.
const xss = `<script>alert("berth")</script>"><img src=x onerror=alert(1)>`

// TestStoredStringsEscaped: every string a user controls — annotations, descriptions, display
// names, user agents, what a form reflects, an API's message quoting the input — is shown as text.
func TestStoredStringsEscaped(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	digest := pushManifest(t, s, "team/app", "v1", map[string]string{"org.example.note": xss, "x" + xss: "key"})
	if st := s.Mgmt(t, "POST", "/mgmt/v1/groups", map[string]string{"name": "devs", "description": xss}, nil); st != http.StatusCreated {
		t.Fatalf("group: %d", st)
	}
	if st := s.Mgmt(t, "POST", "/mgmt/v1/servicePrincipals", map[string]any{"displayName": xss}, nil); st != http.StatusCreated && st != http.StatusOK {
		t.Fatalf("service principal: %d", st)
	}
	if st := s.Mgmt(t, "POST", "/mgmt/v1/registries/default/scopeMaps", map[string]any{"name": "notes", "description": xss,
		"repositories": []map[string]any{{"repository": "team/app", "actions": []string{"content/read"}}}}, nil); st != http.StatusCreated {
		t.Fatalf("scope map: %d", st)
	}
	// A failed sign-in whose user agent is markup.
	req, _ := http.NewRequest("GET", s.URL+"/oauth2/token?service="+s.Host+"&scope=repository:team/app:pull", nil)
	req.SetBasicAuth("default", "wrong-password")
	req.Header.Set("User-Agent", xss)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	s.SettleEvents(t)

	b := newBrowser(t, s.URL)
	b.signIn("owner", registrytest.OwnerPassword)
	pages := map[string]string{
		"manifest":     "/portal/r/default/manifest?" + url.Values{"repository": {"team/app"}, "reference": {digest}}.Encode(),
		"directory":    "/portal/directory",
		"tokens":       "/portal/r/default/tokens",
		"events":       "/portal/r/default/events?kind=login&result=failure",
		"check access": "/portal/r/default/access/check?" + url.Values{"identity": {xss}, "action": {"pull"}, "repository": {"team/app"}}.Encode(),
		"events form":  "/portal/r/default/events?" + url.Values{"identity": {xss}}.Encode(),
		// a repository name is refused by the API, which quotes it
		"repository": "/portal/r/default/repository?" + url.Values{"name": {xss}}.Encode(),
	}
	for name, path := range pages {
		_, page := b.get(path)
		if strings.Contains(page, "<script>alert") || strings.Contains(page, "<img src=x") {
			t.Errorf("%s: the markup is in the page as markup", name)
		}
		if !strings.Contains(page, "&lt;script&gt;alert(") {
			t.Errorf("%s: the string is not shown (escaped) at all: %s", name, errorText(page))
		}
	}
	// Names (users, repositories, tags) cannot hold markup: the APIs refuse them.
	if st := s.Mgmt(t, "POST", "/mgmt/v1/users", map[string]string{"name": xss, "password": "Some-Pass-123"}, nil); st != http.StatusBadRequest {
		t.Errorf("a user named with markup: %d", st)
	}
	user, pass := s.Admin(t)
	req, _ = http.NewRequest("PUT", s.URL+"/v2/team/app/manifests/"+url.PathEscape(`<b>`), strings.NewReader("{}"))
	req.SetBasicAuth(user, pass)
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a tag with markup: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// The sign-in form reflects the user name it was given.
	c := newBrowser(t, s.URL)
	c.get("/portal/signin")
	_, page := c.post("/portal/signin", url.Values{"username": {xss}, "password": {"x"}})
	if strings.Contains(page, "<script>alert") || !strings.Contains(page, "&lt;script&gt;") {
		t.Errorf("sign-in form: %s", errorText(page))
	}
	// A return path elsewhere is not followed.
	resp, _ = c.get("/portal/signin?next=//evil.example/")
	b.get("/portal/signin")
	if resp, _ := b.get("/portal/signin?next=" + url.QueryEscape("//evil.example/")); resp.Header.Get("Location") != "/portal/" {
		t.Errorf("next=//evil.example/ went to %q", resp.Header.Get("Location"))
	}
}

// forms lists the actions of a page's POST forms.
var postForm = regexp.MustCompile(`<form method="post" action="([^"]+)"`)

func formActions(page string) []string {
	var out []string
	for _, m := range postForm.FindAllStringSubmatch(page, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestReaderSeesNoWriteControls: a Reader is offered no change on any blade (only signing out),
// and a change posted anyway, with a good CSRF token, is refused by the API and changes nothing.
func TestReaderSeesNoWriteControls(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	pushManifest(t, s, "team/app", "v1", nil) // as the admin user, disabled again below
	if st := s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default", map[string]any{"adminUserEnabled": false}, nil); st != http.StatusOK {
		t.Fatalf("disable the admin user: %d", st)
	}
	withUser(t, s, "rita", "Reader-Pass-1", "Reader")
	owner := newBrowser(t, s.URL)
	owner.signIn("owner", registrytest.OwnerPassword)
	b := newBrowser(t, s.URL)
	b.signIn("rita", "Reader-Pass-1")
	for _, path := range []string{"/portal/r/default/", "/portal/r/default/keys", "/portal/r/default/tokens", "/portal/r/default/access",
		"/portal/r/default/network", "/portal/r/default/policies", "/portal/r/default/repositories", "/portal/r/default/repository?name=team/app",
		"/portal/r/default/events", "/portal/r/default/webhooks", "/portal/directory"} {
		resp, page := b.get(path)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d %s", path, resp.StatusCode, errorText(page))
			continue
		}
		if got := formActions(page); len(got) != 1 || got[0] != "/portal/signout" {
			t.Errorf("%s offers a reader %v", path, got)
		}
		// The Owner is offered changes on the same blades (the test would pass on an empty page).
		if _, page := owner.get(path); path != "/portal/r/default/" && path != "/portal/r/default/events" &&
			path != "/portal/r/default/repositories" && len(formActions(page)) < 2 {
			t.Errorf("%s offers the owner nothing", path)
		}
	}
	b.get("/portal/r/default/keys")
	resp, page := b.post("/portal/r/default/keys/admin", url.Values{"enabled": {"true"}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "DENIED") {
		t.Errorf("a reader's forged change: %d %s", resp.StatusCode, errorText(page))
	}
	if adminEnabled(t, s) {
		t.Error("the reader enabled the admin user")
	}
}

var correlationInPage = regexp.MustCompile(`id="error-correlation">([A-Z0-9]+)<`)

// TestFindFailedSignIn: a failed sign-in's correlation id — a client's (on the registry) or the
// portal's own (the directory's) — finds its event on the events blade.
func TestFindFailedSignIn(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	req, _ := http.NewRequest("GET", s.URL+"/oauth2/token?service="+s.Host+"&scope=repository:a:pull", nil)
	req.SetBasicAuth("default", "not-the-password")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	clientID := resp.Header.Get("X-Correlation-Id")
	c := newBrowser(t, s.URL)
	c.get("/portal/signin")
	_, page := c.post("/portal/signin", url.Values{"username": {"owner"}, "password": {"wrong"}})
	m := correlationInPage.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the failed portal sign-in shows no correlation id: %s", errorText(page))
	}
	portalID := m[1]
	// A push's correlation id finds a repository event.
	user, pass := s.Admin(t)
	req, _ = http.NewRequest("DELETE", s.URL+"/v2/team/app/manifests/"+pushManifest(t, s, "team/app", "v1", nil), nil)
	req.SetBasicAuth(user, pass)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("delete: %v %v", resp, err)
	}
	resp.Body.Close()
	deleteID := resp.Header.Get("X-Correlation-Id")
	s.SettleEvents(t)
	b := newBrowser(t, s.URL)
	b.signIn("owner", registrytest.OwnerPassword)
	for _, tc := range []struct {
		name, id, table string
		server          bool // found among the server's events, not the registry's
	}{
		{"client", clientID, `id="login-events"`, false},
		{"portal", portalID, `id="login-events"`, true},
		{"delete", deleteID, `id="repository-events"`, false},
	} {
		_, page := b.get("/portal/r/default/events?correlationId=" + tc.id)
		events := page[strings.Index(page, `<div id="events">`):]
		if !strings.Contains(events, tc.table) || !strings.Contains(events, "<code>"+tc.id+"</code>") || strings.Contains(events, "(found on the whole server)") != tc.server {
			t.Errorf("%s %s not found as it should be: %s", tc.name, tc.id, events)
		}
	}
	if _, page := b.get("/portal/r/default/events?correlationId=NOSUCHID"); !strings.Contains(page, "No event has correlation id") {
		t.Error("an unknown correlation id is not said to be unknown")
	}
	// The registry's sign-ins by default; the directory's too when asked, by who may read them.
	if _, page := b.get("/portal/r/default/events?kind=login"); strings.Contains(page, "<td>directory</td>") || !strings.Contains(page, "<td>token</td>") {
		t.Error("the registry's sign-ins include the directory's")
	}
	if _, page := b.get("/portal/r/default/events?kind=login&scope=server"); !strings.Contains(page, "<td>directory</td>") {
		t.Error("the server's sign-ins lack the directory's")
	}
	withUser(t, s, "rita", "Reader-Pass-1", "Reader")
	r := newBrowser(t, s.URL)
	r.signIn("rita", "Reader-Pass-1")
	for _, path := range []string{"/portal/r/default/events?kind=login&scope=server", "/portal/r/default/events?correlationId=NOSUCHID"} {
		resp, page := r.get(path)
		if resp.StatusCode != http.StatusOK || strings.Contains(page, "<td>directory</td>") || strings.Contains(page, `id="f-scope"`) {
			t.Errorf("a registry's Reader at %s: %d %s", path, resp.StatusCode, errorText(page))
		}
	}
	if resp, _ := r.get("/portal"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/portal/" {
		t.Errorf("/portal: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestManifestBlade: a manifest's page shows its platform, layers, annotations, referrers (a
// signature pushed with it as subject) and pull command; the repository's page lists its tags.
func TestManifestBlade(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	digest := pushManifest(t, s, "team/app", "v1", map[string]string{"org.opencontainers.image.title": "app"})
	user, pass := s.Admin(t)
	put := func(path, ct string, body []byte) {
		req, _ := http.NewRequest("PUT", s.URL+path, bytes.NewReader(body))
		if ct == "" {
			req, _ = http.NewRequest("POST", s.URL+path, bytes.NewReader(body))
			ct = "application/octet-stream"
		}
		req.SetBasicAuth(user, pass)
		req.Header.Set("Content-Type", ct)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("%s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	empty := []byte("{}")
	ed := fmt.Sprintf("sha256:%x", sha256.Sum256(empty))
	put("/v2/team/app/blobs/uploads/?digest="+ed, "", empty)
	size := 0 // a descriptor's size; the page does not show it
	sig := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.signature","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":%d}}`,
		ed, ed, digest, size))
	sigDigest := fmt.Sprintf("sha256:%x", sha256.Sum256(sig))
	put("/v2/team/app/manifests/"+sigDigest, "application/vnd.oci.image.manifest.v1+json", sig)

	b := newBrowser(t, s.URL)
	b.signIn("owner", registrytest.OwnerPassword)
	_, page := b.get("/portal/r/default/manifest?" + url.Values{"repository": {"team/app"}, "reference": {"v1"}}.Encode())
	for _, want := range []string{`id="layers"`, "linux/arm64", "org.opencontainers.image.title", `id="referrers"`, "application/vnd.example.signature",
		"docker pull " + s.Host + "/team/app@" + digest, sigDigest[:19], `action="/portal/r/default/manifest/delete"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the manifest blade lacks %q", want)
		}
	}
	_, page = b.get("/portal/r/default/repository?name=team/app")
	for _, want := range []string{`id="tags"`, ">v1</a>", `action="/portal/r/default/repository/untag"`, "application/vnd.example.signature"} {
		if !strings.Contains(page, want) {
			t.Errorf("the repository blade lacks %q", want)
		}
	}
	// Untag through the blade.
	resp, page := b.post("/portal/r/default/repository/untag", url.Values{"repository": {"team/app"}, "tag": {"v1"}, "back": {"/portal/r/default/repository?name=team/app"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/portal/r/default/repository?") {
		t.Fatalf("untag: %d %s", resp.StatusCode, errorText(page))
	}
	if _, page = b.get(resp.Header.Get("Location")); strings.Contains(page, ">v1</a>") || !strings.Contains(page, "The tag was removed.") {
		t.Errorf("after untagging: %s", errorText(page))
	}
}

// TestLocks: locking a manifest against deletion on its blade makes a delete through the blade a
// refusal the page explains; unlocking lets it through.
func TestLocks(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	digest := pushManifest(t, s, "team/app", "v1", nil)
	b := newBrowser(t, s.URL)
	b.signIn("owner", registrytest.OwnerPassword)
	b.get("/portal/r/default/manifest?" + url.Values{"repository": {"team/app"}, "reference": {digest}}.Encode())
	if resp, page := b.post("/portal/r/default/manifest/locks", url.Values{"repository": {"team/app"}, "digest": {digest}, "writeEnabled": {"true"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("lock: %d %s", resp.StatusCode, errorText(page))
	}
	resp, page := b.post("/portal/r/default/manifest/delete", url.Values{"repository": {"team/app"}, "digest": {digest}})
	if resp.StatusCode < 400 || !strings.Contains(errorText(page), "delete") || !strings.Contains(page, `id="manifest-locks"`) {
		t.Fatalf("deleting a locked manifest: %d %s", resp.StatusCode, errorText(page))
	}
	b.post("/portal/r/default/manifest/locks", url.Values{"repository": {"team/app"}, "digest": {digest}, "writeEnabled": {"true"}, "deleteEnabled": {"true"}})
	if resp, page := b.post("/portal/r/default/manifest/delete", url.Values{"repository": {"team/app"}, "digest": {digest}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("deleting it unlocked: %d %s", resp.StatusCode, errorText(page))
	}
	// A whole repository, from its blade.
	pushManifest(t, s, "team/gone", "v1", nil)
	page = b.change("/portal/r/default/repository/delete", url.Values{"repository": {"team/gone"}, "back": {"/portal/r/default/repositories"}}, "The repository was deleted.")
	if strings.Contains(page, "team/gone") {
		t.Error("the deleted repository is listed")
	}
}

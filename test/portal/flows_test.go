package portal

import (
	"archive/tar"
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/berth-registry/berth/internal/registrytest"
)

// run runs a client program, returning its combined output and whether it succeeded.
func run(t *testing.T, env []string, stdin string, name string, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// layerTar writes a one-file layer for crane append.
func layerTar(t *testing.T, dir string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := []byte("pushed with a token the portal made\n")
	tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: int64(len(body))})
	tw.Write(body)
	tw.Close()
	p := filepath.Join(dir, "layer.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

var correlationID = regexp.MustCompile(`correlation id:? ([A-Z0-9]{16})`)

// TestOwnerFlow (issue 22): an Owner signs in; enables the admin user and copies a password that
// then works for docker login; creates a token from repository actions whose password pushes
// with crane (and nowhere else); assigns a repository role with a condition and checks access;
// adds their own address as an IP rule; finds a failed docker login by the correlation id docker
// printed. Every page is screenshot and checked with axe-core.
func TestOwnerFlow(t *testing.T) {
	docker, crane := tool(t, "docker"), tool(t, "crane")
	s := registrytest.New(t, registrytest.Options{})
	if st := s.Mgmt(t, "POST", "/mgmt/v1/users", map[string]string{"name": "dana", "password": "Dana-Pass-123"}, nil); st != http.StatusCreated {
		t.Fatalf("create dana: %d", st)
	}
	tb := newTab(t, s.URL)
	tb.signIn("owner", registrytest.OwnerPassword)
	tb.open("/portal/r/default/")
	if got := tb.text("#login-server"); got != s.Host {
		t.Errorf("login server %q, want %q", got, s.Host)
	}
	tb.check("overview")

	// Access keys: enable the admin user, show the passwords, copy one.
	tb.open("/portal/r/default/keys")
	tb.check("keys-disabled")
	tb.submit(nil, "#admin-toggle", ".notice")
	if got := tb.text("#admin-state"); got != "enabled" {
		t.Fatalf("admin user %q after enabling", got)
	}
	tb.submit(nil, "#show-passwords", "#value-password")
	tb.check("keys-shown")
	tb.run(chromedp.Click(css(`button[data-copy="value-password"]`)), chromedp.WaitVisible(css(`button[data-copied="true"]`)))
	clip := eval[string](tb, `navigator.clipboard.readText()`)
	if clip == "" || clip != tb.text("#value-password") {
		t.Fatalf("the clipboard holds %q", clip)
	}
	dockerEnv := []string{"DOCKER_CONFIG=" + t.TempDir()}
	if out, ok := run(t, dockerEnv, clip, docker, "login", s.Host, "-u", tb.text("#admin-username"), "--password-stdin"); !ok || !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("docker login with the copied password: %s", out)
	}

	// Tokens: a token for ci/* with read and write; its password pushes there and nowhere else.
	tb.open("/portal/r/default/tokens")
	tb.run(chromedp.SetValue(css("#token-name"), "ci-pusher"), chromedp.SetValue(css("#token-repository1"), "ci/*"),
		chromedp.Click(css(`#create-token input[name="actions1"][value="content/read"]`)),
		chromedp.Click(css(`#create-token input[name="actions1"][value="content/write"]`)),
		chromedp.Click(css(`#create-token input[name="actions1"][value="metadata/read"]`)),
		chromedp.Click(css(`#create-token button[type=submit]`)), chromedp.WaitVisible(css("#created-token")))
	tb.check("token-created")
	user, password := tb.text("#token-username"), tb.text("#token-password1")
	craneEnv := []string{"DOCKER_CONFIG=" + t.TempDir()}
	if out, ok := run(t, craneEnv, "", crane, "auth", "login", s.Host, "-u", user, "-p", password); !ok {
		t.Fatalf("crane auth login as the token: %s", out)
	}
	layer := layerTar(t, t.TempDir())
	if out, ok := run(t, craneEnv, "", crane, "append", "--insecure", "--oci-empty-base", "-f", layer, "-t", s.Host+"/ci/app:v1"); !ok {
		t.Fatalf("crane push with the token's password: %s", out)
	}
	if out, ok := run(t, craneEnv, "", crane, "append", "--insecure", "--oci-empty-base", "-f", layer, "-t", s.Host+"/other/app:v1"); ok {
		t.Fatalf("the token pushed outside its scope map: %s", out)
	}
	tb.open("/portal/r/default/repository?name=ci/app")
	if !strings.Contains(tb.text("#tags"), "v1") {
		t.Error("the pushed tag is not listed")
	}
	tb.check("repository")
	tb.run(chromedp.Click(css(`#tags a`)), chromedp.WaitVisible(css("#digest")))
	tb.check("manifest")

	// Access control: a repository role with a condition, then Check access.
	// (Conditions need ABAC; in that mode the Owner's role no longer reads content, as in ACR.)
	if st := s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default", map[string]any{"roleAssignmentMode": "rbac-abac"}, nil); st != http.StatusOK {
		t.Fatalf("rbac-abac: %d", st)
	}
	tb.open("/portal/r/default/access")
	tb.run(chromedp.SetValue(css("#assignee"), "dana"), chromedp.SetValue(css("#role"), "Container Registry Repository Writer"),
		chromedp.SetValue(css("#repositoryPrefix"), "team-a/"), chromedp.Click(css("#assign-submit")), chromedp.WaitVisible(css(".notice")))
	if got := tb.text("#assignments"); !strings.Contains(got, "dana") || !strings.Contains(got, "StringStartsWithIgnoreCase 'team-a/'") {
		t.Fatalf("assignments: %s", got)
	}
	tb.submit(map[string]string{"#check-identity": "dana", "#check-repository": "team-a/app", "#check-action": "push", "#check-ip": ""}, "#check-submit", "#verdict")
	if got := tb.waitText("#verdict", "team-a/app"); !strings.HasPrefix(got, "Allowed") {
		t.Errorf("dana pushing to team-a/app: %s", got)
	}
	tb.check("check-allowed")
	tb.run(chromedp.SetValue(css("#check-repository"), "team-b/app"), chromedp.Click(css("#check-submit")),
		chromedp.WaitVisible(css(`#verdict.denied`)))
	if got := tb.waitText("#verdict", "team-b/app"); !strings.HasPrefix(got, "Denied") || tb.text("#steps") == "" {
		t.Errorf("dana pushing to team-b/app: %s", got)
	}
	tb.check("check-denied")

	// Networking: add my client address.
	tb.open("/portal/r/default/network")
	mine := tb.text("#my-address")
	tb.submit(nil, "#add-mine", "#ip-rules")
	if mine != "127.0.0.1" || !strings.Contains(tb.text("#ip-rules"), mine) {
		t.Errorf("my address %q, rules %q", mine, tb.text("#ip-rules"))
	}
	tb.check("network")

	// A failed docker login, found by the correlation id docker printed.
	out, ok := run(t, []string{"DOCKER_CONFIG=" + t.TempDir()}, "not-the-password", docker, "login", s.Host, "-u", "default", "--password-stdin")
	m := correlationID.FindStringSubmatch(out)
	if ok || m == nil {
		t.Fatalf("a failed docker login printed no correlation id: %s", out)
	}
	s.SettleEvents(t)
	tb.open("/portal/r/default/events")
	tb.submit(map[string]string{"#f-correlation": m[1]}, "#filter-submit", "#events")
	// (The unfiltered list may hold the id too: wait for the answer's own words.)
	if got := tb.waitText("#events", "Events with correlation id"); !strings.Contains(got, "failure") || !strings.Contains(got, m[1]) {
		t.Errorf("the failed sign-in %s: %s", m[1], got)
	}
	tb.check("events")
	for _, p := range []string{"/portal/r/default/webhooks", "/portal/r/default/policies", "/portal/r/default/repositories", "/portal/directory", "/portal/?list=1",
		"/portal/r/default/usage", "/portal/r/default/nowhere", "/portal/r/no-such-registry/"} {
		tb.open(p)
		tb.check(strings.Trim(strings.ReplaceAll(p, "/", "-"), "-"))
	}
	tb.run(chromedp.Click(css(`form[action="/portal/signout"] button`)), chromedp.WaitVisible(css("#username")))
	tb.check("signin")
}

// TestReaderAndForgery (issue 22): a Reader sees every blade without a write control; a form on
// another site posting to the portal with the Owner's session is refused and changes nothing.
func TestReaderAndForgery(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	if st := s.Mgmt(t, "POST", "/mgmt/v1/users", map[string]string{"name": "rita", "password": "Reader-Pass-1"}, nil); st != http.StatusCreated {
		t.Fatalf("create rita: %d", st)
	}
	if st := s.Mgmt(t, "POST", "/mgmt/v1/roleAssignments", map[string]string{"assignee": "rita", "role": "Reader", "scope": "/registries/default"}, nil); st != http.StatusCreated {
		t.Fatalf("assign Reader: %d", st)
	}
	tb := newTab(t, s.URL)
	tb.signIn("rita", "Reader-Pass-1")
	for _, p := range []string{"/portal/r/default/", "/portal/r/default/keys", "/portal/r/default/tokens", "/portal/r/default/access", "/portal/r/default/network",
		"/portal/r/default/policies", "/portal/r/default/events", "/portal/r/default/webhooks", "/portal/directory"} {
		tb.open(p)
		for _, sel := range []string{"#admin-toggle", "#show-passwords", "#create-token", "#create-map", "#assign", "#add-mine", `form[action$="/network/settings"]`, `form[action$="/policies"]`,
			"#create-webhook", "#create-user", "#create-group", "#create-sp"} {
			if tb.exists(sel) {
				t.Errorf("%s shows a reader %s", p, sel)
			}
		}
		tb.check("reader" + strings.ReplaceAll(strings.TrimPrefix(p, "/portal/r/default"), "/", "-"))
	}

	// The Owner, signed in, visits another site whose page posts a form to the portal.
	tb2 := newTab(t, s.URL)
	tb2.signIn("owner", registrytest.OwnerPassword)
	target := s.URL + "/portal/r/default/keys/admin"
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`<!doctype html><title>prize</title><form id="f" method="post" action="` + target + `"><input name="enabled" value="true"></form>` +
			`<script>document.getElementById("f").submit()</script>`))
	}))
	defer evil.Close()
	u, _ := url.Parse(evil.URL)
	other := "http://localhost:" + u.Port() // another site than 127.0.0.1
	tb2.run(chromedp.Navigate(other + "/"))
	var body string
	for i := 0; i < 50 && !strings.Contains(body, "refused") && !strings.Contains(body, "sign in again"); i++ {
		tb2.run(chromedp.Sleep(100 * time.Millisecond))
		body = eval[string](tb2, `document.body ? document.body.innerText : ""`)
	}
	if !strings.Contains(body, "refused") && !strings.Contains(body, "sign in again") {
		t.Errorf("the forged post was answered: %s", body)
	}
	var reg struct{ AdminUserEnabled bool }
	s.Mgmt(t, "GET", "/mgmt/v1/registries/default", nil, &reg)
	if reg.AdminUserEnabled {
		t.Fatal("a form on another site enabled the admin user")
	}
	tb2.check("forged-post-refused")
}

// TestWithoutScripts (issue 22): with JavaScript off, on a phone-sized window, a user signs in,
// reads every blade, and filters events with the plain form; the copy buttons stay hidden.
func TestWithoutScripts(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	tb := newTabWith(t, s.URL, chromedp.Flag("blink-settings", "scriptEnabled=false"), chromedp.WindowSize(390, 844))
	tb.noAxe = true
	tb.signIn("owner", registrytest.OwnerPassword)
	if eval[bool](tb, `typeof htmx !== "undefined"`) {
		t.Fatal("the page's scripts ran")
	}
	tb.open("/portal/r/default/")
	if !eval[bool](tb, `document.querySelector('button.copy').hidden`) {
		t.Error("a copy button shows without scripts")
	}
	tb.check("overview-no-script")
	tb.run(chromedp.Click(css(`#usage a`)), chromedp.WaitVisible(css(`#usage table`)))
	tb.open("/portal/r/default/events")
	tb.submit(map[string]string{"#f-identity": "owner", "#f-scope": "server"}, "#filter-submit", "#events")
	for i := 0; i < 100 && !strings.Contains(eval[string](tb, `location.search`), "identity=owner"); i++ {
		tb.run(chromedp.Sleep(100 * time.Millisecond))
	}
	if got := tb.waitText("#events", "directory"); !strings.Contains(eval[string](tb, `location.search`), "identity=owner") {
		t.Errorf("the filter was not a plain GET: %s", got)
	}
	tb.check("events-no-script")
	tb.open("/portal/r/default/access/check?identity=owner&action=catalog")
	if !strings.HasPrefix(tb.text("#verdict"), "Allowed") {
		t.Errorf("check access without scripts: %s", tb.text("#verdict"))
	}
	tb.check("check-no-script")
}

// TestDarkMode (issue 22): with the system's dark color scheme, the blades use the dark palette
// and still pass axe-core (contrast included).
func TestDarkMode(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	tb := newTab(t, s.URL)
	if _, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
		t.Fatal(err)
	}
	tb.signIn("owner", registrytest.OwnerPassword)
	for _, p := range []string{"/portal/r/default/", "/portal/r/default/keys", "/portal/r/default/tokens", "/portal/r/default/access", "/portal/r/default/network", "/portal/r/default/events", "/portal/directory"} {
		tb.open(p)
		if bg := eval[string](tb, `getComputedStyle(document.body).backgroundColor`); bg != "rgb(22, 24, 28)" {
			t.Fatalf("%s: the background is %s, not the dark palette's", p, bg)
		}
		tb.check("dark" + strings.ReplaceAll(strings.TrimPrefix(p, "/portal"), "/", "-"))
	}
}

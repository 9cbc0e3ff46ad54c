package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/registrytest"
	"github.com/berth-registry/berth/internal/store"
)

func TestJoinRepositoryArgs(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"token", "create", "--repository", "samples/*", "content/read", "content/write", "-r", "default"},
			[]string{"token", "create", "--repository", "samples/* content/read content/write", "-r", "default"}},
		{[]string{"--add-repository", "a", "content/read", "--remove-repository", "b", "content/write"},
			[]string{"--add-repository", "a content/read", "--remove-repository", "b content/write"}},
		{[]string{"--repository", "a content/read"}, []string{"--repository", "a content/read"}},
		{[]string{"--repository"}, []string{"--repository"}},
		{[]string{"--name", "x"}, []string{"--name", "x"}},
	} {
		if got := joinRepositoryArgs(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("joinRepositoryArgs(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestOutputFormats(t *testing.T) {
	v := []map[string]any{{"name": "b", "status": "enabled", "credentials": map[string]any{"x": 1}}, {"name": "a", "status": "disabled"}}
	for _, tc := range []struct{ output, query, want string }{
		{"json", "[0].name", "\"b\"\n"},
		{"tsv", "[].name", "b\na\n"},
		{"tsv", "", "b\tenabled\na\tdisabled\n"},
		{"table", "", "Name  Status\n----  ------\nb     enabled\na     disabled\n"},
		{"table", "[?status=='disabled']", "Name  Status\n----  ------\na     disabled\n"},
		// az's formats: yaml, none; jsonc and yamlc are colored
		{"yaml", "[1]", "name: a\nstatus: disabled\n"},
		{"yaml", "[0].credentials", "x: 1\n"},
		{"none", "", ""},
		{"jsonc", "[1].name", "\x1b[32m\"a\"\x1b[0m\n"},
		{"yamlc", "[1]", "\x1b[94mname\x1b[0m: a\n\x1b[94mstatus\x1b[0m: disabled\n"},
		// back-tick literals, as az (jmespath.py) reads them: JSON, or else the string they spell
		{"tsv", "[?status==`disabled`].name", "a\n"},
		{"tsv", "[?status==`\"enabled\"`].name", "b\n"},
		{"tsv", "[?credentials.x==`1`].name", "b\n"},
		{"tsv", "[?credentials.x==`1`].{a: name, b: `1048576`}", "b\t1048576\n"},
		{"tsv", "[?status=='with `back-ticks`'].name", ""},
	} {
		var out bytes.Buffer
		a := &app{stdout: &out, output: tc.output, query: tc.query}
		if err := a.print(v); err != nil || out.String() != tc.want {
			t.Errorf("-o %s --query %q: %q, %v; want %q", tc.output, tc.query, out.String(), err, tc.want)
		}
	}
	a := &app{stdout: &bytes.Buffer{}, output: "xml"}
	if err := a.print(v); err == nil || !strings.Contains(err.Error(), "json, jsonc, yaml, yamlc, table, tsv, none") {
		t.Errorf("-o xml: %v", err)
	}
	a = &app{stdout: &bytes.Buffer{}, output: "json", query: "[?"}
	if err := a.print(v); err == nil {
		t.Error("a broken --query was accepted")
	}
}

// TestCommands drives the CLI in-process against a real server: sign-in, registry, admin
// credentials, tokens, scope maps, users, groups, service principals, and login --expose-token.
func TestCommands(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newCLI(t)
	run, must, cfg := c.run, c.must, c.cfg
	if _, err := run("", "registry", "list"); err == nil || !strings.Contains(err.Error(), "not signed in") {
		t.Errorf("registry list before sign-in: %v", err)
	}
	if _, err := run("wrong", "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin"); err == nil {
		t.Error("sign-in with a wrong password succeeded")
	}
	must(registrytest.OwnerPassword, "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin")
	if fi, err := os.Stat(filepath.Join(cfg, "config.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("session file: %v %v", fi, err)
	}
	if out := must("", "auth", "show", "--query", "user.name", "-o", "tsv"); out != "owner\n" {
		t.Errorf("auth show = %q", out)
	}
	pw := strings.TrimSpace(must("", "registry", "update", "-n", "default", "--admin-enabled", "true", "--query", "credentials.passwords[0].value", "-o", "tsv"))
	if len(pw) < 32 {
		t.Fatalf("admin password %q", pw)
	}
	var creds struct {
		Username  string
		Passwords []struct {
			Name  string
			Value *string
		}
	}
	json.Unmarshal([]byte(must("", "credential", "renew", "-n", "default", "--password-name", "password2")), &creds)
	if creds.Username != "default" || len(creds.Passwords) != 2 || creds.Passwords[1].Value == nil || creds.Passwords[0].Value == nil || *creds.Passwords[0].Value != pw {
		t.Errorf("credential renew = %+v", creds)
	}
	// As az acr credential show: the values, every time.
	for range 2 {
		if out := must("", "credential", "show", "-n", "default", "--query", "passwords[0].value", "-o", "tsv"); out != pw+"\n" {
			t.Errorf("credential show --query passwords[0].value = %q, want the admin password", out)
		}
	}
	if _, err := run("", "credential", "renew", "-n", "default", "--password-name", "password3"); err == nil {
		t.Error("renew of password3 accepted")
	}
	var tok struct {
		Name, Status string
		Credentials  struct {
			Username  string
			Passwords []struct{ Name, Value string }
		}
	}
	json.Unmarshal([]byte(must("", "token", "create", "-n", "ci-samples", "-r", "default", "--repository", "samples/*", "content/read", "content/write")), &tok)
	if tok.Name != "ci-samples" || tok.Status != "enabled" || tok.Credentials.Username != "ci-samples" || len(tok.Credentials.Passwords) != 2 || tok.Credentials.Passwords[0].Value == "" {
		t.Errorf("token create = %+v", tok)
	}
	if _, err := run("", "token", "create", "-n", "bad-one", "-r", "default"); err == nil || !strings.Contains(err.Error(), "usage error") {
		t.Errorf("token create without --repository or --scope-map: %v", err)
	}
	if out := must("", "scope-map", "show", "-n", "ci-samples-scope-map", "-r", "default", "--query", "actions", "-o", "tsv"); out != "repositories/samples/*/content/read\nrepositories/samples/*/content/write\n" {
		t.Errorf("scope-map show = %q", out)
	}
	must("", "scope-map", "update", "-n", "ci-samples-scope-map", "-r", "default", "--add-repository", "other/x", "content/delete")
	if out := must("", "token", "list", "-r", "default", "-o", "table"); !strings.Contains(out, "ci-samples") || !strings.Contains(out, "SCOPE MAP") {
		t.Errorf("token list table:\n%s", out)
	}
	if out := must("", "token", "update", "-n", "ci-samples", "-r", "default", "--status", "disabled", "--query", "status", "-o", "tsv"); out != "disabled\n" {
		t.Errorf("token update = %q", out)
	}
	gen := must("", "token", "credential", "generate", "-n", "ci-samples", "-r", "default", "--password2", "--expiration-in-days", "30", "--query", "passwords[?name=='password2'].expiry | [0]", "-o", "tsv")
	if strings.TrimSpace(gen) == "" {
		t.Errorf("generated password2 has no expiry: %q", gen)
	}
	must("", "token", "credential", "delete", "-n", "ci-samples", "-r", "default", "--password1")
	if out := must("", "token", "show", "-n", "ci-samples", "-r", "default", "--query", "length(credentials.passwords)", "-o", "tsv"); out != "1\n" {
		t.Errorf("passwords after delete = %q", out)
	}
	// Deleting asks first, as az does; with no terminal to ask at, --yes is needed.
	if _, err := c.run("", "token", "delete", "-n", "ci-samples", "-r", "default"); err == nil ||
		err.Error() != "Unable to prompt for confirmation as no tty available. Use --yes." {
		t.Errorf("token delete without --yes: %v", err)
	}
	must("", "token", "delete", "-n", "ci-samples", "-r", "default", "--yes")

	if out := must("a-long-enough-password", "user", "create", "-n", "alice", "--password-stdin", "--query", "password", "-o", "tsv"); out != "" {
		t.Errorf("a chosen password was echoed back: %q", out)
	}
	must("", "group", "create", "-n", "devs")
	must("", "group", "member", "add", "-g", "devs", "--member-id", "alice")
	if out := must("", "group", "member", "list", "-g", "devs", "-o", "tsv"); out != "alice\n" {
		t.Errorf("group members = %q", out)
	}
	var sp struct{ AppID, Password, Tenant string }
	json.Unmarshal([]byte(must("", "sp", "create", "-n", "robot")), &sp)
	if sp.AppID == "" || sp.Password == "" || sp.Tenant != "berth" {
		t.Errorf("sp create = %+v", sp)
	}
	if out := must("", "sp", "list", "--query", "[].displayName", "-o", "tsv"); out != "robot\n" {
		t.Errorf("sp list = %q", out)
	}

	// login: --expose-token needs no docker; without it, the missing docker command is named.
	var exposed map[string]string
	json.Unmarshal([]byte(must("", "login", "-n", "default", "--expose-token")), &exposed)
	if exposed["username"] != "00000000-0000-0000-0000-000000000000" || exposed["accessToken"] == "" || exposed["accessToken"] != exposed["refreshToken"] || exposed["loginServer"] != s.Host {
		t.Errorf("login --expose-token = %v", exposed)
	}
	if _, err := run("", "login", "-n", "default"); err == nil || !strings.Contains(err.Error(), "DOCKER_COMMAND_ERROR") || !strings.Contains(err.Error(), "--expose-token") {
		t.Errorf("login without docker: %v", err)
	}
	if _, err := run("", "login", "-n", "default", "--expose-token", "-u", "x"); err == nil {
		t.Error("--expose-token with --username accepted")
	}
	if _, err := run("", "login", "-n", "nope"); err == nil || !strings.Contains(err.Error(), "LOGIN_SERVER_ERROR") {
		t.Errorf("login to an unknown registry: %v", err)
	}
	must("", "auth", "logout")
	if _, err := run("", "registry", "list"); err == nil {
		t.Error("registry list after logout succeeded")
	}
}

// cliRunner runs the CLI in-process with its own config folder.
type cliRunner struct {
	env     map[string]string // environment variables, beside BERTH_CONFIG_DIR
	t       *testing.T
	cfg     string
	openURL func(string) // the browser; nil: none
}

func newCLI(t *testing.T) *cliRunner { return &cliRunner{t: t, cfg: t.TempDir()} }

// run returns the command's output and error.
func (c *cliRunner) run(stdin string, args ...string) (string, error) {
	c.t.Helper()
	out, _, err := c.run3(stdin, args...)
	return out, err
}

// run3 returns the command's output, its stderr, and its error.
func (c *cliRunner) run3(stdin string, args ...string) (string, string, error) {
	c.t.Helper()
	var errb bytes.Buffer
	out, _, err := c.run3w(&errb, stdin, args...)
	return out, errb.String(), err
}

// run3w is run3 writing stderr to errw as the command runs.
func (c *cliRunner) run3w(errw io.Writer, stdin string, args ...string) (string, string, error) {
	var out bytes.Buffer
	openURL := c.openURL
	if openURL == nil {
		openURL = func(string) {}
	}
	env := Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: errw, OpenURL: openURL, Getenv: func(k string) string {
		if v, ok := c.env[k]; ok {
			return v
		}
		switch k {
		case "BERTH_CONFIG_DIR":
			return c.cfg
		case "DOCKER_COMMAND":
			return "no-such-docker-command"
		}
		return ""
	}}
	err := Execute(context.Background(), env, args)
	return out.String(), "", err
}

// must fails the test on an error.
func (c *cliRunner) must(stdin string, args ...string) string {
	c.t.Helper()
	out, err := c.run(stdin, args...)
	if err != nil {
		c.t.Fatalf("berth %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// TestBareBooleans: as in az, a boolean flag alone is true, and takes true or false after it
// or after '='.
func TestBareBooleans(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newCLI(t)
	c.must(registrytest.OwnerPassword, "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--anonymous-pull-enabled"}, "true"},
		{[]string{"--anonymous-pull-enabled", "false"}, "false"},
		{[]string{"--anonymous-pull-enabled=true"}, "true"},
		{[]string{"--anonymous-pull-enabled", "False"}, "false"},
	} {
		args := append(append([]string{"registry", "update", "-n", "default"}, tc.args...), "--query", "anonymousPullEnabled", "-o", "tsv")
		if out := c.must("", args...); out != tc.want+"\n" {
			t.Errorf("registry update %v: %q; want %s", tc.args, out, tc.want)
		}
	}
	if _, err := c.run("", "registry", "update", "-n", "default", "--anonymous-pull-enabled", "maybe"); err == nil {
		t.Error("--anonymous-pull-enabled maybe was accepted")
	}
}

// TestPasswordNeedsUser: as az, berth login refuses a password without a user name.
func TestPasswordNeedsUser(t *testing.T) {
	c := newCLI(t)
	for _, args := range [][]string{{"login", "-n", "default", "-p", "secret"}, {"login", "-n", "default", "--password-stdin"}} {
		if _, err := c.run("secret", args...); err == nil || !strings.Contains(err.Error(), "need --username") {
			t.Errorf("berth %v: %v; want a usage error", args, err)
		}
	}
}

// TestLoginByLoginServer: as az acr login, berth login -n takes a registry's login server as well
// as its name.
func TestLoginByLoginServer(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newCLI(t)
	c.must(registrytest.OwnerPassword, "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin")
	for _, name := range []string{"default", s.Host, strings.ToUpper("127.0.0.1") + s.Host[len("127.0.0.1"):]} {
		if out := c.must("", "login", "-n", name, "--expose-token", "--query", "loginServer", "-o", "tsv"); out != s.Host+"\n" {
			t.Errorf("login -n %s --expose-token: login server %q; want %s", name, out, s.Host)
		}
	}
	if _, err := c.run("", "login", "-n", "registry.nowhere.example", "--expose-token"); err == nil || !strings.Contains(err.Error(), `no registry has the login server "registry.nowhere.example"`) {
		t.Errorf("login -n with an unknown login server: %v", err)
	}
}

// TestAzErrorLayout: the errors az reports under a code are printed as az prints them: the time,
// "An error occurred: CODE", then the message.
func TestAzErrorLayout(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newCLI(t)
	c.must(registrytest.OwnerPassword, "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin")
	_, err := c.run("", "login", "-n", "default") // DOCKER_COMMAND is no-such-docker-command here
	when := time.Date(2026, 11, 28, 9, 30, 0, 123456000, time.UTC)
	got := ErrorText(err, when)
	if !strings.HasPrefix(got, "2026-11-28 09:30:00.123456 An error occurred: DOCKER_COMMAND_ERROR\nPlease verify if no-such-docker-command client is installed and running") {
		t.Errorf("login without the docker command printed:\n%s", got)
	}
	_, err = c.run("", "login", "-n", "nosuch")
	if got := ErrorText(err, when); !strings.Contains(got, "An error occurred: LOGIN_SERVER_ERROR\nAn error occurred while retrieving the login server for registry 'nosuch'") {
		t.Errorf("login to an unknown registry printed:\n%s", got)
	}
	if got := ErrorText(errors.New("plain \x1b[2J"), when); got != `berth: plain \x1b[2J` {
		t.Errorf("an uncoded error: %q", got)
	}
}

// TestDebugAndOnlyShowErrors: --debug prints each HTTP request with its answer and correlation
// id on stderr, never a credential (the bearer token, a password in a form, a secret in a
// query) and never a body; --only-show-errors drops the warnings and keeps the output.
func TestDebugAndOnlyShowErrors(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newCLI(t)
	c.must(registrytest.OwnerPassword, "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin")
	out, debug, err := c.run3("", "registry", "update", "-n", "default", "--admin-enabled", "--debug")
	if err != nil {
		t.Fatal(err)
	}
	var reg struct {
		Credentials struct{ Passwords []struct{ Value string } }
	}
	if err := json.Unmarshal([]byte(out), &reg); err != nil || len(reg.Credentials.Passwords) != 2 {
		t.Fatalf("output with --debug: %q, %v", out, err)
	}
	sess, _ := os.ReadFile(filepath.Join(c.cfg, "config.json"))
	var saved struct{ AccessToken, RefreshToken string }
	json.Unmarshal(sess, &saved)
	for _, want := range []string{"DEBUG: Request URL: '" + s.URL + "/mgmt/v1/registries/default'", "DEBUG: Request method: 'PATCH'",
		"'Authorization': 'Bearer *****'", "DEBUG: Response status: 200", "DEBUG: Correlation id: ", "not shown (it may carry secrets)"} {
		if !strings.Contains(debug, want) {
			t.Errorf("--debug lacks %q:\n%s", want, debug)
		}
	}
	for _, secret := range []string{saved.AccessToken, reg.Credentials.Passwords[0].Value, reg.Credentials.Passwords[1].Value} {
		if secret == "" || strings.Contains(debug, secret) {
			t.Errorf("--debug shows a secret (or the test has none): %q", secret)
		}
	}
	if strings.Count(debug, "Correlation id: ") != strings.Count(debug, "Request URL: ") || !regexp.MustCompile(`Correlation id: [A-Z0-9]{8,}`).MatchString(debug) {
		t.Errorf("--debug: a request without its correlation id:\n%s", debug)
	}
	// A sign-in's password in its form is not shown either.
	_, debug, err = c.run3(registrytest.OwnerPassword, "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin", "--debug")
	if err != nil || strings.Contains(debug, registrytest.OwnerPassword) || !strings.Contains(debug, "/mgmt/v1/token") {
		t.Errorf("sign-in with --debug (%v):\n%s", err, debug)
	}
	if got := redactURL(&url.URL{Scheme: "http", Host: "h", Path: "/p", RawQuery: "client_secret=abc&scope=x&refresh_token=def"}); strings.Contains(got, "abc") || strings.Contains(got, "def") || !strings.Contains(got, "scope=x") {
		t.Errorf("redactURL = %s", got)
	}

	// Warnings, and without them.
	_, warn, err := c.run3("", "token", "create", "-n", "token-one", "-r", "default", "--scope-map", "_repositories_pull")
	if err != nil || !strings.Contains(warn, "WARNING: Please store your generated credentials safely") {
		t.Errorf("token create warns: %q, %v", warn, err)
	}
	out, warn, err = c.run3("", "token", "create", "-n", "token-two", "-r", "default", "--scope-map", "_repositories_pull", "--only-show-errors")
	if err != nil || warn != "" || !strings.Contains(out, `"token-two"`) {
		t.Errorf("--only-show-errors: stderr %q, stdout %q, %v", warn, out, err)
	}
	if _, _, err := c.run3("", "token", "create", "-n", "token-three", "-r", "nope", "--scope-map", "_repositories_pull", "--only-show-errors"); err == nil {
		t.Error("--only-show-errors hid an error")
	}
}

func TestHashKeys(t *testing.T) {
	for _, c := range []struct {
		q    string
		want []string
	}{
		{`[].{name: name, id: id}`, []string{"name", "id"}},
		{`{NAME: name, "LOGIN SERVER": loginServer, X: a[?b=='c,d'] | [0].{p: q, r: s}}`, []string{"NAME", "LOGIN SERVER", "X"}},
		{"[?type==`x`].{z: f(a, b), a: `{\"k\": 1}`}", []string{"z", "a"}},
		{`passwords[0].value`, nil},
		{`[name, id]`, nil},
	} {
		if got := hashKeys(c.q); !slices.Equal(got, c.want) {
			t.Errorf("hashKeys(%s) = %q, want %q", c.q, got, c.want)
		}
	}
}

// TestTables (issue 18): -o table shows each resource's curated columns, the name first, as
// az's table transformers; --query's own columns come in the order it names them, for table
// and tsv.
func TestTables(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newCLI(t)
	c.must(registrytest.OwnerPassword, "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin")
	c.must("", "registry", "update", "-n", "default", "--admin-enabled", "-o", "none")
	c.must("", "token", "create", "-n", "ci-token", "-r", "default", "--repository", "samples/*", "content/read", "-o", "none")
	c.must("", "network-rule", "add", "-n", "default", "--ip-address", "203.0.113.0/24", "-o", "none")
	header := func(out string) string {
		line, _, _ := strings.Cut(out, "\n")
		return strings.Join(strings.Fields(line), " ")
	}
	for _, tc := range []struct {
		args []string
		want string // the header, words joined by one space
		cell string // a value the table must show
	}{
		{[]string{"registry", "list"}, "NAME LOGIN SERVER CREATION DATE ADMIN ENABLED ROLE ASSIGNMENT MODE ANONYMOUS PULL PUBLIC NETWORK ACCESS", "default"},
		{[]string{"registry", "show", "-n", "default"}, "NAME LOGIN SERVER CREATION DATE ADMIN ENABLED ROLE ASSIGNMENT MODE ANONYMOUS PULL PUBLIC NETWORK ACCESS", "rbac"},
		{[]string{"credential", "show", "-n", "default"}, "USERNAME PASSWORD PASSWORD2", "default"},
		{[]string{"token", "list", "-r", "default"}, "NAME SCOPE MAP PASSWORD1 EXPIRY PASSWORD2 EXPIRY STATUS PROVISIONING STATE CREATION DATE", "Never"},
		{[]string{"scope-map", "list", "-r", "default"}, "NAME TYPE CREATION DATE DESCRIPTION", "SystemDefined"},
		{[]string{"network-rule", "list", "-n", "default"}, "ACTION IP ADDRESS OR RANGE", "203.0.113.0/24"},
		{[]string{"role", "definition", "list"}, "Name Id In rbac In rbac-abac Conditions", "7f951dda-4ed3-4680-a7ca-43fe172d538d"},
		{[]string{"role", "assignment", "list"}, "Principal Principal type Role Scope Condition", "Owner"},
		{[]string{"user", "list"}, "Name Creation date SSO only", "owner"},
		{[]string{"auth", "show"}, "User Type Server Server owner Expires on", "owner"},
		{[]string{"explain", "-n", "default", "--identity", "ci-token", "--repository", "samples/a", "--action", "push"}, "Source Ref Matched Detail", "scope map"},
		{[]string{"token", "list", "-r", "default", "--query", "[].{status: status, name: name}"}, "Status Name", "ci-token"},
	} {
		out := c.must("", append(tc.args, "-o", "table")...)
		if got := header(out); got != tc.want || !strings.Contains(out, tc.cell) {
			t.Errorf("berth %s -o table:\n%s\nheader %q, want %q with %q", strings.Join(tc.args, " "), out, got, tc.want, tc.cell)
		}
		for _, line := range strings.Split(out, "\n") {
			if len(line) > 200 {
				t.Errorf("berth %s -o table is %d characters wide:\n%s", strings.Join(tc.args, " "), len(line), line)
			}
		}
	}
	if out := c.must("", "token", "list", "-r", "default", "--query", "[].{status: status, name: name}", "-o", "tsv"); out != "enabled\tci-token\n" {
		t.Errorf("tsv in the query's order: %q", out)
	}
}

// TestLoginFallsBackToAdmin: as az acr login, when the registry gives no refresh token for the
// directory sign-in, berth login says so and logs docker in with the admin user's credentials,
// which the signed-in identity may read. The exchange is refused here by a proxy in front of
// the server; docker is a script that records what it was given.
func TestLoginFallsBackToAdmin(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	target, _ := url.Parse(s.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth2/exchange" {
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"no refresh tokens today"}]}`, http.StatusUnauthorized)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	dir := t.TempDir()
	record := filepath.Join(dir, "docker-args")
	docker := filepath.Join(dir, "docker")
	if err := os.WriteFile(docker, []byte("#!/bin/sh\necho \"$@\" > "+record+"\ncat >> "+record+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t)
	c.env = map[string]string{"DOCKER_COMMAND": docker}
	c.must(registrytest.OwnerPassword, "auth", "login", "--server", proxy.URL, "-u", "owner", "--password-stdin")
	// Without the admin user there is nothing to fall back to: the refusal is az's.
	if _, _, err := c.run3("", "login", "-n", "default"); err == nil || !strings.Contains(err.Error(), "CONNECTIVITY_REFRESH_TOKEN_ERROR") {
		t.Fatalf("login with the exchange refused and no admin user: %v", err)
	}
	pw := strings.TrimSpace(c.must("", "registry", "update", "-n", "default", "--admin-enabled", "--query", "credentials.passwords[0].value", "-o", "tsv"))
	_, warn, err := c.run3("", "login", "-n", "default")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(record)
	host := strings.TrimPrefix(proxy.URL, "http://")
	if want := "login --username default --password-stdin " + host + "\n" + pw; string(got) != want {
		t.Errorf("docker was given %q, want %q", got, want)
	}
	if !strings.Contains(warn, "WARNING: Unable to get a registry refresh token") || !strings.Contains(warn, "admin user") {
		t.Errorf("the fallback is not said: %q", warn)
	}
	// --expose-token never falls back: it is the refresh token or nothing.
	if _, _, err := c.run3("", "login", "-n", "default", "--expose-token"); err == nil || !strings.Contains(err.Error(), "CONNECTIVITY_REFRESH_TOKEN_ERROR") {
		t.Errorf("--expose-token with the exchange refused: %v", err)
	}
}

// TestCredentialShowWarnsWithoutValue: an admin password berth cannot show (made before it kept
// them, or sealed with another key) is null in the output, and a warning says how to get one.
func TestCredentialShowWarnsWithoutValue(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newCLI(t)
	c.must(registrytest.OwnerPassword, "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin")
	c.must("", "registry", "update", "-n", "default", "--admin-enabled", "-o", "none")
	ctx := context.Background()
	regs, err := s.Meta().Registries(ctx)
	if err != nil || len(regs) != 1 {
		t.Fatal(regs, err)
	}
	secs, err := s.Meta().Secrets(ctx, store.KindAdmin, regs[0].ID)
	if err != nil || len(secs) != 2 {
		t.Fatal(secs, err)
	}
	secs[1].Sealed = nil // password2, as an older berth stored it
	if err := s.Meta().PutSecret(ctx, store.KindAdmin, regs[0].ID, secs[1]); err != nil {
		t.Fatal(err)
	}
	out, warn, err := c.run3("", "credential", "show", "-n", "default", "--query", "passwords[1].value", "-o", "json")
	if err != nil || strings.TrimSpace(out) != "null" || !strings.Contains(warn, "WARNING: password2 cannot be shown") || !strings.Contains(warn, "berth credential renew -n default --password-name password2") {
		t.Errorf("credential show with password2 unsealed: %q, %q, %v", out, warn, err)
	}
	c.must("", "credential", "renew", "-n", "default", "--password-name", "password2", "-o", "none")
	if _, warn, err := c.run3("", "credential", "show", "-n", "default"); err != nil || warn != "" {
		t.Errorf("after the renewal: %q, %v", warn, err)
	}
}

package cli

import (
	"encoding/json"
	"flag"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/registrytest"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestExplainGolden")

var guid = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// TestExplainGolden sets up issue 4's scenarios with the CLI against a real server and compares
// `berth explain` with testdata/explain/*.golden (go test ./internal/cli -run ExplainGolden -update
// rewrites them; review the diff). GUIDs are replaced by <guid>.
func TestExplainGolden(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newCLI(t)
	c.must(registrytest.OwnerPassword, "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin")
	sp := strings.TrimSpace(c.must("", "sp", "create", "--name", "puller", "--query", "appId", "-o", "tsv"))
	tokPass := strings.TrimSpace(c.must("", "token", "create", "-n", "ci-bot", "-r", "default", "--repository", "team-a/*", "content/read", "content/write",
		"--query", "credentials.passwords[0].value", "-o", "tsv"))
	c.must("", "role", "assignment", "create", "--assignee", sp, "--role", "AcrPull", "--scope", "/registries/default")

	golden := func(name string, args ...string) {
		t.Helper()
		out := guid.ReplaceAllString(c.must("", append([]string{"explain", "-n", "default"}, args...)...), "<guid>")
		path := filepath.Join("testdata", "explain", name+".golden")
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if out != string(want) {
			t.Errorf("berth explain %s:\n%s\nwant (%s):\n%s", strings.Join(args, " "), out, path, want)
		}
	}
	// A service principal with AcrPull pulls but cannot push.
	golden("sp-acrpull-pull", "--identity", sp, "--repository", "team-a/x", "--action", "pull")
	golden("sp-acrpull-push", "--identity", sp, "--repository", "team-a/x", "--action", "push")
	// After the switch to rbac-abac, AcrPull is not honoured; Repository Reader with a prefix is.
	c.must("", "registry", "update", "-n", "default", "--role-assignment-mode", "rbac-abac")
	golden("sp-acrpull-abac", "--identity", sp, "--repository", "team-a/x", "--action", "pull")
	c.must("", "role", "assignment", "create", "--assignee", sp, "--role", "Container Registry Repository Reader", "--scope", "/registries/default",
		"--condition", "@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase 'team-a/'", "--condition-version", "2.0")
	golden("sp-reader-team-a", "--identity", sp, "--repository", "team-a/x", "--action", "pull")
	golden("sp-reader-team-b", "--identity", sp, "--repository", "team-b/x", "--action", "pull")
	golden("sp-catalog-filtered", "--identity", sp, "--action", "catalog")
	// Tokens follow their scope map whatever the mode.
	golden("token-push", "--identity", "token:ci-bot", "--repository", "team-a/x", "--action", "push")
	golden("token-delete", "--identity", "token:ci-bot", "--repository", "team-a/x", "--action", "delete")
	// A request with an access token is bounded by its grant too: the scope map allows push, the
	// token the client holds grants pull only.
	golden("token-grant-push", "--identity", "token:ci-bot", "--repository", "team-a/x", "--action", "push", "--grant", "repository:team-a/x:pull")
	jwt := accessToken(t, s, "ci-bot", tokPass, "repository:team-a/x:pull")
	file := filepath.Join(t.TempDir(), "token.jwt")
	if err := os.WriteFile(file, []byte(jwt+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if a, b := c.must("", "explain", "-n", "default", "--identity", "token:ci-bot", "--repository", "team-a/x", "--action", "push", "--access-token-file", file),
		c.must("", "explain", "-n", "default", "--identity", "token:ci-bot", "--repository", "team-a/x", "--action", "push", "--grant", "repository:team-a/x:pull"); a != b {
		t.Errorf("explain with the token file:\n%s\nwith its grant:\n%s", a, b)
	}
	if out := c.must("", "explain", "-n", "default", "--identity", "token:ci-bot", "--repository", "team-a/x", "--action", "pull", "--access-token-file", file); !strings.HasPrefix(out, "ALLOWED") {
		t.Errorf("pull with the token file: %s", out)
	}
	if _, err := c.run("", "explain", "-n", "default", "--identity", "token:ci-bot", "--repository", "team-a/x", "--action", "pull", "--access-token-file", filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("a missing token file was accepted")
	}
	// Anonymous pull for a prefix: pull only.
	c.must("", "registry", "update", "-n", "default", "--anonymous-pull-repositories", "public/*")
	golden("anonymous-pull", "--identity", "anonymous", "--repository", "public/x", "--action", "pull")
	golden("anonymous-private", "--identity", "anonymous", "--repository", "team-a/x", "--action", "pull")
	golden("anonymous-push", "--identity", "anonymous", "--repository", "public/x", "--action", "push")
	// Default action Deny with one allowed range.
	c.must("", "registry", "update", "-n", "default", "--default-action", "Deny")
	c.must("", "network-rule", "add", "-n", "default", "--ip-address", "203.0.113.0/24")
	golden("network-outside", "--identity", sp, "--repository", "team-a/x", "--action", "pull", "--ip", "198.51.100.7")
	golden("network-inside", "--identity", sp, "--repository", "team-a/x", "--action", "pull", "--ip", "203.0.113.9")

	// Bad conditions are refused at creation with the position.
	_, err := c.run("", "role", "assignment", "create", "--assignee", sp, "--role", "Container Registry Repository Reader", "--scope", "/registries/default",
		"--condition", "@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringBeginsWith 'x'")
	if err == nil || !strings.Contains(err.Error(), "condition: line 1, column 68: expected an operator") {
		t.Errorf("bad condition: %v", err)
	}
	_, err = c.run("", "role", "assignment", "create", "--assignee", sp, "--role", "AcrPull", "--scope", "/registries/default",
		"--condition", "@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEquals 'x'")
	if err == nil || !strings.Contains(err.Error(), `role "AcrPull" does not take conditions`) {
		t.Errorf("condition on AcrPull: %v", err)
	}
	// The last Owner at "/" cannot be removed.
	id := strings.TrimSpace(c.must("", "role", "assignment", "list", "--role", "Owner", "--scope", "/", "--query", "[0].id", "-o", "tsv"))
	if _, err := c.run("", "role", "assignment", "delete", "--ids", id); err == nil || !strings.Contains(err.Error(), "nobody would be left with the Owner role") {
		t.Errorf("deleting the last Owner: %v", err)
	}
	if out := c.must("", "role", "definition", "list", "--query", "length(@)", "-o", "tsv"); strings.TrimSpace(out) != "13" {
		t.Errorf("role definitions: %s", out)
	}
}

// accessToken asks the token endpoint for an access token with scope, as a client would.
func accessToken(t *testing.T, s *registrytest.Server, user, pass, scope string) string {
	t.Helper()
	req, err := http.NewRequest("GET", s.URL+"/oauth2/token?"+url.Values{"service": {s.Host}, "scope": {scope}}.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		t.Fatalf("token: %d %v", resp.StatusCode, err)
	}
	return body.AccessToken
}

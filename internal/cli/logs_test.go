package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/registrytest"
)

// TestLogsCommands: failed sign-ins show up in `berth logs login-events` with each output
// format and filter, and -o jsonl exports them.
func TestLogsCommands(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newCLI(t)
	c.must(registrytest.OwnerPassword, "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin")
	for _, user := range []string{"mallory", "mallory", "trudy"} {
		req, _ := http.NewRequest("GET", s.URL+"/oauth2/token?service="+url.QueryEscape(s.Host), nil)
		req.SetBasicAuth(user, "guess")
		req.Header.Set("X-Correlation-Id", "cli-"+user)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// Events are written in batches, a little after the requests: wait for all three.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c.must("", "logs", "login-events", "-n", "default", "--result", "failure", "--query", "length(@)", "-o", "tsv") == "3\n" {
			break
		}
	}
	out := c.must("", "logs", "login-events", "-n", "default", "--identity", "mallory", "--reason", "unknown_identity", "--query", "[].identity", "-o", "tsv")
	if out != "mallory\nmallory\n" {
		t.Fatalf("identity filter: %q", out)
	}
	table := c.must("", "logs", "login-events", "--correlation-id", "cli-trudy", "-o", "table")
	if lines := strings.Split(strings.TrimSpace(table), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "Time") ||
		!strings.Contains(lines[2], "trudy") || !strings.Contains(lines[2], "unknown_identity") || !strings.Contains(lines[2], "failure") {
		t.Errorf("table:\n%s", table)
	}
	jsonl := c.must("", "logs", "login-events", "--result", "failure", "-o", "jsonl", "--limit", "0")
	lines := strings.Split(strings.TrimSpace(jsonl), "\n")
	if len(lines) != 3 {
		t.Fatalf("jsonl: %d lines:\n%s", len(lines), jsonl)
	}
	for _, l := range lines {
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil || e["result"] != "failure" || e["operation"] != "token" {
			t.Errorf("jsonl line %s: %v", l, err)
		}
	}
	if out := c.must("", "logs", "repository-events", "-n", "default"); strings.TrimSpace(out) != "[]" {
		t.Errorf("repository events: %q", out)
	}
	for _, bad := range [][]string{{"--result", "maybe"}, {"--since", "last week"}, {"-o", "jsonl", "--query", "[0]"}, {"-n", "nosuch"}} {
		if _, err := c.run("", append([]string{"logs", "login-events"}, bad...)...); err == nil {
			t.Errorf("logs login-events %v was accepted", bad)
		}
	}
}

// TestCheckHealthText: without -o, check-health prints az acr check-health's lines, each error
// with its code, message and fix, and exits with an error; -o json gives the results.
func TestCheckHealthText(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newCLI(t)
	c.must(registrytest.OwnerPassword, "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin")
	out, err := c.run("", "check-health", "-n", "default")
	if err == nil || !strings.Contains(err.Error(), "1 error") {
		t.Errorf("err %v", err)
	}
	for _, want := range []string{"An error occurred: DOCKER_COMMAND_ERROR\nPlease verify if no-such-docker-command client is installed and running.\n",
		"  fix: Install docker or podman", "#docker_command_error for more information.", "Please refer to https://"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Challenge endpoint") {
		t.Errorf("ran on after the first error without --ignore-errors:\n%s", out)
	}
	out, _ = c.run("", "check-health", "-n", "default", "--ignore-errors")
	if !strings.Contains(out, "Challenge endpoint "+s.URL+"/v2/ : OK") || !strings.Contains(out, "Fetch access token for registry '"+s.Host+"' : OK") {
		t.Errorf("--ignore-errors:\n%s", out)
	}
	out, _ = c.run("", "check-health", "-n", "default", "--ignore-errors", "-o", "json", "--query", "[?check=='refresh token'].status | [0]")
	if strings.TrimSpace(out) != `"ok"` {
		t.Errorf("-o json --query: %q", out)
	}
}

// TestGCAndMigrateCommands: berth migrate and berth gc run against a server's own data folder.
func TestGCAndMigrateCommands(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	user, pwd := s.Admin(t)
	orphan := strings.Repeat("unreferenced blob ", 100)
	d := "sha256:" + sha256hex(orphan)
	req, _ := http.NewRequest("POST", s.URL+"/v2/gc/orphan/blobs/uploads/?digest="+d, strings.NewReader(orphan))
	req.SetBasicAuth(user, pwd)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 201 {
		t.Fatalf("push: %v %v", resp, err)
	}
	c := newCLI(t)
	where := []string{"--data-dir", s.Dir, "--database", s.Cfg.Database, "--storage", s.Cfg.Storage, "--log-level", "error"}
	if out := c.must("", append([]string{"migrate"}, where...)...); !strings.Contains(out, "nothing to apply") {
		t.Errorf("migrate: %q", out)
	}
	var rep struct {
		Deleted []string
		DryRun  bool
	}
	out := c.must("", append([]string{"gc"}, where...)...)
	if json.Unmarshal([]byte(out), &rep); len(rep.Deleted) != 0 {
		t.Errorf("within the default grace hour: %s", out)
	}
	out = c.must("", append([]string{"gc", "--grace", "0s", "--dry-run"}, where...)...)
	if json.Unmarshal([]byte(out), &rep); len(rep.Deleted) != 1 || rep.Deleted[0] != d || !rep.DryRun {
		t.Errorf("dry run: %s", out)
	}
	// gc honours --query and -o like every command.
	if out := c.must("", append([]string{"gc", "--grace", "0s", "--dry-run", "--query", "deleted[0]", "-o", "tsv"}, where...)...); out != d+"\n" {
		t.Errorf("gc --query deleted[0] -o tsv: %q; want %s", out, d)
	}
	if out := c.must("", append([]string{"gc", "--grace", "0s", "-o", "none"}, where...)...); out != "" {
		t.Errorf("gc -o none printed %q", out)
	}
	req, _ = http.NewRequest("GET", s.URL+"/v2/gc/orphan/blobs/"+d, nil)
	req.SetBasicAuth(user, pwd)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("the collected blob: %v %v, want 404", resp, err)
	}
}

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestOutputCannotLie (issue 16, finding 8): a user name with terminal escapes, a newline and a
// tab, sent without signing in, is printed escaped by every text output: no escape reaches the
// terminal, and it starts no row of its own.
func TestOutputCannotLie(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newCLI(t)
	c.must(registrytest.OwnerPassword, "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin")
	evil := "mallory\x1b[2J\nfake\trow\u009b31m\u202eevil"
	req, _ := http.NewRequest("GET", s.URL+"/oauth2/token?service="+url.QueryEscape(s.Host), nil)
	req.SetBasicAuth(evil, "guess")
	req.Header.Set("X-Correlation-Id", "cli-evil")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c.must("", "logs", "login-events", "--correlation-id", "cli-evil", "--query", "length(@)", "-o", "tsv") == "1\n" {
			break
		}
	}
	escaped := `mallory\x1b[2J\nfake\trow\u009b31m\u202eevil`
	for _, tc := range []struct {
		format string
		rows   int
	}{{"table", 3}, {"tsv", 1}} {
		out := c.must("", "logs", "login-events", "--correlation-id", "cli-evil", "-o", tc.format)
		if lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); len(lines) != tc.rows || strings.ContainsAny(out, "\x1b\u009b\u202e") ||
			!strings.Contains(out, escaped) {
			t.Errorf("-o %s: %d lines, want %d, with the name escaped:\n%s", tc.format, len(lines), tc.rows, out)
		}
	}
	if out := c.must("", "logs", "login-events", "--correlation-id", "cli-evil", "--query", "[0].identity", "-o", "tsv"); out != escaped+"\n" {
		t.Errorf("a scalar with --query: %q", out)
	}
	// -o json stays data: JSON escapes the controls itself, and a script gets the name back.
	out := c.must("", "logs", "login-events", "--correlation-id", "cli-evil", "-o", "json")
	var evs []struct{ Identity string }
	if err := json.Unmarshal([]byte(out), &evs); err != nil || len(evs) != 1 || evs[0].Identity != evil || strings.Contains(out, "\x1b") {
		t.Errorf("-o json: %v %+v", err, evs)
	}
	if got := SafeMessage("line one\nuser \"\x1b[2J\" not found"); got != "line one\nuser \"\\x1b[2J\" not found" {
		t.Errorf("SafeMessage: %q", got)
	}
}

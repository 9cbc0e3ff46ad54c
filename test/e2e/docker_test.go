package e2e

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/registrytest"
)

// dockerCLI returns the docker CLI, or skips the test where it is missing and the run does not
// require it (BERTH_REQUIRE_CLIENTS=1, as scripts/test.sh sets, makes a missing CLI a failure).
func dockerCLI(t *testing.T) string {
	path, err := exec.LookPath("docker")
	if err != nil {
		if os.Getenv("BERTH_REQUIRE_CLIENTS") == "1" {
			t.Fatalf("the docker CLI is required: %v", err)
		}
		t.Skipf("no docker CLI: %v", err)
	}
	return path
}

// TestDockerLoginExpiry has the real docker CLI (client-side login, no daemon) sign in with a
// token whose password expires, on a server whose clock the test moves: no sleeping.
func TestDockerLoginExpiry(t *testing.T) {
	docker := dockerCLI(t)
	clk := registrytest.NewClock()
	s := registrytest.New(t, registrytest.Options{Now: clk.Now})
	var tok struct {
		Credentials struct {
			Passwords []struct{ Name, Value string }
		}
	}
	if st := s.Mgmt(t, "POST", "/mgmt/v1/registries/default/tokens", map[string]any{"name": "short-lived",
		"scopeMap": "_repositories_push", "expiryInDays": 1}, &tok); st != http.StatusCreated {
		t.Fatalf("create token: %d", st)
	}
	pw := tok.Credentials.Passwords[0].Value
	cfg := t.TempDir()
	login := func(user, pass string) (string, error) {
		cmd := exec.Command(docker, "login", s.Host, "-u", user, "--password-stdin")
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfg)
		cmd.Stdin = strings.NewReader(pass)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	if out, err := login("short-lived", pw); err != nil {
		t.Fatalf("docker login with a fresh token password: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(cfg + "/config.json")
	if !strings.Contains(string(b), s.Host) {
		t.Errorf("docker stored no credentials for %s: %s", s.Host, b)
	}
	clk.Add(25 * time.Hour)
	// docker shows the server's message: the user learns which password expired, and when.
	if out, err := login("short-lived", pw); err == nil || !strings.Contains(out, "password1 of token short-lived expired on") {
		t.Errorf("docker login with an expired password: %v\n%s", err, out)
	}
	resp, body := request(t, "GET", s.URL+"/v2/", nil, map[string]string{"Authorization": basicHeader("short-lived", pw)})
	if resp.StatusCode != 401 || !bytes.Contains(body, []byte("password1 of token short-lived expired on")) {
		t.Errorf("expired password: %d %s", resp.StatusCode, body)
	}
}

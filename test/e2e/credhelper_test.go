package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/registrytest"
)

// tool is registrytest.Tool.
func tool(t *testing.T, name string) string { return registrytest.Tool(t, name) }

// TestCredentialHelper (issue 21): berth login --credential-helper names docker-credential-berth
// in docker's config and the containers' auth file; then the docker CLI, crane, skopeo and
// regctl push and pull with the registry refresh token it mints at every use — no credential
// stored anywhere; four hours later (the refresh token lives three) the next command still works
// with a new one; erase signs the login server out.
func TestCredentialHelper(t *testing.T) {
	docker, crane, skopeo, regctl, oras, helm := tool(t, "docker"), tool(t, "crane"), tool(t, "skopeo"), tool(t, "regctl"), tool(t, "oras"), tool(t, "helm")
	clk := registrytest.NewClock()
	s := registrytest.New(t, registrytest.Options{Now: clk.Now})
	home := t.TempDir()
	bin := filepath.Join(home, "bin")
	os.MkdirAll(bin, 0o755)
	if err := os.Symlink(berthBin, filepath.Join(bin, "docker-credential-berth")); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "HOME="+home, "HELM_REGISTRY_CONFIG="+filepath.Join(home, "helm", "registry.json"), "HELM_CACHE_HOME="+filepath.Join(home, "helm", "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "helm", "config"), "HELM_DATA_HOME="+filepath.Join(home, "helm", "data"), "BERTH_CONFIG_DIR="+filepath.Join(home, "berth"), "DOCKER_CONFIG="+filepath.Join(home, "docker"),
		"REGISTRY_AUTH_FILE="+filepath.Join(home, "containers", "auth.json"), "PATH="+bin+":"+os.Getenv("PATH"), "DOCKER_COMMAND=no-docker-needed")
	run := func(stdin, name string, args ...string) (string, error) {
		cmd := exec.Command(name, args...)
		cmd.Env = env
		cmd.Stdin = strings.NewReader(stdin)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	must := func(stdin, name string, args ...string) string {
		t.Helper()
		out, err := run(stdin, name, args...)
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
		}
		return out
	}
	must(registrytest.OwnerPassword, berthBin, "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin", "-o", "none")
	must("", berthBin, "login", "-n", "default", "--credential-helper", "-o", "none")
	for _, f := range []string{filepath.Join(home, "docker", "config.json"), filepath.Join(home, "containers", "auth.json"), filepath.Join(home, "helm", "registry.json")} {
		b, err := os.ReadFile(f)
		var doc struct{ CredHelpers map[string]string }
		if err != nil || json.Unmarshal(b, &doc) != nil || doc.CredHelpers[s.Host] != "berth" || bytes.Contains(b, []byte(`"auth"`)) {
			t.Errorf("%s: %s %v", f, b, err)
		}
	}
	// The helper itself, by docker's protocol.
	got := must(s.Host, filepath.Join(bin, "docker-credential-berth"), "get")
	var cred struct{ ServerURL, Username, Secret string }
	if json.Unmarshal([]byte(got), &cred) != nil || cred.Username != "00000000-0000-0000-0000-000000000000" || !strings.HasPrefix(cred.Secret, "eyJ") {
		t.Fatalf("get: %s", got)
	}
	if out, err := run("other.example:5000", filepath.Join(bin, "docker-credential-berth"), "get"); err == nil || !strings.Contains(out, "credentials not found") {
		t.Errorf("get for another server: %v %s", err, out)
	}

	layer := filepath.Join(home, "layer.tar")
	must("", "tar", "-cf", layer, "-C", home, "berth")
	ref := s.Host + "/helper/app:v1"
	must("", crane, "append", "--insecure", "--oci-empty-base", "-f", layer, "-t", ref)
	must("", skopeo, "inspect", "--tls-verify=false", "docker://"+ref)
	must("", regctl, "registry", "set", "--tls", "disabled", s.Host)
	if out := must("", regctl, "tag", "ls", s.Host+"/helper/app"); !strings.Contains(out, "v1") {
		t.Errorf("regctl tag ls: %s", out)
	}
	if out := must("", oras, "repo", "tags", "--plain-http", s.Host+"/helper/app"); !strings.Contains(out, "v1") {
		t.Errorf("oras repo tags: %s", out)
	}
	must("", helm, "create", filepath.Join(home, "mychart"))
	must("", helm, "package", filepath.Join(home, "mychart"), "-d", home)
	must("", helm, "push", filepath.Join(home, "mychart-0.1.0.tgz"), "oci://"+s.Host+"/charts", "--plain-http")
	// The docker CLI without a daemon: docker manifest reads the registry itself, with the
	// credentials docker's config names (here, the helper).
	if out := must("", docker, "manifest", "inspect", "--insecure", ref); !strings.Contains(out, "mediaType") {
		t.Errorf("docker manifest inspect with the helper: %s", out)
	}

	// Four hours on: the refresh tokens handed out before have expired; the helper mints anew
	// from the CLI's sign-in (renewed with its own refresh token).
	clk.Add(4 * time.Hour)
	must("", crane, "manifest", "--insecure", ref)
	must("", crane, "append", "--insecure", "--oci-empty-base", "-f", layer, "-t", s.Host+"/helper/app:v2")
	next := must(s.Host, filepath.Join(bin, "docker-credential-berth"), "get")
	if next == got {
		t.Error("the same token four hours later")
	}

	// erase: the helper no longer answers for the server, and crane is refused.
	must(s.Host, filepath.Join(bin, "docker-credential-berth"), "erase")
	if out := must("", filepath.Join(bin, "docker-credential-berth"), "list"); strings.Contains(out, s.Host) {
		t.Errorf("list after erase: %s", out)
	}
	if out, err := run("", crane, "append", "--insecure", "--oci-empty-base", "-f", layer, "-t", s.Host+"/helper/app:v3"); err == nil || !strings.Contains(strings.ToUpper(out), "UNAUTHORIZED") {
		t.Errorf("crane after erase: %v %s", err, out)
	}
}

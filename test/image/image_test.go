// Package image builds berth's container image from the Containerfile (scripts/image.sh, with
// buildah), checks what it declares, pushes it into a berth, and runs it: with podman when a
// container can run here, else the binary from the image's own filesystem. It runs in its own
// stage of scripts/test.sh (BERTH_IMAGE_TEST=1): it needs root, buildah and podman.
package image

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/berth-registry/berth/internal/registrytest"
)

const tag = "localhost/berth:image-test"

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestImage(t *testing.T) {
	if os.Getenv("BERTH_IMAGE_TEST") != "1" {
		t.Skip("the image is built and run in its own stage of scripts/test.sh (BERTH_IMAGE_TEST=1): it needs root, buildah and podman")
	}
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	build := exec.Command("bash", filepath.Join(root, "scripts", "image.sh"), tag)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("scripts/image.sh: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("buildah", "rmi", tag).Run() })

	// What the image declares.
	var inspect []struct {
		Config struct {
			User         string
			ExposedPorts map[string]struct{}
			Volumes      map[string]struct{}
			Entrypoint   []string
			Cmd          []string
			Env          []string
			Labels       map[string]string
		}
		Healthcheck *struct{ Test []string } // podman puts it beside Config
	}
	if err := json.Unmarshal([]byte(run(t, "podman", "image", "inspect", tag)), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("podman image inspect: %v", err)
	}
	c := inspect[0].Config
	for what, ok := range map[string]bool{
		"a non-root user":            c.User == "65532:65532",
		"port 5000 exposed":          hasKey(c.ExposedPorts, "5000/tcp"),
		"the /data volume":           hasKey(c.Volumes, "/data"),
		"berth serve as its command": strings.Join(append(c.Entrypoint, c.Cmd...), " ") == "/usr/local/bin/berth serve",
		"a health check on /healthz": inspect[0].Healthcheck != nil && strings.Contains(strings.Join(inspect[0].Healthcheck.Test, " "), "berth healthcheck"),
		"OCI labels":                 c.Labels["org.opencontainers.image.title"] == "berth" && c.Labels["org.opencontainers.image.source"] != "",
		"its data in /data":          slices.Contains(c.Env, "BERTH_DATA_DIR=/data"),
	} {
		if !ok {
			t.Errorf("the image lacks %s: %+v", what, c)
		}
	}

	// Pushed into a berth with skopeo, pulled back whole.
	s := registrytest.New(t, registrytest.Options{})
	user, pass := s.Admin(t)
	dest := s.Host + "/berth/berth:image-test"
	run(t, "skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", user+":"+pass, "containers-storage:"+tag, "docker://"+dest)
	ref, _ := name.ParseReference(dest, name.Insecure)
	img, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: user, Password: pass}))
	if err == nil {
		err = validate.Image(img)
	}
	if err != nil {
		t.Fatalf("the image pushed into berth does not pull whole: %v", err)
	}

	// Run: a container with podman if one can run here; otherwise the binary from the image.
	port := strings.TrimPrefix(registrytest.FreeAddr(t), "127.0.0.1:")
	const owner = "image-test-owner-password"
	id, err := exec.Command("podman", "run", "-d", "--rm", "-p", "127.0.0.1:"+port+":5000", "-e", "BERTH_BOOTSTRAP_PASSWORD="+owner, tag).CombinedOutput()
	addr := "127.0.0.1:" + port
	if err == nil {
		cid := strings.TrimSpace(string(id))
		t.Cleanup(func() { exec.Command("podman", "rm", "-f", cid).Run() })
		t.Logf("running the image as a container (podman run): %.12s", cid)
		waitReady(t, addr, func() string { out, _ := exec.Command("podman", "logs", cid).CombinedOutput(); return string(out) })
		if out, err := exec.Command("podman", "healthcheck", "run", cid).CombinedOutput(); err != nil {
			t.Errorf("podman healthcheck run: %v %s", err, out)
		}
		if out, err := exec.Command("podman", "run", "--rm", tag, "--version").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "berth ") {
			t.Errorf("berth --version in a container: %v %s", err, out)
		}
	} else {
		t.Logf("podman cannot run a container here (%v: %s); running the binary from the image's filesystem instead",
			err, strings.TrimSpace(lastLine(string(id))))
		ctr := strings.TrimSpace(run(t, "buildah", "from", tag))
		t.Cleanup(func() { exec.Command("buildah", "rm", ctr).Run() })
		mnt := strings.TrimSpace(run(t, "buildah", "mount", ctr))
		cmd := exec.Command(filepath.Join(mnt, "usr/local/bin/berth"), "serve", "--listen", addr, "--data-dir", t.TempDir())
		cmd.Env = append(os.Environ(), "BERTH_BOOTSTRAP_PASSWORD="+owner)
		var logs strings.Builder
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		waitReady(t, addr, logs.String)
		bin := filepath.Join(mnt, "usr/local/bin/berth")
		if out, err := exec.Command(bin, "healthcheck", "--url", "http://"+addr+"/healthz").CombinedOutput(); err != nil {
			t.Errorf("berth healthcheck: %v %s", err, out)
		}
		if out, err := exec.Command(bin, "healthcheck", "--url", "http://"+registrytest.FreeAddr(t)+"/healthz").CombinedOutput(); err == nil {
			t.Errorf("berth healthcheck of an address where nothing listens succeeded: %s", out)
		}
		out, err := exec.Command(bin, "--version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "berth ") || strings.Contains(string(out), "commit unknown") {
			t.Errorf("berth --version of the image's binary (scripts/image.sh names the commit): %v %s", err, out)
		}
	}

	// Push and pull through the berth from the image, as its owner's admin user.
	base := "http://" + addr
	tok := registrytest.SignInAt(t, base, "owner", owner)
	var reg struct {
		Credentials struct {
			Username  string
			Passwords []struct{ Value string }
		}
	}
	if st := registrytest.MgmtAt(t, base, tok, "PATCH", "/mgmt/v1/registries/default", map[string]any{"adminUserEnabled": true}, &reg); st != http.StatusOK {
		t.Fatalf("enable the admin user: %d", st)
	}
	auth := remote.WithAuth(&authn.Basic{Username: reg.Credentials.Username, Password: reg.Credentials.Passwords[0].Value})
	pushed, _ := random.Image(4096, 2)
	pref, _ := name.NewTag(addr+"/smoke/app:v1", name.Insecure)
	if err := remote.Write(pref, pushed, auth); err != nil {
		t.Fatalf("push to the berth from the image: %v", err)
	}
	pulled, err := remote.Image(pref, auth)
	if err == nil {
		err = validate.Image(pulled)
	}
	want, _ := pushed.Digest()
	if got, _ := pulled.Digest(); err != nil || got != want {
		t.Errorf("pull from the berth from the image: %v (digest %s, pushed %s)", err, got, want)
	}
}

func waitReady(t *testing.T, addr string, logs func() string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
	}
	t.Fatalf("the berth from the image did not become ready on %s:\n%s", addr, logs())
}

func hasKey(m map[string]struct{}, k string) bool { _, ok := m[k]; return ok }

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

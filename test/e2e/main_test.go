// Package e2e drives a real berth binary or server through real sockets: crash recovery,
// memory use while streaming, and throughput benchmarks.
package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/registrytest"
)

// berthBin is the berth binary built once for the tests that run it as a process.
var berthBin string

func TestMain(m *testing.M) { registrytest.MainWithBinary(m, &berthBin) }

// proc is a berth serve process.
type proc struct {
	cmd  *exec.Cmd
	url  string
	logs *bytes.Buffer
}

func freeAddr(t *testing.T) string { return registrytest.FreeAddr(t) }

// startBerth runs berth serve on addr with data in dir and waits until it is ready.
func startBerth(t *testing.T, dir, addr string) *proc {
	t.Helper()
	logs := &bytes.Buffer{}
	cmd := exec.Command(berthBin, "serve", "--listen", addr, "--data-dir", dir, "--log-level", "warn")
	cmd.Env = append(os.Environ(), "BERTH_BOOTSTRAP_PASSWORD="+ownerPassword)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, url: "http://" + addr, logs: logs}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				useAdmin(t, p.url)
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("berth did not become ready; logs:\n%s", logs)
	return nil
}

func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
}

func request(t testing.TB, method, url string, body io.Reader, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if req.Header.Get("Authorization") == "" && basicAuth != "" {
		req.Header.Set("Authorization", basicAuth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func digestOf(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

func absolute(base, loc string) string {
	if strings.HasPrefix(loc, "http") {
		return loc
	}
	return base + loc
}

// ownerPassword is the bootstrap owner's password of the servers these tests start.
const ownerPassword = "e2e-owner-password"

// basicAuth is the Authorization header request sends: the admin user of the server under test.
var basicAuth string

// useAdmin signs in to the server at base as its owner, enables the default registry's admin user
// (renewing its password when it was enabled before) and makes request send its credentials.
func useAdmin(t testing.TB, base string) {
	t.Helper()
	resp, err := http.PostForm(base+"/mgmt/v1/token", url.Values{"grant_type": {"password"}, "username": {"owner"}, "password": {ownerPassword}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if tok.AccessToken == "" {
		t.Fatalf("owner sign-in: status %d", resp.StatusCode)
	}
	call := func(method, path, body string, out any) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		json.NewDecoder(resp.Body).Decode(out)
	}
	var reg struct {
		Credentials struct {
			Passwords []struct{ Name, Value string }
		}
	}
	call("PATCH", "/mgmt/v1/registries/default", `{"adminUserEnabled":true}`, &reg)
	pwds := reg.Credentials.Passwords
	if len(pwds) == 0 {
		var creds struct {
			Passwords []struct{ Name, Value string }
		}
		call("POST", "/mgmt/v1/registries/default/credentials/renew", `{"name":"password"}`, &creds)
		pwds = creds.Passwords[:1]
	}
	basicAuth = "Basic " + base64.StdEncoding.EncodeToString([]byte("default:"+pwds[0].Value))
}

// useAdminOf makes request send the admin credentials of a registrytest server.
func useAdminOf(t testing.TB, s *registrytest.Server) {
	user, pass := s.Admin(t)
	basicAuth = "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func basicHeader(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// Package ssotest runs the real OpenID provider of the single sign-on tests (test/oidc-provider:
// zitadel/oidc's OP, built by scripts/install-test-tools.sh) and plays the person at its pages,
// as a browser would: no JavaScript is needed by them.
package ssotest

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// People of the provider: alice (in groups devs and not-in-berth) and bob, with these passwords.
// Their ids are their names (the example storage looks device sign-ins up by either).
const (
	AlicePassword = "alice-password"
	BobPassword   = "bob-password"
)

// Provider starts the provider with berth's three clients — "berth" (secret "berth-secret",
// redirecting to callback), "berth-public" (no secret: PKCE only, same callback) and
// "berth-device" (secret "device-secret", the device flow) — and
// returns its issuer. Without the binary, the test is skipped, or fails when
// BERTH_REQUIRE_CLIENTS=1 (as scripts/test.sh runs).
func Provider(t testing.TB, callback string) string {
	t.Helper()
	bin, err := exec.LookPath("oidc-provider")
	if err != nil {
		if os.Getenv("BERTH_REQUIRE_CLIENTS") == "1" {
			t.Fatalf("the test OpenID provider is required: %v (scripts/install-test-tools.sh builds it)", err)
		}
		t.Skipf("no oidc-provider: %v", err)
	}
	dir := t.TempDir()
	users := map[string]any{
		"alice": map[string]any{"ID": "alice", "Username": "alice", "Password": AlicePassword, "Email": "Alice@Corp.example", "EmailVerified": true, "FirstName": "Alice", "LastName": "A"},
		"bob":   map[string]any{"ID": "bob", "Username": "bob", "Password": BobPassword, "Email": "bob@corp.example", "EmailVerified": true, "FirstName": "Bob", "LastName": "B"},
	}
	b, _ := json.Marshal(users)
	os.WriteFile(filepath.Join(dir, "users.json"), b, 0o600)
	os.WriteFile(filepath.Join(dir, "groups.json"), []byte(`{"alice": ["devs", "not-in-berth"]}`), 0o600)
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-users", filepath.Join(dir, "users.json"), "-groups", filepath.Join(dir, "groups.json"),
		"-client", "berth:berth-secret:"+callback, "-device-client", "berth-device:device-secret", "-public-client", "berth-public:"+callback)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "issuer ") {
		t.Fatalf("oidc-provider did not start: %q %v", line, err)
	}
	return strings.TrimSpace(strings.TrimPrefix(line, "issuer "))
}

// Browser is an HTTP client with cookies that follows redirects.
func Browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 20 * time.Second}
}

// SignIn opens start (berth's /mgmt/v1/sso/…/login) in a browser, types user and password at the
// provider's login page, and follows the redirects to their end: the client's loopback address.
// It returns where the browser ended and with what status.
func SignIn(t testing.TB, start, user, password string) (*url.URL, int) {
	t.Helper()
	b := Browser()
	resp, err := b.Get(start)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	id := resp.Request.URL.Query().Get("authRequestID")
	if resp.StatusCode != 200 || id == "" {
		t.Fatalf("the provider's login page: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	login := *resp.Request.URL
	login.RawQuery = ""
	resp, err = b.PostForm(login.String(), url.Values{"username": {user}, "password": {password}, "id": {id}})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Request.URL, resp.StatusCode
}

// ConfirmDevice enters userCode at the provider's device page as user, and allows it.
func ConfirmDevice(t testing.TB, issuer, userCode, user, password string) {
	t.Helper()
	b := Browser()
	op, _ := url.Parse(issuer)
	resp, err := b.PostForm(op.JoinPath("device", "login").String(), url.Values{"user_code": {userCode}, "username": {user}, "password": {password}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("device login: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = b.PostForm(op.JoinPath("device", "confirm").String(), url.Values{"action": {"allowed"}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("device confirm: %v %v", resp, err)
	}
	resp.Body.Close()
}

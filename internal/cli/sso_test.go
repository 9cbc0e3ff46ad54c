package cli

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/registrytest"
	"github.com/berth-registry/berth/internal/sso/ssotest"
)

// TestSSOCommands (issue 20): berth identity-provider create/show/list/update, then alice signs
// in with berth auth login --sso (the browser, played here, types her password at the provider)
// and bob with --use-device-code; their sessions work and last like a password sign-in's; an
// administrator makes a local user SSO-only.
func TestSSOCommands(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) {
		c.Federation.AllowHTTP, c.Outbound.AllowedNetworks = true, []string{"127.0.0.0/8"}
	}})
	issuer := ssotest.Provider(t, s.URL+"/mgmt/v1/sso/callback")
	owner := newCLI(t)
	owner.must(registrytest.OwnerPassword, "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin")
	owner.must("berth-secret\n", "identity-provider", "create", "-n", "corp", "--issuer", issuer, "--client-id", "berth", "--client-secret-stdin", "--create-users", "-o", "none")
	owner.must("device-secret", "identity-provider", "create", "-n", "corp-device", "--issuer", issuer, "--client-id", "berth-device", "--client-secret-stdin", "--create-users", "-o", "none")
	if got := owner.must("", "identity-provider", "show", "-n", "corp", "--query", "[[hasClientSecret, createUsers, endpoints.callback]]", "-o", "tsv"); got != "true\ttrue\t"+s.URL+"/mgmt/v1/sso/callback\n" {
		t.Errorf("show: %q", got)
	}
	if got := owner.must("", "identity-provider", "list", "--query", "[].name", "-o", "tsv"); got != "corp\ncorp-device\n" {
		t.Errorf("list: %q", got)
	}
	owner.must("", "identity-provider", "update", "-n", "corp", "--groups-claim", "roles", "-o", "none")
	if got := owner.must("", "identity-provider", "show", "-n", "corp", "--query", "claims.groups", "-o", "tsv"); got != "roles\n" {
		t.Errorf("after update: %q", got)
	}
	owner.must("", "identity-provider", "update", "-n", "corp", "--groups-claim", "groups", "-o", "none")

	// alice, with a browser.
	alice := newCLI(t)
	ended := make(chan string, 1)
	alice.openURL = func(u string) {
		go func() {
			end, _ := ssotest.SignIn(t, u, "alice", ssotest.AlicePassword)
			ended <- end.String()
		}()
	}
	if got := alice.must("", "auth", "login", "--server", s.URL, "--sso", "--identity-provider", "corp", "--query", "user.name", "-o", "tsv"); got != "alice\n" {
		t.Errorf("auth login --sso: %q", got)
	}
	if end := <-ended; !strings.Contains(end, "127.0.0.1") {
		t.Errorf("the browser ended at %q, not the CLI's loopback listener", end)
	}
	if sess := alice.session(); sess.User != "alice" || sess.RefreshToken == "" {
		t.Errorf("session: %+v", sess)
	}
	if got := alice.must("", "auth", "show", "--query", "user.name", "-o", "tsv"); got != "alice\n" {
		t.Errorf("auth show: %q", got)
	}

	// bob, on a machine without a browser: the code shown on stderr, entered elsewhere.
	bob := newCLI(t)
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		_, _, err := bob.run3w(&stderr, "", "auth", "login", "--server", s.URL, "--sso", "--use-device-code", "--identity-provider", "corp-device", "-o", "none")
		done <- err
	}()
	code := regexp.MustCompile(`enter the code (\S+)`)
	var userCode string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && userCode == ""; time.Sleep(50 * time.Millisecond) {
		if m := code.FindStringSubmatch(stderr.String()); m != nil {
			userCode = m[1]
		}
	}
	if userCode == "" {
		t.Fatalf("no user code shown: %q", stderr.String())
	}
	ssotest.ConfirmDevice(t, issuer, userCode, "bob", ssotest.BobPassword)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("device sign-in: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the device sign-in did not end")
	}
	if sess := bob.session(); sess.User != "bob" {
		t.Errorf("bob's session: %+v", sess)
	}

	// An administrator makes a local user sign in with single sign-on only.
	owner.must("", "user", "create", "-n", "carol", "-o", "none")
	var u struct{ SSOOnly bool }
	json.Unmarshal([]byte(owner.must("", "user", "update", "-n", "carol", "--sso-only", "true")), &u)
	if !u.SSOOnly {
		t.Error("carol is not SSO-only")
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

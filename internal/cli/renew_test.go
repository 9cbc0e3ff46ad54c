package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/registrytest"
)

// TestSignInLasts: the CLI's sign-in outlives its one-hour directory token: two hours later (by
// the server's clock) a command renews it with the refresh token, silently; each renewal spends
// the refresh token and gives the next; a spent one used again revokes the whole sign-in; after
// berth auth logout the refresh token is refused.
func TestSignInLasts(t *testing.T) {
	clk := registrytest.NewClock()
	s := registrytest.New(t, registrytest.Options{Now: clk.Now})
	c := newCLI(t)
	c.must(registrytest.OwnerPassword, "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin")
	first := c.session()
	if first.RefreshToken == "" {
		t.Fatal("auth login kept no refresh token")
	}
	if fi, err := os.Stat(filepath.Join(c.cfg, "config.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the saved sign-in: %v %v; want mode 0600", fi.Mode(), err)
	}
	clk.Add(2 * time.Hour)
	if out, err := c.run("", "registry", "list", "--query", "[0].name", "-o", "tsv"); err != nil || out != "default\n" {
		t.Fatalf("a command two hours after the sign-in: %q %v", out, err)
	}
	second := c.session()
	if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
		t.Fatal("the renewal did not replace the tokens")
	}
	// The local clock says the token expired: renewed before the call.
	second.ExpiresOn = time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	c.saveSession(second)
	if _, err := c.run("", "auth", "show"); err != nil {
		t.Fatalf("auth show with an expired directory token: %v", err)
	}
	third := c.session()
	if third.RefreshToken == second.RefreshToken {
		t.Error("an expired directory token was not renewed")
	}
	ctx := context.Background()
	api := client.New(s.URL, "")
	// A spent refresh token used again (a stolen copy): refused, and the sign-in is revoked.
	if _, err := api.RenewSignIn(ctx, first.RefreshToken); !client.IsStatus(err, 401) {
		t.Errorf("a spent refresh token: %v; want 401", err)
	}
	if _, err := api.RenewSignIn(ctx, third.RefreshToken); !client.IsStatus(err, 401) {
		t.Errorf("the sign-in's current refresh token after a reuse: %v; want 401 (revoked)", err)
	}
	// logout revokes.
	c.must(registrytest.OwnerPassword, "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin")
	fresh := c.session()
	c.must("", "auth", "logout")
	if c.session().RefreshToken != "" {
		t.Error("logout kept the refresh token")
	}
	if _, err := api.RenewSignIn(ctx, fresh.RefreshToken); !client.IsStatus(err, 401) {
		t.Errorf("the refresh token after logout: %v; want 401", err)
	}
}

// session reads the CLI's saved sign-in.
func (c *cliRunner) session() session {
	c.t.Helper()
	var s session
	b, err := os.ReadFile(filepath.Join(c.cfg, "config.json"))
	if err != nil {
		c.t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		c.t.Fatal(err)
	}
	return s
}

func (c *cliRunner) saveSession(s session) {
	b, _ := json.Marshal(s)
	if err := os.WriteFile(filepath.Join(c.cfg, "config.json"), b, 0o600); err != nil {
		c.t.Fatal(err)
	}
}

// TestServicePrincipalSignInLasts: a service principal's CLI sign-in (--service-principal -u
// APPID -p SECRET) renews the same way; a refresh token minted for it keeps speaking for it, not
// for another identity, and dies with the principal.
func TestServicePrincipalSignInLasts(t *testing.T) {
	clk := registrytest.NewClock()
	s := registrytest.New(t, registrytest.Options{Now: clk.Now})
	owner := newCLI(t)
	owner.must(registrytest.OwnerPassword, "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin")
	var sp struct{ AppID, Password string }
	json.Unmarshal([]byte(owner.must("", "sp", "create", "-n", "ci-robot")), &sp)
	owner.must("", "role", "assignment", "create", "--assignee", sp.AppID, "--role", "Reader", "--scope", "/registries/default", "-o", "none")

	c := newCLI(t)
	c.must("", "auth", "login", "--server", s.URL, "--service-principal", "-u", sp.AppID, "-p", sp.Password, "-o", "none")
	first := c.session()
	if first.RefreshToken == "" || first.Type != "servicePrincipal" || first.User != sp.AppID {
		t.Fatalf("the service principal's sign-in: %+v", first)
	}
	clk.Add(2 * time.Hour)
	if out, err := c.run("", "auth", "show", "--query", "user.name", "-o", "tsv"); err != nil || out != sp.AppID+"\n" {
		t.Fatalf("two hours later: %q %v", out, err)
	}
	if c.session().RefreshToken == first.RefreshToken {
		t.Error("not renewed")
	}
	if out, err := c.run("", "registry", "show", "-n", "default", "--query", "name", "-o", "tsv"); err != nil || out != "default\n" {
		t.Errorf("the Reader role through the renewed sign-in: %q %v", out, err)
	}
	// Deleted, the principal's sign-in cannot be renewed.
	owner.must("", "sp", "delete", "--id", sp.AppID)
	clk.Add(2 * time.Hour)
	if _, err := c.run("", "auth", "show"); err == nil {
		t.Error("a deleted service principal's sign-in was renewed")
	}
}

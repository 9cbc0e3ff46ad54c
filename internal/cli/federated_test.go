package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/federation/federationtest"
	"github.com/berth-registry/berth/internal/registrytest"
)

// TestFederatedCredentialCommands (issue 20): berth sp federated-credential as az ad app
// federated-credential (flags or --parameters), then a pipeline signs in with
// `berth auth login --service-principal -u APPID --federated-token` and logs in to the
// registry; another branch is refused with its subject named.
func TestFederatedCredentialCommands(t *testing.T) {
	is := federationtest.New(t)
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) {
		c.Federation.Issuers, c.Federation.AllowHTTP, c.Outbound.AllowedNetworks = []string{is.URL}, true, []string{"127.0.0.0/8"}
	}})
	owner := newCLI(t)
	owner.must(registrytest.OwnerPassword, "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin")
	var sp struct{ AppID string }
	json.Unmarshal([]byte(owner.must("", "sp", "create", "-n", "pipeline")), &sp)
	owner.must("", "role", "assignment", "create", "--assignee", sp.AppID, "--role", "AcrPush", "--scope", "/registries/default", "-o", "none")
	owner.must("", "sp", "federated-credential", "create", "--id", sp.AppID, "-n", "main", "--issuer", is.URL, "--subject", "repo:acme/app:ref:refs/heads/main", "-o", "none")
	params := filepath.Join(t.TempDir(), "credential.json")
	os.WriteFile(params, []byte(`{"name": "prod", "issuer": "`+is.URL+`", "subject": "repo:acme/app:environment:prod", "description": "deploys", "audiences": ["api://BerthTokenExchange"]}`), 0o600)
	owner.must("", "sp", "federated-credential", "create", "--id", sp.AppID, "--parameters", params, "-o", "none")
	if got := owner.must("", "sp", "federated-credential", "list", "--id", sp.AppID, "--query", "[].[name, subject]", "-o", "tsv"); got != "main\trepo:acme/app:ref:refs/heads/main\nprod\trepo:acme/app:environment:prod\n" {
		t.Errorf("list: %q", got)
	}
	table := owner.must("", "sp", "federated-credential", "list", "--id", sp.AppID, "-o", "table")
	if !strings.Contains(table, "Name") || !strings.Contains(table, "refs/heads/main") {
		t.Errorf("table: %s", table)
	}
	// Update what is given: the expression replaces the subject; the description stays.
	owner.must("", "sp", "federated-credential", "update", "--id", sp.AppID, "--federated-credential-id", "prod",
		"--claims-matching-expression", "claims['sub'] matches 'repo:acme/app:environment:*'", "-o", "none")
	if got := owner.must("", "sp", "federated-credential", "show", "--id", sp.AppID, "--federated-credential-id", "prod",
		"--query", "[[subject, claimsMatchingExpression.value, description]]", "-o", "tsv"); got != "\tclaims['sub'] matches 'repo:acme/app:environment:*'\tdeploys\n" {
		t.Errorf("after update: %q", got)
	}
	if _, err := owner.run("", "sp", "federated-credential", "create", "--id", sp.AppID, "-n", "elsewhere", "--issuer", "https://elsewhere.example", "--subject", "s"); err == nil ||
		!strings.Contains(err.Error(), "federation.issuers") {
		t.Errorf("an issuer the server does not trust: %v", err)
	}

	// The pipeline: no secret anywhere.
	ci := newCLI(t)
	main := is.Sign(t, nil, federationtest.GitHub("acme/app", "refs/heads/main"))
	ci.must("", "auth", "login", "--server", s.URL, "--service-principal", "-u", sp.AppID, "--federated-token", main, "-o", "none")
	if sess := ci.session(); sess.Type != "servicePrincipal" || sess.User != sp.AppID || sess.RefreshToken == "" {
		t.Errorf("session: %+v", sess)
	}
	if got := ci.must("", "login", "-n", "default", "--expose-token", "--query", "username", "-o", "tsv"); got != "00000000-0000-0000-0000-000000000000\n" {
		t.Errorf("login --expose-token: %q", got)
	}
	dev := newCLI(t)
	_, err := dev.run("", "auth", "login", "--server", s.URL, "--service-principal", "-u", sp.AppID, "--federated-token", is.Sign(t, nil, federationtest.GitHub("acme/app", "refs/heads/dev")))
	if err == nil || !strings.Contains(err.Error(), "subject repo:acme/app:ref:refs/heads/dev does not match") {
		t.Errorf("the dev branch: %v", err)
	}
	if _, err := dev.run("", "auth", "login", "--server", s.URL, "-u", sp.AppID, "--federated-token", main); err == nil || !strings.Contains(err.Error(), "--service-principal") {
		t.Errorf("--federated-token without --service-principal: %v", err)
	}
	// explain shows the credentials, and which one a subject would match.
	out := owner.must("", "explain", "-n", "default", "--identity", sp.AppID, "--repository", "acme/app", "--action", "push", "--subject", "repo:acme/app:environment:staging")
	for _, want := range []string{"subject repo:acme/app:environment:staging matches", "claims['sub'] matches 'repo:acme/app:environment:*'",
		"with subject repo:acme/app:ref:refs/heads/main (exactly) sign in as this service principal: subject repo:acme/app:environment:staging does not match"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain without %q:\n%s", want, out)
		}
	}
	owner.must("", "sp", "federated-credential", "delete", "--id", sp.AppID, "--federated-credential-id", "main")
	if _, err := dev.run("", "auth", "login", "--server", s.URL, "--service-principal", "-u", sp.AppID, "--federated-token", main); err == nil {
		t.Error("a deleted credential still signs in")
	}
}

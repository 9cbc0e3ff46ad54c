package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/federation/federationtest"
	"github.com/berth-registry/berth/internal/registrytest"
)

// TestCredentialHelperWithoutSession (issue 21): on a machine with no berth sign-in (a CI runner,
// a pod), the helper signs a service principal in by itself — with the federated token file
// BERTH_FEDERATED_TOKEN_FILE names (read afresh at every get), or with a secret — and the refresh
// token it hands out pulls; a token file of another subject is refused with the reason.
func TestCredentialHelperWithoutSession(t *testing.T) {
	is := federationtest.New(t)
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) {
		c.Federation.Issuers, c.Federation.AllowHTTP, c.Outbound.AllowedNetworks = []string{is.URL}, true, []string{"127.0.0.0/8"}
	}})
	owner := newCLI(t)
	owner.must(registrytest.OwnerPassword, "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin")
	var sp struct{ AppID, Password string }
	json.Unmarshal([]byte(owner.must("", "sp", "create", "-n", "kubelet")), &sp)
	owner.must("", "role", "assignment", "create", "--assignee", sp.AppID, "--role", "AcrPull", "--scope", "/registries/default", "-o", "none")
	owner.must("", "sp", "federated-credential", "create", "--id", sp.AppID, "-n", "puller", "--issuer", is.URL, "--subject", "system:serviceaccount:prod:puller", "-o", "none")

	// The runner's helper configuration, as berth login --credential-helper writes it.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "credential-helper.json"), []byte(`{"servers": {"`+s.Host+`": {"server": "`+s.URL+`", "registry": "default", "scheme": "http"}}}`), 0o600)
	tokenFile := filepath.Join(dir, "token")
	get := func(env map[string]string) (string, error) {
		var out bytes.Buffer
		err := CredentialHelper(context.Background(), Env{Stdin: strings.NewReader(s.Host), Stdout: &out, Stderr: &out, Getenv: func(k string) string {
			if k == "BERTH_CONFIG_DIR" {
				return dir
			}
			return env[k]
		}}, []string{"get"})
		return out.String(), err
	}
	pulls := func(secret string) bool {
		req, _ := http.NewRequest("GET", s.URL+"/oauth2/token?service="+s.Host+"&scope=repository:any/repo:pull", nil)
		req.SetBasicAuth("00000000-0000-0000-0000-000000000000", secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		json.NewDecoder(resp.Body).Decode(&tok)
		return resp.StatusCode == 200 && tok.AccessToken != ""
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		sub  string
		ok   bool
		says string
	}{
		{"federated token file", map[string]string{"BERTH_CLIENT_ID": sp.AppID, "BERTH_FEDERATED_TOKEN_FILE": tokenFile}, "system:serviceaccount:prod:puller", true, ""},
		{"another service account", map[string]string{"BERTH_CLIENT_ID": sp.AppID, "BERTH_FEDERATED_TOKEN_FILE": tokenFile}, "system:serviceaccount:dev:puller", false, "does not match the federated credential"},
		{"secret", map[string]string{"BERTH_CLIENT_ID": sp.AppID, "BERTH_CLIENT_SECRET": sp.Password}, "", true, ""},
		{"no sign-in at all", map[string]string{}, "", false, "not signed in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.sub != "" {
				os.WriteFile(tokenFile, []byte(is.Sign(t, nil, federationtest.Kubernetes(strings.Split(tc.sub, ":")[2], "puller"))+"\n"), 0o600)
			}
			out, err := get(tc.env)
			if (err == nil) != tc.ok {
				t.Fatalf("get: %v %s", err, out)
			}
			if !tc.ok {
				if !strings.Contains(err.Error(), tc.says) {
					t.Errorf("refusal: %v", err)
				}
				return
			}
			var cred struct{ Username, Secret string }
			if json.Unmarshal([]byte(out), &cred) != nil || !pulls(cred.Secret) {
				t.Errorf("the helper's token does not pull: %s", out)
			}
		})
	}
}

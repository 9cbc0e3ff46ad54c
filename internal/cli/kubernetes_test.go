package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/berth-registry/berth/internal/registrytest"
)

// TestPullSecret (issue 21): berth kubernetes pull-secret create prints the Secret kubectl create
// secret docker-registry would (decoded strictly into the Kubernetes API's type), for a token's
// new password or a service principal's secret; its credential pulls with crane; a credential
// expiring within the horizon is warned about.
func TestPullSecret(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newCLI(t)
	c.must(registrytest.OwnerPassword, "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin")
	pushImage(t, s, "prod/app", "v1", "layer")
	c.must("", "token", "create", "-n", "cluster-pull", "-r", "default", "--scope-map", "_repositories_pull", "-o", "none")
	var sp struct{ AppID, Password string }
	json.Unmarshal([]byte(c.must("", "sp", "create", "-n", "cluster")), &sp)
	c.must("", "role", "assignment", "create", "--assignee", sp.AppID, "--role", "AcrPull", "--scope", "/registries/default", "-o", "none")

	decode := func(out string) (corev1.Secret, string, string) {
		t.Helper()
		var sec corev1.Secret
		dec := json.NewDecoder(strings.NewReader(out))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&sec); err != nil {
			t.Fatalf("not a Secret: %v\n%s", err, out)
		}
		var cfg struct {
			Auths map[string]struct{ Username, Password, Auth string }
		}
		if err := json.Unmarshal(sec.Data[".dockerconfigjson"], &cfg); err != nil {
			t.Fatal(err)
		}
		a := cfg.Auths[s.Host]
		if a.Auth != base64.StdEncoding.EncodeToString([]byte(a.Username+":"+a.Password)) {
			t.Errorf("auth %q is not user:password", a.Auth)
		}
		return sec, a.Username, a.Password
	}
	out, stderr, err := c.run3("", "kubernetes", "pull-secret", "create", "-n", "default", "--token", "cluster-pull", "--namespace", "prod", "--expiration-in-days", "5")
	if err != nil {
		t.Fatal(err)
	}
	sec, user, pw := decode(out)
	if sec.Type != corev1.SecretTypeDockerConfigJson || sec.Namespace != "prod" || sec.Name != "berth-pull" || user != "cluster-pull" {
		t.Errorf("secret: %+v user %q", sec.ObjectMeta, user)
	}
	if !strings.Contains(stderr, "expires on") {
		t.Errorf("a password of 5 days: no warning: %q", stderr)
	}
	kubectl, err := exec.LookPath("kubectl")
	if err != nil && os.Getenv("BERTH_REQUIRE_CLIENTS") == "1" {
		t.Fatal("kubectl is required (scripts/install-test-tools.sh installs it)")
	}
	if err == nil {
		// kubectl's own secret for the same credential, client-side: the same object.
		k := exec.Command(kubectl, "create", "secret", "docker-registry", "berth-pull", "--namespace", "prod", "--docker-server", s.Host,
			"--docker-username", user, "--docker-password", pw, "--dry-run=client", "-o", "json")
		k.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(t.TempDir(), "none"))
		want, err := k.Output()
		if err != nil {
			t.Fatalf("kubectl: %v", err)
		}
		var ks corev1.Secret
		json.Unmarshal(want, &ks)
		if ks.Type != sec.Type || ks.Name != sec.Name || ks.Namespace != sec.Namespace || !bytes.Equal(ks.Data[".dockerconfigjson"], sec.Data[".dockerconfigjson"]) {
			t.Errorf("kubectl's secret differs:\nkubectl %s\nberth   %s", want, out)
		}
		// kubectl apply --dry-run=client takes it, against a stand-in API server that answers
		// discovery only (apply maps the object with it; --validate=false: no OpenAPI schema
		// here — the strict decoding above holds the fields to the Secret type).
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			switch r.URL.Path {
			case "/api":
				io.WriteString(w, `{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"127.0.0.1"}]}`)
			case "/api/v1":
				io.WriteString(w, `{"kind":"APIResourceList","groupVersion":"v1","resources":[{"name":"secrets","singularName":"secret","namespaced":true,"kind":"Secret","verbs":["create","get","patch"]}]}`)
			case "/apis":
				io.WriteString(w, `{"kind":"APIGroupList","apiVersion":"v1","groups":[]}`)
			default:
				w.WriteHeader(http.StatusNotFound)
				io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`)
			}
		}))
		defer api.Close()
		kc := filepath.Join(t.TempDir(), "kubeconfig")
		os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \""+api.URL+"\"}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {}}]\ncurrent-context: c\n"), 0o600)
		k = exec.Command(kubectl, "apply", "--dry-run=client", "--validate=false", "-f", "-")
		k.Env = append(os.Environ(), "KUBECONFIG="+kc)
		k.Stdin = strings.NewReader(out)
		if applied, err := k.CombinedOutput(); err != nil || !strings.Contains(string(applied), "secret/berth-pull created (dry run)") {
			t.Errorf("kubectl apply --dry-run=client: %v %s", err, applied)
		}
	}
	crane, err := exec.LookPath("crane")
	if err != nil {
		if os.Getenv("BERTH_REQUIRE_CLIENTS") == "1" {
			t.Fatal("crane is required")
		}
		t.Skip("no crane")
	}
	pull := func(user, pw string) error {
		cfg := t.TempDir()
		os.WriteFile(filepath.Join(cfg, "config.json"), sec.Data[".dockerconfigjson"], 0o600)
		cmd := exec.Command(crane, "manifest", "--insecure", s.Host+"/prod/app:v1")
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfg)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("crane: %s", out)
		}
		return err
	}
	if err := pull(user, pw); err != nil {
		t.Errorf("the token's secret does not pull: %v", err)
	}

	out, stderr, err = c.run3(sp.Password, "kubernetes", "pull-secret", "create", "-n", "default", "--service-principal", sp.AppID, "--password-stdin", "--name", "sp-pull", "--warn-within", "9000h")
	if err != nil {
		t.Fatal(err)
	}
	sec, user, pw = decode(out)
	if user != sp.AppID || pw != sp.Password || sec.Name != "sp-pull" || !strings.Contains(stderr, "expires on") {
		t.Errorf("the service principal's secret: %q, warning %q", user, stderr)
	}
	if err := pull(user, pw); err != nil {
		t.Errorf("the service principal's secret does not pull: %v", err)
	}
	// --apply hands the Secret to kubectl apply -f - (a stand-in kubectl records what it got).
	fake := t.TempDir()
	got := filepath.Join(fake, "applied.json")
	os.WriteFile(filepath.Join(fake, "kubectl"), []byte("#!/bin/sh\n[ \"$1 $2 $3\" = 'apply -f -' ] || exit 3\ncat > "+got+"\necho secret/sp-pull configured\n"), 0o755)
	t.Setenv("PATH", fake+":"+os.Getenv("PATH"))
	if out, err := c.run(sp.Password, "kubernetes", "pull-secret", "create", "-n", "default", "--service-principal", sp.AppID, "--password-stdin", "--name", "sp-pull", "--apply"); err != nil || out != "secret/sp-pull configured\n" {
		t.Errorf("--apply: %q %v", out, err)
	}
	if b, err := os.ReadFile(got); err != nil {
		t.Errorf("kubectl got nothing: %v", err)
	} else if s2, u2, _ := decode(string(b)); s2.Name != "sp-pull" || u2 != sp.AppID {
		t.Errorf("kubectl got %s", b)
	}
	for _, bad := range [][]string{
		{"-n", "default"},
		{"-n", "default", "--token", "x", "--service-principal", sp.AppID},
		{"-n", "default", "--service-principal", sp.AppID},
		{"-n", "default", "--token", "cluster-pull", "--name", "Not_A_Name"},
	} {
		if _, err := c.run("", append([]string{"kubernetes", "pull-secret", "create"}, bad...)...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	credv1 "k8s.io/kubelet/pkg/apis/credentialprovider/v1"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/federation/federationtest"
	"github.com/berth-registry/berth/internal/registrytest"
)

// TestKubeletCredentialProvider (issue 21): berth-credential-provider driven as the kubelet
// drives it — the configuration's arguments and environment, a CredentialProviderRequest on
// stdin with the pod's service-account token and annotations — answers credentials that crane
// pulls with, cached for just under their lifetime; a service account the federated credential
// does not name is refused with the reason; a service principal's secret works without a token;
// a malformed request is a clear error on stderr and a non-zero exit.
func TestKubeletCredentialProvider(t *testing.T) {
	crane := tool(t, "crane")
	dir := t.TempDir()
	provider := filepath.Join(dir, "berth-credential-provider")
	if out, err := exec.Command("go", "build", "-o", provider, "github.com/berth-registry/berth/cmd/berth-credential-provider").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	is := federationtest.New(t)
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) {
		c.Federation.Issuers, c.Federation.AllowHTTP, c.Outbound.AllowedNetworks = []string{is.URL}, true, []string{"127.0.0.0/8"}
		c.Federation.MaxTokenAge = 2 * time.Hour
	}})
	img := s.Host + "/prod/app:v1"
	pushTestImage(t, crane, s, img)
	var sp struct{ AppID, Password string }
	s.Mgmt(t, "POST", "/mgmt/v1/servicePrincipals", map[string]any{"displayName": "kubelet"}, &sp)
	s.Mgmt(t, "POST", "/mgmt/v1/roleAssignments", map[string]any{"assignee": sp.AppID, "role": "AcrPull", "scope": "/registries/default"}, nil)
	sub := "system:serviceaccount:prod:puller"
	if st := s.Mgmt(t, "POST", "/mgmt/v1/servicePrincipals/"+sp.AppID+"/federatedCredentials", client.FederatedCredential{Name: "prod-puller", Issuer: is.URL, Subject: &sub}, nil); st != 201 {
		t.Fatalf("federated credential: %d", st)
	}

	run := func(req string, env []string, args ...string) (credv1.CredentialProviderResponse, string, error) {
		cmd := exec.Command(provider, append([]string{"--server", s.URL, "--plain-http"}, args...)...)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...) // the kubelet's environment and the configuration's env
		cmd.Stdin = strings.NewReader(req)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var resp credv1.CredentialProviderResponse
		if err == nil {
			dec := json.NewDecoder(&out)
			dec.DisallowUnknownFields()
			if derr := dec.Decode(&resp); derr != nil {
				t.Fatalf("the response is not a CredentialProviderResponse: %v", derr)
			}
		}
		return resp, errb.String(), err
	}
	request := func(saToken string, annotations map[string]string) string {
		b, _ := json.Marshal(map[string]any{"apiVersion": "credentialprovider.kubelet.k8s.io/v1", "kind": "CredentialProviderRequest", "image": img,
			"serviceAccountToken": saToken, "serviceAccountAnnotations": annotations})
		return string(b)
	}
	pulls := func(resp credv1.CredentialProviderResponse) bool {
		a, ok := resp.Auth[s.Host]
		if !ok {
			return false
		}
		cfg := t.TempDir()
		auths, _ := json.Marshal(map[string]any{"auths": map[string]any{s.Host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(a.Username + ":" + a.Password))}}})
		os.WriteFile(filepath.Join(cfg, "config.json"), auths, 0o600)
		cmd := exec.Command(crane, "manifest", "--insecure", img)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfg)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("crane: %s", out)
		}
		return err == nil
	}

	// Keyless: the pod's service-account token, the principal named by the annotation.
	saToken := is.Sign(t, nil, federationtest.Kubernetes("prod", "puller"))
	resp, stderr, err := run(request(saToken, map[string]string{"berth.io/client-id": sp.AppID}), nil)
	if err != nil {
		t.Fatalf("service-account token: %v\n%s", err, stderr)
	}
	if resp.APIVersion != "credentialprovider.kubelet.k8s.io/v1" || resp.Kind != "CredentialProviderResponse" || resp.CacheKeyType != credv1.RegistryPluginCacheKeyType ||
		resp.CacheDuration == nil || resp.CacheDuration.Duration < 2*time.Hour+50*time.Minute || resp.CacheDuration.Duration >= 3*time.Hour {
		t.Errorf("response: %+v", resp)
	}
	if !pulls(resp) {
		t.Error("crane does not pull with the provider's credentials")
	}
	// Another service account: refused, with the reason.
	other := is.Sign(t, nil, federationtest.Kubernetes("dev", "puller"))
	if _, stderr, err := run(request(other, nil), nil, "--client-id", sp.AppID); err == nil || !strings.Contains(stderr, "subject system:serviceaccount:dev:puller does not match") {
		t.Errorf("another service account: %v %s", err, stderr)
	}
	// A service principal's secret, without a token (an older kubelet, or no tokenAttributes).
	resp, stderr, err = run(request("", nil), []string{"BERTH_CLIENT_ID=" + sp.AppID, "BERTH_CLIENT_SECRET=" + sp.Password})
	if err != nil || !pulls(resp) {
		t.Errorf("secret: %v %s", err, stderr)
	}
	for _, tc := range []struct{ name, req, says string }{
		{"not JSON", "{", "not a CredentialProviderRequest"},
		{"another API", `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","kind":"CredentialProviderRequest","image":"` + img + `"}`, "this provider speaks credentialprovider.kubelet.k8s.io/v1"},
		{"unknown field", `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"x","surprise":1}`, "unknown field"},
		{"image without a registry", `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"nginx"}`, "names no registry host"},
	} {
		if _, stderr, err := run(tc.req, []string{"BERTH_CLIENT_ID=" + sp.AppID, "BERTH_CLIENT_SECRET=" + sp.Password}); err == nil || !strings.Contains(stderr, tc.says) {
			t.Errorf("%s: %v %q", tc.name, err, stderr)
		}
	}
}

// pushTestImage pushes a small image with crane as the registry's admin user.
func pushTestImage(t *testing.T, crane string, s *registrytest.Server, ref string) {
	t.Helper()
	dir := t.TempDir()
	user, pass := s.Admin(t)
	auths, _ := json.Marshal(map[string]any{"auths": map[string]any{s.Host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))}}})
	os.WriteFile(filepath.Join(dir, "config.json"), auths, 0o600)
	os.WriteFile(filepath.Join(dir, "f"), []byte("layer"), 0o600)
	if out, err := exec.Command("tar", "-cf", filepath.Join(dir, "l.tar"), "-C", dir, "f").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	cmd := exec.Command(crane, "append", "--insecure", "--oci-empty-base", "-f", filepath.Join(dir, "l.tar"), "-t", ref)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("crane append: %v %s", err, out)
	}
}

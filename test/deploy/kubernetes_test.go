package deploy

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	kubeletv1 "k8s.io/kubelet/config/v1"
	"sigs.k8s.io/yaml"

	"github.com/berth-registry/berth/internal/credprovider"
	"github.com/berth-registry/berth/internal/mgmt"
)

// TestKubernetesExamples (issue 21): deploy/kubernetes/ decodes strictly into the Kubernetes
// API's types (the kubelet's CredentialProviderConfig, a ServiceAccount, RBAC); the provider
// is named as its binary, speaks v1, asks for tokens of berth's default federated audience (the
// one the RBAC lets nodes request), and its arguments parse.
func TestKubernetesExamples(t *testing.T) {
	files, _ := filepath.Glob("../../deploy/kubernetes/*.yaml")
	if len(files) < 4 {
		t.Fatalf("deploy/kubernetes holds %d files", len(files))
	}
	var audiences, rbacAudiences []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range bytes.Split(b, []byte("\n---\n")) {
			var head struct{ Kind string }
			if err := yaml.Unmarshal(doc, &head); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			switch head.Kind {
			case "CredentialProviderConfig":
				var c kubeletv1.CredentialProviderConfig
				if err := yaml.UnmarshalStrict(doc, &c); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				for _, p := range c.Providers {
					if p.Name != "berth-credential-provider" || p.APIVersion != "credentialprovider.kubelet.k8s.io/v1" || len(p.MatchImages) == 0 {
						t.Errorf("%s: provider %+v", f, p)
					}
					if p.TokenAttributes != nil {
						audiences = append(audiences, p.TokenAttributes.ServiceAccountTokenAudience)
					}
					// The arguments parse: the run stops at the missing request, not at them.
					err := credprovider.Run(context.Background(), p.Args, func(string) string { return "" }, strings.NewReader(""), &bytes.Buffer{})
					if err == nil || strings.HasPrefix(err.Error(), "arguments") || strings.Contains(err.Error(), "no berth server") {
						t.Errorf("%s: arguments %v: %v", f, p.Args, err)
					}
				}
			case "ServiceAccount":
				var sa corev1.ServiceAccount
				if err := yaml.UnmarshalStrict(doc, &sa); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				if sa.Annotations[credprovider.ClientIDAnnotation] == "" {
					t.Errorf("%s: no %s annotation", f, credprovider.ClientIDAnnotation)
				}
			case "ClusterRole":
				var r rbacv1.ClusterRole
				if err := yaml.UnmarshalStrict(doc, &r); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				for _, rule := range r.Rules {
					rbacAudiences = append(rbacAudiences, rule.Resources...)
				}
			case "ClusterRoleBinding":
				var r rbacv1.ClusterRoleBinding
				if err := yaml.UnmarshalStrict(doc, &r); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
			default:
				t.Errorf("%s: unexpected kind %q", f, head.Kind)
			}
		}
	}
	for _, a := range audiences {
		if a != mgmt.DefaultAudience || !contains(rbacAudiences, a) {
			t.Errorf("audience %q: berth's default is %q; the RBAC lets nodes request %v", a, mgmt.DefaultAudience, rbacAudiences)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

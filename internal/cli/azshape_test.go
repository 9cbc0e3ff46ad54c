package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/registrytest"
)

// azOnly are the fields az prints that berth leaves out, each with its reason (docs/cli.md
// repeats them). Paths are dotted; [] stands for every element of an array.
var azOnly = map[string]string{
	"resourceGroup":                         "berth has no resource groups",
	"@odata.context":                        "Microsoft Graph's metadata link: berth's directory is no Graph service",
	"location":                              "berth has no Azure regions",
	"sku":                                   "berth has no SKUs: every registry has every feature",
	"tags":                                  "no Azure resource tags",
	"systemData":                            "no ARM system data; creationDate says when",
	"identity":                              "registries have no managed identity of their own",
	"encryption":                            "no customer-managed keys; the key-encryption key is the server's",
	"dataEndpointEnabled":                   "one endpoint serves everything (no dedicated data endpoints)",
	"dataEndpointHostNames":                 "one endpoint serves everything (no dedicated data endpoints)",
	"networkRuleBypassOptions":              "no trusted Azure services",
	"privateEndpointConnections":            "no private endpoints (network rules and the management allow-list instead)",
	"zoneRedundancy":                        "no availability zones; replicas over PostgreSQL and S3 instead",
	"status":                                "null in az; berth has no registry status",
	"policies":                              "retention, soft delete and export come with issue 19; quarantine and trust policies are not planned",
	"objectId":                              "null in the older az outputs that print it",
	"virtualNetworkRules":                   "no virtual networks",
	"[].createdBy":                          "berth does not record who made an assignment or role (the events do)",
	"[].updatedBy":                          "berth does not record who changed an assignment or role",
	"[].updatedOn":                          "assignments and built-in roles never change once made",
	"[].createdOn":                          "built-in roles are part of berth (for assignments, createdOn is there)",
	"[].delegatedManagedIdentityResourceId": "no managed identities",
	"[].description":                        "assignments have no description yet",
	"[].permissions[].condition":            "conditions are on assignments, not on role definitions",
	"[].permissions[].conditionVersion":     "conditions are on assignments, not on role definitions",
	"accountEnabled":                        "a service principal is deleted rather than disabled",
	"appDisplayName":                        "a service principal is its own application: displayName",
	"servicePrincipalType":                  "every service principal is an application",
	"passwordCredentials[].customKeyIdentifier": "secrets have no custom key identifier",
	"passwordCredentials[].displayName":         "secrets have no display name",
	"passwordCredentials[].hint":                "no part of a secret is kept in clear",
	"passwordCredentials[].secretText":          "null in az's listing; a secret is shown once, when made",
}

// notYet are the fields az prints that berth does not have yet, each with what brings it.
var notYet = map[string]string{}

// kind is a JSON value's kind; null is "null".
func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64, json.Number:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// shape lists every path of v with its kind, arrays merged into "[]".
func shape(v any, path string, out map[string]map[string]bool) {
	add := func(k string) {
		if out[path] == nil {
			out[path] = map[string]bool{}
		}
		out[path][k] = true
	}
	add(kind(v))
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			shape(e, p, out)
		}
	case []any:
		for _, e := range x {
			shape(e, path+"[]", out)
		}
	}
}

// compareShapes reports az's fields that berth lacks or gives another kind.
func compareShapes(az, berth map[string]map[string]bool) []string {
	var bad []string
	for path, kinds := range az {
		if path == "" {
			continue
		}
		if _, ok := azOnly[path]; ok || excludedParent(path) {
			continue
		}
		if _, ok := notYet[path]; ok {
			continue
		}
		got, ok := berth[path]
		if !ok {
			bad = append(bad, path+": missing")
			continue
		}
		for k := range kinds {
			if k == "null" || got[k] || got["null"] && len(got) == 1 {
				continue
			}
			var have []string
			for g := range got {
				have = append(have, g)
			}
			sort.Strings(have)
			bad = append(bad, fmt.Sprintf("%s: az %s, berth %s", path, k, strings.Join(have, "|")))
		}
	}
	sort.Strings(bad)
	return bad
}

func excludedParent(path string) bool {
	for p := range azOnly {
		if strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[]") {
			return true
		}
	}
	return false
}

// TestAzShapes (issue 18): for each command with an az counterpart, the JSON berth prints has
// every field az prints (testdata/az/*.json, from az's documented outputs), with the same
// nesting and kind, except the Azure-only fields above; berth's own shape is a golden file.
func TestAzShapes(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) { c.Federation.Issuers = []string{"https://issuer.example"} }})
	c := newCLI(t)
	c.must(registrytest.OwnerPassword, "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin")
	c.must("", "registry", "update", "-n", "default", "--admin-enabled", "-o", "none")
	c.must("", "network-rule", "add", "-n", "default", "--ip-address", "203.0.113.0/24", "-o", "none")
	c.must("", "user", "create", "-n", "alice", "-o", "none")
	c.must("", "role", "assignment", "create", "--assignee", "alice", "--role", "AcrPull", "--scope", "/registries/default", "-o", "none")
	var sp struct{ AppID string }
	json.Unmarshal([]byte(c.must("", "sp", "create", "-n", "ci-robot")), &sp)
	pushImage(t, s, "hello-world", "v1", "one")
	pushImage(t, s, "hello-world", "v2", "two")
	for _, tc := range []struct {
		az   string
		args []string
	}{
		{"credential-show", []string{"credential", "show", "-n", "default"}},
		{"credential-renew", []string{"credential", "renew", "-n", "default", "--password-name", "password2"}},
		{"token-create", []string{"token", "create", "-n", "my-token", "-r", "default", "--repository", "samples/hello-world", "content/read", "content/write"}},
		{"token-create", []string{"token", "show", "-n", "my-token", "-r", "default"}},
		{"token-credential-generate", []string{"token", "credential", "generate", "-n", "my-token", "-r", "default", "--password1", "--expiration-in-days", "30"}},
		{"scope-map-show", []string{"scope-map", "show", "-n", "my-token-scope-map", "-r", "default"}},
		{"acr-show", []string{"registry", "show", "-n", "default"}},
		{"network-rule-list", []string{"network-rule", "list", "-n", "default"}},
		{"role-assignment-list", []string{"role", "assignment", "list", "--scope", "/registries/default"}},
		{"role-definition-list", []string{"role", "definition", "list"}},
		{"ad-sp-create-for-rbac", []string{"sp", "create", "-n", "another-robot"}},
		{"ad-sp-show", []string{"sp", "show", "--id", sp.AppID}},
		{"acr-login-expose-token", []string{"login", "-n", "default", "--expose-token"}},
		{"repository-show", []string{"repository", "show", "-n", "default", "--repository", "hello-world"}},
		{"repository-show-tags-detail", []string{"repository", "show-tags", "-n", "default", "--repository", "hello-world", "--detail"}},
		{"manifest-list-metadata", []string{"manifest", "list-metadata", "-r", "default", "-n", "hello-world"}},
		{"show-usage", []string{"registry", "show-usage", "-n", "default"}},
		{"webhook-show", []string{"webhook", "create", "-n", "myhook", "-r", "default", "--uri", "https://hooks.example/acr", "--actions", "push", "--scope", "hello-world:*", "--headers", "Authorization=Basic xxxx"}},
		{"webhook-show", []string{"webhook", "show", "-n", "myhook", "-r", "default"}},
		{"webhook-get-config", []string{"webhook", "get-config", "-n", "myhook", "-r", "default"}},
		{"ad-app-federated-credential", []string{"sp", "federated-credential", "create", "--id", sp.AppID, "-n", "Testing", "--issuer", "https://issuer.example", "--subject", "repo:octo-org/octo-repo:environment:Production", "--description", "Testing"}},
	} {
		name := strings.Join(tc.args[:2], "-")
		t.Run(name, func(t *testing.T) {
			ref, err := os.ReadFile(filepath.Join("testdata", "az", tc.az+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var azv, berthv any
			if err := json.Unmarshal(ref, &azv); err != nil {
				t.Fatalf("%s.json: %v", tc.az, err)
			}
			out := c.must("", tc.args...)
			if err := json.Unmarshal([]byte(out), &berthv); err != nil {
				t.Fatalf("berth %s: %v\n%s", strings.Join(tc.args, " "), err, out)
			}
			az, berth := map[string]map[string]bool{}, map[string]map[string]bool{}
			shape(azv, "", az)
			shape(berthv, "", berth)
			for _, bad := range compareShapes(az, berth) {
				t.Errorf("berth %s, beside az's %s.json: %s", strings.Join(tc.args, " "), tc.az, bad)
			}
			var lines []string
			for path, kinds := range berth {
				var ks []string
				for k := range kinds {
					ks = append(ks, k)
				}
				sort.Strings(ks)
				if path == "" {
					path = "."
				}
				lines = append(lines, path+" "+strings.Join(ks, "|"))
			}
			sort.Strings(lines)
			file, got := filepath.Join("testdata", "az", name+".berth.golden"), strings.Join(lines, "\n")+"\n"
			if *update {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if want, err := os.ReadFile(file); err != nil || string(want) != got {
				t.Errorf("%s differs from berth's output (%v); run with -update, then review the diff:\n%s", file, err, got)
			}
		})
	}
}

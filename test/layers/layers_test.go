// Package layers holds berth's import rules: the packages that decide (policy), name things
// (oci, access), sign (token) and carry a request's errors and log (httperr, reqlog) stay
// leaves, so that what they decide cannot depend on how requests arrive or where data is kept. go-containerregistry's depcheck is the model.
package layers

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/berth-registry/berth"

// allowed lists, for each leaf package, every package outside the standard library that it may
// depend on, directly or not (its own sub-packages excepted). Anything else fails the build.
var allowed = map[string][]string{
	"internal/access":  {},
	"internal/oci":     {},
	"internal/policy":  {"internal/access", "internal/oci"},
	"internal/token":   {"internal/access", "github.com/golang-jwt/jwt/v5"},
	"internal/reqlog":  {},
	"internal/httperr": {"internal/oci", "internal/reqlog"},
	"internal/seal":    {},
	// What an external token proves is decided from the token and the issuer's keys alone.
	"internal/federation": {"github.com/go-jose/go-jose/v4", "github.com/go-jose/go-jose/v4/cipher", "github.com/go-jose/go-jose/v4/json", "github.com/go-jose/go-jose/v4/jwt"},
}

func TestLeavesImportOnlyTheirAllowList(t *testing.T) {
	for pkg, allow := range allowed {
		t.Run(pkg, func(t *testing.T) {
			// -deps lists the whole closure of the package's non-test files.
			out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", module+"/"+pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list: %v\n%s", err, out)
			}
			var deps []string
			for _, d := range strings.Fields(string(out)) {
				rel := strings.TrimPrefix(d, module+"/")
				if rel == pkg || strings.HasPrefix(rel, pkg+"/") {
					continue
				}
				deps = append(deps, rel)
				if !slices.Contains(allow, rel) {
					t.Errorf("%s depends on %s, which is not in its allow-list (test/layers); %s must stay a leaf", pkg, rel, pkg)
				}
			}
			// Keep the list honest: an entry no longer used is removed.
			for _, a := range allow {
				if !slices.Contains(deps, a) {
					t.Errorf("%s no longer depends on %s: remove it from the allow-list", pkg, a)
				}
			}
		})
	}
}

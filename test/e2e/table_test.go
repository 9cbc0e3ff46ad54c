package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"

	ggauthn "github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-registry/berth/internal/policy/policytest"
	"github.com/berth-registry/berth/internal/registrytest"
)

// TestDecisionTableEndToEnd drives a sample of the hand-written decision table
// (internal/policy/testdata/decisions.txt) through the Docker token protocol with a real client
// library (go-containerregistry, what crane is built on): a service principal signs in with Basic
// credentials at /oauth2/token, then pulls, pushes and lists the catalog; each outcome must be
// what the table says.
func TestDecisionTableEndToEnd(t *testing.T) {
	table, err := policytest.Read("../../internal/policy/testdata/decisions.txt")
	if err != nil {
		t.Fatal(err)
	}
	s := registrytest.New(t, registrytest.Options{})
	adminUser, adminPass := s.Admin(t)
	admin := remote.WithAuth(&ggauthn.Basic{Username: adminUser, Password: adminPass})
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref := func(repo string) name.Reference {
		r, err := name.ParseReference(s.Host+"/"+repo+":v1", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, repo := range []string{"team-a/x", "team-b/x"} {
		if err := remote.Write(ref(repo), img, admin); err != nil {
			t.Fatal(err)
		}
	}
	var sp struct{ AppID, Password string }
	if st := s.Mgmt(t, "POST", "/mgmt/v1/servicePrincipals", map[string]string{"displayName": "table"}, &sp); st != http.StatusCreated {
		t.Fatalf("create sp: %d", st)
	}
	auth := remote.WithAuth(&ggauthn.Basic{Username: sp.AppID, Password: sp.Password})
	registry, err := name.NewRegistry(s.Host, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	// outcome runs one action as the service principal: "allow" or "deny", or for the catalog
	// the repositories listed.
	outcome := func(action, repo string) string {
		var err error
		switch action {
		case "pull":
			_, err = remote.Get(ref(repo), auth)
		case "push":
			// A new image each time: the client skips what the registry already has.
			fresh, rerr := random.Image(256, 1)
			if rerr != nil {
				t.Fatal(rerr)
			}
			err = remote.Write(ref(repo), fresh, auth)
		case "catalog":
			var repos []string
			repos, err = remote.Catalog(t.Context(), registry, auth)
			if err == nil {
				return fmt.Sprint(repos)
			}
		}
		if err == nil {
			return "allow"
		}
		var te *transport.Error
		if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
			return "deny"
		}
		t.Fatalf("%s %s: %v", action, repo, err)
		return ""
	}
	cells := 0
	for _, mode := range []string{"rbac", "rbac-abac"} {
		mi := map[string]int{"rbac": 0, "rbac-abac": 1}[mode]
		if st := s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default", map[string]any{"roleAssignmentMode": mode}, nil); st != http.StatusOK {
			t.Fatalf("mode %s: %d", mode, st)
		}
		for _, role := range []string{"AcrPull", "AcrPush", "Reader", "Container Registry Repository Reader",
			"Container Registry Repository Writer", "Container Registry Repository Catalog Lister"} {
			conds := []string{"none"}
			if table.Conditional[role] {
				conds = append(conds, "prefix")
			}
			for _, cond := range conds {
				var ra struct{ ID string }
				body := map[string]string{"assignee": sp.AppID, "role": role, "scope": "/registries/default", "condition": policytest.ConditionTexts[cond]}
				if st := s.Mgmt(t, "POST", "/mgmt/v1/roleAssignments", body, &ra); st != http.StatusCreated {
					t.Fatalf("assign %s: %d", role, st)
				}
				given := table.Roles[role][mi]
				for _, action := range []string{"pull", "push", "catalog"} {
					if action == "catalog" {
						// The whole catalog with the right to list it, else the repositories it may pull.
						var listed []string
						for _, repo := range []string{"team-a/x", "team-b/x"} {
							if slices.Contains(given, "catalog") || slices.Contains(given, "pull") && slices.Contains(table.Conditions[cond]["pull"], repo) {
								listed = append(listed, repo)
							}
						}
						want := fmt.Sprint(listed)
						if got := outcome(action, ""); got != want {
							t.Errorf("%s, %s, condition %s: catalog %s, want %s", mode, role, cond, got, want)
						}
						cells++
						continue
					}
					for _, repo := range []string{"team-a/x", "team-b/x"} {
						want := "deny"
						if slices.Contains(given, action) && slices.Contains(table.Conditions[cond][action], repo) {
							want = "allow"
						}
						if got := outcome(action, repo); got != want {
							t.Errorf("%s, %s, condition %s: %s %s %s, want %s", mode, role, cond, action, repo, got, want)
						}
						cells++
					}
				}
				if st := s.Mgmt(t, "DELETE", "/mgmt/v1/roleAssignments/"+ra.ID, nil, nil); st != http.StatusNoContent {
					t.Fatalf("unassign: %d", st)
				}
			}
		}
	}
	t.Logf("%d cells checked through the token endpoint", cells)
	if cells != 2*8*5 {
		t.Errorf("checked %d cells", cells)
	}
}

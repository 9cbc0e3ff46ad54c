package cli

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/registrytest"
)

// pulls reports the status of a manifest GET by reference as the admin user.
func pulls(t *testing.T, s *registrytest.Server, repo, ref string) int {
	t.Helper()
	user, pass := s.Admin(t)
	req, _ := http.NewRequest("GET", s.URL+"/v2/"+repo+"/manifests/"+ref, nil)
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestSoftDeleteAndRetention (issue 19): with soft delete on, a deleted manifest (or a whole
// repository) is listed as deleted and restored with its tag, pulling again; retention deletes
// what lost its last tag, keeps what is locked, and what it deletes is soft-deleted too; the
// policies show in registry show as az's policies.
func TestSoftDeleteAndRetention(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newCLI(t)
	c.must(registrytest.OwnerPassword, "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin")
	tsv := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(c.must("", append(args, "-o", "tsv")...))
	}
	if got := tsv("config", "soft-delete", "update", "-r", "default", "--status", "enabled", "--days", "7", "--query", "{d: retentionDays, s: status}"); got != "7\tenabled" {
		t.Errorf("soft-delete update = %q", got)
	}
	if got := tsv("registry", "show", "-n", "default", "--query", "policies.softDeletePolicy.status"); got != "enabled" {
		t.Errorf("registry show policies = %q", got)
	}
	d1 := pushImage(t, s, "team/app", "v1", "one")
	pushImage(t, s, "team/app", "v2", "two")

	c.must("", "repository", "delete", "-n", "default", "--image", "team/app:v1", "--yes")
	if st := pulls(t, s, "team/app", "v1"); st != 404 {
		t.Errorf("pull of the deleted v1: %d", st)
	}
	if got := tsv("manifest", "list-deleted", "-r", "default", "-n", "team/app", "--query", "[0].{d: digest, t: tags[0]}"); got != d1+"\tv1" {
		t.Errorf("list-deleted = %q", got)
	}
	if got := tsv("manifest", "list-deleted-tags", "-r", "default", "-n", "team/app:v1", "--query", "[].digest"); got != d1 {
		t.Errorf("list-deleted-tags = %q", got)
	}
	if got := tsv("manifest", "restore", "-r", "default", "-n", "team/app:v1", "--query", "digest"); got != d1 {
		t.Errorf("restore = %q", got)
	}
	if st := pulls(t, s, "team/app", "v1"); st != 200 {
		t.Errorf("pull of the restored v1: %d", st)
	}
	if _, err := c.run("", "manifest", "restore", "-r", "default", "-n", "team/app:v1"); err == nil || !strings.Contains(err.Error(), "no soft-deleted manifest") {
		t.Errorf("a second restore: %v", err)
	}

	// A whole repository, then one manifest of it back.
	c.must("", "repository", "delete", "-n", "default", "--repository", "team/app", "--yes")
	if got := tsv("repository", "list-deleted", "-n", "default"); got != "team/app" {
		t.Errorf("repository list-deleted = %q", got)
	}
	if got := tsv("repository", "list", "-n", "default"); got != "" {
		t.Errorf("catalog after the delete = %q", got)
	}
	c.must("", "manifest", "restore", "-r", "default", "-n", "team/app:v2", "-o", "none")
	if st := pulls(t, s, "team/app", "v2"); st != 200 {
		t.Errorf("pull of v2 restored from a deleted repository: %d", st)
	}
	if got := tsv("repository", "list", "-n", "default"); got != "team/app" {
		t.Errorf("catalog after the restore = %q", got)
	}

	// Retention: v3 moves, the manifest it left is deleted (soft: restorable); a locked one stays.
	if got := tsv("config", "retention", "update", "-r", "default", "--status", "enabled", "--days", "0", "--type", "UntaggedManifests", "--query", "status"); got != "enabled" {
		t.Errorf("retention update = %q", got)
	}
	old := pushImage(t, s, "team/app", "v3", "old three")
	pushImage(t, s, "team/app", "v3", "new three")
	kept := pushImage(t, s, "team/app", "v4", "four")
	c.must("", "repository", "update", "-n", "default", "--image", "team/app@"+kept, "--delete-enabled", "false", "-o", "none")
	pushImage(t, s, "team/app", "v4", "four again")
	if err := s.ApplyContentPolicies(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := pulls(t, s, "team/app", old); st != 404 {
		t.Errorf("the manifest v3 left, after retention: %d", st)
	}
	if st := pulls(t, s, "team/app", kept); st != 200 {
		t.Errorf("a delete-disabled untagged manifest after retention: %d", st)
	}
	if got := tsv("manifest", "list-deleted", "-r", "default", "-n", "team/app", "--query", "[0].digest"); got != old {
		t.Errorf("what retention deleted is soft-deleted: %q, want %s", got, old)
	}
	s.SettleEvents(t)
	if got := tsv("logs", "repository-events", "-n", "default", "--reason", "retention", "--query", "[].{d: digest, i: identity}"); got != old+"\tretention" {
		t.Errorf("retention's event = %q", got)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"config", "retention", "update", "-r", "default", "--days", "400"}, "0 to 365"},
		{[]string{"config", "soft-delete", "update", "-r", "default", "--days", "0"}, "1 to 90"},
		{[]string{"config", "retention", "update", "-r", "default", "--status", "maybe"}, "enabled or disabled"},
		{[]string{"config", "retention", "update", "-r", "default", "--type", "Everything", "--days", "1"}, "UntaggedManifests"},
		{[]string{"config", "retention", "update", "-r", "default"}, "nothing to update"},
	} {
		if _, err := c.run("", tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("berth %s: %v, want %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

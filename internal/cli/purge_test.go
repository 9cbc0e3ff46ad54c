package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/registrytest"
)

// pushReferrer pushes an untagged artifact whose subject is the manifest subject (size
// subjectSize), as a signature is, and returns its digest.
func pushReferrer(t *testing.T, s *registrytest.Server, repo, subject string, subjectSize int) string {
	t.Helper()
	user, pass := s.Admin(t)
	empty := []byte("{}")
	ed := fmt.Sprintf("sha256:%x", sha256.Sum256(empty))
	req, _ := http.NewRequest("POST", s.URL+"/v2/"+repo+"/blobs/uploads/?digest="+ed, bytes.NewReader(empty))
	req.SetBasicAuth(user, pass)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 201 {
		t.Fatalf("empty blob: %v %v", resp, err)
	}
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.signature","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":%d}}`,
		ed, ed, subject, subjectSize))
	d := fmt.Sprintf("sha256:%x", sha256.Sum256(m))
	req, _ = http.NewRequest("PUT", s.URL+"/v2/"+repo+"/manifests/"+d, bytes.NewReader(m))
	req.SetBasicAuth(user, pass)
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 201 {
		t.Fatalf("referrer: %v %v", resp, err)
	}
	return d
}

// TestPurge (issue 19): berth purge as acr purge: tags by filter and age with --keep, locked
// ones kept and reported (deleted with --include-locked), --dry-run changes nothing, untagged
// manifests with --untagged-only, a kept manifest's referrer kept; flag errors as acr purge's.
func TestPurge(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newCLI(t)
	c.must(registrytest.OwnerPassword, "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin")
	v1 := pushImage(t, s, "team/app", "v1", "release")
	sig := pushReferrer(t, s, "team/app", v1, 0)
	for i := 1; i <= 3; i++ {
		pushImage(t, s, "team/app", fmt.Sprintf("dev-%d", i), fmt.Sprintf("dev %d", i))
	}
	pushImage(t, s, "other/app", "dev-1", "other") // another repository, not matched
	stray := pushImage(t, s, "team/app", "stray", "stray")
	c.must("", "repository", "untag", "-n", "default", "--image", "team/app:stray")
	c.must("", "repository", "update", "-n", "default", "--image", "team/app:dev-1", "--write-enabled", "false", "-o", "none")

	type report struct {
		DryRun                                bool
		TagsDeleted, ManifestsDeleted, Locked []string
	}
	purge := func(args ...string) report {
		t.Helper()
		var r report
		out := c.must("", append([]string{"purge", "-n", "default", "--only-show-errors"}, args...)...)
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("purge %v: %q", args, out)
		}
		return r
	}
	tags := func() string {
		return strings.TrimSpace(c.must("", "repository", "show-tags", "-n", "default", "--repository", "team/app", "-o", "tsv"))
	}
	r := purge("--filter", "team/.*:^dev-", "--ago", "0d", "--keep", "1", "--dry-run")
	if !r.DryRun || !slices.Equal(r.TagsDeleted, []string{"team/app:dev-2"}) || !slices.Equal(r.Locked, []string{"team/app:dev-1"}) {
		t.Errorf("dry run: %+v (dev-3 kept by --keep 1, dev-1 by its lock)", r)
	}
	if got := tags(); got != "dev-1\ndev-2\ndev-3\nv1" {
		t.Errorf("after the dry run: %q", got)
	}
	r = purge("--filter", "team/.*:^dev-", "--ago", "0d", "--keep", "1")
	if r.DryRun || !slices.Equal(r.TagsDeleted, []string{"team/app:dev-2"}) {
		t.Errorf("purge: %+v", r)
	}
	if got := tags(); got != "dev-1\ndev-3\nv1" {
		t.Errorf("after the purge: %q", got)
	}
	if r := purge("--filter", "team/app:.*", "--ago", "30d"); len(r.TagsDeleted) != 0 {
		t.Errorf("nothing is 30 days old: %+v", r)
	}
	// Untagged: stray's and dev-2's manifests go; v1's signature stays with v1.
	r = purge("--untagged-only")
	if len(r.ManifestsDeleted) != 2 || !slices.Contains(r.ManifestsDeleted, "team/app@"+stray) || slices.Contains(r.ManifestsDeleted, "team/app@"+sig) {
		t.Errorf("--untagged-only: %+v (want stray and dev-2, not the signature %s)", r, sig)
	}
	if got := c.must("", "manifest", "list-metadata", "-r", "default", "-n", "team/app", "--query", "length(@)", "-o", "tsv"); got != "4\n" {
		t.Errorf("manifests left: %q, want v1, its signature, dev-1, dev-3", got)
	}
	// --include-locked unlocks, then deletes.
	r = purge("--filter", "team/app:^dev-1$", "--ago", "0d", "--include-locked")
	if !slices.Equal(r.TagsDeleted, []string{"team/app:dev-1"}) || len(r.Locked) != 0 {
		t.Errorf("--include-locked: %+v", r)
	}
	if got := strings.TrimSpace(c.must("", "repository", "show-tags", "-n", "default", "--repository", "other/app", "-o", "tsv")); got != "dev-1" {
		t.Errorf("another repository's dev-1: %q", got)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--ago", "1d"}, "--filter is required"},
		{[]string{"--filter", "a:b"}, "--ago is required"},
		{[]string{"--untagged", "--untagged-only"}, "cannot be used together"},
		{[]string{"--filter", "nocolon", "--ago", "1d"}, "REPOSITORY_REGEX:TAG_REGEX"},
		{[]string{"--filter", "a:(", "--ago", "1d"}, "tag regex"},
		{[]string{"--filter", "a:b", "--ago", "yesterday"}, "--ago"},
		{[]string{"--filter", "a:b", "--ago", "1d", "--keep", "-1"}, "--keep"},
	} {
		if _, err := c.run("", append([]string{"purge", "-n", "default"}, tc.args...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("purge %v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestParseAgo(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{{"30d", "720h0m0s", true}, {"2d3h6m", "51h6m0s", true}, {"1.5h", "1h30m0s", true}, {"0d", "0s", true}, {"d", "", false}, {"-1d", "", false}, {"1x", "", false}} {
		d, err := parseAgo(tc.in)
		if (err == nil) != tc.ok || (tc.ok && d.String() != tc.want) {
			t.Errorf("parseAgo(%q) = %v, %v", tc.in, d, err)
		}
	}
}

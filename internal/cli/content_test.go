package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/registrytest"
)

// pushImage pushes a small image as the admin user (Basic) and returns its digest.
func pushImage(t *testing.T, s *registrytest.Server, repo, tag, content string) string {
	t.Helper()
	user, pass := s.Admin(t)
	do := func(method, path, ct string, body []byte) *http.Response {
		req, _ := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
		req.SetBasicAuth(user, pass)
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	digest := func(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }
	cfg, layer := []byte(`{"architecture":"amd64","os":"linux"}`), []byte(content)
	for _, b := range [][]byte{cfg, layer} {
		if r := do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+digest(b), "application/octet-stream", b); r.StatusCode != 201 {
			t.Fatalf("blob: %d", r.StatusCode)
		}
	}
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		digest(cfg), len(cfg), digest(layer), len(layer)))
	if r := do("PUT", "/v2/"+repo+"/manifests/"+tag, "application/vnd.oci.image.manifest.v1+json", m); r.StatusCode != 201 {
		t.Fatalf("manifest %s:%s: %d", repo, tag, r.StatusCode)
	}
	return digest(m)
}

// TestContentCommands (issue 19): berth repository and berth manifest, as az acr repository and
// az acr manifest, through the registry's /acr/v1/ with the signed-in identity's refresh token,
// or with a repository token's -u/-p and the registry's URL.
func TestContentCommands(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newCLI(t)
	c.must(registrytest.OwnerPassword, "auth", "login", "--server", s.URL, "-u", "owner", "--password-stdin")
	d1 := pushImage(t, s, "team/app", "v1", "one")
	d2 := pushImage(t, s, "team/app", "v2", "two")
	pushImage(t, s, "team/other", "latest", "three")
	tsv := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(c.must("", append(args, "-o", "tsv")...))
	}
	if got := tsv("repository", "list", "-n", "default"); got != "team/app\nteam/other" {
		t.Errorf("repository list = %q", got)
	}
	if got := tsv("repository", "list", "-n", s.Host, "--top", "1"); got != "team/app" {
		t.Errorf("repository list -n <login server> --top 1 = %q", got)
	}
	if got := tsv("repository", "show", "-n", "default", "--repository", "team/app", "--query", "{n: imageName, m: manifestCount, t: tagCount}"); got != "team/app\t2\t2" {
		t.Errorf("repository show = %q", got)
	}
	if got := tsv("repository", "show-tags", "-n", "default", "--repository", "team/app"); got != "v1\nv2" {
		t.Errorf("show-tags = %q", got)
	}
	if got := tsv("repository", "show-tags", "-n", "default", "--repository", "team/app", "--orderby", "time_desc", "--top", "1"); got != "v2" {
		t.Errorf("show-tags --orderby time_desc --top 1 = %q", got)
	}
	if got := tsv("repository", "show-tags", "-n", "default", "--repository", "team/app", "--detail", "--query", "[?name=='v1'].digest | [0]"); got != d1 {
		t.Errorf("show-tags --detail: v1's digest %q, want %s", got, d1)
	}
	if got := tsv("repository", "show", "-n", "default", "--image", "team/app:v2", "--query", "digest"); got != d2 {
		t.Errorf("repository show --image team/app:v2 = %q", got)
	}
	if got := tsv("manifest", "list-metadata", "-r", "default", "-n", "team/app", "--orderby", "time_asc", "--query", "[].tags[0]"); got != "v1\nv2" {
		t.Errorf("manifest list-metadata = %q", got)
	}
	if got := tsv("manifest", "show-metadata", "-r", "default", "-n", "team/app@"+d1, "--query", "tags[0]"); got != "v1" {
		t.Errorf("manifest show-metadata = %q", got)
	}

	// A lock through the CLI holds on /v2/ and in the CLI's own deletes.
	if got := tsv("repository", "update", "-n", "default", "--image", "team/app:v1", "--write-enabled", "false", "--query", "changeableAttributes.writeEnabled"); got != "false" {
		t.Errorf("repository update --write-enabled false = %q", got)
	}
	// explain names the lock, which refuses the owner too.
	if got := tsv("explain", "-n", "default", "--identity", "owner", "--repository", "team/app:v1", "--action", "push", "--query", "{a: allowed, c: decision.code}"); got != "false\tlocked" {
		t.Errorf("explain of a push to the locked tag = %q", got)
	}
	if out := c.must("", "explain", "-n", "default", "--identity", "owner", "--repository", "team/app:v1", "--action", "delete"); !strings.Contains(out, "the tag v1 of repository team/app is write-disabled") {
		t.Errorf("explain's text for a delete of the locked tag:\n%s", out)
	}
	if got := tsv("explain", "-n", "default", "--identity", "owner", "--repository", "team/app:v2", "--action", "push", "--query", "allowed"); got != "true" {
		t.Errorf("explain of a push to an unlocked tag = %q", got)
	}
	if _, err := c.run("", "repository", "untag", "-n", "default", "--image", "team/app:v1"); err == nil || !strings.Contains(err.Error(), "disallowed") || !strings.Contains(err.Error(), "write-disabled") {
		t.Errorf("untag of a write-disabled tag: %v", err)
	}
	if _, err := c.run("", "manifest", "delete", "-r", "default", "-n", "team/app:v1", "--yes"); err == nil || !strings.Contains(err.Error(), "REGISTRY_DISALLOWED_OPERATION") {
		t.Errorf("manifest delete of a write-disabled tag's manifest: %v", err)
	}
	c.must("", "repository", "update", "-n", "default", "--image", "team/app:v1", "--write-enabled", "-o", "none")
	c.must("", "repository", "untag", "-n", "default", "--image", "team/app:v1")
	if got := tsv("repository", "show-tags", "-n", "default", "--repository", "team/app"); got != "v2" {
		t.Errorf("after untag: %q", got)
	}

	// A token reads with -u/-p and the registry's URL, no berth sign-in needed.
	var tok struct {
		Credentials struct{ Passwords []struct{ Value string } }
	}
	json.Unmarshal([]byte(c.must("", "token", "create", "-n", "reader", "-r", "default", "--repository", "team/app", "content/read", "metadata/read", "--only-show-errors")), &tok)
	anon := newCLI(t)
	if got := strings.TrimSpace(anon.must("", "repository", "show-tags", "-n", s.URL, "--repository", "team/app", "-u", "reader", "-p", tok.Credentials.Passwords[0].Value, "-o", "tsv")); got != "v2" {
		t.Errorf("show-tags as a token = %q", got)
	}
	if _, err := anon.run("", "repository", "delete", "-n", s.URL, "--repository", "team/app", "-u", "reader", "-p", tok.Credentials.Passwords[0].Value, "--yes"); err == nil || !strings.Contains(err.Error(), "DENIED") {
		t.Errorf("delete as a read-only token: %v", err)
	}
	if _, err := anon.run("", "repository", "list", "-n", s.URL); err == nil || !strings.Contains(err.Error(), "--username") {
		t.Errorf("a registry URL without credentials: %v", err)
	}

	// Usage, then delete: asked first, as az.
	if got := tsv("registry", "show-usage", "-n", "default", "--query", "value[?name=='Manifests'].currentValue | [0]"); got != "3" {
		t.Errorf("show-usage manifests = %q", got)
	}
	if got := tsv("registry", "show-usage", "-n", "default", "--repository", "team/other", "--query", "value[?name=='Manifests'].currentValue | [0]"); got != "1" {
		t.Errorf("show-usage --repository team/other manifests = %q", got)
	}
	if _, err := c.run("", "registry", "show-usage", "-n", "default", "--repository", "nope/none"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("show-usage of an unknown repository: %v", err)
	}
	if _, err := c.run("", "repository", "delete", "-n", "default", "--repository", "team/app"); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Errorf("delete without --yes and no terminal: %v", err)
	}
	c.must("", "repository", "delete", "-n", "default", "--repository", "team/app", "--yes")
	if got := tsv("repository", "list", "-n", "default"); got != "team/other" {
		t.Errorf("after delete: %q", got)
	}
	if _, err := c.run("", "repository", "show", "-n", "default", "--repository", "team/app"); err == nil || !strings.Contains(err.Error(), "NAME_UNKNOWN") {
		t.Errorf("show of the deleted repository: %v", err)
	}
}

package distribution_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	wire "github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/registrytest"
)

// TestACRMetadataAPI (issue 19): /acr/v1/ answers az acr repository show / show-tags / manifest
// list-metadata / show-metadata in ACR's shapes, orders and pages them, untags, deletes
// manifests and whole repositories (which then leave the catalog), and is decided by the
// policy as the data plane: metadata_read to read, delete to delete, a token bounded by its
// scope map, an anonymous caller challenged.
func TestACRMetadataAPI(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newClient(t, s)
	_, d1 := c.pushImage("team/app", "v1", randomBytes(t, 1000))
	_, d2 := c.pushImage("team/app", "v2", randomBytes(t, 2000))
	m3, d3 := c.pushImage("team/app", "v3", randomBytes(t, 3000))
	c.must(c.do("DELETE", "/v2/team/app/manifests/v3", nil, nil), 202, "untag v3 (/v2/)")
	c.pushImage("other/x", "latest", randomBytes(t, 10))
	c.pushBlob("blobs/only", randomBytes(t, 10))

	var repo wire.RepositoryAttributes
	decode(t, c.must(c.do("GET", "/acr/v1/team/app", nil, nil), 200, "repository").body, &repo)
	want := wire.ChangeableAttributes{DeleteEnabled: true, WriteEnabled: true, ReadEnabled: true, ListEnabled: true}
	if repo.Registry != s.Host || repo.ImageName != "team/app" || repo.ManifestCount != 3 || repo.TagCount != 2 || repo.ChangeableAttributes != want ||
		repo.CreatedTime == "" || repo.LastUpdateTime < repo.CreatedTime {
		t.Errorf("repository: %+v", repo)
	}

	var tags wire.TagList
	decode(t, c.must(c.do("GET", "/acr/v1/team/app/_tags", nil, nil), 200, "tags").body, &tags)
	if len(tags.Tags) != 2 || tags.Tags[0].Name != "v1" || tags.Tags[0].Digest != string(d1) || tags.Tags[1].Name != "v2" || tags.Tags[1].ChangeableAttributes != want {
		t.Errorf("tags: %+v", tags)
	}
	page := c.must(c.do("GET", "/acr/v1/team/app/_tags?orderby=timedesc&n=1", nil, nil), 200, "tags, newest first")
	decode(t, page.body, &tags)
	if len(tags.Tags) != 1 || tags.Tags[0].Name != "v2" || !strings.Contains(page.Header.Get("Link"), "last=v2") || !strings.Contains(page.Header.Get("Link"), "orderby=timedesc") {
		t.Errorf("newest tag first, one a page: %+v, Link %q", tags, page.Header.Get("Link"))
	}
	decode(t, c.must(c.do("GET", "/acr/v1/team/app/_tags?orderby=timedesc&n=1&last=v2", nil, nil), 200, "next page").body, &tags)
	if len(tags.Tags) != 1 || tags.Tags[0].Name != "v1" {
		t.Errorf("the next page: %+v", tags)
	}

	var ms wire.ManifestList
	decode(t, c.must(c.do("GET", "/acr/v1/team/app/_manifests?orderby=timeasc", nil, nil), 200, "manifests").body, &ms)
	if len(ms.Manifests) != 3 || ms.Manifests[0].Digest != string(d1) || ms.Manifests[2].Digest != string(d3) ||
		!slices.Equal(ms.Manifests[1].Tags, []string{"v2"}) || len(ms.Manifests[2].Tags) != 0 || ms.Manifests[2].Tags == nil {
		t.Fatalf("manifests: %+v", ms)
	}
	cfg := len(`{"architecture":"amd64","os":"linux"}`)
	if got := ms.Manifests[2].ImageSize; got != int64(len(m3)+cfg+3000) {
		t.Errorf("image size of v3: %d, want the manifest, config and layer: %d", got, len(m3)+cfg+3000)
	}
	var one wire.ManifestReply
	decode(t, c.must(c.do("GET", "/acr/v1/team/app/_manifests/v2", nil, nil), 200, "manifest by tag").body, &one)
	if one.Manifest.Digest != string(d2) || one.ImageName != "team/app" {
		t.Errorf("manifest by tag: %+v", one)
	}
	var tag wire.TagReply
	decode(t, c.must(c.do("GET", "/acr/v1/team/app/_tags/v1", nil, nil), 200, "tag").body, &tag)
	if tag.Tag.Digest != string(d1) {
		t.Errorf("tag: %+v", tag)
	}

	// Untag and delete through the metadata API, as az acr repository untag / delete do.
	c.must(c.do("DELETE", "/acr/v1/team/app/_tags/v2", nil, nil), 202, "untag")
	c.must(c.do("GET", "/acr/v1/team/app/_tags/v2", nil, nil), 404, "the untagged tag")
	c.must(c.do("GET", "/acr/v1/team/app/_manifests/"+string(d2), nil, nil), 200, "its manifest stays")
	c.must(c.do("DELETE", "/acr/v1/team/app/_manifests/"+string(d3), nil, nil), 202, "delete a manifest")
	c.must(c.do("GET", "/v2/team/app/manifests/"+string(d3), nil, nil), 404, "the deleted manifest on /v2/")
	var gone wire.DeletedRepository
	decode(t, c.must(c.do("DELETE", "/acr/v1/other/x", nil, nil), 202, "delete a repository").body, &gone)
	if len(gone.ManifestsDeleted) != 1 || !slices.Equal(gone.TagsDeleted, []string{"latest"}) {
		t.Errorf("deleted repository: %+v", gone)
	}
	c.must(c.do("GET", "/acr/v1/other/x", nil, nil), 404, "the deleted repository")
	c.must(c.do("DELETE", "/acr/v1/other/x", nil, nil), 404, "deleting it again")
	var cat struct{ Repositories []string }
	decode(t, c.must(c.do("GET", "/v2/_catalog", nil, nil), 200, "catalog").body, &cat)
	if !slices.Equal(cat.Repositories, []string{"team/app"}) {
		t.Errorf("catalog: %v, want team/app only (other/x deleted, blobs/only holds no manifest)", cat.Repositories)
	}
	// A repository emptied manifest by manifest leaves the catalog too.
	c.must(c.do("DELETE", "/v2/team/app/manifests/"+string(d1), nil, nil), 202, "delete")
	c.must(c.do("DELETE", "/v2/team/app/manifests/"+string(d2), nil, nil), 202, "delete")
	decode(t, c.must(c.do("GET", "/v2/_catalog", nil, nil), 200, "catalog").body, &cat)
	if len(cat.Repositories) != 0 {
		t.Errorf("catalog after the last manifest went: %v", cat.Repositories)
	}
	c.must(c.do("GET", "/acr/v1/team/app", nil, nil), 404, "an emptied repository")

	// Bad requests get their own answers.
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/acr/v1/team/app/_nope", 404},
		{"GET", "/acr/v1/", 404},
		{"GET", "/acr/v1/Bad..Name", 400},
		{"PUT", "/acr/v1/team/app", 405},
		{"DELETE", "/acr/v1/team/app/_tags", 405},
		{"GET", "/acr/v1/team/app/_tags?orderby=sideways", 400},
		{"GET", "/acr/v1/team/app/_tags?n=-1", 400},
		{"DELETE", "/acr/v1/team/app/_manifests/sha256:nothex", 400},
	} {
		if r := c.do(tc.method, tc.path, nil, nil); r.StatusCode != tc.status {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, r.StatusCode, r.body, tc.status)
		}
	}
}

// TestACRMetadataAPIDecided: who may read and delete through /acr/v1/, as on /v2/.
func TestACRMetadataAPIDecided(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	admin := newClient(t, s)
	admin.pushImage("team/app", "v1", randomBytes(t, 100))
	tokenWith := func(name string, actions ...string) *client {
		var tok struct {
			Credentials struct{ Passwords []struct{ Value string } }
		}
		if st := s.Mgmt(t, "POST", "/mgmt/v1/registries/default/tokens", map[string]any{"name": name,
			"repositories": []map[string]any{{"repository": "team/app", "actions": actions}}}, &tok); st != 201 {
			t.Fatalf("token %s: %d", name, st)
		}
		return &client{t: t, base: s.URL, user: name, pass: tok.Credentials.Passwords[0].Value}
	}
	reader := tokenWith("pull-only", "content/read")
	meta := tokenWith("meta-reader", "content/read", "metadata/read")
	deleter := tokenWith("deleter", "content/delete")
	if r := reader.do("GET", "/acr/v1/team/app", nil, nil); r.StatusCode != http.StatusForbidden || !strings.Contains(r.message(), "metadata/read") {
		t.Errorf("a token without metadata/read: %d %s", r.StatusCode, r.body)
	}
	meta.must(meta.do("GET", "/acr/v1/team/app/_manifests", nil, nil), 200, "metadata/read")
	if r := meta.do("GET", "/acr/v1/other/repo", nil, nil); r.StatusCode != http.StatusForbidden {
		t.Errorf("another repository through the scope map: %d", r.StatusCode)
	}
	if r := meta.do("DELETE", "/acr/v1/team/app/_tags/v1", nil, nil); r.StatusCode != http.StatusForbidden {
		t.Errorf("untag without content/delete: %d", r.StatusCode)
	}
	r := anonymous(t, s).do("GET", "/acr/v1/team/app", nil, nil)
	if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), `scope="repository:team/app:metadata_read"`) {
		t.Errorf("anonymous: %d, challenge %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	deleter.must(deleter.do("DELETE", "/acr/v1/team/app", nil, nil), 202, "delete with content/delete")
}

package distribution_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	wire "github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/registrytest"
	"github.com/berth-registry/berth/internal/store"
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
	// Reading metadata is not changing it: a lock needs metadata/write.
	if r := meta.do("PATCH", "/acr/v1/team/app/_tags/v1", map[string]string{"Content-Type": "application/json"}, []byte(`{"writeEnabled": false}`)); r.StatusCode != http.StatusForbidden || !strings.Contains(r.message(), "metadata/write") {
		t.Errorf("a lock without metadata/write: %d %s", r.StatusCode, r.body)
	}
	r := anonymous(t, s).do("GET", "/acr/v1/team/app", nil, nil)
	if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), `scope="repository:team/app:metadata_read"`) {
		t.Errorf("anonymous: %d, challenge %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	deleter.must(deleter.do("DELETE", "/acr/v1/team/app", nil, nil), 202, "delete with content/delete")
}

// TestLocks (issue 19): ACR's changeable attributes, set through /acr/v1/ as az acr repository
// update does, hold on /v2/ for everyone (the admin user here): a write-disabled tag does not
// move and is not untagged, pushing its own digest again changes nothing and is let through; a
// delete-disabled tag or manifest survives deletes; a read-disabled tag is not pulled by it; a
// list-disabled tag leaves the listings; a write-disabled repository takes no push and is not
// deleted. Each change is a repository event (lock), each refusal too (reason locked).
func TestLocks(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newClient(t, s)
	prodManifest, d1 := c.pushImage("team/app", "prod", randomBytes(t, 100))
	devManifest, dDev := c.pushImage("team/app", "dev", randomBytes(t, 100))
	other, _ := c.pushImage("team/scratch", "x", randomBytes(t, 100))
	put := func(tag string, m []byte) reply {
		return c.do("PUT", "/v2/team/app/manifests/"+tag, map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, m)
	}
	patch := func(path, body string) reply {
		return c.do("PATCH", "/acr/v1/team/app"+path, map[string]string{"Content-Type": "application/json"}, []byte(body))
	}
	refused := func(r reply, what, want string) {
		t.Helper()
		if r.StatusCode != http.StatusMethodNotAllowed || r.code() != "REGISTRY_DISALLOWED_OPERATION" ||
			!strings.Contains(r.message(), "The operation is disallowed on this registry, repository or image") || !strings.Contains(r.message(), want) {
			t.Errorf("%s: %d %s, want 405 REGISTRY_DISALLOWED_OPERATION naming %q", what, r.StatusCode, r.body, want)
		}
	}
	// The blobs of another image, so that it can be pushed to team/app.
	var o struct {
		Config struct{ Digest string }
		Layers []struct{ Digest string }
	}
	decode(t, other, &o)
	for _, d := range []string{o.Config.Digest, o.Layers[0].Digest} {
		c.must(c.do("POST", "/v2/team/app/blobs/uploads/?mount="+d+"&from=team/scratch", nil, nil), 201, "mount")
	}

	var tag wire.TagReply
	decode(t, c.must(patch("/_tags/prod", `{"writeEnabled": false}`), 200, "lock prod").body, &tag)
	if tag.Tag.ChangeableAttributes.WriteEnabled || !tag.Tag.ChangeableAttributes.DeleteEnabled || tag.Tag.Name != "prod" {
		t.Errorf("the locked tag: %+v", tag)
	}
	refused(put("prod", other), "moving a write-disabled tag", "tag prod of repository team/app is write-disabled")
	c.must(put("prod", prodManifest), 201, "pushing prod's own manifest again")
	refused(c.do("DELETE", "/v2/team/app/manifests/prod", nil, nil), "untag a write-disabled tag", "tag prod")
	refused(c.do("DELETE", "/v2/team/app/manifests/"+string(d1), nil, nil), "delete the manifest of a write-disabled tag", "tag prod")
	refused(c.do("DELETE", "/acr/v1/team/app/_tags/prod", nil, nil), "untag through /acr/v1/", "write-disabled")
	c.must(put("dev", other), 201, "another tag still moves")

	c.must(patch("/_tags/prod", `{"writeEnabled": true, "deleteEnabled": false}`), 200, "prod: write, no delete")
	refused(c.do("DELETE", "/v2/team/app/manifests/prod", nil, nil), "untag a delete-disabled tag", "tag prod of repository team/app is delete-disabled")
	c.must(put("prod", other), 201, "a delete-disabled tag moves")
	c.must(put("prod", prodManifest), 201, "and back")

	c.must(patch("/_manifests/"+string(dDev), `{"deleteEnabled": false}`), 200, "lock a manifest")
	c.must(put("dev-again", devManifest), 201, "tag the locked manifest")
	refused(c.do("DELETE", "/v2/team/app/manifests/"+string(dDev), nil, nil), "delete a delete-disabled manifest", "manifest "+string(dDev))

	c.must(patch("/_tags/dev-again", `{"readEnabled": false, "listEnabled": false}`), 200, "dev-again: no read, no list")
	refused(c.do("GET", "/v2/team/app/manifests/dev-again", nil, nil), "pull by a read-disabled tag", "tag dev-again of repository team/app is read-disabled")
	c.must(c.do("GET", "/v2/team/app/manifests/"+string(dDev), nil, nil), 200, "the same manifest by digest")
	var list struct{ Tags []string }
	decode(t, c.must(c.do("GET", "/v2/team/app/tags/list", nil, nil), 200, "tags").body, &list)
	if slices.Contains(list.Tags, "dev-again") || !slices.Contains(list.Tags, "prod") {
		t.Errorf("tags list with dev-again list-disabled: %v", list.Tags)
	}
	var tl wire.TagList
	decode(t, c.must(c.do("GET", "/acr/v1/team/app/_tags", nil, nil), 200, "acr tags").body, &tl)
	for _, tg := range tl.Tags {
		if tg.Name == "dev-again" {
			t.Error("/acr/v1/ lists a list-disabled tag")
		}
	}
	c.must(c.do("GET", "/acr/v1/team/app/_tags/dev-again", nil, nil), 200, "but shows it when named")

	var repo wire.RepositoryAttributes
	decode(t, c.must(patch("", `{"writeEnabled": false}`), 200, "lock the repository").body, &repo)
	if repo.ChangeableAttributes.WriteEnabled || repo.ImageName != "team/app" {
		t.Errorf("locked repository: %+v", repo)
	}
	refused(put("new", other), "push to a write-disabled repository", "repository team/app is write-disabled")
	refused(c.do("DELETE", "/acr/v1/team/app", nil, nil), "delete a write-disabled repository", "repository team/app")
	c.must(patch("", `{"writeEnabled": true}`), 200, "unlock the repository")
	refused(c.do("DELETE", "/acr/v1/team/app", nil, nil), "delete a repository holding a locked tag", "delete-disabled")

	for _, tc := range []struct {
		path, body string
		status     int
	}{
		{"/_tags/prod", `{"writeEnabled": "no"}`, 400},
		{"/_tags/prod", `{"frozen": true}`, 400},
		{"/_tags/absent", `{"writeEnabled": false}`, 404},
		{"/_manifests/sha256:" + strings.Repeat("0", 64), `{"writeEnabled": false}`, 404},
		{"/_manifests/latest", `{"writeEnabled": false}`, 400},
	} {
		if r := patch(tc.path, tc.body); r.StatusCode != tc.status {
			t.Errorf("PATCH %s %s: %d %s, want %d", tc.path, tc.body, r.StatusCode, r.body, tc.status)
		}
	}
	c.must(c.do("PATCH", "/acr/v1/other/none", map[string]string{"Content-Type": "application/json"}, []byte(`{"writeEnabled": false}`)), 404, "an unknown repository")
	s.SettleEvents(t)
	events, err := s.Meta().RepositoryEvents(t.Context(), store.EventFilter{Repository: "team/app", Operation: "lock"})
	if err != nil || len(events) != 6 {
		t.Errorf("lock events: %d, %v; want 6 (the refused changes are none)", len(events), err)
	}
	locked, err := s.Meta().RepositoryEvents(t.Context(), store.EventFilter{Repository: "team/app", Reason: "locked"})
	if err != nil || len(locked) < 6 {
		t.Errorf("refusals recorded with reason locked: %d, %v", len(locked), err)
	}
}

// TestDeletedAPI (issue 19): /acr/v1/_deleted/ lists soft-deleted content to those who may read
// metadata and restores for those who may push; a restore onto a tag now taken needs force.
func TestDeletedAPI(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	if st := s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default", map[string]any{"policies": map[string]any{"softDeletePolicy": map[string]any{"status": "enabled", "retentionDays": 2}}}, nil); st != 200 {
		t.Fatalf("soft delete on: %d", st)
	}
	admin := newClient(t, s)
	_, d1 := admin.pushImage("team/app", "v1", randomBytes(t, 100))
	admin.must(admin.do("DELETE", "/v2/team/app/manifests/"+string(d1), nil, nil), 202, "delete v1")
	admin.pushImage("team/app", "v1", randomBytes(t, 100)) // v1 now names another manifest

	var tok struct {
		Credentials struct{ Passwords []struct{ Value string } }
	}
	s.Mgmt(t, "POST", "/mgmt/v1/registries/default/tokens", map[string]any{"name": "reader",
		"repositories": []map[string]any{{"repository": "team/app", "actions": []string{"content/read", "metadata/read"}}}}, &tok)
	reader := &client{t: t, base: s.URL, user: "reader", pass: tok.Credentials.Passwords[0].Value}

	var list wire.DeletedManifestList
	decode(t, reader.must(reader.do("GET", "/acr/v1/_deleted/team/app/_manifests", nil, nil), 200, "list deleted").body, &list)
	if len(list.Manifests) != 1 || list.Manifests[0].Digest != string(d1) || !slices.Equal(list.Manifests[0].Tags, []string{"v1"}) || list.Manifests[0].PurgeTime <= list.Manifests[0].DeletedTime {
		t.Errorf("deleted manifests: %+v", list)
	}
	restore := func(c *client, body string, force bool) reply {
		path := "/acr/v1/_deleted/team/app/_manifests/" + string(d1)
		if force {
			path += "?force=true"
		}
		return c.do("POST", path, map[string]string{"Content-Type": "application/json"}, []byte(body))
	}
	if r := restore(reader, `{"tag":"v1"}`, false); r.StatusCode != http.StatusForbidden {
		t.Errorf("a restore without push: %d %s", r.StatusCode, r.body)
	}
	if r := anonymous(t, s).do("GET", "/acr/v1/_deleted/_catalog", nil, nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous deleted catalog: %d", r.StatusCode)
	}
	if r := restore(admin, `{"tag":"v1"}`, false); r.StatusCode != http.StatusConflict || !strings.Contains(r.message(), "force") {
		t.Errorf("restore onto the taken v1: %d %s", r.StatusCode, r.body)
	}
	for _, body := range []string{`{"tag":"bad tag!"}`, `{"name":"v1"}`, `[1]`} {
		if r := restore(admin, body, false); r.StatusCode != http.StatusBadRequest {
			t.Errorf("restore with %s: %d %s", body, r.StatusCode, r.body)
		}
	}
	admin.must(restore(admin, `{"tag":"v1"}`, true), 200, "forced restore")
	got := admin.must(admin.do("GET", "/v2/team/app/manifests/v1", nil, nil), 200, "pull v1")
	if got.Header.Get("Docker-Content-Digest") != string(d1) {
		t.Errorf("v1 after the restore: %s", got.Header.Get("Docker-Content-Digest"))
	}
	if r := restore(admin, ``, false); r.StatusCode != http.StatusNotFound {
		t.Errorf("restoring it again: %d", r.StatusCode)
	}
	for _, p := range []string{"/acr/v1/_deleted/", "/acr/v1/_deleted/team/app", "/acr/v1/_deleted/team/app/_blobs"} {
		if r := admin.do("GET", p, nil, nil); r.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d", p, r.StatusCode)
		}
	}
	// Listings are GETs only; a restore names its digest.
	for _, p := range []string{"/acr/v1/_deleted/team/app/_manifests", "/acr/v1/_deleted/team/app/_tags", "/acr/v1/_deleted/_catalog"} {
		if r := admin.do("POST", p, nil, nil); r.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s: %d", p, r.StatusCode)
		}
	}
}

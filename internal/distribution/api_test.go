package distribution_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/distribution"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registrytest"
)

func TestBlobRange(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newClient(t, s)
	data := randomBytes(t, 1000)
	d := c.pushBlob("r/range", data)
	path := "/v2/r/range/blobs/" + string(d)
	tests := []struct {
		rng    string
		status int
		want   []byte
		cr     string
	}{
		{"", 200, data, ""},
		{"bytes=0-99", 206, data[:100], "bytes 0-99/1000"},
		{"bytes=900-", 206, data[900:], "bytes 900-999/1000"},
		{"bytes=-10", 206, data[990:], "bytes 990-999/1000"},
		{"bytes=990-5000", 206, data[990:], "bytes 990-999/1000"},
		{"bytes=0-1,5-6", 200, data, ""}, // several ranges: ignored, whole blob
		{"bytes=1000-", 416, nil, "bytes */1000"},
		{"bytes=5-1", 416, nil, "bytes */1000"},
	}
	for _, tc := range tests {
		r := c.do("GET", path, map[string]string{"Range": tc.rng}, nil)
		if r.StatusCode != tc.status {
			t.Errorf("Range %q: status %d, want %d", tc.rng, r.StatusCode, tc.status)
			continue
		}
		if tc.want != nil && !bytes.Equal(r.body, tc.want) {
			t.Errorf("Range %q: got %d bytes, not the %d expected", tc.rng, len(r.body), len(tc.want))
		}
		if got := r.Header.Get("Content-Range"); got != tc.cr {
			t.Errorf("Range %q: Content-Range %q, want %q", tc.rng, got, tc.cr)
		}
	}
	h := c.must(c.do("HEAD", path, nil, nil), 200, "HEAD blob")
	if h.ContentLength != 1000 || h.Header.Get("Docker-Content-Digest") != string(d) || len(h.body) != 0 {
		t.Errorf("HEAD: length %d digest %q body %d bytes", h.ContentLength, h.Header.Get("Docker-Content-Digest"), len(h.body))
	}
}

func TestPagination(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) { c.Limits.MaxPageSize = 3 }})
	c := newClient(t, s)
	_, d := c.pushImage("p/one", "t0", []byte("x"))
	var want []string
	for i := 0; i < 7; i++ {
		tag := fmt.Sprintf("t%d", i)
		want = append(want, tag)
		c.must(c.do("PUT", "/v2/p/one/manifests/"+string(d)+"?tag="+tag, map[string]string{"Content-Type": oci.MediaTypeImageManifest}, mustGet(c, "/v2/p/one/manifests/t0")), 201, "tag")
	}
	// Follow Link headers with n=2, then without n (the server's page size, 3).
	for _, first := range []string{"/v2/p/one/tags/list?n=2", "/v2/p/one/tags/list"} {
		var got []string
		next := first
		for pages := 0; next != ""; pages++ {
			if pages > 10 {
				t.Fatal("pagination does not end")
			}
			r := c.must(c.do("GET", next, nil, nil), 200, "tags page")
			var body struct {
				Name string
				Tags []string
			}
			decode(t, r.body, &body)
			got = append(got, body.Tags...)
			next = linkTarget(r.Header.Get("Link"))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("tags from %s (-want +got):\n%s", first, diff)
		}
	}
	r := c.must(c.do("GET", "/v2/p/one/tags/list?n=0", nil, nil), 200, "n=0")
	if !strings.Contains(string(r.body), `"tags":[]`) || r.Header.Get("Link") != "" {
		t.Errorf("n=0: body %s link %q; want no tags and no Link", r.body, r.Header.Get("Link"))
	}
	r = c.must(c.do("GET", "/v2/p/one/tags/list?n=2&last=t5", nil, nil), 200, "last")
	if !strings.Contains(string(r.body), `"tags":["t6"]`) {
		t.Errorf("last=t5: %s", r.body)
	}
	for _, repo := range []string{"p/two", "a/three", "z/four"} {
		c.pushImage(repo, "v1", []byte(repo)) // the catalog lists repositories holding a manifest
	}
	var repos []string
	for next := "/v2/_catalog?n=1"; next != ""; {
		r := c.must(c.do("GET", next, nil, nil), 200, "catalog page")
		var body struct{ Repositories []string }
		decode(t, r.body, &body)
		repos = append(repos, body.Repositories...)
		next = linkTarget(r.Header.Get("Link"))
	}
	if diff := cmp.Diff([]string{"a/three", "p/one", "p/two", "z/four"}, repos); diff != "" {
		t.Errorf("catalog (-want +got):\n%s", diff)
	}
}

func mustGet(c *client, path string) []byte {
	return c.must(c.do("GET", path, nil, nil), 200, "GET "+path).body
}

func linkTarget(link string) string {
	if link == "" {
		return ""
	}
	start, end := strings.IndexByte(link, '<'), strings.IndexByte(link, '>')
	if start < 0 || end < start || !strings.Contains(link, `rel="next"`) {
		return ""
	}
	return link[start+1 : end]
}

func TestReferrers(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newClient(t, s)
	_, subject := c.pushImage("ref/repo", "v1", []byte("base"))
	empty := c.pushBlob("ref/repo", []byte("{}"))
	put := func(artifactType string, ann string) oci.Digest {
		m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"artifactType":%q,"config":{"mediaType":%q,"digest":%q,"size":2},"layers":[{"mediaType":%q,"digest":%q,"size":2}],"subject":{"mediaType":%q,"digest":%q,"size":1},"annotations":{"note":%q}}`,
			oci.MediaTypeImageManifest, artifactType, oci.MediaTypeEmptyJSON, empty, oci.MediaTypeEmptyJSON, empty, oci.MediaTypeImageManifest, subject, ann)
		d := oci.FromBytes(oci.SHA256, []byte(m))
		r := c.must(c.do("PUT", "/v2/ref/repo/manifests/"+string(d), map[string]string{"Content-Type": oci.MediaTypeImageManifest}, []byte(m)), 201, "put referrer")
		if got := r.Header.Get("OCI-Subject"); got != string(subject) {
			t.Errorf("OCI-Subject = %q, want %s", got, subject)
		}
		return d
	}
	sig := put("application/vnd.example.sig", "signed")
	sbom := put("application/vnd.example.sbom", "listed")

	type index struct {
		MediaType string
		Manifests []oci.Descriptor
	}
	r := c.must(c.do("GET", "/v2/ref/repo/referrers/"+string(subject), nil, nil), 200, "referrers")
	var all index
	decode(t, r.body, &all)
	if r.Header.Get("Content-Type") != oci.MediaTypeImageIndex || len(all.Manifests) != 2 {
		t.Fatalf("referrers: content type %q, %d entries; body %s", r.Header.Get("Content-Type"), len(all.Manifests), r.body)
	}
	got := map[oci.Digest]string{}
	for _, m := range all.Manifests {
		got[m.Digest] = m.ArtifactType + " " + m.Annotations["note"]
	}
	if diff := cmp.Diff(map[oci.Digest]string{sig: "application/vnd.example.sig signed", sbom: "application/vnd.example.sbom listed"}, got); diff != "" {
		t.Errorf("referrers (-want +got):\n%s", diff)
	}
	r = c.must(c.do("GET", "/v2/ref/repo/referrers/"+string(subject)+"?artifactType=application/vnd.example.sbom", nil, nil), 200, "filtered")
	var filtered index
	decode(t, r.body, &filtered)
	if len(filtered.Manifests) != 1 || filtered.Manifests[0].Digest != sbom || r.Header.Get("OCI-Filters-Applied") != "artifactType" {
		t.Errorf("filtered referrers: %s, OCI-Filters-Applied %q", r.body, r.Header.Get("OCI-Filters-Applied"))
	}
	unknown := oci.FromBytes(oci.SHA256, []byte("nothing refers to this"))
	r = c.must(c.do("GET", "/v2/ref/repo/referrers/"+string(unknown), nil, nil), 200, "unknown subject")
	var none index
	decode(t, r.body, &none)
	if none.MediaType != oci.MediaTypeImageIndex || len(none.Manifests) != 0 || !strings.Contains(string(r.body), `"manifests":[]`) {
		t.Errorf("unknown subject: %s", r.body)
	}
	// Pages of one, following Link, give both referrers.
	seen := map[oci.Digest]bool{}
	for next, pages := "/v2/ref/repo/referrers/"+string(subject)+"?n=1", 0; next != ""; pages++ {
		if pages > 3 {
			t.Fatal("referrers pagination does not end")
		}
		r := c.must(c.do("GET", next, nil, nil), 200, "referrers page")
		var page index
		decode(t, r.body, &page)
		for _, m := range page.Manifests {
			seen[m.Digest] = true
		}
		next = linkTarget(r.Header.Get("Link"))
	}
	if !seen[sig] || !seen[sbom] || len(seen) != 2 {
		t.Errorf("paged referrers = %v", seen)
	}
	// Deleting the referrer removes it from the list.
	c.must(c.do("DELETE", "/v2/ref/repo/manifests/"+string(sig), nil, nil), 202, "delete referrer")
	r = c.must(c.do("GET", "/v2/ref/repo/referrers/"+string(subject), nil, nil), 200, "referrers after delete")
	decode(t, r.body, &all)
	if len(all.Manifests) != 1 || all.Manifests[0].Digest != sbom {
		t.Errorf("after delete: %s", r.body)
	}
}

func TestUploadSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := registrytest.New(t, registrytest.Options{Dir: dir})
	c := newClient(t, s)
	data := randomBytes(t, 3<<20)
	loc := c.must(c.do("POST", "/v2/up/repo/blobs/uploads/", nil, nil), 202, "start").Header.Get("Location")
	c.must(c.do("PATCH", loc, map[string]string{"Content-Range": fmt.Sprintf("0-%d", 1<<20-1)}, data[:1<<20]), 202, "first chunk")
	s.Stop()

	s = registrytest.New(t, registrytest.Options{Dir: dir})
	c = newClient(t, s)
	r := c.must(c.do("GET", loc, nil, nil), 204, "status after restart")
	if got, want := r.Header.Get("Range"), fmt.Sprintf("0-%d", 1<<20-1); got != want {
		t.Fatalf("Range after restart = %q, want %q", got, want)
	}
	c.must(c.do("PATCH", loc, nil, data[1<<20:2<<20]), 202, "streamed chunk")
	d := oci.FromBytes(oci.SHA256, data)
	c.must(c.do("PUT", loc+"?digest="+string(d), nil, data[2<<20:]), 201, "final chunk")
	if got := mustGet(c, "/v2/up/repo/blobs/"+string(d)); !bytes.Equal(got, data) {
		t.Errorf("blob after restart differs from what was uploaded")
	}
	c.must(c.do("GET", loc, nil, nil), 404, "finished upload is gone")
}

func TestSHA512ChunkedUpload(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newClient(t, s)
	data := randomBytes(t, 100_000)
	loc := c.must(c.do("POST", "/v2/s/512/blobs/uploads/", nil, nil), 202, "start").Header.Get("Location")
	c.must(c.do("PATCH", loc, nil, data[:50_000]), 202, "chunk")
	d := oci.FromBytes(oci.SHA512, data)
	r := c.must(c.do("PUT", loc+"?digest="+string(d), nil, data[50_000:]), 201, "finish")
	if r.Header.Get("Docker-Content-Digest") != string(d) {
		t.Errorf("Docker-Content-Digest = %q, want %s", r.Header.Get("Docker-Content-Digest"), d)
	}
	if got := mustGet(c, "/v2/s/512/blobs/"+string(d)); !bytes.Equal(got, data) {
		t.Error("sha512 blob differs")
	}
}

func TestCancelUpload(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newClient(t, s)
	loc := c.must(c.do("POST", "/v2/c/repo/blobs/uploads/", nil, nil), 202, "start").Header.Get("Location")
	c.must(c.do("PATCH", loc, nil, []byte("some bytes")), 202, "chunk")
	c.must(c.do("DELETE", loc, nil, nil), 204, "cancel")
	if r := c.do("PATCH", loc, nil, []byte("more")); r.StatusCode != 404 || r.code() != "BLOB_UPLOAD_UNKNOWN" {
		t.Errorf("PATCH after cancel: %d %s", r.StatusCode, r.body)
	}
}

func TestDigestMismatchDiscardsUpload(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newClient(t, s)
	loc := c.must(c.do("POST", "/v2/m/repo/blobs/uploads/", nil, nil), 202, "start").Header.Get("Location")
	wrong := oci.FromBytes(oci.SHA256, []byte("something else"))
	if r := c.do("PUT", loc+"?digest="+string(wrong), nil, []byte("content")); r.StatusCode != 400 || r.code() != "DIGEST_INVALID" {
		t.Fatalf("mismatched PUT: %d %s", r.StatusCode, r.body)
	}
	if r := c.do("HEAD", "/v2/m/repo/blobs/"+string(wrong), nil, nil); r.StatusCode != 404 {
		t.Errorf("blob visible after a digest mismatch: %d", r.StatusCode)
	}
}

func TestMount(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newClient(t, s)
	data := []byte("shared layer")
	d := c.pushBlob("src/repo", data)
	r := c.must(c.do("POST", "/v2/dst/repo/blobs/uploads/?mount="+string(d)+"&from=src/repo", nil, nil), 201, "mount")
	if r.Header.Get("Location") != "/v2/dst/repo/blobs/"+string(d) {
		t.Errorf("mount Location = %q", r.Header.Get("Location"))
	}
	if got := mustGet(c, "/v2/dst/repo/blobs/"+string(d)); !bytes.Equal(got, data) {
		t.Error("mounted blob differs")
	}
	// A mount from a repository without the blob falls back to an upload session.
	absent := oci.FromBytes(oci.SHA256, []byte("absent"))
	c.must(c.do("POST", "/v2/dst/repo/blobs/uploads/?mount="+string(absent)+"&from=src/repo", nil, nil), 202, "mount fallback")
	// Without from, any repository of the registry holding the blob serves.
	c.must(c.do("POST", "/v2/third/repo/blobs/uploads/?mount="+string(d), nil, nil), 201, "anonymous mount")
	// Deleting the blob from one repository leaves the others.
	c.must(c.do("DELETE", "/v2/src/repo/blobs/"+string(d), nil, nil), 202, "delete blob")
	c.must(c.do("GET", "/v2/src/repo/blobs/"+string(d), nil, nil), 404, "deleted blob")
	c.must(c.do("GET", "/v2/dst/repo/blobs/"+string(d), nil, nil), 200, "blob in other repository")
}

func TestRegistriesByHost(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	var reg struct {
		Credentials struct{ Passwords []struct{ Value string } }
	}
	if st := s.Mgmt(t, "POST", "/mgmt/v1/registries", map[string]any{"name": "team", "loginServer": "team.example.test", "adminUserEnabled": true}, &reg); st != 201 {
		t.Fatalf("create registry: %d", st)
	}
	def := newClient(t, s)
	team := &client{t: t, base: s.URL, host: "TEAM.example.test:443", user: "team", pass: reg.Credentials.Passwords[0].Value}
	// Each registry's admin user is valid on its own registry only.
	wrong := &client{t: t, base: s.URL, host: "team.example.test", user: def.user, pass: def.pass}
	wrong.must(wrong.do("GET", "/v2/", nil, nil), 401, "default's admin on team")
	def.pushImage("app", "v1", []byte("default layer"))
	team.pushImage("app", "v1", []byte("team layer"))
	team.pushImage("teamonly", "v1", []byte("x"))
	cat := func(c *client) string {
		return string(c.must(c.do("GET", "/v2/_catalog", nil, nil), 200, "catalog").body)
	}
	if got := cat(def); got != `{"repositories":["app"]}` {
		t.Errorf("default catalog = %s", got)
	}
	if got := cat(team); got != `{"repositories":["app","teamonly"]}` {
		t.Errorf("team catalog = %s", got)
	}
	dm, tm := mustGet(def, "/v2/app/manifests/v1"), mustGet(team, "/v2/app/manifests/v1")
	if bytes.Equal(dm, tm) {
		t.Error("the two registries serve the same manifest for app:v1")
	}
	// Blobs of one registry cannot be mounted into another.
	layer := oci.FromBytes(oci.SHA256, []byte("team layer"))
	def.must(def.do("POST", "/v2/app/blobs/uploads/?mount="+string(layer)+"&from=app", nil, nil), 202, "cross-registry mount falls back")
	def.must(def.do("GET", "/v2/app/blobs/"+string(layer), nil, nil), 404, "other registry's blob")
}

// TestReferrersAreBoundedByBytes (issue 16, finding 4): a referrer may carry megabytes of
// annotations (a manifest may be 4 MiB of them, as the conformance suite pushes), so a referrers
// page is cut by bytes as well as by count, with Link to the rest — and the store reads no more
// than a page's bytes: following the links lists every referrer once, and no page is larger than
// the bound.
func TestReferrersAreBoundedByBytes(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newClient(t, s)
	_, subject := c.pushImage("big/repo", "v1", []byte("base"))
	empty := c.pushBlob("big/repo", []byte("{}"))
	referrer := func(i, annBytes int) []byte {
		return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"artifactType":"application/vnd.example.note","config":{"mediaType":%q,"digest":%q,"size":2},"layers":[{"mediaType":%q,"digest":%q,"size":2}],"subject":{"mediaType":%q,"digest":%q,"size":1},"annotations":{"n":"%d","note":%q}}`,
			oci.MediaTypeImageManifest, oci.MediaTypeEmptyJSON, empty, oci.MediaTypeEmptyJSON, empty, oci.MediaTypeImageManifest, subject, i, strings.Repeat("x", annBytes)))
	}
	ct := map[string]string{"Content-Type": oci.MediaTypeImageManifest}
	want := map[oci.Digest]bool{}
	for i := range 3 { // referrers of ~3.9 MB each: a page holds one
		huge := referrer(1000+i, 4<<20-4096)
		d := oci.FromBytes(oci.SHA256, huge)
		c.must(c.do("PUT", "/v2/big/repo/manifests/"+string(d), ct, huge), 201, "put a referrer with megabytes of annotations")
		want[d] = true
	}
	const count = 80 // × 60 KiB of annotations: more than one page's bytes
	for i := range count {
		m := referrer(i, 60<<10)
		d := oci.FromBytes(oci.SHA256, m)
		c.must(c.do("PUT", "/v2/big/repo/manifests/"+string(d), ct, m), 201, "put referrer")
		want[d] = true
	}
	next, pages := "/v2/big/repo/referrers/"+string(subject)+"?n=1000", 0
	for next != "" {
		r := c.must(c.do("GET", next, nil, nil), 200, "referrers page")
		pages++
		var idx struct{ Manifests []oci.Descriptor }
		if err := json.Unmarshal(r.body, &idx); err != nil || len(idx.Manifests) == 0 {
			t.Fatalf("page %d: %v, %d entries", pages, err, len(idx.Manifests))
		}
		// A page stays within the bound, unless it is one referrer larger than the bound alone.
		if len(r.body) > distribution.MaxReferrersBytes+1024 && len(idx.Manifests) > 1 {
			t.Errorf("page %d is %d bytes with %d referrers", pages, len(r.body), len(idx.Manifests))
		}
		for _, m := range idx.Manifests {
			if !want[m.Digest] {
				t.Errorf("page %d lists %s, unknown or listed before", pages, m.Digest)
			}
			delete(want, m.Digest)
		}
		next = ""
		if link := r.Header.Get("Link"); link != "" {
			next = strings.TrimSuffix(strings.TrimPrefix(strings.SplitN(link, ";", 2)[0], "<"), ">")
		}
		if pages > count {
			t.Fatal("the links do not end")
		}
	}
	if len(want) != 0 || pages < 5 {
		t.Errorf("%d pages; %d referrers never listed", pages, len(want))
	}
}

func TestUploadLimit(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) { c.Limits.MaxUploads = 2 }})
	c := newClient(t, s)
	c.must(c.do("POST", "/v2/l/repo/blobs/uploads/", nil, nil), 202, "first")
	c.must(c.do("POST", "/v2/l/repo/blobs/uploads/", nil, nil), 202, "second")
	r := c.do("POST", "/v2/l/repo/blobs/uploads/", nil, nil)
	if r.StatusCode != http.StatusTooManyRequests || r.code() != "TOOMANYREQUESTS" || r.Header.Get("Retry-After") == "" {
		t.Errorf("third upload: %d %s Retry-After %q", r.StatusCode, r.body, r.Header.Get("Retry-After"))
	}
}

// TestOneIdentityCannotTakeEveryUploadSlot (issue 16, finding 5): open uploads are limited per
// identity as well as per registry: a token that opens as many as it can stops at its own limit,
// and the registry's other identities keep pushing.
func TestOneIdentityCannotTakeEveryUploadSlot(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) { c.Limits.MaxUploads, c.Limits.MaxUploadsPerIdentity = 10, 3 }})
	var tok struct {
		Credentials struct{ Passwords []struct{ Value string } }
	}
	if st := s.Mgmt(t, "POST", "/mgmt/v1/registries/default/tokens", map[string]any{"name": "greedy", "scopeMap": "_repositories_push"}, &tok); st != http.StatusCreated {
		t.Fatalf("create token: %d", st)
	}
	greedy := &client{t: t, base: s.URL, user: "greedy", pass: tok.Credentials.Passwords[0].Value}
	opened := 0
	var last reply
	for range 10 {
		if last = greedy.do("POST", "/v2/greedy/blobs/uploads/", nil, nil); last.StatusCode == http.StatusAccepted {
			opened++
		}
	}
	if opened != 3 || last.StatusCode != http.StatusTooManyRequests || !strings.Contains(last.message(), `token "greedy" of registry "default" has 3 uploads in progress`) {
		t.Errorf("the greedy token opened %d uploads; its last try: %d %s", opened, last.StatusCode, last.body)
	}
	owner := newClient(t, s)
	owner.must(owner.do("POST", "/v2/mine/blobs/uploads/", nil, nil), 202, "another identity's upload while the token is at its limit")
}

func TestBlobSizeLimit(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) { c.Limits.MaxBlobBytes = 1000 }})
	c := newClient(t, s)
	big := randomBytes(t, 1001)
	d := oci.FromBytes(oci.SHA256, big)
	if r := c.do("POST", "/v2/b/repo/blobs/uploads/?digest="+string(d), nil, big); r.StatusCode != 413 || r.code() != "SIZE_INVALID" {
		t.Errorf("monolithic over the limit: %d %s", r.StatusCode, r.body)
	}
	loc := c.must(c.do("POST", "/v2/b/repo/blobs/uploads/", nil, nil), 202, "start").Header.Get("Location")
	c.must(c.do("PATCH", loc, nil, big[:600]), 202, "first chunk")
	if r := c.do("PATCH", loc, nil, big[600:]); r.StatusCode != 413 || r.code() != "SIZE_INVALID" {
		t.Errorf("chunk over the limit: %d %s", r.StatusCode, r.body)
	}
}

// TestConcurrentPushes pushes the same blobs and manifest from many clients at once; every push
// succeeds and the content is intact.
func TestConcurrentPushes(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	layer := randomBytes(t, 1<<20)
	const clients = 16
	var wg sync.WaitGroup
	errs := make(chan string, clients)
	user, pass := s.Admin(t)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ft := &fatalRecorder{TB: t}
			c := &client{t: ft, base: s.URL, user: user, pass: pass}
			func() {
				defer func() {
					// Only the unwinding of a recorded Fatal is expected; any other panic is a
					// failure of its own.
					if r := recover(); r != nil {
						if _, ok := r.(fatalUnwind); !ok {
							ft.msg = fmt.Sprintf("client %d panicked: %v\n%s", i, r, debug.Stack())
						}
					}
				}()
				c.pushImage("con/repo", "latest", layer)
				if i%2 == 0 { // half of them through chunked uploads
					d := oci.FromBytes(oci.SHA256, layer)
					loc := c.must(c.do("POST", "/v2/con/chunked/blobs/uploads/", nil, nil), 202, "start").Header.Get("Location")
					c.must(c.do("PATCH", loc, nil, layer[:500_000]), 202, "chunk")
					c.must(c.do("PUT", loc+"?digest="+string(d), nil, layer[500_000:]), 201, "finish")
				}
			}()
			if ft.msg != "" {
				errs <- ft.msg
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	c := newClient(t, s)
	d := oci.FromBytes(oci.SHA256, layer)
	for _, repo := range []string{"con/repo", "con/chunked"} {
		if got := mustGet(c, "/v2/"+repo+"/blobs/"+string(d)); !bytes.Equal(got, layer) {
			t.Errorf("%s: layer differs after concurrent pushes", repo)
		}
	}
	body := mustGet(c, "/v2/con/repo/tags/list")
	if string(body) != `{"name":"con/repo","tags":["latest"]}` {
		t.Errorf("tags = %s", body)
	}
}

// fatalRecorder lets helpers call Fatalf from other goroutines: it records and unwinds.
type fatalRecorder struct {
	testing.TB
	msg string
}

// fatalUnwind is what fatalRecorder panics with, so that only its unwinding is recovered.
type fatalUnwind struct{}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(fatalUnwind{})
}

func (f *fatalRecorder) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	panic(fatalUnwind{})
}

func (f *fatalRecorder) Helper() {}

// TestReferrersPageCutAtEncodedBytes: the store cuts a referrers page by its annotations' raw
// bytes, the handler by the bytes of the descriptors it writes, where JSON escapes each '<' to
// six bytes. Two referrers whose descriptors with their commas come to exactly
// MaxReferrersBytes share a page; one byte more and the second waits behind Link.
func TestReferrersPageCutAtEncodedBytes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra int // bytes past the bound
		want  int // referrers on the first page
	}{
		{"exactly the bound", 0, 2},
		{"a byte over", 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := registrytest.New(t, registrytest.Options{})
			c := newClient(t, s)
			_, subject := c.pushImage("cut/repo", "v1", []byte("base"))
			empty := c.pushBlob("cut/repo", []byte("{}"))
			referrer := func(i, escaped, plain int) ([]byte, int) {
				note := strings.Repeat("<", escaped) + strings.Repeat("a", plain)
				m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"artifactType":"application/vnd.example.note","config":{"mediaType":%q,"digest":%q,"size":2},"layers":[{"mediaType":%q,"digest":%q,"size":2}],"subject":{"mediaType":%q,"digest":%q,"size":1},"annotations":{"n":"%d","note":"%s"}}`,
					oci.MediaTypeImageManifest, oci.MediaTypeEmptyJSON, empty, oci.MediaTypeEmptyJSON, empty, oci.MediaTypeImageManifest, subject, i, note))
				b, err := json.Marshal(oci.Descriptor{MediaType: oci.MediaTypeImageManifest, Digest: oci.FromBytes(oci.SHA256, m), Size: int64(len(m)),
					ArtifactType: "application/vnd.example.note", Annotations: map[string]string{"n": fmt.Sprint(i), "note": note}})
				if err != nil {
					t.Fatal(err)
				}
				return m, len(b)
			}
			first, n1 := referrer(1, 350_000, 0)
			// The second's plain bytes fill the page to the bound (plus extra); its size's digits
			// move with them, so settle in a few rounds.
			plain, second, n2 := 0, []byte(nil), 0
			for range 5 {
				second, n2 = referrer(2, 300_000, plain)
				plain += distribution.MaxReferrersBytes + tc.extra - (n1 + 1 + n2 + 1)
			}
			if n1+1+n2+1 != distribution.MaxReferrersBytes+tc.extra {
				t.Fatalf("could not build the boundary: %d + %d", n1, n2)
			}
			ct := map[string]string{"Content-Type": oci.MediaTypeImageManifest}
			for _, m := range [][]byte{first, second} {
				c.must(c.do("PUT", "/v2/cut/repo/manifests/"+string(oci.FromBytes(oci.SHA256, m)), ct, m), 201, "put a referrer")
			}
			r := c.must(c.do("GET", "/v2/cut/repo/referrers/"+string(subject), nil, nil), 200, "referrers")
			var idx struct{ Manifests []oci.Descriptor }
			decode(t, r.body, &idx)
			if len(idx.Manifests) != tc.want || (r.Header.Get("Link") != "") != (tc.want == 1) {
				t.Errorf("%d referrers on the first page, Link %q; want %d", len(idx.Manifests), r.Header.Get("Link"), tc.want)
			}
		})
	}
}

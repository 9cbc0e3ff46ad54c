package distribution_test

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/audit"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registrytest"
	"github.com/berth-registry/berth/internal/store"
)

// The edges of the wire protocol, each over a socket: headers of large and ranged answers,
// chunked bodies, bodies that break off, limits at and one past their value, data that storage
// lost, and a cross-repository mount by a client holding an access token.

// accessToken signs c in at /oauth2/token for scope and returns the access token.
func accessToken(t *testing.T, s *registrytest.Server, c *client, scope ...string) string {
	t.Helper()
	q := url.Values{"service": {s.Host}, "scope": scope}
	r := c.must(c.do("GET", "/oauth2/token?"+q.Encode(), nil, nil), http.StatusOK, "token")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	decode(t, r.body, &tok)
	return tok.AccessToken
}

func TestBlobAnswerHeaders(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newClient(t, s)
	data := randomBytes(t, 256<<10) // more than net/http buffers: it would go chunked without a length
	d := c.pushBlob("h/blob", data)
	path := "/v2/h/blob/blobs/" + string(d)

	r := c.must(c.do("GET", path, nil, nil), 200, "GET blob")
	if r.ContentLength != int64(len(data)) || len(r.TransferEncoding) != 0 {
		t.Errorf("GET: Content-Length %d transfer %v, want %d and no chunking", r.ContentLength, r.TransferEncoding, len(data))
	}
	r = c.must(c.do("GET", path, map[string]string{"Range": "bytes=0-99999"}, nil), 206, "ranged GET")
	if r.ContentLength != 100000 || len(r.body) != 100000 {
		t.Errorf("ranged GET: Content-Length %d, %d bytes; want 100000", r.ContentLength, len(r.body))
	}
	// Range is defined for GET only: a HEAD with one describes the whole blob.
	r = c.must(c.do("HEAD", path, map[string]string{"Range": "bytes=0-9"}, nil), 200, "HEAD with a range")
	if r.ContentLength != int64(len(data)) || r.Header.Get("Content-Range") != "" {
		t.Errorf("HEAD with a range: Content-Length %d Content-Range %q; want %d and none", r.ContentLength, r.Header.Get("Content-Range"), len(data))
	}
}

// removeStored deletes the stored data of digest d from a filesystem store; false when the
// storage is not the filesystem (S3).
func removeStored(t *testing.T, s *registrytest.Server, d oci.Digest) bool {
	t.Helper()
	p := findFile(t, s.Dir, d.Encoded())
	if p == "" {
		return false
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	return true
}

// findFile returns the path of the file named name under dir, or "": the filesystem store's,
// never a copy in an S3 replica's cache (DATA_DIR/cache), which is not the storage.
func findFile(t *testing.T, dir, name string) string {
	t.Helper()
	found := ""
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && p == filepath.Join(dir, "cache") {
			return filepath.SkipDir
		}
		if !e.IsDir() && e.Name() == name {
			found = p
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func TestDataLostByStorage(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newClient(t, s)
	layer := randomBytes(t, 300)
	m, md := c.pushImage("lost/app", "v1", layer)
	ld := oci.FromBytes(oci.SHA256, layer)
	if !removeStored(t, s, ld) || !removeStored(t, s, md) {
		t.Skip("the storage is not the filesystem: its data cannot be removed behind berth's back here")
	}
	// This server still holds the manifest's bytes, verified when they were pushed: it serves
	// them (content addressed, they are right). A server without them says what storage lost.
	if r := c.do("GET", "/v2/lost/app/manifests/v1", nil, nil); r.StatusCode != 200 || string(r.body) != string(m) {
		t.Errorf("GET of a manifest storage lost, from the server's cache: %d %s", r.StatusCode, r.body)
	}
	s.Stop()
	s = registrytest.New(t, registrytest.Options{Dir: s.Dir})
	c = newClient(t, s)
	if r := c.do("GET", "/v2/lost/app/blobs/"+string(ld), nil, nil); r.StatusCode != 404 || r.code() != "BLOB_UNKNOWN" || !strings.Contains(r.message(), "missing from storage") {
		t.Errorf("GET of a blob storage lost: %d %s", r.StatusCode, r.body)
	}
	if r := c.do("GET", "/v2/lost/app/manifests/v1", nil, nil); r.StatusCode != 404 || r.code() != "MANIFEST_UNKNOWN" || !strings.Contains(r.message(), "missing from storage") {
		t.Errorf("GET of a manifest storage lost: %d %s", r.StatusCode, r.body)
	}
	// A mount of it falls back to an upload: there is nothing to link.
	if r := c.do("POST", "/v2/lost/other/blobs/uploads/?mount="+string(ld)+"&from=lost/app", nil, nil); r.StatusCode != 202 {
		t.Errorf("mount of a blob storage lost: %d %s, want 202 (a new upload)", r.StatusCode, r.body)
	}
	// Pushing the blob again repairs it.
	c.pushBlob("lost/app", layer)
	c.must(c.do("PUT", "/v2/lost/app/manifests/v1", map[string]string{"Content-Type": oci.MediaTypeImageManifest}, m), 201, "push the manifest again")
	if got := mustGet(c, "/v2/lost/app/blobs/"+string(ld)); string(got) != string(layer) {
		t.Error("the blob pushed again differs")
	}
}

// TestDamagedManifestNotServed: a manifest whose stored bytes changed behind berth's back is
// refused, not served (nor remembered) as if it were the manifest its digest names.
func TestDamagedManifestNotServed(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newClient(t, s)
	m, md := c.pushImage("damaged/app", "v1", randomBytes(t, 300))
	p := findFile(t, s.Dir, md.Encoded())
	if p == "" {
		t.Skip("the storage is not the filesystem: its data cannot be changed behind berth's back here")
	}
	damaged := []byte(strings.Replace(string(m), "schemaVersion", "schemaVersioN", 1))
	if err := os.WriteFile(p, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s = registrytest.New(t, registrytest.Options{Dir: s.Dir})
	c = newClient(t, s)
	for range 2 {
		if r := c.do("GET", "/v2/damaged/app/manifests/v1", nil, nil); r.StatusCode == 200 || strings.Contains(string(r.body), "schemaVersioN") {
			t.Fatalf("GET of a damaged manifest: %d %s", r.StatusCode, r.body)
		}
	}
}

// TestManifestCacheKeepsRepositories: a manifest whose bytes a server remembers (pushed to one
// repository) is still unknown to another repository that does not hold it.
func TestManifestCacheKeepsRepositories(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newClient(t, s)
	_, md := c.pushImage("cache/a", "v1", randomBytes(t, 300))
	if r := c.do("GET", "/v2/cache/a/manifests/"+string(md), nil, nil); r.StatusCode != 200 {
		t.Fatalf("GET in its own repository: %d %s", r.StatusCode, r.body)
	}
	c.pushImage("cache/b", "v1", randomBytes(t, 300))
	if r := c.do("GET", "/v2/cache/b/manifests/"+string(md), nil, nil); r.StatusCode != 404 || r.code() != "MANIFEST_UNKNOWN" {
		t.Errorf("GET from a repository that does not hold it: %d %s", r.StatusCode, r.body)
	}
}

// startUpload opens an upload session and returns its path.
func startUpload(c *client, repo string) string {
	c.t.Helper()
	r := c.must(c.do("POST", "/v2/"+repo+"/blobs/uploads/", nil, nil), 202, "start upload")
	return r.Header.Get("Location")
}

func uploadRange(c *client, loc string) string {
	c.t.Helper()
	return c.must(c.do("GET", loc, nil, nil), 204, "upload status").Header.Get("Range")
}

func TestUploadBodies(t *testing.T) {
	const limit = 1000
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) { c.Limits.MaxBlobBytes = limit }})
	c := newClient(t, s)
	data := randomBytes(t, limit)

	t.Run("Content-Range and Content-Length disagree", func(t *testing.T) {
		loc := startUpload(c, "u/a")
		for _, body := range [][]byte{data[:50], {}} {
			r := c.do("PATCH", loc, map[string]string{"Content-Range": "0-99"}, body)
			if r.StatusCode != 400 || r.code() != "SIZE_INVALID" {
				t.Errorf("PATCH 0-99 with %d bytes: %d %s; want 400 SIZE_INVALID", len(body), r.StatusCode, r.body)
			}
		}
		if got := uploadRange(c, loc); got != "0-0" {
			t.Errorf("after refused chunks the upload holds %s", got)
		}
	})

	t.Run("chunk out of order", func(t *testing.T) {
		loc := startUpload(c, "u/b")
		c.must(c.do("PATCH", loc, map[string]string{"Content-Range": "0-99"}, data[:100]), 202, "first chunk")
		r := c.do("PATCH", loc, map[string]string{"Content-Range": "50-149"}, data[50:150])
		if r.StatusCode != 416 || r.Header.Get("Range") != "0-99" || r.Header.Get("Location") == "" || r.Header.Get("Docker-Upload-UUID") == "" {
			t.Errorf("overlapping chunk: %d Range %q Location %q; want 416 0-99 and the upload's location", r.StatusCode, r.Header.Get("Range"), r.Header.Get("Location"))
		}
		if r := c.do("PATCH", loc, map[string]string{"Content-Range": "x"}, data[100:101]); r.StatusCode != 416 {
			t.Errorf("bad Content-Range: %d, want 416", r.StatusCode)
		}
	})

	t.Run("chunked body shorter than its Content-Range", func(t *testing.T) {
		loc := startUpload(c, "u/c")
		r := c.send("PATCH", loc, map[string]string{"Content-Range": "0-99"}, io.MultiReader(strings.NewReader(string(data[:50]))))
		if r.StatusCode != 400 || r.code() != "BLOB_UPLOAD_INVALID" || !strings.Contains(r.message(), "received 50 of 100 bytes") {
			t.Errorf("50 of 100 bytes: %d %s; want 400 BLOB_UPLOAD_INVALID", r.StatusCode, r.body)
		}
		if got := uploadRange(c, loc); got != "0-49" {
			t.Errorf("what arrived is not kept: the upload holds %s, want 0-49", got)
		}
		// The client resumes where the upload stands and finishes.
		r = c.send("PUT", loc+"?digest="+string(oci.FromBytes(oci.SHA256, data[:100])), map[string]string{"Content-Range": "50-99"}, io.MultiReader(strings.NewReader(string(data[50:100]))))
		if r.StatusCode != 201 {
			t.Errorf("finish after resuming: %d %s", r.StatusCode, r.body)
		}
	})

	t.Run("final chunk cut short", func(t *testing.T) {
		loc := startUpload(c, "u/h")
		c.must(c.do("PATCH", loc, nil, data[:100]), 202, "first chunk")
		r := c.send("PUT", loc+"?digest="+string(oci.FromBytes(oci.SHA256, data[:200])), map[string]string{"Content-Range": "100-199"}, io.MultiReader(strings.NewReader(string(data[100:150]))))
		if r.StatusCode != 400 || r.code() != "BLOB_UPLOAD_INVALID" {
			t.Errorf("final chunk of 50 of 100 bytes: %d %s; want 400 BLOB_UPLOAD_INVALID", r.StatusCode, r.body)
		}
		if got := uploadRange(c, loc); got != "0-149" {
			t.Errorf("what arrived with the final chunk is not kept: the upload holds %s, want 0-149", got)
		}
	})

	t.Run("chunked body without a range", func(t *testing.T) {
		loc := startUpload(c, "u/d")
		r := c.must(c.send("PATCH", loc, nil, io.MultiReader(strings.NewReader(string(data[:300])))), 202, "chunked PATCH")
		if r.Header.Get("Range") != "0-299" {
			t.Errorf("Range %q, want 0-299", r.Header.Get("Range"))
		}
		r = c.send("PATCH", loc, nil, io.MultiReader(strings.NewReader(string(data[:limit-300+1]))))
		if r.StatusCode != 413 || !strings.HasPrefix(r.message(), "blobs may be at most 1000 bytes;") {
			t.Errorf("chunked body past the limit: %d %s; want 413", r.StatusCode, r.body)
		}
	})

	t.Run("declared size against the limit", func(t *testing.T) {
		loc := startUpload(c, "u/e")
		c.must(c.do("PATCH", loc, nil, data[:100]), 202, "first chunk")
		r := c.do("PATCH", loc, nil, data[:limit-100+1])
		if r.StatusCode != 413 || !strings.HasPrefix(r.message(), "the blob is 1001 bytes; blobs may be at most 1000 bytes;") {
			t.Errorf("a chunk that would pass the limit: %d %s; want 413 naming 1001 bytes", r.StatusCode, r.body)
		}
		c.must(c.do("PATCH", loc, nil, data[100:limit]), 202, "a chunk that reaches the limit exactly")
		c.must(c.do("PUT", loc+"?digest="+string(oci.FromBytes(oci.SHA256, data)), nil, nil), 201, "finish at the limit")
	})

	t.Run("upload data lost", func(t *testing.T) {
		for _, how := range []string{"deleted", "truncated"} {
			loc := startUpload(c, "u/f")
			r := c.must(c.do("PATCH", loc, nil, data[:100]), 202, "first chunk")
			id := r.Header.Get("Docker-Upload-UUID")
			switch how {
			case "deleted":
				if err := s.Blobs().Delete(t.Context(), id); err != nil {
					t.Fatal(err)
				}
			case "truncated":
				p := findFile(t, s.Dir, id)
				if p == "" {
					t.Log("the storage is not the filesystem: the upload data cannot be cut here")
					continue
				}
				if err := os.Truncate(p, 10); err != nil {
					t.Fatal(err)
				}
			}
			r = c.do("PATCH", loc, nil, data[100:200])
			if r.StatusCode != 404 || r.code() != "BLOB_UPLOAD_UNKNOWN" || !strings.Contains(r.message(), "lost its data") {
				t.Errorf("%s: PATCH: %d %s; want 404 BLOB_UPLOAD_UNKNOWN", how, r.StatusCode, r.body)
			}
			if r := c.do("GET", loc, nil, nil); r.StatusCode != 404 {
				t.Errorf("%s: the upload session outlived its data: %d", how, r.StatusCode)
			}
		}
	})

	t.Run("monolithic", func(t *testing.T) {
		d := oci.FromBytes(oci.SHA256, data)
		c.must(c.do("POST", "/v2/u/g/blobs/uploads/?digest="+string(d), nil, data), 201, "a blob at the limit")
		over := append(append([]byte{}, data...), 'x')
		od := string(oci.FromBytes(oci.SHA256, over))
		r := c.do("POST", "/v2/u/g/blobs/uploads/?digest="+od, nil, over)
		if r.StatusCode != 413 || !strings.HasPrefix(r.message(), "the blob is 1001 bytes; blobs may be at most 1000 bytes;") {
			t.Errorf("declared past the limit: %d %s", r.StatusCode, r.body)
		}
		r = c.send("POST", "/v2/u/g/blobs/uploads/?digest="+od, nil, io.MultiReader(strings.NewReader(string(over))))
		if r.StatusCode != 413 || !strings.HasPrefix(r.message(), "blobs may be at most 1000 bytes;") {
			t.Errorf("chunked past the limit: %d %s", r.StatusCode, r.body)
		}
		small := data[:10]
		c.must(c.send("POST", "/v2/u/g/blobs/uploads/?digest="+string(oci.FromBytes(oci.SHA256, small)), nil, io.MultiReader(strings.NewReader(string(small)))), 201, "chunked monolithic")
		// A body that breaks off before its Content-Length.
		resp := rawRequest(t, s, "POST", "/v2/u/g/blobs/uploads/?digest="+string(oci.FromBytes(oci.SHA256, data[:100])), c, 100, data[:40])
		if resp.StatusCode != 400 || !strings.Contains(resp.body, "BLOB_UPLOAD_INVALID") || !strings.Contains(resp.body, "ended early") {
			t.Errorf("body cut short: %d %s; want 400 BLOB_UPLOAD_INVALID", resp.StatusCode, resp.body)
		}
	})
}

type rawReply struct {
	*http.Response
	body string
}

// rawRequest sends a request whose body stops after part though Content-Length says length,
// then closes its side of the connection and reads the answer.
func rawRequest(t *testing.T, s *registrytest.Server, method, path string, c *client, length int, part []byte) rawReply {
	t.Helper()
	conn, err := net.Dial("tcp", s.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req, err := http.NewRequest(method, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(c.user, c.pass)
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Length: %s\r\n\r\n", method, path, s.Host, req.Header.Get("Authorization"), strconv.Itoa(length))
	conn.Write(part)
	conn.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	return rawReply{resp, string(b)}
}

func TestMountWithAccessTokens(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	admin := newClient(t, s)
	data := randomBytes(t, 200)
	d := admin.pushBlob("src/app", data)
	mount := func(tok, repo, query string) reply {
		h := map[string]string{}
		if tok != "" {
			h["Authorization"] = "Bearer " + tok
		}
		c := admin
		if tok != "" {
			c = anonymous(t, s)
		}
		return c.do("POST", "/v2/"+repo+"/blobs/uploads/"+query, h, nil)
	}
	named := "?mount=" + string(d) + "&from=src/app"

	// Basic credentials are not a token: the policy alone decides, and allows.
	if r := mount("", "dst/basic", named); r.StatusCode != 201 {
		t.Errorf("mount with Basic credentials: %d %s", r.StatusCode, r.body)
	}

	pushOnly := accessToken(t, s, admin, "repository:dst/a:pull,push")
	r := mount(pushOnly, "dst/a", named)
	wantScope := `scope="repository:dst/a:pull,push repository:src/app:pull",error="insufficient_scope"`
	if r.StatusCode != 401 || r.code() != "UNAUTHORIZED" || !strings.Contains(r.Header.Get("WWW-Authenticate"), wantScope) {
		t.Errorf("token without pull on the source: %d %q %s; want 401 asking for %s", r.StatusCode, r.Header.Get("WWW-Authenticate"), r.body, wantScope)
	}
	if r := mount(pushOnly, "dst/a", "?mount="+string(d)+"&from=dst/a"); r.StatusCode != 202 {
		t.Errorf("mount from the target itself: %d %s, want 202", r.StatusCode, r.body)
	}
	// Mounting from the target itself asks for nothing more, even with push alone.
	if r := mount(accessToken(t, s, admin, "repository:dst/a:push"), "dst/a", "?mount="+string(d)+"&from=dst/a"); r.StatusCode != 202 {
		t.Errorf("push-only token, mount from the target itself: %d %s, want 202", r.StatusCode, r.body)
	}
	if r := mount(pushOnly, "dst/a", "?mount="+string(d)+"&from=Bad..Name"); r.StatusCode != 400 || r.code() != "NAME_INVALID" {
		t.Errorf("mount from a bad name: %d %s, want 400 NAME_INVALID", r.StatusCode, r.body)
	}
	// Without a named source the candidates are what the policy lets the caller pull.
	if r := mount(pushOnly, "dst/a", "?mount="+string(d)); r.StatusCode != 201 {
		t.Errorf("mount without a source: %d %s, want 201", r.StatusCode, r.body)
	}

	both := accessToken(t, s, admin, "repository:dst/b:pull,push", "repository:src/app:pull")
	if r := mount(both, "dst/b", named); r.StatusCode != 201 {
		t.Errorf("token with pull on the source: %d %s", r.StatusCode, r.body)
	}

	// A repository token whose scope map has no pull on the source: no 401 to ask for more,
	// as no token would get it; the mount falls back to an upload.
	tc := tokenClient(t, s, "dst-pusher", map[string][]string{"dst/*": {"content/read", "content/write"}})
	tok := accessToken(t, s, tc, "repository:dst/c:pull,push", "repository:src/app:pull")
	if r := mount(tok, "dst/c", named); r.StatusCode != 202 {
		t.Errorf("token the policy refuses pull on the source: %d %s, want 202", r.StatusCode, r.body)
	}
}

func TestListEdges(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newClient(t, s)
	_, subject := c.pushImage("l/app", "v1", []byte("base"))
	c.pushImage("l/other", "v1", []byte("other"))

	for _, path := range []string{"/v2/l/app/tags/list?n=0", "/v2/_catalog?n=0"} {
		r := c.must(c.do("GET", path, nil, nil), 200, path)
		if r.Header.Get("Link") != "" || !strings.Contains(string(r.body), "[]") {
			t.Errorf("%s: Link %q body %s; want an empty list and no next page", path, r.Header.Get("Link"), r.body)
		}
	}
	// A list that fits in one page has no next one.
	for _, path := range []string{"/v2/l/app/tags/list", "/v2/_catalog", "/v2/l/app/referrers/" + string(subject)} {
		if r := c.must(c.do("GET", path, nil, nil), 200, path); r.Header.Get("Link") != "" {
			t.Errorf("%s: the only page links to another: %s", path, r.Header.Get("Link"))
		}
	}
	// HEAD of a list answers its length.
	get := c.must(c.do("GET", "/v2/l/app/tags/list", nil, nil), 200, "tags")
	head := c.must(c.do("HEAD", "/v2/l/app/tags/list", nil, nil), 200, "HEAD tags")
	if head.ContentLength != int64(len(get.body)) || len(head.body) != 0 {
		t.Errorf("HEAD tags: Content-Length %d, %d bytes; GET has %d", head.ContentLength, len(head.body), len(get.body))
	}

	empty := c.pushBlob("l/app", []byte("{}"))
	for i := 0; i < 3; i++ {
		m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"artifactType":"application/vnd.example.sbom","config":{"mediaType":%q,"digest":%q,"size":2},"layers":[{"mediaType":%q,"digest":%q,"size":2}],"subject":{"mediaType":%q,"digest":%q,"size":1},"annotations":{"n":"%d"}}`,
			oci.MediaTypeImageManifest, oci.MediaTypeEmptyJSON, empty, oci.MediaTypeEmptyJSON, empty, oci.MediaTypeImageManifest, subject, i)
		c.must(c.do("PUT", "/v2/l/app/manifests/"+string(oci.FromBytes(oci.SHA256, []byte(m))), map[string]string{"Content-Type": oci.MediaTypeImageManifest}, []byte(m)), 201, "referrer")
	}
	base := "/v2/l/app/referrers/" + string(subject)
	if r := c.must(c.do("GET", base, nil, nil), 200, "referrers"); r.Header.Get("Link") != "" || !strings.Contains(string(r.body), `"n":"2"`) {
		t.Errorf("all referrers on one page: Link %q, body %s", r.Header.Get("Link"), r.body)
	}
	seen := 0
	for next, pages := base+"?n=2&artifactType=application/vnd.example.sbom", 0; next != ""; pages++ {
		if pages > 3 {
			t.Fatal("filtered referrers do not end")
		}
		r := c.must(c.do("GET", next, nil, nil), 200, "filtered page")
		var page struct{ Manifests []oci.Descriptor }
		decode(t, r.body, &page)
		seen += len(page.Manifests)
		if r.Header.Get("OCI-Filters-Applied") != "artifactType" {
			t.Errorf("page %d: the filter is not applied", pages)
		}
		link := r.Header.Get("Link")
		if link != "" && !strings.Contains(link, "artifactType=application%2Fvnd.example.sbom") {
			t.Errorf("page %d: the next page loses the filter: %s", pages, link)
		}
		next = linkTarget(link)
	}
	if seen != 3 {
		t.Errorf("filtered pages gave %d referrers, want 3", seen)
	}
	if r := c.do("GET", base+"?artifactType="+strings.Repeat("a", 255), nil, nil); r.StatusCode != 200 {
		t.Errorf("a 255-character artifactType: %d", r.StatusCode)
	}
	if r := c.do("GET", base+"?artifactType="+strings.Repeat("a", 256), nil, nil); r.StatusCode != 400 {
		t.Errorf("a 256-character artifactType: %d, want 400", r.StatusCode)
	}
}

// A caller without catalog rights sees the repositories it may pull, also when they come after
// the first batch the server reads.
func TestFilteredCatalogPastOneBatch(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newClient(t, s)
	blob := []byte("shared")
	const n = 510 // more than one batch of the filtered catalog (500)
	for i := 0; i < n; i++ {
		c.pushImage(fmt.Sprintf("many/r%03d", i), "v1", blob) // the catalog lists repositories holding a manifest
	}
	want := []string{"many/r505", "many/r509"}
	reader := tokenClient(t, s, "few-repos", map[string][]string{"many/r505": {"content/read"}, "many/r509": {"content/read"}})
	for _, path := range []string{"/v2/_catalog", "/v2/_catalog?n=1", "/v2/_catalog?n=1&last=many/r505"} {
		r := reader.must(reader.do("GET", path, nil, nil), 200, path)
		var body struct{ Repositories []string }
		decode(t, r.body, &body)
		var exp []string
		switch path {
		case "/v2/_catalog":
			exp = want
		case "/v2/_catalog?n=1":
			exp = want[:1]
			if !strings.Contains(r.Header.Get("Link"), "last=many%2Fr505") {
				t.Errorf("%s: Link %q, want one after many/r505", path, r.Header.Get("Link"))
			}
		default:
			exp = want[1:]
		}
		if strings.Join(body.Repositories, ",") != strings.Join(exp, ",") {
			t.Errorf("%s: %v, want %v", path, body.Repositories, exp)
		}
	}
	// The admin's full catalog is large: its length is sent, not chunked.
	r := c.must(c.do("GET", "/v2/_catalog?n=1000", nil, nil), 200, "catalog")
	if r.ContentLength != int64(len(r.body)) || len(r.body) < 4096 {
		t.Errorf("catalog: Content-Length %d for %d bytes", r.ContentLength, len(r.body))
	}
}

func TestManifestPutLimits(t *testing.T) {
	const limit = 2048
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) { c.Limits.MaxManifestBytes = limit }})
	c := newClient(t, s)
	m, d := c.pushImage("m/app", "v1", []byte("layer"))
	put := func(path string, body io.Reader) reply {
		return c.send("PUT", path, map[string]string{"Content-Type": oci.MediaTypeImageManifest}, body)
	}
	// Padded with spaces (valid JSON) to a given size.
	padded := func(n int) []byte { return append(append([]byte{}, m...), strings.Repeat(" ", n-len(m))...) }
	for _, tc := range []struct {
		name    string
		body    []byte
		chunked bool
		status  int
	}{
		{"at the limit", padded(limit), false, 201},
		{"one byte over", padded(limit + 1), false, 413},
		{"chunked at the limit", padded(limit), true, 201},
		{"chunked one byte over", padded(limit + 1), true, 413},
	} {
		var body io.Reader = strings.NewReader(string(tc.body))
		if tc.chunked {
			body = io.MultiReader(body)
		}
		if r := put("/v2/m/app/manifests/x", body); r.StatusCode != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, r.StatusCode, r.body, tc.status)
		}
	}
	tags := func(n int) string {
		q := url.Values{}
		for i := 0; i < n; i++ {
			q.Add("tag", fmt.Sprintf("t%d", i))
		}
		return q.Encode()
	}
	if r := put("/v2/m/app/manifests/"+string(d)+"?"+tags(100), strings.NewReader(string(m))); r.StatusCode != 201 || len(r.Header.Values("OCI-Tag")) != 100 {
		t.Errorf("100 tag parameters: %d, %d OCI-Tag headers", r.StatusCode, len(r.Header.Values("OCI-Tag")))
	}
	if r := put("/v2/m/app/manifests/"+string(d)+"?"+tags(101), strings.NewReader(string(m))); r.StatusCode != 400 || r.code() != "MANIFEST_INVALID" {
		t.Errorf("101 tag parameters: %d %s, want 400 MANIFEST_INVALID", r.StatusCode, r.body)
	}
	if r := put("/v2/m/app/manifests/sha256:zz", strings.NewReader(string(m))); r.StatusCode != 400 || r.code() != "DIGEST_INVALID" {
		t.Errorf("PUT by a malformed digest: %d %s, want 400 DIGEST_INVALID", r.StatusCode, r.body)
	}
}

// A request with an accepted access token is not a sign-in (the token request was); a refused
// token and Basic credentials are.
func TestLoginEventsOfBearerRequests(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newClient(t, s)
	c.pushImage("ev/app", "v1", []byte("x"))
	tok := accessToken(t, s, c, "repository:ev/app:pull")
	anon := anonymous(t, s)
	anon.must(anon.do("GET", "/v2/ev/app/manifests/v1", map[string]string{"Authorization": "Bearer " + tok, "Accept": oci.MediaTypeImageManifest}, nil), 200, "pull with the token")
	if r := anon.do("GET", "/v2/ev/app/manifests/v1", map[string]string{"Authorization": "Bearer not-a-token"}, nil); r.StatusCode != 401 ||
		!strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("a bad token: %d %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	anon.must(anon.do("GET", "/v2/", nil, nil), 401, "anonymous /v2/")
	// Credentials of a scheme berth does not know are refused, not ignored.
	if r := anon.do("GET", "/v2/ev/app/tags/list", map[string]string{"Authorization": "Negotiate abc"}, nil); r.StatusCode != 401 {
		t.Errorf("Authorization: Negotiate: %d", r.StatusCode)
	}
	s.SettleEvents(t)
	logins, err := s.Meta().LoginEvents(t.Context(), store.EventFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var registry []string
	for _, e := range logins {
		if e.Operation == audit.OpRegistry {
			registry = append(registry, e.Result+" "+e.Reason)
		}
	}
	// pushImage's three Basic requests, then the refused token and the unknown scheme; nothing
	// for the accepted token or the anonymous request.
	want := "success ,success ,success ,failure invalid_token,failure invalid_token"
	slices.Reverse(registry)
	if got := strings.Join(registry, ","); got != want {
		t.Errorf("registry sign-ins: %s\nwant %s", got, want)
	}
}

// A token's grant bounds a request beside the policy; the refusal says which of the two refused.
func TestScopedRefusals(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newClient(t, s)
	c.pushImage("sc/a", "v1", []byte("a"))
	c.pushImage("sc/b", "v1", []byte("b"))
	anon := anonymous(t, s)
	tok := accessToken(t, s, c, "repository:sc/a:pull")
	r := anon.do("GET", "/v2/sc/b/tags/list", map[string]string{"Authorization": "Bearer " + tok}, nil)
	if r.StatusCode != 401 || r.code() != "DENIED" || !strings.Contains(r.message(), `the access token does not include pull on repository "sc/b"; ask /oauth2/token for scope repository:sc/b:pull`) {
		t.Errorf("outside the token's grant: %d %s", r.StatusCode, r.body)
	}
	tc := tokenClient(t, s, "only-sc-a", map[string][]string{"sc/a": {"content/read"}})
	tok = accessToken(t, s, tc, "repository:sc/a:pull", "repository:sc/b:pull")
	r = anon.do("GET", "/v2/sc/b/tags/list", map[string]string{"Authorization": "Bearer " + tok}, nil)
	if r.StatusCode != 401 || r.code() != "DENIED" || strings.Contains(r.message(), "the access token does not include") {
		t.Errorf("refused by the policy: %d %s; want the policy's reason", r.StatusCode, r.body)
	}
}

func TestUploadMetrics(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{})
	c := newClient(t, s)
	for i := range 2 {
		data := randomBytes(t, 100+i)
		loc := startUpload(c, "met/app")
		c.must(c.do("PUT", loc+"?digest="+string(oci.FromBytes(oci.SHA256, data)), nil, data), 201, "finish")
	}
	c.pushBlob("met/app", []byte("monolithic: no session")) // not an upload session
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(m), "\nberth_upload_duration_seconds_count 2\n") {
		t.Errorf("upload sessions in the metrics:\n%s", grepLines(string(m), "berth_upload_duration"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

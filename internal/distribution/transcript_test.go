package distribution_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/golden"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registrytest"
	"github.com/berth-registry/berth/internal/store"
)

// transcriptHeaders are the reply headers a transcript records: everything a client reads.
var transcriptHeaders = []string{"Accept-Ranges", "Allow", "Cache-Control", "Content-Length", "Content-Range", "Content-Type",
	"Docker-Content-Digest", "Docker-Distribution-Api-Version", "Docker-Upload-Uuid", "Etag", "Link", "Location",
	"Oci-Filters-Applied", "Oci-Subject", "Range", "Retry-After", "Www-Authenticate"}

// transcript records requests and their whole replies, with what changes from run to run
// (upload ids, correlation ids, the server's port) replaced by stable names.
type transcript struct {
	t       *testing.T
	s       *registrytest.Server
	b       strings.Builder
	uploads map[string]string // upload id → <upload N>
}

var (
	uploadID      = regexp.MustCompile(`/blobs/uploads/([A-Za-z0-9_-]{16,})`)
	correlationID = regexp.MustCompile(`correlation id: [A-Z0-9]{16}`)
)

func (tr *transcript) mask(s string) string {
	s = strings.ReplaceAll(s, tr.s.Host, "HOST")
	s = correlationID.ReplaceAllString(s, "correlation id: …")
	for id, name := range tr.uploads {
		s = strings.ReplaceAll(s, id, name)
	}
	return uploadID.ReplaceAllStringFunc(s, func(m string) string {
		return "/blobs/uploads/" + tr.upload(uploadID.FindStringSubmatch(m)[1])
	})
}

// upload names an upload id by the order it was first seen in.
func (tr *transcript) upload(id string) string {
	name, ok := tr.uploads[id]
	if !ok {
		name = fmt.Sprintf("<upload %d>", len(tr.uploads)+1)
		tr.uploads[id] = name
	}
	return name
}

// do sends one request as c and records it; it returns the reply for the scenario to follow.
func (tr *transcript) do(c *client, what, method, path string, hdr map[string]string, body []byte) reply {
	tr.t.Helper()
	r := c.do(method, path, hdr, body)
	fmt.Fprintf(&tr.b, "## %s\n%s %s", what, method, tr.mask(strings.TrimPrefix(path, c.base)))
	keys := make([]string, 0, len(hdr))
	for k := range hdr {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&tr.b, " [%s: %s]", k, tr.mask(hdr[k]))
	}
	if body != nil {
		fmt.Fprintf(&tr.b, " (%d bytes)", len(body))
	}
	fmt.Fprintf(&tr.b, "\n→ %d\n", r.StatusCode)
	for _, h := range transcriptHeaders {
		v := r.Header.Values(h)
		switch {
		case len(v) == 0:
		case h == "Docker-Upload-Uuid":
			fmt.Fprintf(&tr.b, "  %s: %s\n", h, tr.upload(v[0]))
		default:
			fmt.Fprintf(&tr.b, "  %s: %s\n", h, tr.mask(strings.Join(v, ", ")))
		}
	}
	switch {
	case len(r.body) == 0:
	case bytes.HasPrefix(r.body, []byte("{")) && len(r.body) < 4096:
		fmt.Fprintf(&tr.b, "  %s\n", tr.mask(strings.TrimSpace(string(r.body))))
	default:
		sum := sha256.Sum256(r.body)
		fmt.Fprintf(&tr.b, "  (%d bytes, sha256 %s)\n", len(r.body), hex.EncodeToString(sum[:])[:16])
	}
	return r
}

// TestTranscript runs a scenario through every /v2/ route — uploads of each kind, mounts,
// manifests, tags, referrers, the catalog, ranges, deletes, limits and refusals — and compares
// every reply (status, the headers clients read, the body) with testdata/transcript.golden.
// `go test ./internal/distribution -run Transcript -update` rewrites it; review its diff.
func TestTranscript(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) {
		c.Limits.MaxManifestBytes = 2048
		c.Limits.MaxBlobBytes = 1 << 16
		c.Limits.MaxUploads = 6
		c.Limits.MaxPageSize = 3
	}})
	tr := &transcript{t: t, s: s, uploads: map[string]string{}}
	admin := newClient(t, s)
	anon := anonymous(t, s)
	reader := tokenClient(t, s, "reader", map[string][]string{"t/a": {"content/read"}, "t/b": {"content/read", "metadata/read"}})
	ct := func(mt string) map[string]string { return map[string]string{"Content-Type": mt} }

	tr.do(anon, "base, anonymous", "GET", "/v2/", nil, nil)
	tr.do(admin, "base, admin", "GET", "/v2/", nil, nil)
	tr.do(admin, "base, HEAD", "HEAD", "/v2/", nil, nil)

	// Blobs: monolithic, then a POST-PUT pair, a chunked upload, a streamed one.
	layer := bytes.Repeat([]byte("layer-bytes "), 100) // 1200 bytes
	ld := oci.FromBytes(oci.SHA256, layer)
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	cd := oci.FromBytes(oci.SHA256, cfg)
	tr.do(admin, "monolithic upload", "POST", "/v2/t/a/blobs/uploads/?digest="+string(cd), ct("application/octet-stream"), cfg)
	tr.do(admin, "monolithic upload of content that does not match", "POST", "/v2/t/a/blobs/uploads/?digest="+string(ld), nil, cfg)
	loc := tr.do(admin, "start upload", "POST", "/v2/t/a/blobs/uploads/", nil, nil).Header.Get("Location")
	tr.do(admin, "upload status, empty", "GET", loc, nil, nil)
	tr.do(admin, "first chunk", "PATCH", loc, map[string]string{"Content-Range": "0-499", "Content-Type": "application/octet-stream"}, layer[:500])
	tr.do(admin, "upload status after a chunk", "GET", loc, nil, nil)
	tr.do(admin, "chunk out of order", "PATCH", loc, map[string]string{"Content-Range": "600-699"}, layer[600:700])
	tr.do(admin, "chunk overlapping", "PATCH", loc, map[string]string{"Content-Range": "400-599"}, layer[400:600])
	tr.do(admin, "chunk length differs from its range", "PATCH", loc, map[string]string{"Content-Range": "500-599"}, layer[500:650])
	tr.do(admin, "second chunk", "PATCH", loc, map[string]string{"Content-Range": "500-999"}, layer[500:1000])
	tr.do(admin, "finish without a digest", "PUT", loc, nil, layer[1000:])
	tr.do(admin, "finish with a wrong digest", "PUT", loc+"?digest="+string(cd), nil, nil)
	loc = tr.do(admin, "start upload again", "POST", "/v2/t/a/blobs/uploads/", nil, nil).Header.Get("Location")
	tr.do(admin, "streamed chunk (no Content-Range)", "PATCH", loc, nil, layer[:700])
	tr.do(admin, "finish with the last bytes", "PUT", loc+"?digest="+string(ld), map[string]string{"Content-Range": "700-1199"}, layer[700:])
	tr.do(admin, "the finished session is gone", "GET", loc, nil, nil)
	loc = tr.do(admin, "upload to cancel", "POST", "/v2/t/a/blobs/uploads/", nil, nil).Header.Get("Location")
	tr.do(admin, "cancel", "DELETE", loc, nil, nil)
	tr.do(admin, "cancelled session", "PATCH", loc, nil, []byte("x"))
	tr.do(admin, "upload with a bad digest algorithm", "POST", "/v2/t/a/blobs/uploads/?digest=md5:abc", nil, []byte("x"))
	tr.do(admin, "blob larger than the limit, declared", "POST", "/v2/t/a/blobs/uploads/?digest="+string(ld), nil, make([]byte, 1<<16+1))
	sha512 := oci.FromBytes(oci.SHA512, []byte("sha512 content"))
	tr.do(admin, "monolithic sha512 upload", "POST", "/v2/t/a/blobs/uploads/?digest="+string(sha512), nil, []byte("sha512 content"))

	// Blob reads.
	tr.do(admin, "blob HEAD", "HEAD", "/v2/t/a/blobs/"+string(ld), nil, nil)
	tr.do(admin, "blob GET", "GET", "/v2/t/a/blobs/"+string(ld), nil, nil)
	for _, rg := range []string{"bytes=0-9", "bytes=1190-", "bytes=-10", "bytes=1195-5000", "bytes=0-0", "bytes=1199-1199",
		"bytes=1200-", "bytes=-0", "bytes=5-2", "bytes=x-1", "bytes=0-x", "bytes=-x", "bytes=0-1,3-4", "lines=0-1", "bytes=10"} {
		tr.do(admin, "blob range "+rg, "GET", "/v2/t/a/blobs/"+string(ld), map[string]string{"Range": rg}, nil)
	}
	tr.do(admin, "blob of another repository", "GET", "/v2/t/b/blobs/"+string(ld), nil, nil)
	tr.do(admin, "blob with a malformed digest", "GET", "/v2/t/a/blobs/sha256:xyz", nil, nil)
	tr.do(reader, "blob HEAD as a reader", "HEAD", "/v2/t/a/blobs/"+string(ld), nil, nil)
	tr.do(anon, "blob GET anonymous", "GET", "/v2/t/a/blobs/"+string(ld), nil, nil)

	// Mounts.
	tr.do(admin, "mount from a named repository", "POST", "/v2/t/b/blobs/uploads/?mount="+string(ld)+"&from=t/a", nil, nil)
	tr.do(admin, "mount of a blob the source lacks", "POST", "/v2/t/b/blobs/uploads/?mount="+string(oci.FromBytes(oci.SHA256, []byte("no")))+"&from=t/a", nil, nil)
	tr.do(admin, "mount from any repository", "POST", "/v2/t/c/blobs/uploads/?mount="+string(cd), nil, nil)
	tr.do(admin, "mount from itself", "POST", "/v2/t/a/blobs/uploads/?mount="+string(cd)+"&from=t/a", nil, nil)
	tr.do(reader, "mount by a reader", "POST", "/v2/t/b/blobs/uploads/?mount="+string(cd)+"&from=t/a", nil, nil)

	// Manifests.
	manifest := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		oci.MediaTypeImageManifest, cd, len(cfg), ld, len(layer)))
	md := oci.FromBytes(oci.SHA256, manifest)
	tr.do(admin, "manifest PUT by tag", "PUT", "/v2/t/a/manifests/v1", ct(oci.MediaTypeImageManifest), manifest)
	tr.do(admin, "manifest PUT by digest", "PUT", "/v2/t/a/manifests/"+string(md), ct(oci.MediaTypeImageManifest), manifest)
	tr.do(admin, "manifest PUT by a digest it does not have", "PUT", "/v2/t/a/manifests/"+string(cd), ct(oci.MediaTypeImageManifest), manifest)
	tr.do(admin, "manifest PUT without its blobs", "PUT", "/v2/t/c/manifests/v1", ct(oci.MediaTypeImageManifest), manifest)
	tr.do(admin, "manifest PUT, content type differs", "PUT", "/v2/t/a/manifests/v2", ct(oci.MediaTypeImageIndex), manifest)
	tr.do(admin, "manifest PUT, not JSON", "PUT", "/v2/t/a/manifests/v3", ct(oci.MediaTypeImageManifest), []byte("not json"))
	tr.do(admin, "manifest PUT over the size limit", "PUT", "/v2/t/a/manifests/v4", ct(oci.MediaTypeImageManifest), bytes.Repeat([]byte(" "), 2049))
	tr.do(admin, "manifest PUT at the size limit", "PUT", "/v2/t/a/manifests/v4", ct(oci.MediaTypeImageManifest), append(manifest, bytes.Repeat([]byte(" "), 2048-len(manifest))...))
	tr.do(admin, "manifest PUT, bad tag", "PUT", "/v2/t/a/manifests/-bad", ct(oci.MediaTypeImageManifest), manifest)
	tr.do(admin, "manifest GET by tag", "GET", "/v2/t/a/manifests/v1", map[string]string{"Accept": oci.MediaTypeImageManifest}, nil)
	tr.do(admin, "manifest HEAD by digest", "HEAD", "/v2/t/a/manifests/"+string(md), nil, nil)
	tr.do(admin, "manifest GET, unknown tag", "GET", "/v2/t/a/manifests/nope", nil, nil)
	tr.do(admin, "manifest GET, unknown digest", "GET", "/v2/t/a/manifests/"+string(cd), nil, nil)
	tr.do(reader, "manifest GET as a reader", "GET", "/v2/t/a/manifests/v1", nil, nil)
	tr.do(reader, "manifest PUT as a reader", "PUT", "/v2/t/a/manifests/v9", ct(oci.MediaTypeImageManifest), manifest)
	tr.do(anon, "manifest GET anonymous", "GET", "/v2/t/a/manifests/v1", nil, nil)

	// Referrers: an artifact whose subject is the manifest, and one filtered away.
	empty := []byte("{}")
	ed := admin.pushBlob("t/a", empty)
	for i, at := range []string{"application/vnd.example.sig", "application/vnd.example.sbom"} {
		art := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"artifactType":%q,"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2}],"subject":{"mediaType":%q,"digest":%q,"size":%d},"annotations":{"n":"%d"}}`,
			oci.MediaTypeImageManifest, at, ed, ed, oci.MediaTypeImageManifest, md, len(manifest), i))
		tr.do(admin, "artifact PUT with a subject ("+at+")", "PUT", "/v2/t/a/manifests/"+string(oci.FromBytes(oci.SHA256, art)), ct(oci.MediaTypeImageManifest), art)
	}
	tr.do(admin, "referrers", "GET", "/v2/t/a/referrers/"+string(md), nil, nil)
	tr.do(admin, "referrers filtered", "GET", "/v2/t/a/referrers/"+string(md)+"?artifactType=application/vnd.example.sbom", nil, nil)
	tr.do(admin, "referrers of a manifest without any", "GET", "/v2/t/a/referrers/"+string(cd), nil, nil)
	tr.do(admin, "referrers with a bad digest", "GET", "/v2/t/a/referrers/sha256:1", nil, nil)

	// Tags and the catalog, paged (at most 3 a page).
	for _, tag := range []string{"v5", "v6", "a0", "latest"} {
		tr.do(admin, "tag "+tag, "PUT", "/v2/t/a/manifests/"+tag, ct(oci.MediaTypeImageManifest), manifest)
	}
	tr.do(admin, "tags", "GET", "/v2/t/a/tags/list", nil, nil)
	tr.do(admin, "tags n=2", "GET", "/v2/t/a/tags/list?n=2", nil, nil)
	tr.do(admin, "tags n=2 after v1", "GET", "/v2/t/a/tags/list?n=2&last=v1", nil, nil)
	tr.do(admin, "tags n=0", "GET", "/v2/t/a/tags/list?n=0", nil, nil)
	tr.do(admin, "tags n=100 (over the page limit)", "GET", "/v2/t/a/tags/list?n=100", nil, nil)
	tr.do(admin, "tags n=-1", "GET", "/v2/t/a/tags/list?n=-1", nil, nil)
	tr.do(admin, "tags of an unknown repository", "GET", "/v2/t/zzz/tags/list", nil, nil)
	tr.do(reader, "tags as a reader", "GET", "/v2/t/a/tags/list", nil, nil)
	admin.pushImage("t/b", "v1", layer)
	admin.pushImage("u/x", "v1", layer)
	tr.do(admin, "catalog", "GET", "/v2/_catalog", nil, nil)
	tr.do(admin, "catalog n=1 after t/a", "GET", "/v2/_catalog?n=1&last=t/a", nil, nil)
	tr.do(admin, "catalog n=2", "GET", "/v2/_catalog?n=2", nil, nil)
	tr.do(admin, "catalog n=abc", "GET", "/v2/_catalog?n=abc", nil, nil)
	tr.do(reader, "catalog as a reader (filtered)", "GET", "/v2/_catalog", nil, nil)
	tr.do(reader, "catalog as a reader, n=1", "GET", "/v2/_catalog?n=1", nil, nil)
	tr.do(anon, "catalog anonymous", "GET", "/v2/_catalog", nil, nil)

	// Deletes.
	tr.do(reader, "delete as a reader", "DELETE", "/v2/t/a/manifests/"+string(md), nil, nil)
	tr.do(admin, "untag", "DELETE", "/v2/t/a/manifests/a0", nil, nil)
	tr.do(admin, "untag again", "DELETE", "/v2/t/a/manifests/a0", nil, nil)
	tr.do(admin, "delete a manifest by digest", "DELETE", "/v2/t/b/manifests/"+string(md), nil, nil)
	tr.do(admin, "tags after its manifest went", "GET", "/v2/t/b/tags/list", nil, nil)
	tr.do(admin, "delete a blob", "DELETE", "/v2/t/c/blobs/"+string(cd), nil, nil)
	tr.do(admin, "delete it again", "DELETE", "/v2/t/c/blobs/"+string(cd), nil, nil)
	tr.do(admin, "delete an upload that does not exist", "DELETE", "/v2/t/a/blobs/uploads/AAAAAAAAAAAAAAAAAAAAAA", nil, nil)

	// Methods and routes that do not exist, and the upload limit.
	tr.do(admin, "POST a manifest", "POST", "/v2/t/a/manifests/v1", nil, nil)
	tr.do(admin, "PATCH a blob", "PATCH", "/v2/t/a/blobs/"+string(ld), nil, nil)
	tr.do(admin, "unknown route", "GET", "/v2/t/a/nothing", nil, nil)
	tr.do(admin, "name with upper case", "GET", "/v2/T/a/tags/list", nil, nil)
	for i := range 6 {
		tr.do(admin, fmt.Sprintf("open upload %d of the limit", i+1), "POST", "/v2/t/lim/blobs/uploads/", nil, nil)
	}

	tr.events()
	golden.Compare(t, "testdata/transcript.golden", tr.b.String())
}

// events appends the login and repository events the scenario left, oldest first, without
// what changes from run to run (times, durations, addresses, ids).
func (tr *transcript) events() {
	tr.t.Helper()
	ctx := tr.t.Context()
	meta := tr.s.Meta()
	tr.s.SettleEvents(tr.t)
	logins, err := meta.LoginEvents(ctx, store.EventFilter{Limit: 100000})
	if err != nil {
		tr.t.Fatal(err)
	}
	fmt.Fprintf(&tr.b, "# login events\n")
	for i := len(logins) - 1; i >= 0; i-- {
		e := logins[i]
		fmt.Fprintf(&tr.b, "%s %s %s(%s) %d %s %s %q granted=%v refused=%v token=%v\n", e.Operation, e.Registry, e.Identity, e.IdentityKind,
			e.Status, e.Result, e.Reason, tr.mask(e.Message), e.Granted, e.Refused, e.TokenID != "")
	}
	repos, err := meta.RepositoryEvents(ctx, store.EventFilter{Limit: 100000})
	if err != nil {
		tr.t.Fatal(err)
	}
	fmt.Fprintf(&tr.b, "# repository events\n")
	for i := len(repos) - 1; i >= 0; i-- {
		e := repos[i]
		fmt.Fprintf(&tr.b, "%s %s %s:%s@%s %s %s %d by %s(%s) %d %s %s %q\n", e.Operation, e.Registry, e.Repository, e.Tag, e.Digest, e.MediaType,
			e.ArtifactType, e.Size, e.Identity, e.IdentityKind, e.Status, e.Result, e.Reason, tr.mask(e.Message))
	}
}

package distribution

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/blob"
	"github.com/berth-registry/berth/internal/blob/fsblob"
	"github.com/berth-registry/berth/internal/httperr"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/policy"
	"github.com/berth-registry/berth/internal/store"
)

// storageFixture is a handler's parts without a server: a SQLite store with registry "r", and
// filesystem blob storage, in a folder of the test's own.
func storageFixture(t *testing.T) (*store.Store, blob.Store, store.Registry) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, "berth.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fs, err := fsblob.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := st.CreateRegistry(context.Background(), "r", "")
	if err != nil {
		t.Fatal(err)
	}
	return st, fs, reg
}

// redirecting is a store that hands out URLs for its blobs, as S3 does with presigned ones.
type redirecting struct {
	blob.Store
	url string
	err error
}

func (r redirecting) URL(ctx context.Context, d oci.Digest, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", errors.New("no lifetime")
	}
	return r.url, r.err
}

// TestBlobRedirect: a blob GET on storage that serves its own bytes is a 307 to the storage's
// URL; HEAD is still answered by berth; storage that gives no URL (or fails) is not skipped.
func TestBlobRedirect(t *testing.T) {
	ctx := context.Background()
	st, fs, reg := storageFixture(t)
	data := []byte("redirected bytes")
	d := oci.FromBytes(oci.SHA256, data)
	if _, err := blob.Put(ctx, fs, "u1", d, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := st.LinkBlob(ctx, reg.ID, "app", d, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	req := &request{route: route{kind: kindBlob, name: "app", ref: string(d)}, reg: reg}
	for _, tc := range []struct {
		name     string
		store    blob.Store
		method   string
		status   int
		location string
	}{
		{"redirect", redirecting{Store: fs, url: "https://s3.example/b?sig=1"}, "GET", 307, "https://s3.example/b?sig=1"},
		{"HEAD stays", redirecting{Store: fs, url: "https://s3.example/b?sig=1"}, "HEAD", 200, ""},
		{"no URL", redirecting{Store: fs}, "GET", 200, ""},
		{"URL fails", redirecting{Store: fs, err: errors.New("presign failed")}, "GET", 0, ""},
	} {
		h := New(Deps{Blobs: tc.store, Meta: st, Log: slog.New(slog.DiscardHandler)})
		w := httptest.NewRecorder()
		err := h.getBlob(w, httptest.NewRequest(tc.method, "/v2/app/blobs/"+string(d), nil), req)
		if tc.status == 0 {
			if err == nil {
				t.Errorf("%s: no error", tc.name)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if w.Code != tc.status || w.Header().Get("Location") != tc.location {
			t.Errorf("%s: %d Location %q; want %d %q", tc.name, w.Code, w.Header().Get("Location"), tc.status, tc.location)
		}
		if tc.status == 307 && (w.Header().Get("Accept-Ranges") != "" || w.Body.Len() != 0 || w.Header().Get("Docker-Content-Digest") != string(d)) {
			t.Errorf("%s: Accept-Ranges %q, %d body bytes, digest %q", tc.name, w.Header().Get("Accept-Ranges"), w.Body.Len(), w.Header().Get("Docker-Content-Digest"))
		}
		if tc.status == 200 && tc.method == "GET" && w.Body.String() != string(data) {
			t.Errorf("%s: body %q", tc.name, w.Body.String())
		}
	}
}

// vanishing is storage whose Stat answers from a script: each call takes the next entry (nil
// asks the real store), as when garbage collection deletes data between two steps of a push.
type vanishing struct {
	blob.Store
	script *[]error
}

func (v vanishing) Stat(ctx context.Context, d oci.Digest) (blob.Info, error) {
	if len(*v.script) > 0 {
		err := (*v.script)[0]
		*v.script = (*v.script)[1:]
		if err != nil {
			return blob.Info{}, err
		}
	}
	return v.Store.Stat(ctx, d)
}

type allowAll struct{}

func (allowAll) Decide(context.Context, access.Principal, policy.Action, policy.Resource) policy.Decision {
	return policy.Decision{Allow: true}
}
func (allowAll) DecideVisible(context.Context, access.Principal, policy.Resource) policy.Decision {
	return policy.Decision{Allow: true}
}
func (allowAll) DecideMount(context.Context, access.Principal, policy.Resource, bool) policy.Decision {
	return policy.Decision{Allow: true}
}

// TestPushMeetsCollection: data that disappears from storage while a push links it (garbage
// collection deleting it) is not left linked: the push answers 503 with Retry-After so that
// the client sends it again, a mount falls back to an upload, and other storage errors are
// errors.
func TestPushMeetsCollection(t *testing.T) {
	ctx := context.Background()
	st, fs, reg := storageFixture(t)
	var script []error
	h := New(Deps{Blobs: vanishing{Store: fs, script: &script}, Meta: st, Policy: allowAll{}, Log: slog.New(slog.DiscardHandler)})
	disk := errors.New("disk on fire")
	data := []byte("layer")
	d := oci.FromBytes(oci.SHA256, data)
	req := func(name string) *request { return &request{route: route{name: name}, reg: reg} }
	linked := func(name string) bool {
		_, err := st.Blob(ctx, reg.ID, name, d)
		return err == nil
	}

	// A monolithic push whose data goes during the link.
	script = []error{blob.ErrNotFound}
	w := httptest.NewRecorder()
	err := h.monolithic(w, httptest.NewRequest("POST", "/v2/a/blobs/uploads/?digest="+string(d), bytes.NewReader(data)), req("a"), d)
	var he *httperr.Error
	if !errors.As(err, &he) || he.Status != 503 || he.Header.Get("Retry-After") != "1" || he.Reason != "gc_collecting" {
		t.Errorf("push during collection: %v, want 503 with Retry-After", err)
	}
	if linked("a") {
		t.Error("the blob stayed linked though its data went")
	}
	// Storage that fails otherwise: the error, not a retry.
	script = []error{disk}
	err = h.monolithic(httptest.NewRecorder(), httptest.NewRequest("POST", "/", bytes.NewReader(data)), req("a"), d)
	if !errors.Is(err, disk) || errors.As(err, &he) {
		t.Errorf("storage failing at the link: %v, want the storage's error", err)
	}
	// Pushed properly, then mounted while collection takes it.
	script = nil
	if err := h.monolithic(httptest.NewRecorder(), httptest.NewRequest("POST", "/", bytes.NewReader(data)), req("src"), d); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		script []error
		ok     bool
		err    error
	}{
		{"data gone before the mount", []error{blob.ErrNotFound}, false, nil},
		{"data gone during the link", []error{nil, blob.ErrNotFound}, false, nil},
		{"storage failing", []error{disk}, false, disk},
		{"storage failing at the link", []error{nil, disk}, false, disk},
		{"nothing gone", nil, true, nil},
	} {
		script = tc.script
		ok, err := h.mount(ctx, req("dst"), d, "src", true)
		if ok != tc.ok || !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Errorf("mount, %s: %v, %v; want %v, %v", tc.name, ok, err, tc.ok, tc.err)
		}
		if tc.err == nil && linked("dst") != tc.ok { // after a storage error, whether it is linked is not promised
			t.Errorf("mount, %s: linked %v", tc.name, linked("dst"))
		}
	}

	// A manifest whose data goes as it is recorded.
	m := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"` + string(d) + `","size":5},"layers":[]}`)
	script = []error{blob.ErrNotFound}
	r := httptest.NewRequest("PUT", "/v2/src/manifests/v1", bytes.NewReader(m))
	r.Header.Set("Content-Type", oci.MediaTypeImageManifest)
	err = h.putManifest(httptest.NewRecorder(), r, &request{route: route{kind: kindManifest, name: "src", ref: "v1"}, reg: reg})
	if !errors.As(err, &he) || he.Status != 503 {
		t.Errorf("manifest push during collection: %v, want 503", err)
	}
	if _, err := st.Tag(ctx, reg.ID, "src", "v1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the tag of a manifest whose data went: %v", err)
	}
}

// brokenWrites is storage whose upload writers fail after a few bytes (a full disk).
type brokenWrites struct{ blob.Store }

func (b brokenWrites) Resume(ctx context.Context, id string, offset int64) (blob.Writer, error) {
	w, err := b.Store.Resume(ctx, id, offset)
	if err != nil {
		return nil, err
	}
	return &brokenWriter{Writer: w, left: 3}, nil
}

type brokenWriter struct {
	blob.Writer
	left int
}

func (w *brokenWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		n, _ := w.Writer.Write(p[:w.left])
		w.left = 0
		return n, errors.New("no space left on device")
	}
	w.left -= len(p)
	return w.Writer.Write(p)
}

// TestUploadRaces: what a chunk meets besides the client — storage that stops taking bytes, an
// upload cancelled or moved on by another request (another replica) while the chunk arrived.
// None of them checkpoints more than what is stored.
func TestUploadRaces(t *testing.T) {
	ctx := context.Background()
	st, fs, reg := storageFixture(t)
	req := &request{route: route{kind: kindUpload, name: "app"}, reg: reg}
	start := func(h *Handler) store.Upload {
		t.Helper()
		w := httptest.NewRecorder()
		if err := h.startUpload(w, httptest.NewRequest("POST", "/v2/app/blobs/uploads/", nil), req); err != nil {
			t.Fatal(err)
		}
		u, err := st.Upload(ctx, reg.ID, "app", w.Header().Get("Docker-Upload-UUID"))
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	size := func(u store.Upload) int64 {
		t.Helper()
		got, err := st.Upload(ctx, reg.ID, "app", u.ID)
		if err != nil {
			return -1
		}
		return got.Size
	}
	patch := func(h *Handler, u *store.Upload, body string) error {
		_, err := h.appendBody(ctx, httptest.NewRequest("PATCH", "/", strings.NewReader(body)), req, u, nil)
		return err
	}
	log := slog.New(slog.DiscardHandler)

	// Storage refuses bytes: nothing is checkpointed, the upload stays where it was.
	broken := New(Deps{Blobs: brokenWrites{fs}, Meta: st, Log: log})
	u := start(broken)
	if err := patch(broken, &u, "0123456789"); !errors.Is(err, errStorageWrite) {
		t.Errorf("a chunk storage could not write: %v", err)
	}
	if got := size(u); got != 0 {
		t.Errorf("after a failed write the upload holds %d bytes, want 0", got)
	}
	h := New(Deps{Blobs: fs, Meta: st, Log: log})
	// The upload goes on as if the failed chunk had never come: its hash did not take it.
	u, err := st.Upload(ctx, reg.ID, "app", u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := patch(h, &u, "0123456789"); err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	fin := httptest.NewRequest("PUT", "/?digest="+string(oci.FromBytes(oci.SHA256, []byte("0123456789"))), nil)
	if err := h.finishUpload(w, fin, &request{route: route{kind: kindUpload, name: "app", ref: u.ID}, reg: reg}); err != nil || w.Code != 201 {
		t.Errorf("finishing after a failed write: %v %d", err, w.Code)
	}

	// Another request moved the upload on: this one's checkpoint is refused with 416.
	u = start(h)
	stale := u
	if err := patch(h, &u, "abc"); err != nil {
		t.Fatal(err)
	}
	var he *httperr.Error
	if err := patch(h, &stale, "xyz"); !errors.As(err, &he) || he.Status != 416 || he.Header.Get("Range") != "0-0" {
		t.Errorf("a chunk from a stale view of the upload: %v", err)
	}
	if got := size(u); got != 3 {
		t.Errorf("the upload holds %d bytes, want the 3 of the first chunk", got)
	}
	// Cancelled meanwhile: 404, nothing recorded.
	u = start(h)
	if err := st.DeleteUpload(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := patch(h, &u, "abc"); !errors.As(err, &he) || he.Code != oci.CodeBlobUploadUnknown {
		t.Errorf("a chunk for an upload cancelled meanwhile: %v", err)
	}
}

// counting is storage that counts the reads of blob data.
type counting struct {
	blob.Store
	opens *int
}

func (c counting) Open(ctx context.Context, d oci.Digest, offset int64) (io.ReadCloser, error) {
	*c.opens++
	return c.Store.Open(ctx, d, offset)
}

// TestHeadReadsNoData: HEAD of a manifest or a blob is answered from the metadata, without
// reading storage (a HEAD per image is how clients check what exists; on S3 a read costs); a
// GET of a manifest reads storage once per server, then its bytes are remembered.
func TestHeadReadsNoData(t *testing.T) {
	st, fs, reg := storageFixture(t)
	opens := 0
	h := New(Deps{Blobs: counting{fs, &opens}, Meta: st, Policy: allowAll{}, Log: slog.New(slog.DiscardHandler)})
	cfg := []byte("{}")
	d := oci.FromBytes(oci.SHA256, cfg)
	if err := h.monolithic(httptest.NewRecorder(), httptest.NewRequest("POST", "/", bytes.NewReader(cfg)), &request{route: route{name: "app"}, reg: reg}, d); err != nil {
		t.Fatal(err)
	}
	m := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"` + string(d) + `","size":2},"layers":[]}`)
	r := httptest.NewRequest("PUT", "/", bytes.NewReader(m))
	r.Header.Set("Content-Type", oci.MediaTypeImageManifest)
	if err := h.putManifest(httptest.NewRecorder(), r, &request{route: route{kind: kindManifest, name: "app", ref: "v1"}, reg: reg}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		serve func(w http.ResponseWriter, r *http.Request) error
		size  int
		reads int // by a GET
	}{
		{"manifest", func(w http.ResponseWriter, r *http.Request) error { // pushed here: remembered
			return h.getManifest(w, r, &request{route: route{kind: kindManifest, name: "app", ref: "v1"}, reg: reg})
		}, len(m), 0},
		{"blob", func(w http.ResponseWriter, r *http.Request) error {
			return h.getBlob(w, r, &request{route: route{kind: kindBlob, name: "app", ref: string(d)}, reg: reg})
		}, len(cfg), 1},
	} {
		opens = 0
		w := httptest.NewRecorder()
		if err := tc.serve(w, httptest.NewRequest("HEAD", "/", nil)); err != nil || w.Code != 200 || w.Header().Get("Content-Length") != strconv.Itoa(tc.size) {
			t.Errorf("HEAD %s: %v %d Content-Length %q", tc.name, err, w.Code, w.Header().Get("Content-Length"))
		}
		if opens != 0 {
			t.Errorf("HEAD %s read storage %d times", tc.name, opens)
		}
		w = httptest.NewRecorder()
		if err := tc.serve(w, httptest.NewRequest("GET", "/", nil)); err != nil || w.Body.Len() != tc.size || opens != tc.reads {
			t.Errorf("GET %s: %v, %d bytes, %d reads, want %d", tc.name, err, w.Body.Len(), opens, tc.reads)
		}
	}
	// Another server (another replica, or this one restarted) reads the manifest once.
	h2 := New(Deps{Blobs: counting{fs, &opens}, Meta: st, Policy: allowAll{}, Log: slog.New(slog.DiscardHandler)})
	opens = 0
	for i := range 2 {
		w := httptest.NewRecorder()
		err := h2.getManifest(w, httptest.NewRequest("GET", "/", nil), &request{route: route{kind: kindManifest, name: "app", ref: "v1"}, reg: reg})
		if err != nil || !bytes.Equal(w.Body.Bytes(), m) || opens != 1 {
			t.Errorf("GET %d of the manifest on another server: %v, %q, %d reads, want 1 in all", i+1, err, w.Body.Bytes(), opens)
		}
	}
}

// noReadBack is storage whose upload writers cannot read their data back.
type noReadBack struct{ blob.Store }

func (n noReadBack) Resume(ctx context.Context, id string, offset int64) (blob.Writer, error) {
	w, err := n.Store.Resume(ctx, id, offset)
	return struct{ blob.Writer }{w}, err
}

// TestDigestOfWithoutReadBack: an upload is checked against its running hash when the digest
// uses the same algorithm, so storage that cannot read an upload back still takes it; another
// algorithm needs the read-back and is refused clearly without it.
func TestDigestOfWithoutReadBack(t *testing.T) {
	st, fs, reg := storageFixture(t)
	h := New(Deps{Blobs: noReadBack{fs}, Meta: st, Log: slog.New(slog.DiscardHandler)})
	data := []byte("no read-back here")
	for _, tc := range []struct {
		alg    oci.Algorithm
		status int
	}{{oci.SHA256, 201}, {oci.SHA512, 400}} {
		w := httptest.NewRecorder()
		req := &request{route: route{kind: kindUploads, name: "app"}, reg: reg}
		if err := h.startUpload(w, httptest.NewRequest("POST", "/", nil), req); err != nil {
			t.Fatal(err)
		}
		req.route = route{kind: kindUpload, name: "app", ref: w.Header().Get("Docker-Upload-UUID")}
		w = httptest.NewRecorder()
		err := h.finishUpload(w, httptest.NewRequest("PUT", "/?digest="+string(oci.FromBytes(tc.alg, data)), bytes.NewReader(data)), req)
		status := w.Code
		var he *httperr.Error
		if errors.As(err, &he) {
			status = he.Status
		} else if err != nil {
			t.Fatalf("%s: %v", tc.alg, err)
		}
		if status != tc.status {
			t.Errorf("%s digest of a sha256 upload: %d %v, want %d", tc.alg, status, err, tc.status)
		}
	}
}

package distribution

import (
	"bytes"
	"context"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/blob"
	"github.com/berth-registry/berth/internal/httperr"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/policy"
	"github.com/berth-registry/berth/internal/store"
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// maxMountCandidates bounds the repositories tried for a mount with no source repository.
const maxMountCandidates = 32

func (h *Handler) startUpload(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	q := r.URL.Query()
	if m := q.Get("mount"); m != "" {
		d, err := oci.ParseDigest(m)
		if err != nil {
			return digestError(err)
		}
		if err := h.mountScope(r, req, q.Get("from")); err != nil {
			return err
		}
		mounted, err := h.mount(ctx, req, d, q.Get("from"), q.Has("from"))
		if err != nil {
			return err
		}
		if mounted {
			setLocation(w, req.name, "blobs", string(d))
			w.Header().Set("Docker-Content-Digest", string(d))
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusCreated)
			return nil
		}
		// Not mountable: fall back to a new upload session, as the spec asks.
	}
	if dq := q.Get("digest"); dq != "" {
		d, err := oci.ParseDigest(dq)
		if err != nil {
			return digestError(err)
		}
		return h.monolithic(w, r, req, d)
	}
	// One identity cannot take every upload slot of its registry: its own count is checked first.
	owner := uploadOwner(req.principal)
	n, err := h.meta.CountUploadsOf(ctx, req.reg.ID, owner)
	if err != nil {
		return err
	}
	if n >= h.limits.MaxUploadsPerIdentity {
		return httperr.New(oci.CodeTooManyRequests, "%s has %d uploads in progress in registry %s, the most one identity may have; finish or cancel some, or retry later",
			req.principal, n, req.reg.Name).WithHeader("Retry-After", "30").WithReason("identity_upload_limit")
	}
	if n, err = h.meta.CountUploads(ctx, req.reg.ID); err != nil {
		return err
	}
	if n >= h.limits.MaxUploadsPerRegistry {
		return httperr.New(oci.CodeTooManyRequests, "registry %s has %d uploads in progress, the most it allows; finish or cancel some, or retry later", req.reg.Name, n).
			WithHeader("Retry-After", "30").WithReason("registry_upload_limit")
	}
	id := newID()
	bw, err := h.blobs.Create(ctx, id)
	if err != nil {
		return fullStorage(err)
	}
	if err := bw.Close(); err != nil {
		return err
	}
	state, err := marshalHash(oci.SHA256.New())
	if err != nil {
		return err
	}
	if err := h.meta.CreateUpload(ctx, store.Upload{ID: id, RegistryID: req.reg.ID, Repository: req.name, HashAlgorithm: string(oci.SHA256), HashState: state, Owner: owner}); err != nil {
		return errors.Join(err, h.blobs.Delete(ctx, id))
	}
	uploadHeaders(w, req.name, id, 0)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// mountScope asks a client whose access token lacks pull on the mount source, though the policy
// would allow it, for a token that has it (401 insufficient_scope naming both repositories), as
// Docker's token protocol expects. Without the policy's leave, the mount just falls back.
func (h *Handler) mountScope(r *http.Request, req *request, from string) error {
	if from == "" || from == req.name || oci.ValidateName(from) != nil {
		return nil
	}
	src := policy.Resource{Registry: req.reg.Name, Type: policy.TypeRepository, Name: from}
	if h.policy.DecideMount(r.Context(), req.principal, src, true).Code != policy.CodeInsufficientScope {
		return nil
	}
	dst := policy.Resource{Registry: req.reg.Name, Type: policy.TypeRepository, Name: req.name}
	return httperr.New(oci.CodeUnauthorized, "insufficient_scope: mounting from %q needs a token with pull on it: ask /oauth2/token for scope repository:%s:pull", from, from).
		WithDetail([]map[string]string{{"Type": src.Type, "Name": from, "Action": string(policy.ActionPull)}}).
		WithHeader("WWW-Authenticate", challenge(r, dst, policy.ActionPush, "insufficient_scope"))
}

// mount links blob d into the repository from another of the same registry: the named one, or
// with no name, any holding it that the caller may pull from.
func (h *Handler) mount(ctx context.Context, req *request, d oci.Digest, from string, hasFrom bool) (bool, error) {
	var candidates []string
	if hasFrom {
		if err := oci.ValidateName(from); err != nil {
			return false, httperr.New(oci.CodeNameInvalid, "mount source: %v", err)
		}
		candidates = []string{from}
	} else {
		var err error
		if candidates, err = h.meta.ReposWithBlob(ctx, req.reg.ID, d, maxMountCandidates); err != nil {
			return false, err
		}
	}
	for _, src := range candidates {
		if src == req.name {
			continue
		}
		res := policy.Resource{Registry: req.reg.Name, Type: policy.TypeRepository, Name: src}
		if !h.policy.DecideMount(ctx, req.principal, res, hasFrom).Allow {
			continue // not readable by the caller: as if absent
		}
		size, err := h.meta.Blob(ctx, req.reg.ID, src, d)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		if _, err := h.blobs.Stat(ctx, d); err != nil {
			if errors.Is(err, blob.ErrNotFound) {
				continue
			}
			return false, err
		}
		if err := h.link(ctx, req, d, size); err != nil {
			if errors.Is(err, store.ErrBlobCollecting) {
				continue // being deleted: the client uploads it instead
			}
			return false, err
		}
		return true, nil
	}
	return false, nil
}

// monolithic stores the request body as blob d in one go (POST with ?digest=).
func (h *Handler) monolithic(w http.ResponseWriter, r *http.Request, req *request, d oci.Digest) error {
	ctx := r.Context()
	if r.ContentLength > h.limits.MaxBlobBytes {
		return blobTooLarge(r.ContentLength, h.limits.MaxBlobBytes)
	}
	body := &limitedBody{r: r.Body, left: h.limits.MaxBlobBytes}
	info, err := blob.Put(ctx, h.blobs, newID(), d, body)
	if storageFull(err) {
		return fullStorage(err) // Put removed what it had written
	}
	if err != nil {
		return h.uploadBodyError(err, body, d)
	}
	if r.ContentLength >= 0 && info.Size != r.ContentLength {
		return httperr.New(oci.CodeSizeInvalid, "received %d bytes but Content-Length says %d", info.Size, r.ContentLength)
	}
	if err := h.link(ctx, req, d, info.Size); err != nil {
		return collecting(err, d)
	}
	blobCreated(w, req.name, d)
	return nil
}

// link records blob d in the repository, then checks that its data is still stored. Garbage
// collection tombstones a digest before deleting it and links of tombstoned digests are refused;
// a deletion that finished just before the link is caught by the check (internal/gc).
func (h *Handler) link(ctx context.Context, req *request, d oci.Digest, size int64) error {
	if err := h.meta.LinkBlob(ctx, req.reg.ID, req.name, d, size); err != nil {
		return err
	}
	if _, err := h.blobs.Stat(ctx, d); errors.Is(err, blob.ErrNotFound) {
		if err := h.meta.UnlinkBlob(ctx, req.reg.ID, req.name, d); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return fmt.Errorf("%w: %s was deleted while it was linked", store.ErrBlobCollecting, d)
	} else if err != nil {
		return err
	}
	return nil
}

// collecting answers a push that met garbage collection: 503 with Retry-After, so that the
// client pushes the blob again.
func collecting(err error, d oci.Digest) error {
	if !errors.Is(err, store.ErrBlobCollecting) {
		return err
	}
	return httperr.New(oci.CodeUnknown, "blob %s was being garbage-collected while it was pushed: push it again", d).
		WithStatus(http.StatusServiceUnavailable).WithHeader("Retry-After", "1").WithReason("gc_collecting")
}

func (h *Handler) uploadBodyError(err error, body *limitedBody, d oci.Digest) error {
	var mm *blob.DigestMismatchError
	switch {
	case errors.As(err, &mm):
		return httperr.New(oci.CodeDigestInvalid, "the uploaded content's digest is %s, not %s", mm.Got, mm.Want).WithDetail(map[string]string{"digest": string(d)})
	case body.over:
		return blobTooLarge(-1, h.limits.MaxBlobBytes)
	case errors.As(body.readErr, new(*httperr.Error)): // the body stopped coming (the server's deadlines)
		return body.readErr
	case body.readErr != nil:
		return httperr.New(oci.CodeBlobUploadInvalid, "the request body ended early: %v", body.readErr).Wrap(err)
	}
	return err
}

func blobTooLarge(n, max int64) error {
	msg := fmt.Sprintf("blobs may be at most %d bytes", max)
	if n > 0 {
		msg = fmt.Sprintf("the blob is %d bytes; %s", n, msg)
	}
	return httperr.New(oci.CodeSizeInvalid, "%s", msg).WithStatus(http.StatusRequestEntityTooLarge)
}

func blobCreated(w http.ResponseWriter, name string, d oci.Digest) {
	setLocation(w, name, "blobs", string(d))
	w.Header().Set("Docker-Content-Digest", string(d))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

func uploadHeaders(w http.ResponseWriter, name, id string, size int64) {
	setLocation(w, name, "blobs", "uploads", id)
	w.Header().Set("Docker-Upload-UUID", id)
	w.Header().Set("Range", rangeHeader(size))
	w.Header().Set("Content-Length", "0")
}

// rangeHeader is the Range of an upload holding size bytes: "0-<last byte>", and "0-0" when
// empty, as Distribution and the clients written against it expect.
func rangeHeader(size int64) string {
	if size == 0 {
		return "0-0"
	}
	return "0-" + strconv.FormatInt(size-1, 10)
}

// loadUpload finds the upload session named by the request.
func (h *Handler) loadUpload(ctx context.Context, req *request) (store.Upload, error) {
	u, err := h.meta.Upload(ctx, req.reg.ID, req.name, req.ref)
	if errors.Is(err, store.ErrNotFound) {
		return store.Upload{}, httperr.New(oci.CodeBlobUploadUnknown, "upload %s is not in progress in repository %s (it was finished, cancelled or expired)", truncate(req.ref), req.name)
	}
	return u, err
}

func (h *Handler) uploadStatus(w http.ResponseWriter, r *http.Request, req *request) error {
	u, err := h.loadUpload(r.Context(), req)
	if err != nil {
		return err
	}
	uploadHeaders(w, req.name, u.ID, u.Size)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) cancelUpload(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	release, err := h.hold(ctx, req.ref)
	if err != nil {
		return err
	}
	defer release()
	u, err := h.loadUpload(ctx, req)
	if err != nil {
		return err
	}
	if err := h.meta.DeleteUpload(ctx, u.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := h.blobs.Delete(ctx, u.ID); err != nil {
		h.log.WarnContext(ctx, "cancelled upload's data not removed", "upload", u.ID, "err", err)
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) patchUpload(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	release, err := h.hold(ctx, req.ref)
	if err != nil {
		return err
	}
	defer release()
	u, err := h.loadUpload(ctx, req)
	if err != nil {
		return err
	}
	size, err := h.appendBody(ctx, r, req, &u, nil)
	if err != nil {
		return err
	}
	uploadHeaders(w, req.name, u.ID, size)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (h *Handler) finishUpload(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	dq := r.URL.Query().Get("digest")
	if dq == "" {
		return httperr.New(oci.CodeDigestInvalid, "the digest query parameter is required to finish an upload")
	}
	d, err := oci.ParseDigest(dq)
	if err != nil {
		return digestError(err)
	}
	release, err := h.hold(ctx, req.ref)
	if err != nil {
		return err
	}
	defer release()
	u, err := h.loadUpload(ctx, req)
	if err != nil {
		return err
	}
	var committed blob.Info
	commit := func(bw blob.Writer, hs hash.Hash) error {
		got, err := h.digestOf(ctx, bw, hs, oci.Algorithm(u.HashAlgorithm), d.Algorithm())
		if err != nil {
			return err
		}
		if got != d {
			return &blob.DigestMismatchError{Want: d, Got: got}
		}
		committed, err = bw.Commit(ctx, d)
		return err
	}
	if _, err := h.appendBody(ctx, r, req, &u, commit); err != nil {
		var mm *blob.DigestMismatchError
		if errors.As(err, &mm) {
			h.discardUpload(ctx, u.ID)
			return httperr.New(oci.CodeDigestInvalid, "the uploaded content's digest is %s, not %s", mm.Got, mm.Want).WithDetail(map[string]string{"digest": string(d)})
		}
		return err
	}
	if err := h.link(ctx, req, d, committed.Size); err != nil {
		return collecting(err, d)
	}
	if err := h.meta.DeleteUpload(ctx, u.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if h.onUpload != nil {
		h.onUpload(h.now().Sub(u.CreatedAt), committed.Size)
	}
	blobCreated(w, req.name, d)
	return nil
}

func (h *Handler) discardUpload(ctx context.Context, id string) {
	if err := h.meta.DeleteUpload(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		h.log.WarnContext(ctx, "upload session not removed", "upload", id, "err", err)
	}
	if err := h.blobs.Delete(ctx, id); err != nil {
		h.log.WarnContext(ctx, "upload data not removed", "upload", id, "err", err)
	}
}

// digestOf returns the upload's digest under want: from the running hash when it is the same
// algorithm, otherwise by reading the data back.
func (h *Handler) digestOf(ctx context.Context, bw blob.Writer, hs hash.Hash, have, want oci.Algorithm) (oci.Digest, error) {
	if have == want {
		return oci.NewDigest(want, hs), nil
	}
	rb, ok := bw.(blob.ReadBacker)
	if !ok {
		return "", httperr.New(oci.CodeUnsupported, "this storage cannot verify a %s digest for an upload hashed with %s; start the upload with ?digest= or use %s", want, have, have).WithStatus(http.StatusBadRequest)
	}
	rc, err := rb.ReadBack(ctx)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	hw := want.New()
	if _, err := copyBuffer(hw, rc); err != nil {
		return "", err
	}
	return oci.NewDigest(want, hw), nil
}

// appendBody writes the request body to the upload at its checkpoint, honouring Content-Range,
// then either checkpoints (commit nil) or hands the writer to commit. It returns the new size.
func (h *Handler) appendBody(ctx context.Context, r *http.Request, req *request, u *store.Upload, commit func(blob.Writer, hash.Hash) error) (int64, error) {
	outOfRange := func(format string, args ...any) error {
		e := httperr.New(oci.CodeRangeInvalid, format, args...).WithStatus(http.StatusRequestedRangeNotSatisfiable)
		e = e.WithHeader("Location", "/v2/"+req.name+"/blobs/uploads/"+u.ID).WithHeader("Range", rangeHeader(u.Size))
		return e.WithHeader("Docker-Upload-UUID", u.ID)
	}
	declared := int64(-1)
	if cr := r.Header.Get("Content-Range"); cr != "" {
		start, end, err := parseContentRange(cr)
		if err != nil {
			return 0, outOfRange("%v", err)
		}
		if start != u.Size {
			return 0, outOfRange("chunk starts at byte %d but the upload holds %d bytes: send the chunk that starts at %d", start, u.Size, u.Size)
		}
		declared = end - start + 1
		if r.ContentLength >= 0 && r.ContentLength != declared {
			return 0, httperr.New(oci.CodeSizeInvalid, "Content-Range %q covers %d bytes but Content-Length is %d", cr, declared, r.ContentLength)
		}
	} else if r.ContentLength >= 0 {
		declared = r.ContentLength
	}
	room := h.limits.MaxBlobBytes - u.Size
	if declared > room {
		return 0, blobTooLarge(u.Size+declared, h.limits.MaxBlobBytes)
	}
	hs := oci.Algorithm(u.HashAlgorithm).New()
	if err := unmarshalHash(hs, u.HashState); err != nil {
		return 0, fmt.Errorf("upload %s hash state: %w", u.ID, err)
	}
	bw, err := h.blobs.Resume(ctx, u.ID, u.Size)
	if errors.Is(err, blob.ErrUploadNotFound) || errors.Is(err, blob.ErrUploadShort) {
		h.discardUpload(ctx, u.ID)
		return 0, httperr.New(oci.CodeBlobUploadUnknown, "upload %s lost its data (the server restarted during it); start the upload again", u.ID).Wrap(err)
	}
	if err != nil {
		return 0, err
	}
	defer bw.Close()
	body := &limitedBody{r: r.Body, left: room}
	n, copyErr := copyHashing(bw, hs, body)
	if storageFull(copyErr) {
		// Nothing more fits: the upload is given up, and its data frees what it held.
		bw.Close()
		h.discardUpload(ctx, u.ID)
		return 0, fullStorage(copyErr)
	}
	if errors.Is(copyErr, errStorageWrite) {
		// The hash ran ahead of what was stored: no checkpoint; the upload stays where it was.
		return 0, copyErr
	}
	if copyErr == nil && declared >= 0 && n != declared {
		copyErr = fmt.Errorf("received %d of %d bytes", n, declared)
		body.readErr = copyErr
	}
	if n > 0 || commit == nil {
		// Checkpoint what arrived, even after an error, so a client can resume from there. The
		// first bytes of an upload may be stored where the blob of their digest belongs (S3:
		// the commit then copies nothing); the upload holds that blob until it ends.
		var held oci.Digest
		if ds, ok := bw.(blob.DigestSyncer); ok && u.Size == 0 && n > 0 {
			held = oci.NewDigest(oci.Algorithm(u.HashAlgorithm), hs)
			err = ds.SyncDigest(held)
		} else {
			err = bw.Sync()
		}
		if err != nil {
			return 0, err
		}
		state, err := marshalHash(hs)
		if err != nil {
			return 0, err
		}
		if err := h.meta.CheckpointUpload(ctx, u.ID, u.Size, u.Size+n, state, held); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return 0, httperr.New(oci.CodeBlobUploadUnknown, "upload %s was cancelled meanwhile", u.ID)
			}
			if errors.Is(err, store.ErrConflict) {
				return 0, outOfRange("another request wrote to upload %s meanwhile; ask for its status and continue from there", u.ID)
			}
			return 0, err
		}
		u.Size += n
		u.HashState = state
	}
	if copyErr != nil {
		return 0, h.uploadBodyError(copyErr, body, "")
	}
	if commit != nil {
		if err := commit(bw, hs); err != nil {
			return 0, err
		}
	}
	return u.Size, nil
}

// parseContentRange reads "start-end" (inclusive), also accepting a "bytes " or "bytes=" prefix
// and a "/total" suffix, which some clients send.
func parseContentRange(s string) (start, end int64, err error) {
	v := strings.TrimSpace(s)
	v = strings.TrimPrefix(strings.TrimPrefix(v, "bytes="), "bytes ")
	v, _, _ = strings.Cut(v, "/")
	a, b, ok := strings.Cut(v, "-")
	if ok {
		start, err = strconv.ParseInt(a, 10, 64)
		if err == nil {
			end, err = strconv.ParseInt(b, 10, 64)
		}
	}
	if !ok || err != nil || start < 0 || end < start {
		return 0, 0, fmt.Errorf("Content-Range %q is not of the form <start>-<end>", truncate(s))
	}
	return start, end, nil
}

// errStorageWrite marks a failed write to the blob store during copyHashing.
var errStorageWrite = errors.New("writing the upload")

// copyHashing copies src to dst and into h. Each chunk is hashed on another goroutine while it
// is written, so a push costs the longer of sha256 and the write rather than their sum. On a
// read error, what was read before it is both written and hashed; on a write error (wrapping
// errStorageWrite) h has seen more than dst holds.
func copyHashing(dst io.Writer, h hash.Hash, src io.Reader) (int64, error) {
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	chunks := make(chan []byte)
	hashed := make(chan struct{})
	defer close(chunks)
	go func() {
		for c := range chunks {
			h.Write(c)
			hashed <- struct{}{}
		}
	}()
	var n int64
	for {
		// Fill the buffer (fewer, larger chunks), keeping the reader's own error: an
		// io.ErrUnexpectedEOF from a cut-off body must not read as a clean end.
		nr := 0
		var rerr error
		for nr < len(*buf) && rerr == nil {
			var k int
			k, rerr = src.Read((*buf)[nr:])
			nr += k
		}
		if nr > 0 {
			c := (*buf)[:nr]
			chunks <- c
			nw, werr := dst.Write(c)
			<-hashed
			if werr == nil && nw != nr {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return n, fmt.Errorf("%w: %w", errStorageWrite, werr)
			}
			n += int64(nw)
		}
		switch {
		case rerr == io.EOF:
			return n, nil
		case rerr != nil:
			return n, rerr
		}
	}
}

// limitedBody reads a request body up to left bytes, noting whether the client sent more and
// whether the body broke off.
type limitedBody struct {
	r       io.Reader
	left    int64
	over    bool
	readErr error
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		if n, _ := b.r.Read(one[:]); n > 0 {
			b.over = true
			return 0, errors.New("body exceeds the blob size limit")
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if err != nil && err != io.EOF {
		b.readErr = err
	}
	return n, err
}

func marshalHash(h hash.Hash) ([]byte, error) {
	m, ok := h.(encoding.BinaryMarshaler)
	if !ok {
		return nil, errors.New("hash state cannot be saved")
	}
	return m.MarshalBinary()
}

func unmarshalHash(h hash.Hash, state []byte) error {
	m, ok := h.(encoding.BinaryUnmarshaler)
	if !ok {
		return errors.New("hash state cannot be restored")
	}
	return m.UnmarshalBinary(bytes.Clone(state))
}

// uploadOwner names the identity an upload session counts against.
func uploadOwner(p access.Principal) string {
	if p.IsAnonymous() {
		return "anonymous"
	}
	return string(p.Kind) + ":" + strconv.FormatInt(p.ID, 10)
}

// storageFull reports whether err is the blob storage running out of room (a full disk, a
// quota).
func storageFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// CodeStorageFull answers a write the blob storage has no room for.
const CodeStorageFull oci.ErrorCode = "INSUFFICIENT_STORAGE"

// fullStorage is err, or for a full storage a 507 that says so (and, as a 5xx, is logged for
// the operator with its cause).
func fullStorage(err error) error {
	if !storageFull(err) {
		return err
	}
	return httperr.New(CodeStorageFull, "the registry's storage is full (no space left on device): nothing of this push was kept; push again once the operator has freed space").
		WithStatus(http.StatusInsufficientStorage).WithReason("storage_full").Wrap(err)
}

package distribution

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/berth-registry/berth/internal/blob"
	"github.com/berth-registry/berth/internal/httperr"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/store"
)

// maxTagParams bounds the ?tag= parameters of one manifest PUT.
const maxTagParams = 100

func (h *Handler) resolveManifest(r *http.Request, req *request) (store.Manifest, error) {
	ctx := r.Context()
	ref, err := oci.ParseReference(req.ref)
	if err != nil {
		if errors.Is(err, oci.ErrDigestInvalid) {
			return store.Manifest{}, digestError(err)
		}
		return store.Manifest{}, httperr.New(oci.CodeManifestInvalid, "%v", err).WithStatus(http.StatusNotFound)
	}
	var m store.Manifest
	if ref.Digest != "" {
		m, err = h.meta.Manifest(ctx, req.reg.ID, req.name, ref.Digest)
	} else {
		m, err = h.meta.Tag(ctx, req.reg.ID, req.name, ref.Tag)
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.Manifest{}, h.notFound(r, req, oci.CodeManifestUnknown, "manifest "+ref.String())
	}
	if err == nil && m.Unreadable != "" {
		return store.Manifest{}, locked(&store.LockedError{What: m.Unreadable, Attribute: "read"})
	}
	return m, err
}

// CodeDisallowed is ACR's code for what a lock refuses.
const CodeDisallowed oci.ErrorCode = "REGISTRY_DISALLOWED_OPERATION"

// locked is ACR's answer to an operation a lock refuses (405), naming the lock and how to lift
// it.
func locked(le *store.LockedError) error {
	return httperr.New(CodeDisallowed, "The operation is disallowed on this registry, repository or image: %s (an administrator lifts it with "+
		"'berth repository update … --%s-enabled true')", le.Error(), le.Attribute).WithStatus(http.StatusMethodNotAllowed).WithReason("locked")
}

// notFound answers NAME_UNKNOWN when the repository itself is unknown, else code.
func (h *Handler) notFound(r *http.Request, req *request, code oci.ErrorCode, what string) error {
	exists, err := h.meta.RepositoryExists(r.Context(), req.reg.ID, req.name)
	if err != nil {
		return err
	}
	if !exists {
		return httperr.New(oci.CodeNameUnknown, "repository %s is not known to registry %s", req.name, req.reg.Name).WithDetail(map[string]string{"name": req.name})
	}
	return httperr.New(code, "%s is not in repository %s", what, req.name)
}

func (h *Handler) getManifest(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	m, err := h.resolveManifest(r, req)
	if err != nil {
		return err
	}
	req.describe(m)
	hdr := w.Header()
	hdr.Set("Content-Type", m.MediaType)
	hdr.Set("Docker-Content-Digest", string(m.Digest))
	hdr.Set("ETag", `"`+string(m.Digest)+`"`)
	hdr.Set("Content-Length", strconv.FormatInt(m.Size, 10))
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	body, err := h.manifestBody(ctx, m)
	if err != nil {
		if errors.Is(err, blob.ErrNotFound) {
			h.log.ErrorContext(ctx, "manifest in metadata but missing from storage", "digest", m.Digest, "repository", req.name)
			return httperr.New(oci.CodeManifestUnknown, "manifest %s is missing from storage", m.Digest)
		}
		return err
	}
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(body); err != nil {
		h.log.DebugContext(ctx, "manifest download ended early", "digest", m.Digest, "err", err)
	}
	return nil
}

// manifestBody returns manifest m's bytes: from the cache, else read from storage and verified
// (bytes that do not match the digest are an error, never served or kept).
func (h *Handler) manifestBody(ctx context.Context, m store.Manifest) ([]byte, error) {
	if body, ok := h.manifests.get(m.Digest); ok {
		return body, nil
	}
	if m.Size < 0 || m.Size > oci.MaxManifestSize {
		return nil, fmt.Errorf("manifest %s: recorded size %d is out of bounds", m.Digest, m.Size)
	}
	rc, err := h.blobs.Open(ctx, m.Digest, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	body := make([]byte, m.Size)
	if _, err := io.ReadFull(rc, body); err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", m.Digest, err)
	}
	if got := oci.FromBytes(m.Digest.Algorithm(), body); got != m.Digest {
		return nil, fmt.Errorf("manifest %s in storage has digest %s: the stored bytes are damaged", m.Digest, got)
	}
	h.manifests.put(m.Digest, body)
	return body, nil
}

func (h *Handler) putManifest(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	ref, err := oci.ParseReference(req.ref)
	if err != nil {
		if errors.Is(err, oci.ErrDigestInvalid) {
			return digestError(err)
		}
		return httperr.New(oci.CodeManifestInvalid, "%v", err)
	}
	tags := r.URL.Query()["tag"]
	if len(tags) > maxTagParams {
		return httperr.New(oci.CodeManifestInvalid, "at most %d tag parameters may be given, got %d", maxTagParams, len(tags))
	}
	for _, t := range tags {
		if err := oci.ValidateTag(t); err != nil {
			return httperr.New(oci.CodeManifestInvalid, "tag parameter: %v", err)
		}
	}
	applied := tags // reported back in OCI-Tag headers
	if ref.Tag != "" {
		tags = append([]string{ref.Tag}, tags...)
	}
	max := h.limits.MaxManifestBytes
	if r.ContentLength > max {
		return manifestTooLarge(max)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	var he *httperr.Error
	if errors.As(err, &he) { // the body stopped coming (the server's deadlines)
		return he
	}
	if err != nil {
		return httperr.New(oci.CodeManifestInvalid, "reading the manifest: %v", err)
	}
	if int64(len(body)) > max {
		return manifestTooLarge(max)
	}
	alg := oci.SHA256
	if ref.Digest != "" {
		alg = ref.Digest.Algorithm()
	}
	d := oci.FromBytes(alg, body)
	if ref.Digest != "" && d != ref.Digest {
		return httperr.New(oci.CodeDigestInvalid, "the manifest's digest is %s, not %s as the URL says", d, ref.Digest)
	}
	parsed, err := h.storeManifest(ctx, req, r.Header.Get("Content-Type"), body, d, tags)
	if err != nil {
		return err
	}
	if parsed.Subject != nil {
		w.Header().Set("OCI-Subject", string(parsed.Subject.Digest))
	}
	for _, t := range applied {
		w.Header().Add("OCI-Tag", t)
	}
	setLocation(w, req.name, "manifests", string(d))
	w.Header().Set("Docker-Content-Digest", string(d))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// storeManifest parses a manifest whose digest is d, stores its bytes and records it in the
// repository with tags (the blobs and manifests it references must be there): a push, or an
// import. The errors are the registry's answers.
func (h *Handler) storeManifest(ctx context.Context, req *request, contentType string, body []byte, d oci.Digest, tags []string) (*oci.Manifest, error) {
	parsed, err := oci.ParseManifest(contentType, body)
	if err != nil {
		return nil, httperr.New(oci.CodeManifestInvalid, "%v", err)
	}
	if err := checkManifestLimits(parsed); err != nil {
		return nil, err
	}
	if _, err := blob.Put(ctx, h.blobs, newID(), d, bytes.NewReader(body)); err != nil {
		return nil, fullStorage(err)
	}
	rec := store.Manifest{Digest: d, MediaType: parsed.MediaType, ArtifactType: parsed.ArtifactType, Size: int64(len(body)), Annotations: parsed.Annotations}
	if parsed.Config != nil {
		rec.ConfigMediaType = parsed.Config.MediaType
		p := h.platform(ctx, parsed.Config)
		rec.Architecture, rec.OS = p.Architecture, p.OS
	}
	req.describe(rec)
	if parsed.Subject != nil {
		rec.Subject = parsed.Subject.Digest
	}
	err = h.meta.PutManifest(ctx, req.reg.ID, req.name, rec, parsed.Blobs, parsed.Manifests, tags)
	var missing *store.MissingError
	var le *store.LockedError
	if errors.As(err, &le) {
		return nil, locked(le)
	}
	if errors.As(err, &missing) {
		return nil, httperr.New(oci.CodeManifestBlobUnknown, "%v: push it before the manifest", missing).
			WithDetail(map[string]string{"digest": string(missing.Digest)})
	}
	if err != nil {
		return nil, collecting(err, d)
	}
	// As for blobs: the manifest's own data must still be there after the reference is made.
	if _, err := h.blobs.Stat(ctx, d); errors.Is(err, blob.ErrNotFound) {
		if _, err := h.meta.DeleteManifest(ctx, req.reg.ID, req.name, d); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		return nil, collecting(store.ErrBlobCollecting, d)
	} else if err != nil {
		return nil, err
	}
	h.manifests.put(d, body) // its digest was checked
	return parsed, nil
}

// platform reads an image's platform from its config (at most oci.MaxConfigSize bytes, from the
// blob store unless the descriptor carries the data). Anything that keeps it from being read leaves
// it unknown: the push does not depend on it, and a missing config is refused by PutManifest.
func (h *Handler) platform(ctx context.Context, config *oci.Descriptor) oci.Platform {
	if !oci.IsImageConfigMediaType(config.MediaType) || config.Size > oci.MaxConfigSize {
		return oci.Platform{}
	}
	data := config.Data
	if data == nil {
		rc, err := h.blobs.Open(ctx, config.Digest, 0)
		if err != nil {
			return oci.Platform{}
		}
		defer rc.Close()
		if data, err = io.ReadAll(io.LimitReader(rc, oci.MaxConfigSize+1)); err != nil || len(data) > oci.MaxConfigSize {
			return oci.Platform{}
		}
	}
	p, err := oci.ParsePlatform(data)
	if err != nil {
		return oci.Platform{}
	}
	return p
}

func manifestTooLarge(max int64) error {
	return httperr.New(oci.CodeManifestInvalid, "manifests may be at most %d bytes (%d MiB)", max, max>>20).WithStatus(http.StatusRequestEntityTooLarge)
}

func (h *Handler) deleteManifest(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	ref, err := oci.ParseReference(req.ref)
	if err != nil {
		if errors.Is(err, oci.ErrDigestInvalid) {
			return digestError(err)
		}
		return httperr.New(oci.CodeManifestInvalid, "%v", err)
	}
	if req.event != nil {
		req.event.Digest = string(ref.Digest)
	}
	if ref.Digest != "" {
		_, err = h.meta.DeleteManifest(ctx, req.reg.ID, req.name, ref.Digest)
	} else {
		_, err = h.meta.DeleteTag(ctx, req.reg.ID, req.name, ref.Tag)
	}
	if errors.Is(err, store.ErrNotFound) {
		return h.notFound(r, req, oci.CodeManifestUnknown, "manifest "+ref.String())
	}
	var le *store.LockedError
	if errors.As(err, &le) {
		return locked(le)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// Limits of what one manifest may carry beyond its size (its annotations may take most of the
// 4 MiB, as the conformance suite checks: the referrers API pages by bytes instead), and of a
// referrers page.
const (
	// MaxDescriptors bounds the blobs and manifests a manifest references.
	MaxDescriptors = 10_000
	// MaxReferrersBytes bounds one page of the referrers API (the rest is behind Link).
	MaxReferrersBytes = 4 << 20
)

func checkManifestLimits(m *oci.Manifest) error {
	if d := len(m.Blobs) + len(m.Manifests); d > MaxDescriptors {
		return httperr.New(oci.CodeManifestInvalid, "the manifest references %d blobs and manifests; berth accepts at most %d", d, MaxDescriptors)
	}
	return nil
}

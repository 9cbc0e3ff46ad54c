package distribution

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-registry/berth/client"
	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/audit"
	"github.com/berth-registry/berth/internal/blob"
	"github.com/berth-registry/berth/internal/httperr"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/store"
)

// Bounds of one import (what it may copy, how long it may take), and of the imports a server
// runs at once.
const (
	maxImportManifests = 1000
	maxImportTime      = time.Hour
	maxImports         = 4
)

// importInvalid and importConflict are the management API's answers to a bad import request.
func importInvalid(format string, args ...any) error {
	return httperr.New("INVALID_ARGUMENT", format, args...).WithStatus(http.StatusBadRequest)
}

func importConflict(format string, args ...any) error {
	return httperr.New("CONFLICT", format, args...).WithStatus(http.StatusConflict)
}

// StartImport checks an import (az acr import) and runs it in the background: the manifest the
// source names (an index with every platform's manifest), the blobs they reference, and with
// WithReferrers the source's referrers of each. Blobs the registry holds already are linked, not
// fetched again, so running an interrupted import again resumes it. The source is reached
// through the outbound transport (no private or loopback address unless allowed, never
// link-local or metadata), with Basic credentials if given (go-containerregistry does the token
// flow). Each manifest stored is a push event by the caller (reason import).
func (h *Handler) StartImport(ctx context.Context, reg store.Registry, p access.Principal, loginServer string, req client.ImportRequest) (store.ImportRun, error) {
	var opts []name.Option
	if req.PlainHTTP {
		opts = append(opts, name.Insecure)
	}
	src, err := name.ParseReference(req.Source, append(opts, name.StrictValidation)...)
	if err != nil || !strings.Contains(req.Source, "/") {
		return store.ImportRun{}, importInvalid("source %q is not HOST/REPOSITORY:TAG or HOST/REPOSITORY@DIGEST", req.Source)
	}
	repo, tag := src.Context().RepositoryStr(), ""
	if t, ok := src.(name.Tag); ok {
		tag = t.TagStr()
	}
	if req.Image != "" {
		r, t, _ := strings.Cut(req.Image, ":")
		repo, tag = r, t
	}
	if err := oci.ValidateName(repo); err != nil {
		return store.ImportRun{}, importInvalid("image: %v", err)
	}
	if tag != "" {
		if err := oci.ValidateTag(tag); err != nil {
			return store.ImportRun{}, importInvalid("image: %v", err)
		}
		if _, err := h.meta.Tag(ctx, reg.ID, repo, tag); err == nil && !req.Force {
			return store.ImportRun{}, importConflict("tag %s of repository %s exists: import with force to overwrite it", tag, repo)
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return store.ImportRun{}, err
		}
	}
	target := repo
	if tag != "" {
		target += ":" + tag
	}
	select {
	case h.imports <- struct{}{}:
	default:
		return store.ImportRun{}, httperr.New(oci.CodeTooManyRequests, "%d imports are running on this server, the most it runs at once: retry when one has ended", maxImports).
			WithStatus(http.StatusTooManyRequests).WithHeader("Retry-After", "10")
	}
	run := store.ImportRun{ID: store.NewDeliveryID(), RegistryID: reg.ID, Source: src.String(), Target: target, Status: "Running"}
	if err := h.meta.CreateImport(ctx, run); err != nil {
		<-h.imports
		return run, err
	}
	auth := authn.Anonymous
	if req.Username != "" {
		auth = &authn.Basic{Username: req.Username, Password: req.Password}
	}
	im := &importer{h: h, reg: reg, principal: p, loginServer: loginServer, repo: repo, run: run, referrers: req.WithReferrers, seen: map[string]bool{}}
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), maxImportTime)
	im.opts = []remote.Option{remote.WithContext(bg), remote.WithAuth(auth), remote.WithTransport(h.outbound), remote.WithUserAgent("berth-import")}
	go func() {
		defer func() { <-h.imports }()
		defer cancel()
		err := im.copyTop(bg, src, tag)
		im.mu.Lock()
		im.run.Status = "Succeeded"
		if err != nil {
			im.run.Status, im.run.Error = "Failed", err.Error()
			h.log.WarnContext(bg, "import failed", "source", run.Source, "target", run.Target, "err", err)
		}
		final := im.run
		im.mu.Unlock()
		if err := h.meta.UpdateImport(context.WithoutCancel(bg), final); err != nil {
			h.log.ErrorContext(bg, "recording the end of an import", "err", err)
		}
	}()
	return run, nil
}

type importer struct {
	h           *Handler
	reg         store.Registry
	principal   access.Principal
	loginServer string
	repo        string
	referrers   bool
	opts        []remote.Option

	mu   sync.Mutex
	run  store.ImportRun
	seen map[string]bool // manifests copied
}

func (im *importer) progress(ctx context.Context, manifests, blobs int, bytes int64) {
	im.mu.Lock()
	im.run.Manifests += manifests
	im.run.Blobs += blobs
	im.run.Bytes += bytes
	run := im.run
	im.mu.Unlock()
	if err := im.h.meta.UpdateImport(ctx, run); err != nil {
		im.h.log.WarnContext(ctx, "recording an import's progress", "err", err)
	}
}

func (im *importer) copyTop(ctx context.Context, src name.Reference, tag string) error {
	desc, err := remote.Get(src, im.opts...)
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	var tags []string
	if tag != "" {
		tags = []string{tag}
	}
	return im.copyManifest(ctx, src.Context(), string(desc.MediaType), desc.Manifest, oci.Digest(desc.Digest.String()), tags)
}

// copyManifest copies what a manifest references (an index's manifests, an image's blobs), then
// the manifest, then with referrers its referrers.
func (im *importer) copyManifest(ctx context.Context, repo name.Repository, mediaType string, body []byte, d oci.Digest, tags []string) error {
	if im.seen[string(d)] && len(tags) == 0 {
		return nil
	}
	im.seen[string(d)] = true
	if len(im.seen) > maxImportManifests {
		return fmt.Errorf("the source holds more than %d manifests: berth imports at most that many at once", maxImportManifests)
	}
	if oci.FromBytes(d.Algorithm(), body) != d {
		return fmt.Errorf("the source's manifest does not match its digest %s", d)
	}
	parsed, err := oci.ParseManifest(mediaType, body)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", d, err)
	}
	for _, child := range parsed.Manifests {
		desc, err := remote.Get(repo.Digest(string(child)), im.opts...)
		if err != nil {
			return fmt.Errorf("reading manifest %s: %w", child, err)
		}
		if err := im.copyManifest(ctx, repo, string(desc.MediaType), desc.Manifest, child, nil); err != nil {
			return err
		}
	}
	blobs, bytes := 0, int64(0)
	for _, b := range parsed.Blobs {
		n, err := im.copyBlob(ctx, repo, b)
		if err != nil {
			return err
		}
		if n >= 0 {
			blobs, bytes = blobs+1, bytes+n
		}
	}
	req := &request{route: route{kind: kindManifest, name: im.repo}, reg: im.reg, principal: im.principal}
	e := store.RepositoryEvent{Time: im.h.now().UTC(), Registry: im.reg.Name, LoginServer: im.loginServer, Operation: audit.OpPush, Repository: im.repo,
		IP: "import", UserAgent: "berth-import"}
	e.Identity, e.IdentityKind = audit.Identity(im.principal)
	req.event = &e
	if _, err := im.h.storeManifest(ctx, req, mediaType, body, d, tags); err != nil {
		var he *httperr.Error
		if errors.As(err, &he) {
			return errors.New(he.Message)
		}
		return err
	}
	e.Status, e.Result, e.Reason = http.StatusCreated, store.ResultSuccess, "import"
	if len(tags) > 0 {
		e.Tag = tags[0]
	}
	im.h.audit.Repository(ctx, e)
	im.progress(ctx, 1, blobs, bytes)
	if im.referrers {
		idx, err := remote.Referrers(repo.Digest(string(d)), im.opts...)
		if err != nil {
			return fmt.Errorf("referrers of %s: %w", d, err)
		}
		im2, err := idx.IndexManifest()
		if err != nil {
			return err
		}
		for _, r := range im2.Manifests {
			desc, err := remote.Get(repo.Digest(r.Digest.String()), im.opts...)
			if err != nil {
				return fmt.Errorf("reading referrer %s: %w", r.Digest, err)
			}
			if err := im.copyManifest(ctx, repo, string(desc.MediaType), desc.Manifest, oci.Digest(r.Digest.String()), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyBlob links a blob the registry holds, or fetches it (verified as it is written); it
// returns the bytes fetched (-1 when none was).
func (im *importer) copyBlob(ctx context.Context, repo name.Repository, d oci.Digest) (int64, error) {
	if info, err := im.h.blobs.Stat(ctx, d); err == nil {
		return -1, im.link(ctx, d, info.Size)
	} else if !errors.Is(err, blob.ErrNotFound) {
		return 0, err
	}
	layer, err := remote.Layer(repo.Digest(string(d)), im.opts...)
	if err != nil {
		return 0, fmt.Errorf("blob %s: %w", d, err)
	}
	size, err := layer.Size()
	if err != nil {
		return 0, fmt.Errorf("blob %s: %w", d, err)
	}
	if size > im.h.limits.MaxBlobBytes {
		return 0, fmt.Errorf("blob %s has %d bytes: limits.max_blob_bytes is %d", d, size, im.h.limits.MaxBlobBytes)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return 0, fmt.Errorf("blob %s: %w", d, err)
	}
	defer rc.Close()
	info, err := blob.Put(ctx, im.h.blobs, newID(), d, io.LimitReader(rc, im.h.limits.MaxBlobBytes))
	if err != nil {
		return 0, fmt.Errorf("blob %s: %w", d, fullStorage(err))
	}
	return info.Size, im.link(ctx, d, info.Size)
}

func (im *importer) link(ctx context.Context, d oci.Digest, size int64) error {
	req := &request{route: route{name: im.repo}, reg: im.reg}
	return im.h.link(ctx, req, d, size)
}

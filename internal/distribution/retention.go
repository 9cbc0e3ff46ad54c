package distribution

import (
	"context"
	"errors"
	"net/http"

	"github.com/berth-registry/berth/internal/audit"
	"github.com/berth-registry/berth/internal/store"
)

// retentionBatch bounds the manifests one retention pass deletes.
const retentionBatch = 1000

// ApplyRetention deletes the untagged manifests whose registry's retention policy says their
// time is up (store.RetentionCandidates: never a locked one, an index's child or the referrer
// of a manifest still there), through the store's delete, which soft-deletes them when the
// registry's soft-delete policy is on and refuses what a lock set since protects. Each is a
// repository event (delete, reason retention, identity "retention"). The server runs it on
// one replica at a time.
func (h *Handler) ApplyRetention(ctx context.Context) (int, error) {
	cands, err := h.meta.RetentionCandidates(ctx, h.now(), retentionBatch)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range cands {
		_, err := h.meta.DeleteManifest(ctx, c.RegistryID, c.Repository, c.Digest)
		var le *store.LockedError
		switch {
		case errors.Is(err, store.ErrNotFound), errors.As(err, &le):
			continue // gone meanwhile, or locked since
		case err != nil:
			return n, err
		}
		n++
		h.systemEvent(ctx, c.Registry, c.Repository, string(c.Digest), "retention", "untagged for longer than the registry's retention policy allows")
	}
	return n, nil
}

// PurgeSoftDeleted removes the soft-deleted manifests whose retention days are over (their
// blobs then go at the next garbage collection).
func (h *Handler) PurgeSoftDeleted(ctx context.Context) (int64, error) {
	return h.meta.PurgeDeleted(ctx, h.now())
}

// systemEvent records a delete the server made on its own (retention).
func (h *Handler) systemEvent(ctx context.Context, registry, repo, digest, identity, message string) {
	h.audit.Repository(ctx, store.RepositoryEvent{Time: h.now().UTC(), Registry: registry, Operation: audit.OpDelete, Repository: repo, Digest: digest,
		Identity: identity, IdentityKind: "system", IP: "local", Status: http.StatusAccepted, Result: store.ResultSuccess, Reason: identity, Message: message})
}

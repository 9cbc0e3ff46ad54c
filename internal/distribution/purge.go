package distribution

import (
	"context"
	"errors"
	"time"

	"github.com/berth-registry/berth/internal/blob"
	"github.com/berth-registry/berth/internal/store"
)

// orphanAge is how old upload data with no session must be before it is removed: a session
// row is written right after its data file, and a manifest's data never has a session.
const orphanAge = time.Hour

// PurgeUploads removes the upload sessions idle for longer than ttl with their data, and upload
// data left without a session (older than orphanAge: a session row is written right after its
// data file, and a manifest's data never has a session). The server runs it every few minutes.
func (h *Handler) PurgeUploads(ctx context.Context, ttl time.Duration) error {
	ids, err := h.meta.StaleUploads(ctx, h.now().Add(-ttl), 1000)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := h.meta.DeleteUpload(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := h.blobs.Delete(ctx, id); err != nil {
			return err
		}
	}
	lister, ok := h.blobs.(blob.UploadLister)
	if !ok {
		return nil
	}
	ups, err := lister.Uploads(ctx)
	if err != nil {
		return err
	}
	cutoff := h.now().Add(-orphanAge).Unix()
	for _, u := range ups {
		if u.ModTime > cutoff {
			continue
		}
		exists, err := h.meta.UploadExists(ctx, u.ID)
		if err != nil {
			return err
		}
		if !exists {
			if err := h.blobs.Delete(ctx, u.ID); err != nil {
				return err
			}
		}
	}
	if len(ids) > 0 {
		h.log.Info("purged idle uploads", "count", len(ids))
	}
	return nil
}

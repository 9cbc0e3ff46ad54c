// Package gc deletes blobs that nothing references, safely beside concurrent pushes and other
// replicas.
//
// The protocol, with the metadata store's serialized write transactions:
//   - GC lists the stored blobs older than the grace period, and in one transaction tombstones
//     those that no manifest is or references and that no repository linked within the grace
//     period (a push whose manifest is yet to come), removing their stale links
//     (store.MarkUnreferenced); then it deletes each tombstoned blob and clears its tombstone.
//   - A manifest is recorded in a transaction that requires its blobs to be linked: one whose
//     links GC removed is refused (MANIFEST_BLOB_UNKNOWN) and the client pushes them again.
//   - A push links a blob (or records a manifest) in a transaction that refuses a tombstoned
//     digest, and after the link checks that the blob is still stored (distribution.link).
//
// Either the link's transaction comes first, and GC sees the reference and keeps the blob; or
// GC's comes first, and the link is refused while the tombstone stands, or, once the deletion
// is over, finds the blob gone and is undone. No reference is ever left to a deleted blob. The
// grace period keeps GC away from blobs being pushed right now, which would otherwise have to
// be pushed again.
package gc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/berth-registry/berth/internal/blob"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/store"
)

// Options tune a collection.
type Options struct {
	// Grace: blobs stored more recently are kept.
	Grace time.Duration
	// DryRun lists what would be deleted and deletes nothing.
	DryRun bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// Report is what a collection did.
type Report struct {
	Scanned   int          `json:"scanned"`   // blobs in storage
	Young     int          `json:"young"`     // kept: within the grace period
	Deleted   []oci.Digest `json:"deleted"`   // or, with DryRun, that would be
	Bytes     int64        `json:"bytes"`     // their size
	Leftovers int          `json:"leftovers"` // tombstones of an earlier, interrupted collection finished
	DryRun    bool         `json:"dryRun"`
}

// batch bounds the candidates of one marking transaction.
const batch = 500

// Run collects once.
func Run(ctx context.Context, meta *store.Store, blobs blob.Store, o Options) (Report, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	rep := Report{DryRun: o.DryRun, Deleted: []oci.Digest{}}
	lister, ok := blobs.(blob.Lister)
	deleter, ok2 := blobs.(blob.Deleter)
	if !ok || !ok2 {
		return rep, errors.New("gc: the blob store cannot list or delete blobs")
	}
	// Finish what an interrupted collection left: tombstoned digests are unreferenced.
	if !o.DryRun {
		left, err := meta.Tombstones(ctx)
		if err != nil {
			return rep, err
		}
		for _, d := range left {
			if err := remove(ctx, meta, deleter, d); err != nil {
				return rep, err
			}
			rep.Leftovers++
		}
	}
	cutoff := o.Now().Add(-o.Grace)
	sizes := map[oci.Digest]int64{}
	var pending []oci.Digest
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		marked, err := meta.MarkUnreferenced(ctx, pending, cutoff, o.DryRun)
		pending = pending[:0]
		if err != nil {
			return err
		}
		for _, d := range marked {
			if !o.DryRun {
				if err := remove(ctx, meta, deleter, d); err != nil {
					return err
				}
			}
			rep.Deleted = append(rep.Deleted, d)
			rep.Bytes += sizes[d]
		}
		return nil
	}
	err := lister.Blobs(ctx, func(b blob.Stored) error {
		rep.Scanned++
		if b.ModTime.After(cutoff) {
			rep.Young++
			return nil
		}
		sizes[b.Digest] = b.Size
		pending = append(pending, b.Digest)
		if len(pending) >= batch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return rep, fmt.Errorf("gc: %w", err)
	}
	o.Log.Info("garbage collection", "scanned", rep.Scanned, "deleted", len(rep.Deleted), "bytes", rep.Bytes, "young", rep.Young, "dry_run", o.DryRun)
	return rep, nil
}

// remove deletes a tombstoned blob, then clears its tombstone.
func remove(ctx context.Context, meta *store.Store, deleter blob.Deleter, d oci.Digest) error {
	if err := deleter.DeleteBlob(ctx, d); err != nil && !errors.Is(err, blob.ErrNotFound) {
		return fmt.Errorf("gc: delete %s: %w", d, err)
	}
	return meta.ClearTombstone(ctx, d)
}

package server

import (
	"context"
	"errors"
	"time"

	"github.com/berth-registry/berth/internal/blob"
	"github.com/berth-registry/berth/internal/gc"
	"github.com/berth-registry/berth/internal/store"
)

// orphanAge is how old upload data with no session must be before it is removed: a session
// row is written right after its data file, and a manifest's data never has a session.
const orphanAge = time.Hour

// purgeUploads removes idle upload sessions and upload data left without one, every few
// minutes until ctx ends.
func (s *Server) purgeUploads(ctx context.Context) {
	repeat(ctx, 5*time.Minute, true, func() {
		if err := s.PurgeUploads(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("upload purge failed", "err", err)
		}
	})
}

// repeat calls run every interval until ctx ends; first right away when now is set.
func repeat(ctx context.Context, interval time.Duration, now bool, run func()) {
	if now {
		run()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			run()
		}
	}
}

// PurgeUploads runs one purge pass.
func (s *Server) PurgeUploads(ctx context.Context) error {
	ids, err := s.meta.StaleUploads(ctx, s.now().Add(-s.cfg.Uploads.TTL), 1000)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := s.meta.DeleteUpload(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := s.blobs.Delete(ctx, id); err != nil {
			return err
		}
	}
	lister, ok := s.blobs.(blob.UploadLister)
	if !ok {
		return nil
	}
	ups, err := lister.Uploads(ctx)
	if err != nil {
		return err
	}
	cutoff := s.now().Add(-orphanAge).Unix()
	for _, u := range ups {
		if u.ModTime > cutoff {
			continue
		}
		exists, err := s.meta.UploadExists(ctx, u.ID)
		if err != nil {
			return err
		}
		if !exists {
			if err := s.blobs.Delete(ctx, u.ID); err != nil {
				return err
			}
		}
	}
	if len(ids) > 0 {
		s.log.Info("purged idle uploads", "count", len(ids))
	}
	return nil
}

// purgeEvents deletes events older than the retention, every hour until ctx ends.
func (s *Server) purgeEvents(ctx context.Context) {
	repeat(ctx, time.Hour, true, func() {
		if _, err := s.PurgeEvents(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("event purge failed", "err", err)
		}
	})
}

// PurgeEvents deletes the events older than the retention (events.retention) and returns how
// many it deleted.
func (s *Server) PurgeEvents(ctx context.Context) (int64, error) {
	n, err := s.meta.PurgeEvents(ctx, s.now().Add(-s.cfg.Events.Retention))
	if n > 0 {
		s.log.Info("purged events past their retention", "count", n, "retention", s.cfg.Events.Retention.String())
	}
	return n, err
}

// collect runs garbage collection every gc.interval until ctx ends. Several replicas may: the
// collections are safe beside each other (internal/gc).
func (s *Server) collect(ctx context.Context) {
	repeat(ctx, s.cfg.GC.Interval, false, func() {
		if _, err := gc.Run(ctx, s.meta, s.blobs, gc.Options{Grace: s.cfg.GC.Grace, Now: s.now, Log: s.log}); err != nil && ctx.Err() == nil {
			s.log.Warn("garbage collection failed", "err", err)
		}
	})
}

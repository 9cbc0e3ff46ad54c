package server

import (
	"context"
	"time"

	"github.com/berth-registry/berth/internal/gc"
)

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

// PurgeUploads runs one purge pass (distribution.Handler.PurgeUploads).
func (s *Server) PurgeUploads(ctx context.Context) error {
	return s.dist.PurgeUploads(ctx, s.cfg.Uploads.TTL)
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
	if err != nil {
		return n, err
	}
	// Finished webhook deliveries go with the events (list-events shows the recent ones).
	if _, err = s.meta.PurgeDeliveries(ctx, s.now().Add(-s.cfg.Events.Retention)); err != nil {
		return n, err
	}
	// So do finished imports' records.
	_, err = s.meta.PurgeImports(ctx, s.now().Add(-s.cfg.Events.Retention))
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

// contentPolicies applies the registries' retention policies and purges soft-deleted manifests
// whose days are over, every few minutes, on one replica at a time (a lease in the store).
func (s *Server) contentPolicies(ctx context.Context) {
	holder := s.replicaID
	repeat(ctx, contentInterval, true, func() {
		ok, err := s.meta.TryLease(ctx, "content-policies", holder, s.now(), 2*contentInterval)
		if err != nil || !ok {
			if err != nil && ctx.Err() == nil {
				s.log.Warn("content policies: lease", "err", err)
			}
			return
		}
		if err := s.ApplyContentPolicies(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("content policies failed", "err", err)
		}
	})
}

// contentInterval is how often retention and the purge of soft-deleted manifests run.
const contentInterval = 5 * time.Minute

// ApplyContentPolicies runs retention and the purge of soft-deleted manifests once.
func (s *Server) ApplyContentPolicies(ctx context.Context) error {
	n, err := s.dist.ApplyRetention(ctx)
	if n > 0 {
		s.log.Info("retention deleted untagged manifests", "count", n)
	}
	if err != nil {
		return err
	}
	purged, err := s.dist.PurgeSoftDeleted(ctx)
	if purged > 0 {
		s.log.Info("purged soft-deleted manifests past their retention", "count", purged)
	}
	return err
}

// DeliverWebhooks attempts the due webhook deliveries once (the server does every half second).
func (s *Server) DeliverWebhooks(ctx context.Context) (int, error) { return s.hooks.DeliverDue(ctx) }

package distribution

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/berth-registry/berth/internal/httperr"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/store"
)

// uploadLocks serialises the requests of one upload session (its PATCH, PUT and DELETE) on this
// replica, and nothing else: a request that stalls while it holds its upload's lock (its body
// stopped coming) keeps only that upload's next request waiting — never another upload, another
// repository's or another registry's — and a waiting request leaves when its client does.
// Replicas are kept apart by the upload's checkpoint, which the store writes only from the size
// it last recorded (store.ErrConflict).
type uploadLocks struct {
	mu sync.Mutex
	m  map[string]*uploadLock
}

type uploadLock struct {
	ch    chan struct{} // holds one token while the upload is locked
	users int           // requests holding or waiting (guarded by uploadLocks.mu)
}

// lock waits for upload id's lock until ctx ends and returns its release.
func (l *uploadLocks) lock(ctx context.Context, id string) (func(), error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*uploadLock{}
	}
	ul := l.m[id]
	if ul == nil {
		ul = &uploadLock{ch: make(chan struct{}, 1)}
		l.m[id] = ul
	}
	ul.users++
	l.mu.Unlock()
	done := func() {
		l.mu.Lock()
		if ul.users--; ul.users == 0 {
			delete(l.m, id)
		}
		l.mu.Unlock()
	}
	select {
	case ul.ch <- struct{}{}:
		return func() { <-ul.ch; done() }, nil
	case <-ctx.Done():
		done()
		return nil, httperr.New(oci.CodeBlobUploadInvalid, "another request to upload %s is still running: retry once it has finished", truncate(id)).
			WithStatus(http.StatusConflict).Wrap(ctx.Err())
	}
}

// held reports how many uploads have a request holding or waiting for their lock (tests).
func (l *uploadLocks) held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// leaseFor is how long a request's lease of an upload lasts before it must be renewed (a third
// of it); a replica that dies holding one keeps the upload from the others for at most this long.
const leaseFor = 15 * time.Second

// leaseWait is how long a request waits for another's lease of its upload before 409.
const leaseWait = time.Second

// hold gives this request upload id: the replica's own lock (uploadLocks), then — when replicas
// share the database (PostgreSQL) — the database's lease, so that no request on any replica
// appends to it meanwhile. The lease is renewed while the request runs; release gives both back.
// On SQLite there is one process, whose lock is enough: no lease outlives a crash there.
func (h *Handler) hold(ctx context.Context, id string) (release func(), err error) {
	unlock, err := h.locks.lock(ctx, id)
	if err != nil {
		return nil, err
	}
	if h.meta.Dialect() != "postgres" {
		return unlock, nil
	}
	holder := newID()
	now := h.now()
	err = h.meta.LeaseUpload(ctx, id, holder, now, now.Add(leaseFor))
	// The previous request of the upload (a client's last PATCH, answered a moment ago by another
	// replica) may still be giving its lease back: wait for it a little before refusing.
	for wait := time.Now().Add(leaseWait); errors.Is(err, store.ErrConflict) && time.Now().Before(wait) && ctx.Err() == nil; {
		time.Sleep(20 * time.Millisecond)
		now = h.now()
		err = h.meta.LeaseUpload(ctx, id, holder, now, now.Add(leaseFor))
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return unlock, nil // the handler answers that it is unknown
	case errors.Is(err, store.ErrConflict):
		unlock()
		return nil, httperr.New(oci.CodeBlobUploadInvalid, "another request to upload %s is running on another replica: retry once it has finished", truncate(id)).
			WithStatus(http.StatusConflict).WithHeader("Retry-After", "5")
	case err != nil:
		unlock()
		return nil, err
	}
	stop, renewed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(leaseFor / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				now := h.now()
				if err := h.meta.LeaseUpload(context.WithoutCancel(ctx), id, holder, now, now.Add(leaseFor)); err != nil && !errors.Is(err, store.ErrNotFound) {
					h.log.WarnContext(ctx, "could not renew an upload's lease", "upload", id, "err", err)
				}
			}
		}
	}()
	return func() {
		close(stop)
		<-renewed
		if err := h.meta.ReleaseUpload(context.WithoutCancel(ctx), id, holder); err != nil {
			h.log.WarnContext(ctx, "could not release an upload's lease", "upload", id, "err", err)
		}
		unlock()
	}, nil
}

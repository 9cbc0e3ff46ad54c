package distribution

import (
	"context"
	"net/http"
	"sync"

	"github.com/berth-registry/berth/internal/httperr"
	"github.com/berth-registry/berth/internal/oci"
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

package distribution

import (
	"container/list"
	"sync"

	"github.com/berth-registry/berth/internal/oci"
)

// manifestCache keeps the bytes of recently served or pushed manifests, by digest: content
// addressed, they never change, so a GET of a manifest that is cached reads no blob storage (on
// S3, a request to the bucket per GET). Whether the manifest exists, and may be read, is still
// the metadata's answer on every request; only verified bytes are kept (those pushed, whose
// digest was checked, or read from storage and checked). Bounded in bytes; least recently used
// first out.
type manifestCache struct {
	mu      sync.Mutex
	max     int // bytes in all
	maxItem int // bytes of one manifest
	size    int
	order   *list.List // of *cached, most recent first
	byKey   map[oci.Digest]*list.Element
}

type cached struct {
	d    oci.Digest
	body []byte
}

const (
	manifestCacheBytes = 16 << 20
	manifestCacheItem  = 256 << 10
)

func newManifestCache(max, maxItem int) *manifestCache {
	return &manifestCache{max: max, maxItem: maxItem, order: list.New(), byKey: map[oci.Digest]*list.Element{}}
}

// get returns the bytes of manifest d, if cached. The caller must not change them.
func (c *manifestCache) get(d oci.Digest) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[d]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cached).body, true
}

// put keeps body as the bytes of manifest d, which the caller verified, unless it is too large.
func (c *manifestCache) put(d oci.Digest, body []byte) {
	if len(body) > c.maxItem || len(body) > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[d]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.byKey[d] = c.order.PushFront(&cached{d: d, body: body})
	c.size += len(body)
	for c.size > c.max {
		last := c.order.Back()
		old := last.Value.(*cached)
		c.order.Remove(last)
		delete(c.byKey, old.d)
		c.size -= len(old.body)
	}
}

package s3blob

import (
	"container/list"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/berth-registry/berth/internal/oci"
)

// cache keeps recently pushed and pulled blobs on the replica's own disk, so that a pull of
// them reads a local file instead of the bucket. Blobs are content addressed: a cached file is
// never stale, and only bytes whose digest berth checked are kept (an upload's own piece, whose
// digest the upload computed as it arrived; a read through, hashed on the way). A download goes
// through the cache only the second time it misses (while the first is remembered), so that a
// blob pulled once from this replica costs no hashing and writing here. The bucket stays
// the only truth: whether a blob exists is always asked of the bucket (Stat), never of the
// cache. The files take at most limit bytes, the least recently used go first; a blob being
// read through holds its room while it arrives, so that misses in parallel cannot overfill the
// disk. Errors of the cache are never the caller's: a file that cannot be written is not cached.
type cache struct {
	dir   string
	limit int64

	mu      sync.Mutex
	entries map[oci.Digest]*list.Element // of *cached
	lru     list.List                    // most recent first
	used    int64                        // bytes of the entries and of the reservations
	missed  map[oci.Digest]bool          // downloads missed once, the oldest forgotten first
	misses  []oci.Digest                 // the same, a ring of maxCacheEntries
	next    int                          // where the ring writes next
}

type cached struct {
	d    oci.Digest
	size int64
}

// maxCacheEntries bounds the cache's index in memory (about 100 bytes an entry), whatever the
// sizes of the blobs.
var maxCacheEntries = 100_000

// cacheTemp starts the names of files still being written: never entries.
const cacheTemp = "tmp-"

// openCache indexes the blobs dir holds (as an earlier process left them), removes what is not
// a whole blob, and trims the rest to limit.
func openCache(dir string, limit int64) (*cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("s3blob: cache: %w", err)
	}
	c := &cache{dir: dir, limit: limit, entries: map[oci.Digest]*list.Element{}, missed: map[oci.Digest]bool{}}
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		alg, hex, ok := strings.Cut(filepath.ToSlash(rel), "/")
		d, perr := oci.ParseDigest(alg + ":" + hex)
		info, ierr := e.Info()
		if !ok || perr != nil || ierr != nil || !info.Mode().IsRegular() {
			return os.Remove(path) // a file being written when a process stopped, or not berth's
		}
		c.entries[d] = c.lru.PushBack(&cached{d: d, size: info.Size()})
		c.used += info.Size()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("s3blob: cache: %w", err)
	}
	c.mu.Lock()
	c.evict(0)
	c.mu.Unlock()
	return c, nil
}

func (c *cache) path(d oci.Digest) string {
	return filepath.Join(c.dir, string(d.Algorithm()), d.Encoded())
}

// open returns blob d's cached file from offset, or nil.
func (c *cache) open(d oci.Digest, offset int64) *os.File {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	e, ok := c.entries[d]
	if ok {
		c.lru.MoveToFront(e)
	}
	c.mu.Unlock()
	if !ok {
		return nil
	}
	f, err := os.Open(c.path(d))
	if err == nil && offset > 0 {
		_, err = f.Seek(offset, io.SeekStart)
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		c.remove(d) // removed behind the cache's back
		return nil
	}
	return f
}

// reserve makes room for size bytes, evicting the least recently used blobs; false if they
// cannot fit (larger than the cache, or the room is held by blobs still arriving).
func (c *cache) reserve(size int64) bool {
	if c == nil || size < 0 || size > c.limit {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evict(size)
	if c.used+size > c.limit {
		return false
	}
	c.used += size
	return true
}

// release gives back a reservation that did not become an entry.
func (c *cache) release(size int64) {
	c.mu.Lock()
	c.used -= size
	c.mu.Unlock()
}

// evict removes least recently used entries until size more bytes (and one more entry) fit.
// c.mu is held.
func (c *cache) evict(size int64) {
	for c.used+size > c.limit || len(c.entries) >= maxCacheEntries {
		e := c.lru.Back()
		if e == nil {
			return
		}
		v := c.lru.Remove(e).(*cached)
		delete(c.entries, v.d)
		c.used -= v.size
		os.Remove(c.path(v.d)) // a reader that has it open keeps reading it
	}
}

// take caches blob d's size verified bytes that file holds: it moves the file into the cache
// (true: nothing is left at its name) or copies it.
func (c *cache) take(file *os.File, d oci.Digest, size int64) (moved bool) {
	if c == nil || c.has(d) || !c.reserve(size) {
		return false
	}
	if c.place(file.Name(), d) == nil {
		c.insert(d, size)
		return true
	}
	c.copy(file, d, size)
	return false
}

// place moves file to blob d's path in the cache.
func (c *cache) place(file string, d oci.Digest) error {
	dst := c.path(d)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	return os.Rename(file, dst)
}

// insert makes the reserved blob d at its cache path an entry.
func (c *cache) insert(d oci.Digest, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.entries[d]; dup { // the same bytes, cached twice at once: one file is left
		c.used -= size
		return
	}
	c.entries[d] = c.lru.PushFront(&cached{d: d, size: size})
}

// adopt moves file, holding blob d's size verified bytes and reserved already, into the cache
// (or removes it).
func (c *cache) adopt(file string, d oci.Digest, size int64) {
	if err := c.place(file, d); err != nil {
		os.Remove(file)
		c.release(size)
		return
	}
	c.insert(d, size)
}

// copy caches a copy of file, blob d's size verified bytes, whose room is reserved.
func (c *cache) copy(file *os.File, d oci.Digest, size int64) {
	tmp, err := os.CreateTemp(c.dir, cacheTemp+"*")
	if err == nil {
		_, err = io.Copy(tmp, io.NewSectionReader(file, 0, size))
		err = errors.Join(err, tmp.Close())
	}
	if err != nil {
		if tmp != nil {
			os.Remove(tmp.Name())
		}
		c.release(size)
		return
	}
	c.adopt(tmp.Name(), d, size)
}

func (c *cache) has(d oci.Digest) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.entries[d]
	return ok
}

func (c *cache) remove(d oci.Digest) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[d]; ok {
		v := c.lru.Remove(e).(*cached)
		delete(c.entries, d)
		c.used -= v.size
		os.Remove(c.path(d))
	}
}

// through returns body (blob d of size bytes, read from the bucket from its start) copying what
// is read into a new cache file, which becomes the cache's when the whole blob was read and its
// digest checked; body itself if the blob cannot be cached.
func (c *cache) through(body io.ReadCloser, d oci.Digest, size int64) io.ReadCloser {
	if c == nil || !d.Algorithm().Available() || c.has(d) || !c.missedBefore(d) || !c.reserve(size) {
		return body
	}
	f, err := os.CreateTemp(c.dir, cacheTemp+"*")
	if err != nil {
		c.release(size)
		return body
	}
	return &tee{body: body, c: c, d: d, size: size, f: f, h: d.Algorithm().New()}
}

// missedBefore reports whether a download of d missed before, and remembers this one if not.
func (c *cache) missedBefore(d oci.Digest) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.missed[d] {
		return true
	}
	if len(c.misses) < maxCacheEntries {
		c.misses = append(c.misses, d)
	} else {
		delete(c.missed, c.misses[c.next])
		c.misses[c.next] = d
		c.next = (c.next + 1) % len(c.misses)
	}
	c.missed[d] = true
	return false
}

// tee is a read through the cache.
type tee struct {
	body io.ReadCloser
	c    *cache
	d    oci.Digest
	size int64
	f    *os.File // nil once given up or adopted
	h    hash.Hash
	n    int64 // bytes read
}

func (t *tee) Read(p []byte) (int, error) {
	n, err := t.body.Read(p)
	if t.f != nil && n > 0 {
		t.h.Write(p[:n])
		if _, werr := t.f.Write(p[:n]); werr != nil {
			t.drop()
		}
		t.n += int64(n)
	}
	// The whole blob read (a reader that stops at its size never sees the end), or the end.
	if t.f != nil && (t.n >= t.size || err == io.EOF) {
		t.finish()
	}
	return n, err
}

// finish adopts the file if it holds the blob, whole and verified.
func (t *tee) finish() {
	f := t.f
	t.f = nil
	if err := f.Close(); err != nil || oci.NewDigest(t.d.Algorithm(), t.h) != t.d {
		os.Remove(f.Name())
		t.c.release(t.size)
		return
	}
	t.c.adopt(f.Name(), t.d, t.size)
}

func (t *tee) drop() {
	if t.f != nil {
		t.f.Close()
		os.Remove(t.f.Name())
		t.f = nil
		t.c.release(t.size)
	}
}

// Close gives up a read that did not reach the end.
func (t *tee) Close() error {
	t.drop()
	return t.body.Close()
}

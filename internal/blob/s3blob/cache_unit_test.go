package s3blob

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/oci"
)

// The cache's own rules, on the filesystem alone (TestCache drives it through a bucket): what it
// keeps, how it counts its room, and that it leaves no file or descriptor behind.

func blobOf(n int) ([]byte, oci.Digest) {
	b := make([]byte, n)
	rand.Read(b)
	return b, oci.FromBytes(oci.SHA256, b)
}

// fileOf writes b to a new file in dir and returns it open, as an upload's piece is.
func fileOf(t *testing.T, dir string, b []byte) *os.File {
	t.Helper()
	f, err := os.CreateTemp(dir, "piece-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	return f
}

// state checks that the cache's count and its folder agree: used is the entries' sizes plus
// reserved, each entry's file holds its size, and the folder holds nothing else but extra.
func state(t *testing.T, c *cache, reserved int64, extra ...string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var sum int64
	var want []string
	for e := c.lru.Front(); e != nil; e = e.Next() {
		v := e.Value.(*cached)
		sum += v.size
		want = append(want, c.path(v.d))
		if fi, err := os.Stat(c.path(v.d)); err != nil || fi.Size() != v.size {
			t.Errorf("entry %s: file %v, want %d bytes", v.d, err, v.size)
		}
	}
	if len(c.entries) != c.lru.Len() {
		t.Errorf("%d entries indexed, %d in the LRU list", len(c.entries), c.lru.Len())
	}
	if c.used != sum+reserved {
		t.Errorf("used %d, want %d (entries) + %d (reserved)", c.used, sum, reserved)
	}
	for _, x := range extra {
		want = append(want, filepath.Join(c.dir, x))
	}
	var got []string
	filepath.WalkDir(c.dir, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			got = append(got, p)
		}
		return nil
	})
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("files in the cache:\n%q\nwant\n%q", got, want)
	}
}

// openFiles lists the process's descriptors open on path (Linux).
func openFiles(path string) int {
	fds, _ := os.ReadDir("/proc/self/fd")
	n := 0
	for _, fd := range fds {
		if to, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.TrimSuffix(to, " (deleted)") == path {
			n++
		}
	}
	return n
}

func newCache(t *testing.T, limit int64) *cache {
	t.Helper()
	c, err := openCache(filepath.Join(t.TempDir(), "cache"), limit)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCacheReopened(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	a, da := blobOf(100)
	b, db := blobOf(100)
	for name, data := range map[string][]byte{
		"sha256/" + da.Encoded(): a,
		"sha256/" + db.Encoded(): b,
		"tmp-123":                a,   // being written when the process stopped
		"sha256/zzz":             a,   // not a digest
		"sha256":                 nil, // a folder, made by the two above
	} {
		if data == nil {
			continue
		}
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o700)
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, dc := blobOf(100)
	if err := os.Symlink(filepath.Join(dir, "sha256", da.Encoded()), filepath.Join(dir, "sha256", dc.Encoded())); err != nil {
		t.Fatal(err) // a blob's name, not a file of its own
	}
	c, err := openCache(dir, 1000)
	if err != nil {
		t.Fatal(err)
	}
	state(t, c, 0)
	if n := len(c.entries); n != 2 || !c.has(da) || !c.has(db) {
		t.Errorf("%d entries, want the two blobs", n)
	}
	c, err = openCache(dir, 150) // room for one of the two
	if err != nil {
		t.Fatal(err)
	}
	state(t, c, 0)
	if n := len(c.entries); n != 1 {
		t.Errorf("%d entries, want the one blob of the two that fits", n)
	}
}

func TestCacheRoom(t *testing.T) {
	c := newCache(t, 100)
	steps := []struct {
		what     string
		size     int64
		want     bool
		reserved int64 // after the step
	}{
		{"all of it", 100, true, 100},
		{"nothing more while that is held", 1, false, 100},
	}
	for _, s := range steps {
		if got := c.reserve(s.size); got != s.want {
			t.Fatalf("%s: reserve(%d) = %v", s.what, s.size, got)
		}
		state(t, c, s.reserved)
	}
	c.release(100)
	if !c.reserve(0) {
		t.Error("reserve(0) refused: an empty blob takes no room")
	}
	state(t, c, 0)

	// With an entry of 60 bytes.
	a, da := blobOf(60)
	if !c.take(fileOf(t, t.TempDir(), a), da, 60) {
		t.Fatal("not taken")
	}
	if c.reserve(101) || !c.has(da) {
		t.Errorf("more than the cache holds: reserved, or the entry evicted for nothing (%v)", c.has(da))
	}
	if !c.reserve(40) || !c.has(da) {
		t.Errorf("the 40 bytes left: refused, or the entry evicted (%v)", c.has(da))
	}
	state(t, c, 40)
	if !c.reserve(1) || c.has(da) {
		t.Errorf("one byte more: refused, or the entry not evicted (%v)", c.has(da))
	}
	state(t, c, 41)
	c.release(41)
	if !c.reserve(60) || c.reserve(60) {
		t.Error("two reservations of 60 in 100: both granted, or the first refused")
	}
	state(t, c, 60)
}

func TestCacheTake(t *testing.T) {
	a, da := blobOf(50)
	t.Run("moved", func(t *testing.T) {
		c := newCache(t, 100)
		f := fileOf(t, t.TempDir(), a)
		if !c.take(f, da, 50) {
			t.Fatal("take = false, want the file moved")
		}
		if _, err := os.Stat(f.Name()); !os.IsNotExist(err) {
			t.Errorf("the piece is still at its name: %v", err)
		}
		state(t, c, 0)
		again := fileOf(t, t.TempDir(), a)
		if c.take(again, da, 50) {
			t.Error("take of a cached blob = true")
		}
		if _, err := os.Stat(again.Name()); err != nil {
			t.Errorf("a piece not taken was moved away: %v", err)
		}
		big := fileOf(t, t.TempDir(), make([]byte, 101))
		if c.take(big, oci.FromBytes(oci.SHA256, make([]byte, 101)), 101) {
			t.Error("a blob larger than the cache was taken")
		}
		state(t, c, 0)
	})
	t.Run("neither moved nor copied", func(t *testing.T) {
		c := newCache(t, 100)
		f := fileOf(t, t.TempDir(), a)
		f.Close()
		os.Remove(f.Name()) // nothing to move, nothing to read
		if c.take(f, da, 50) {
			t.Error("take = true")
		}
		state(t, c, 0)
	})
	t.Run("no folder for the blob", func(t *testing.T) {
		c := newCache(t, 100)
		if err := os.WriteFile(filepath.Join(c.dir, "sha256"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		f := fileOf(t, t.TempDir(), a)
		if c.take(f, da, 50) {
			t.Error("take = true")
		}
		state(t, c, 0, "sha256")
	})
}

func TestCacheOpenRemove(t *testing.T) {
	c := newCache(t, 1000)
	a, da := blobOf(100)
	c.take(fileOf(t, t.TempDir(), a), da, 100)
	for _, off := range []int64{0, 10} {
		f := c.open(da, off)
		if f == nil {
			t.Fatalf("open at %d: not cached", off)
		}
		got, _ := io.ReadAll(f)
		f.Close()
		if !bytes.Equal(got, a[off:]) {
			t.Errorf("open at %d: %d bytes, not the blob's from there", off, len(got))
		}
	}
	// A file in the cache's folder that the cache did not put there is not served.
	b, db := blobOf(100)
	if err := os.WriteFile(c.path(db), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if f := c.open(db, 0); f != nil {
		f.Close()
		t.Error("a file the cache does not know was served")
	}
	os.Remove(c.path(db))
	// A file removed behind the cache's back: not served, and forgotten.
	os.Remove(c.path(da))
	if f := c.open(da, 0); f != nil {
		f.Close()
		t.Error("served after its file was removed")
	}
	if c.has(da) {
		t.Error("an entry whose file is gone is still indexed")
	}
	state(t, c, 0)

	c.take(fileOf(t, t.TempDir(), a), da, 100)
	c.remove(da)
	c.remove(da) // twice: counted once
	if c.has(da) {
		t.Error("removed, still indexed")
	}
	state(t, c, 0)
}

func TestCacheThrough(t *testing.T) {
	a, da := blobOf(1000)
	t.Run("cached already", func(t *testing.T) {
		c := newCache(t, 10_000)
		c.take(fileOf(t, t.TempDir(), a), da, 1000)
		c.missedBefore(da)
		body := io.NopCloser(bytes.NewReader(a))
		if r := c.through(body, da, 1000); r != body {
			t.Error("a cached blob read through the cache again")
		}
		state(t, c, 0)
	})
	t.Run("no file to write", func(t *testing.T) {
		c := newCache(t, 10_000)
		c.missedBefore(da)
		os.RemoveAll(c.dir)
		body := io.NopCloser(bytes.NewReader(a))
		if r := c.through(body, da, 1000); r != body {
			t.Error("read through a file that could not be made")
		}
		c.mu.Lock()
		used := c.used
		c.mu.Unlock()
		if used != 0 {
			t.Errorf("used %d after giving up, want 0", used)
		}
	})
	t.Run("the file cannot be written", func(t *testing.T) {
		c := newCache(t, 10_000)
		c.missedBefore(da)
		r := c.through(io.NopCloser(bytes.NewReader(a)), da, 1000).(*tee)
		// Its file becomes one that cannot be written: the next write fails.
		ro, err := os.Open(r.f.Name())
		if err != nil {
			t.Fatal(err)
		}
		name := r.f.Name()
		r.f.Close()
		r.f = ro
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, a) {
			t.Errorf("the reader lost bytes when the cache gave up: %d, %v", len(got), err)
		}
		r.Close()
		if c.has(da) || openFiles(name) != 0 {
			t.Errorf("cached %v, %d descriptors left on its file", c.has(da), openFiles(name))
		}
		state(t, c, 0)
	})
	t.Run("closed before the end", func(t *testing.T) {
		c := newCache(t, 10_000)
		c.missedBefore(da)
		r := c.through(io.NopCloser(bytes.NewReader(a)), da, 1000).(*tee)
		name := r.f.Name()
		io.ReadFull(r, make([]byte, 500))
		r.Close()
		if c.has(da) || openFiles(name) != 0 {
			t.Errorf("cached %v, %d descriptors left on its file", c.has(da), openFiles(name))
		}
		state(t, c, 0)
	})
}

// TestMissesForgotten: the downloads missed once are remembered up to maxCacheEntries, the
// oldest forgotten first.
func TestMissesForgotten(t *testing.T) {
	defer SetMaxCacheEntries(2)()
	c := newCache(t, 1000)
	_, a := blobOf(32) // 32 random bytes each: three distinct digests
	_, b := blobOf(32)
	_, d := blobOf(32)
	for _, x := range []oci.Digest{a, b, d} {
		if c.missedBefore(x) {
			t.Fatalf("%s: missed before its first miss", x)
		}
	}
	if c.missedBefore(a) {
		t.Error("the oldest miss of three is remembered with room for two")
	}
	if !c.missedBefore(a) {
		t.Error("a miss just remembered is forgotten")
	}
}

package s3blob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/berth-registry/berth/internal/blob"
	"github.com/berth-registry/berth/internal/blob/blobtest"
	"github.com/berth-registry/berth/internal/blob/s3blob"
	"github.com/berth-registry/berth/internal/blob/s3blob/s3test"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/oci"
)

// newCached returns a store under a prefix of its own whose cache keeps up to size bytes in dir.
func newCached(t *testing.T, prefix string, size int64, dir string) (*s3blob.Store, config.S3) {
	return newCachedTemp(t, prefix, size, dir, t.TempDir())
}

// newCachedTemp is newCached with the upload pieces in temp.
func newCachedTemp(t *testing.T, prefix string, size int64, dir, temp string) (*s3blob.Store, config.S3) {
	t.Helper()
	st, err := config.ParseStorage(s3test.URL(t, "cache"))
	if err != nil || st.S3 == nil {
		t.Fatal(err)
	}
	if st.S3.CacheSize != config.DefaultS3CacheSize {
		t.Errorf("cache_size unset: %d, want the default %d", st.S3.CacheSize, config.DefaultS3CacheSize)
	}
	if prefix != "" {
		st.S3.Prefix = prefix
	}
	st.S3.CacheSize = size
	s, err := s3blob.New(context.Background(), s3blob.Config{S3: *st.S3, TempDir: temp, CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return s, *st.S3
}

func TestCachedSuite(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		s, _ := newCached(t, "", 64<<20, t.TempDir())
		return s
	})
}

// TestCache: pushed and fully read blobs are served from the replica's disk; only verified,
// whole blobs are kept, within the size bound, least recently used out first; whether a blob
// exists stays the bucket's answer.
func TestCache(t *testing.T) {
	ctx := context.Background()
	const size = 200_000
	random := func() ([]byte, oci.Digest) {
		b := make([]byte, size)
		rand.Read(b)
		return b, oci.FromBytes(oci.SHA256, b)
	}
	dir := t.TempDir()
	s, cfg := newCached(t, "", size*5/2, dir)
	c, err := s3blob.Client(cfg)
	if err != nil {
		t.Fatal(err)
	}
	key := func(d oci.Digest) string { return cfg.Prefix + "blobs/sha256/" + d.Encoded() }
	drop := func(t *testing.T, ds ...oci.Digest) { // from the bucket, behind the store's back
		t.Helper()
		for _, d := range ds {
			if err := c.RemoveObject(ctx, cfg.Bucket, key(d), minio.RemoveObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	put := func(t *testing.T, d oci.Digest, b []byte) { // into the bucket, behind the store's back
		t.Helper()
		if _, err := c.PutObject(ctx, cfg.Bucket, key(d), bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	push := func(t *testing.T, s *s3blob.Store, b []byte, d oci.Digest) {
		t.Helper()
		w, err := s.Create(ctx, "u"+d.Encoded()[:12])
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
		if err := w.(blob.DigestSyncer).SyncDigest(d); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Commit(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	// read returns blob d from offset as s serves it, nil if it is not found; partial stops after
	// half the blob.
	read := func(t *testing.T, s *s3blob.Store, d oci.Digest, offset int64, partial bool) []byte {
		t.Helper()
		r, err := s.Open(ctx, d, offset)
		if errors.Is(err, blob.ErrNotFound) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if partial {
			b := make([]byte, size/2)
			io.ReadFull(r, b)
			return b
		}
		// As the server reads a blob: as many bytes as the metadata says, not to the end.
		b, err := io.ReadAll(io.LimitReader(r, size-offset))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	onDisk := func(t *testing.T) (n int64) {
		t.Helper()
		filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() {
				info, _ := e.Info()
				n += info.Size()
			}
			return err
		})
		return n
	}

	t.Run("a push is served from the disk", func(t *testing.T) {
		b, d := random()
		push(t, s, b, d)
		drop(t, d)
		if got := read(t, s, d, 0, false); !bytes.Equal(got, b) {
			t.Fatalf("after the bucket lost it: %d bytes, want the %d pushed", len(got), len(b))
		}
		if got := read(t, s, d, 1000, false); !bytes.Equal(got, b[1000:]) {
			t.Errorf("from offset 1000: %d bytes, want %d", len(got), len(b)-1000)
		}
		if _, err := s.Stat(ctx, d); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("Stat of a blob the bucket lost = %v, want ErrNotFound: the bucket says what exists", err)
		}
		// The same with the cache off: the test sees the cache, not something else.
		off, _ := newCached(t, cfg.Prefix, 0, t.TempDir())
		b2, d2 := random()
		push(t, off, b2, d2)
		drop(t, d2)
		if got := read(t, off, d2, 0, false); got != nil {
			t.Errorf("cache_size=0 served %d bytes the bucket lost", len(got))
		}
	})
	t.Run("a whole read goes through the cache when it misses again", func(t *testing.T) {
		b, d := random()
		put(t, d, b)
		for i := range 2 {
			if got := read(t, s, d, 0, false); !bytes.Equal(got, b) {
				t.Fatalf("read %d differs", i+1)
			}
			if i == 0 { // the first miss is remembered, not cached
				b2, d2 := random()
				put(t, d2, b2)
				read(t, s, d2, 0, false)
				drop(t, d2)
				if got := read(t, s, d2, 0, false); got != nil {
					t.Errorf("a blob read once was cached")
				}
			}
		}
		drop(t, d)
		if got := read(t, s, d, 0, false); !bytes.Equal(got, b) {
			t.Errorf("after the bucket lost it: %d bytes, want the %d read twice before", len(got), len(b))
		}
	})
	t.Run("what is not whole and verified is not kept", func(t *testing.T) {
		half, dh := random()
		put(t, dh, half)
		read(t, s, dh, 0, false) // each missed once before
		read(t, s, dh, 0, true)
		offset, do := random()
		put(t, do, offset)
		read(t, s, do, 0, false)
		read(t, s, do, 10, false)
		wrong, dw := random()
		wrong[0] ^= 1 // the bucket holds other bytes than the digest names
		put(t, dw, wrong)
		read(t, s, dw, 0, false)
		read(t, s, dw, 0, false)
		drop(t, dh, do, dw)
		for name, d := range map[string]oci.Digest{"half read": dh, "read from an offset": do, "other bytes": dw} {
			if got := read(t, s, d, 0, false); got != nil {
				t.Errorf("%s: %d bytes served after the bucket lost them", name, len(got))
			}
		}
	})
	t.Run("bounded, least recently used out first", func(t *testing.T) {
		a, da := random()
		b, db := random()
		push(t, s, a, da)
		push(t, s, b, db)
		read(t, s, da, 0, false) // a is used after b
		c, dc := random()
		push(t, s, c, dc)
		drop(t, da, db, dc)
		if got := read(t, s, da, 0, false); !bytes.Equal(got, a) {
			t.Error("the recently read blob was evicted")
		}
		if got := read(t, s, db, 0, false); got != nil {
			t.Error("the least recently used blob was kept beyond the bound")
		}
		if got := read(t, s, dc, 0, false); !bytes.Equal(got, c) {
			t.Error("the newest blob was not kept")
		}
		if n := onDisk(t); n > size*5/2 {
			t.Errorf("%d bytes on disk, bound %d", n, size*5/2)
		}
		big := make([]byte, size*3)
		rand.Read(big)
		dbig := oci.FromBytes(oci.SHA256, big)
		push(t, s, big, dbig)
		drop(t, dbig)
		if got := read(t, s, dbig, 0, false); got != nil {
			t.Error("a blob larger than the cache was cached")
		}
		if got := read(t, s, dc, 0, false); !bytes.Equal(got, c) {
			t.Error("a blob too large to cache evicted the others")
		}
	})
	t.Run("a bounded number of entries", func(t *testing.T) {
		defer s3blob.SetMaxCacheEntries(2)()
		few, _ := newCached(t, cfg.Prefix, 1<<30, t.TempDir())
		var ds []oci.Digest
		for range 3 {
			b, d := random()
			push(t, few, b, d)
			ds = append(ds, d)
		}
		drop(t, ds...)
		for i, d := range ds {
			if got := read(t, few, d, 0, false); (got != nil) != (i > 0) {
				t.Errorf("blob %d of 3 with room for 2 entries: served %v, want %v", i+1, got != nil, i > 0)
			}
		}
		// Misses are remembered as far back as entries fit: of four, the two oldest are forgotten.
		ds = ds[:0]
		for range 4 {
			b, d := random()
			put(t, d, b)
			read(t, few, d, 0, false)
			ds = append(ds, d)
		}
		read(t, few, ds[2], 0, false) // its second miss: cached
		read(t, few, ds[0], 0, false) // its first was forgotten: not cached
		drop(t, ds...)
		if got := read(t, few, ds[0], 0, false); got != nil {
			t.Error("a miss beyond what is remembered counted as a second one")
		}
		if got := read(t, few, ds[2], 0, false); got == nil {
			t.Error("a remembered miss did not make the second one go through the cache")
		}
	})
	t.Run("pieces on another file system", func(t *testing.T) {
		temp, err := os.MkdirTemp("/dev/shm", "berth-pieces-")
		if err != nil {
			t.Skipf("no tmpfs to put the pieces on: %v", err)
		}
		defer os.RemoveAll(temp)
		other, _ := newCachedTemp(t, cfg.Prefix, 1<<30, t.TempDir(), temp)
		b, d := random()
		push(t, other, b, d) // the piece cannot move into the cache: it is copied
		drop(t, d)
		if got := read(t, other, d, 0, false); !bytes.Equal(got, b) {
			t.Error("a push whose piece was on another file system is not served from the cache")
		}
		if left, _ := os.ReadDir(temp); len(left) != 0 {
			t.Errorf("%d files left among the pieces", len(left))
		}
	})
	t.Run("deleted", func(t *testing.T) {
		b, d := random()
		push(t, s, b, d)
		if err := s.DeleteBlob(ctx, d); err != nil {
			t.Fatal(err)
		}
		if got := read(t, s, d, 0, false); got != nil {
			t.Errorf("served %d bytes of a deleted blob", len(got))
		}
	})
	t.Run("reopened", func(t *testing.T) {
		junk := filepath.Join(dir, "tmp-left-by-a-crash")
		os.WriteFile(junk, []byte("partial"), 0o600)
		s2, _ := newCached(t, cfg.Prefix, size*3/2, dir)
		if _, err := os.Stat(junk); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a file left being written is still there: %v", err)
		}
		if n := onDisk(t); n == 0 || n > size*3/2 {
			t.Errorf("%d bytes on disk after reopening with a bound of %d", n, size*3/2)
		}
		b, d := random()
		push(t, s2, b, d)
		drop(t, d)
		if got := read(t, s2, d, 0, false); !bytes.Equal(got, b) {
			t.Error("the reopened cache does not serve a new push")
		}
	})
}

package s3blob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/berth-registry/berth/internal/blob"
	"github.com/berth-registry/berth/internal/blob/blobtest"
	"github.com/berth-registry/berth/internal/blob/s3blob"
	"github.com/berth-registry/berth/internal/blob/s3blob/s3test"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/oci"
)

// newStore returns a store on the S3 server of BERTH_TEST_S3 (a storage URL; scripts/minio.sh
// starts one) under a prefix of its own.
func newStore(t *testing.T) *s3blob.Store {
	s, _ := newStoreAt(t)
	return s
}

// newStoreAt is newStore, with the bucket and prefix it uses.
func newStoreAt(t *testing.T) (*s3blob.Store, config.S3) {
	return newStoreWith(t, func(*config.S3) {})
}

// newStoreWith is newStoreAt with its configuration edited first.
func newStoreWith(t *testing.T, edit func(*config.S3)) (*s3blob.Store, config.S3) {
	return newStoreIn(t, t.TempDir(), edit)
}

// newStoreIn is newStoreWith keeping the pieces being written in temp.
func newStoreIn(t *testing.T, temp string, edit func(*config.S3)) (*s3blob.Store, config.S3) {
	t.Helper()
	st, err := config.ParseStorage(s3test.URL(t, "test"))
	if err != nil || st.S3 == nil {
		t.Fatal(err)
	}
	edit(st.S3)
	s, err := s3blob.New(context.Background(), s3blob.Config{S3: *st.S3, TempDir: temp})
	if err != nil {
		t.Fatal(err)
	}
	return s, *st.S3
}

func TestSuite(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store { return newStore(t) })
}

// TestPieces: a resume inside a piece cuts it; commits of pieces S3 can compose and of pieces it
// cannot both give the bytes written.
func TestPieces(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	random := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	commitAll := func(t *testing.T, id string, chunks ...[]byte) {
		t.Helper()
		w, err := s.Create(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var all []byte
		for _, c := range chunks {
			w.Write(c)
			if err := w.Sync(); err != nil {
				t.Fatal(err)
			}
			all = append(all, c...)
		}
		d := oci.FromBytes(oci.SHA256, all)
		if _, err := w.Commit(ctx, d); err != nil {
			t.Fatal(err)
		}
		r, err := s.Open(ctx, d, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r)
		r.Close()
		if !bytes.Equal(got, all) {
			t.Errorf("%s: blob differs (%d bytes, want %d)", id, len(got), len(all))
		}
	}
	t.Run("compose", func(t *testing.T) { commitAll(t, "compose", random(5<<20), random(5<<20), random(1000)) })
	t.Run("stream", func(t *testing.T) { commitAll(t, "stream", random(1000), random(2000), random(3000)) })
	t.Run("resume inside a piece", func(t *testing.T) {
		data := random(3000)
		w, _ := s.Create(ctx, "cut")
		w.Write(data[:1000])
		w.Sync()
		w.Write(random(500)) // stored, but the caller's checkpoint stays at 1200 of it
		w.Close()
		w2, err := s.Resume(ctx, "cut", 1200)
		if err != nil || w2.Size() != 1200 {
			t.Fatalf("Resume: %v, size %d", err, w2.Size())
		}
		rb, err := w2.(blob.ReadBacker).ReadBack(ctx)
		if err != nil {
			t.Fatal(err)
		}
		head, _ := io.ReadAll(rb)
		rb.Close()
		if len(head) != 1200 || !bytes.Equal(head[:1000], data[:1000]) {
			t.Fatalf("after the cut: %d bytes", len(head))
		}
		w2.Cancel(ctx)
	})
}

// readBlob is blob d as s reads it whole.
func readBlob(t *testing.T, s *s3blob.Store, d oci.Digest) []byte {
	t.Helper()
	r, err := s.Open(context.Background(), d, 0)
	if err != nil {
		t.Fatalf("Open(%s): %v", d, err)
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	return b
}

// TestPlaced: an upload's first piece synced with its digest is stored where that blob belongs,
// so that its commit copies nothing; the upload never removes or changes that object (a blob
// another upload or a manifest may hold), and a resume finds out when it is gone.
func TestPlaced(t *testing.T) {
	ctx := context.Background()
	s, cfg := newStoreAt(t)
	data := make([]byte, 300_000)
	rand.Read(data)
	d := oci.FromBytes(oci.SHA256, data)
	read := func(t *testing.T, d oci.Digest) []byte { return readBlob(t, s, d) }
	place := func(t *testing.T, id string, b []byte) blob.Writer {
		t.Helper()
		w, err := s.Create(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
		if err := w.(blob.DigestSyncer).SyncDigest(oci.FromBytes(oci.SHA256, b)); err != nil {
			t.Fatal(err)
		}
		return w
	}

	t.Run("commit", func(t *testing.T) {
		w := place(t, "whole", data)
		if got := read(t, d); !bytes.Equal(got, data) {
			t.Fatalf("the placed piece reads %d bytes, not the %d written", len(got), len(data))
		}
		w.Close()
		w, err := s.Resume(ctx, "whole", int64(len(data))) // as the PUT that commits does
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Commit(ctx, d); err != nil {
			t.Fatal(err)
		}
		if got := read(t, d); !bytes.Equal(got, data) {
			t.Errorf("after the commit: %d bytes", len(got))
		}
		if ups, _ := s.Uploads(ctx); len(ups) != 0 {
			t.Errorf("the committed upload left %v", ups)
		}
	})

	t.Run("more pieces after it", func(t *testing.T) {
		w := place(t, "more", data[:100_000])
		w.Close()
		w, err := s.Resume(ctx, "more", 100_000)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data[100_000:])
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Commit(ctx, d); err != nil {
			t.Fatal(err)
		}
		if got := read(t, d); !bytes.Equal(got, data) {
			t.Errorf("the blob of two pieces: %d bytes", len(got))
		}
		if got := read(t, oci.FromBytes(oci.SHA256, data[:100_000])); !bytes.Equal(got, data[:100_000]) {
			t.Errorf("the placed first piece changed: %d bytes", len(got))
		}
	})

	t.Run("resume inside it, cancel, delete", func(t *testing.T) {
		head := data[:200_000]
		hd := oci.FromBytes(oci.SHA256, head)
		place(t, "cut", head).Close()
		w, err := s.Resume(ctx, "cut", 150_000)
		if err != nil || w.Size() != 150_000 {
			t.Fatalf("Resume inside the placed piece: %v, size %d", err, w.Size())
		}
		rb, err := w.(blob.ReadBacker).ReadBack(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rb)
		rb.Close()
		if !bytes.Equal(got, head[:150_000]) {
			t.Errorf("after the cut the upload reads %d bytes", len(got))
		}
		if err := w.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
		place(t, "dropped", head).Close()
		if err := s.Delete(ctx, "dropped"); err != nil {
			t.Fatal(err)
		}
		if got := read(t, hd); !bytes.Equal(got, head) {
			t.Errorf("a cut, a cancel and a delete of uploads changed the blob they held: %d bytes", len(got))
		}
	})

	t.Run("gone before the commit", func(t *testing.T) {
		b := data[:50_000]
		place(t, "gone", b).Close()
		if err := s.DeleteBlob(ctx, oci.FromBytes(oci.SHA256, b)); err != nil { // garbage collection
			t.Fatal(err)
		}
		if _, err := s.Resume(ctx, "gone", int64(len(b))); !errors.Is(err, blob.ErrUploadShort) {
			t.Errorf("Resume of an upload whose blob is gone: %v; want ErrUploadShort", err)
		}
	})

	t.Run("a damaged blob object is replaced", func(t *testing.T) {
		b := data[:70_000]
		bd := oci.FromBytes(oci.SHA256, b)
		if _, err := blob.Put(ctx, s, "put", bd, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		c, err := s3blob.Client(cfg)
		if err != nil {
			t.Fatal(err)
		}
		key := cfg.Prefix + "blobs/sha256/" + bd.Encoded()
		if _, err := c.PutObject(ctx, cfg.Bucket, key, bytes.NewReader(b[:10]), 10, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		w := place(t, "repair", b)
		if _, err := w.Commit(ctx, bd); err != nil {
			t.Fatal(err)
		}
		if got := read(t, bd); !bytes.Equal(got, b) {
			t.Errorf("the damaged object was kept: %d bytes", len(got))
		}
	})
}

// TestSignedSuite: the driver's suite with payload_signing=true (a SHA-256 signature of every
// chunk, for stores that refuse CRC32C trailers).
func TestSignedSuite(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		s, _ := newStoreWith(t, func(c *config.S3) { c.PayloadSigning = true })
		return s
	})
}

// flipper forwards TCP connections to target; once armed, it changes the byte at offset at of
// what the client sends next (one byte, once).
type flipper struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	left   int64 // bytes to let through before the flip; < 0: not armed
}

func newFlipper(t *testing.T, target string) *flipper {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &flipper{ln: ln, target: target, left: -1}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return f
}

func (f *flipper) arm(at int64) { f.mu.Lock(); f.left = at; f.mu.Unlock() }

func (f *flipper) serve(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", f.target)
	if err != nil {
		return
	}
	defer up.Close()
	go io.Copy(c, up)
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			f.mu.Lock()
			if f.left >= 0 && f.left < int64(n) {
				buf[f.left] ^= 0x55
				f.left = -1
			} else if f.left >= 0 {
				f.left -= int64(n)
			}
			f.mu.Unlock()
			if _, werr := up.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestChangedOnTheWay: a byte of an upload changed between berth and the store (plain HTTP) is
// refused by the store, with the CRC32C trailer as with payload signing: the upload fails and
// no blob is stored.
func TestChangedOnTheWay(t *testing.T) {
	ctx := context.Background()
	for _, signed := range []bool{false, true} {
		t.Run(fmt.Sprintf("payload_signing=%v", signed), func(t *testing.T) {
			var f *flipper
			temp := t.TempDir()
			s, _ := newStoreIn(t, temp, func(c *config.S3) {
				c.PayloadSigning = signed
				f = newFlipper(t, c.Endpoint)
				c.Endpoint = f.ln.Addr().String()
			})
			data := make([]byte, 1<<20)
			rand.Read(data)
			d := oci.FromBytes(oci.SHA256, data)
			w, err := s.Create(ctx, "flip")
			if err != nil {
				t.Fatal(err)
			}
			w.Write(data)
			f.arm(512 << 10) // past the request's head, inside its body
			if err := w.(blob.DigestSyncer).SyncDigest(d); err == nil {
				t.Fatalf("an upload changed on the way was accepted")
			}
			if _, err := s.Open(ctx, d, 0); !errors.Is(err, blob.ErrNotFound) {
				t.Errorf("Open after the refused upload: %v; want ErrNotFound", err)
			}
			if left, _ := os.ReadDir(temp); len(left) != 0 {
				t.Errorf("the refused piece's file is left: %v", left)
			}
		})
	}
}

// TestWhereBytesLand: what decides the bytes at a blob's key: a commit of one plain piece
// stores it; SyncDigest places only an upload's first bytes (after a Sync it stores a plain
// piece, with nothing written it does nothing); a placed piece committed under another
// algorithm's digest is stored there too; and SyncDigest leaves no file or descriptor behind.
func TestWhereBytesLand(t *testing.T) {
	ctx := context.Background()
	temp := t.TempDir()
	s, _ := newStoreIn(t, temp, func(*config.S3) {})
	data := make([]byte, 200_000)
	rand.Read(data)
	read := func(t *testing.T, d oci.Digest) []byte { return readBlob(t, s, d) }
	commit := func(t *testing.T, w blob.Writer, d oci.Digest) {
		t.Helper()
		if _, err := w.Commit(ctx, d); err != nil {
			t.Fatalf("Commit(%s): %v", d, err)
		}
		if got := read(t, d); !bytes.Equal(got, data) {
			t.Errorf("blob %s: %d bytes, not the %d committed", d, len(got), len(data))
		}
	}
	create := func(t *testing.T, id string) blob.Writer {
		t.Helper()
		w, err := s.Create(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}

	t.Run("one plain piece", func(t *testing.T) {
		w := create(t, "plain")
		w.Write(data)
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
		commit(t, w, oci.FromBytes(oci.SHA256, data))
	})
	t.Run("SyncDigest after a Sync", func(t *testing.T) {
		d := oci.FromBytes(oci.SHA512, data) // not placed by any other subtest
		w := create(t, "after")
		w.Write(data[:50_000])
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
		w.Write(data[50_000:])
		if err := w.(blob.DigestSyncer).SyncDigest(d); err != nil {
			t.Fatalf("SyncDigest of an upload's later bytes: %v", err)
		}
		if _, err := s.Stat(ctx, d); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("the later bytes were placed as blob %s before the commit: %v", d, err)
		}
		commit(t, w, d)
	})
	t.Run("SyncDigest with nothing written", func(t *testing.T) {
		w := create(t, "nothing")
		if err := w.(blob.DigestSyncer).SyncDigest(oci.FromBytes(oci.SHA256, nil)); err != nil {
			t.Errorf("SyncDigest of nothing: %v", err)
		}
		if w.Size() != 0 {
			t.Errorf("size %d after SyncDigest of nothing", w.Size())
		}
		w.Cancel(ctx)
	})
	t.Run("placed, committed under another digest", func(t *testing.T) {
		head := data[:120_000]
		w := create(t, "other")
		w.Write(head)
		if err := w.(blob.DigestSyncer).SyncDigest(oci.FromBytes(oci.SHA256, head)); err != nil {
			t.Fatal(err)
		}
		d := oci.FromBytes(oci.SHA512, head)
		if _, err := w.Commit(ctx, d); err != nil {
			t.Fatal(err)
		}
		if got := read(t, d); !bytes.Equal(got, head) {
			t.Errorf("blob %s: %d bytes", d, len(got))
		}
	})
	// Every piece's file is gone, and no descriptor of this process is open on one.
	left, _ := os.ReadDir(temp)
	if len(left) != 0 {
		t.Errorf("files left in the upload folder: %v", left)
	}
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		if to, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(to, temp) {
			t.Errorf("a descriptor is still open on %s", to)
		}
	}
}

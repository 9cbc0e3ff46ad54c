// Package blobtest is the acceptance suite every blob.Store driver must pass.
package blobtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"

	"github.com/berth-registry/berth/internal/blob"
	"github.com/berth-registry/berth/internal/oci"
)

// Run runs the suite against stores made by newStore (each subtest gets a fresh one).
func Run(t *testing.T, newStore func(t *testing.T) blob.Store) {
	ctx := context.Background()
	random := func(t *testing.T, n int) []byte {
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	read := func(t *testing.T, s blob.Store, d oci.Digest, off int64) []byte {
		t.Helper()
		r, err := s.Open(ctx, d, off)
		if err != nil {
			t.Fatalf("Open(%s, %d): %v", d, off, err)
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("read %s: %v", d, err)
		}
		return b
	}

	t.Run("PutOpenStat", func(t *testing.T) {
		s := newStore(t)
		data := random(t, 100_000)
		d := oci.FromBytes(oci.SHA256, data)
		info, err := blob.Put(ctx, s, "put1", d, bytes.NewReader(data))
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
		if info.Size != int64(len(data)) || info.Digest != d {
			t.Errorf("Put = %+v; want size %d digest %s", info, len(data), d)
		}
		if got := read(t, s, d, 0); !bytes.Equal(got, data) {
			t.Errorf("Open returned %d bytes that differ from the %d put", len(got), len(data))
		}
		if got := read(t, s, d, 99_000); !bytes.Equal(got, data[99_000:]) {
			t.Errorf("Open at offset returned the wrong bytes")
		}
		st, err := s.Stat(ctx, d)
		if err != nil || st.Size != int64(len(data)) {
			t.Errorf("Stat = %+v, %v; want size %d", st, err, len(data))
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		s := newStore(t)
		d := oci.FromBytes(oci.SHA256, []byte("absent"))
		if _, err := s.Open(ctx, d, 0); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("Open(absent) err = %v; want ErrNotFound", err)
		}
		if _, err := s.Stat(ctx, d); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("Stat(absent) err = %v; want ErrNotFound", err)
		}
		if _, err := s.Resume(ctx, "nosuchupload", 0); !errors.Is(err, blob.ErrUploadNotFound) {
			t.Errorf("Resume(absent) err = %v; want ErrUploadNotFound", err)
		}
	})

	t.Run("DigestMismatchLeavesNothing", func(t *testing.T) {
		s := newStore(t)
		d := oci.FromBytes(oci.SHA256, []byte("claimed"))
		_, err := blob.Put(ctx, s, "bad1", d, bytes.NewReader([]byte("actual")))
		if !errors.Is(err, oci.ErrDigestInvalid) {
			t.Fatalf("Put(mismatch) err = %v; want ErrDigestInvalid", err)
		}
		if _, err := s.Stat(ctx, d); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("Stat after failed Put err = %v; want ErrNotFound", err)
		}
	})

	t.Run("ResumeDropsUncheckpointedBytes", func(t *testing.T) {
		s := newStore(t)
		data := random(t, 3000)
		w, err := s.Create(ctx, "resume1")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data[:1000]); err != nil {
			t.Fatal(err)
		}
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
		// Bytes written after the checkpoint at 1000 are lost in a crash.
		if _, err := w.Write([]byte("garbage")); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w, err = s.Resume(ctx, "resume1", 1000)
		if err != nil {
			t.Fatalf("Resume: %v", err)
		}
		if w.Size() != 1000 {
			t.Errorf("Size after Resume = %d; want 1000", w.Size())
		}
		if _, err := w.Write(data[1000:]); err != nil {
			t.Fatal(err)
		}
		d := oci.FromBytes(oci.SHA256, data)
		if _, err := w.Commit(ctx, d); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		if got := read(t, s, d, 0); !bytes.Equal(got, data) {
			t.Errorf("resumed blob differs from the data written")
		}
		if _, err := s.Resume(ctx, "resume1", 0); !errors.Is(err, blob.ErrUploadNotFound) {
			t.Errorf("Resume after Commit err = %v; want ErrUploadNotFound", err)
		}
	})

	t.Run("ResumeShort", func(t *testing.T) {
		s := newStore(t)
		w, err := s.Create(ctx, "short1")
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("12345"))
		w.Close()
		if _, err := s.Resume(ctx, "short1", 10); !errors.Is(err, blob.ErrUploadShort) {
			t.Errorf("Resume past the data err = %v; want ErrUploadShort", err)
		}
	})

	t.Run("CancelAndDelete", func(t *testing.T) {
		s := newStore(t)
		w, err := s.Create(ctx, "cancel1")
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("abc"))
		if err := w.Cancel(ctx); err != nil {
			t.Fatalf("Cancel: %v", err)
		}
		if _, err := s.Resume(ctx, "cancel1", 0); !errors.Is(err, blob.ErrUploadNotFound) {
			t.Errorf("Resume after Cancel err = %v; want ErrUploadNotFound", err)
		}
		w, err = s.Create(ctx, "delete1")
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		if err := s.Delete(ctx, "delete1"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if err := s.Delete(ctx, "delete1"); err != nil {
			t.Errorf("second Delete: %v; want nil", err)
		}
	})

	t.Run("SameBlobTwice", func(t *testing.T) {
		s := newStore(t)
		data := random(t, 5000)
		d := oci.FromBytes(oci.SHA256, data)
		for _, id := range []string{"twice1", "twice2"} {
			if _, err := blob.Put(ctx, s, id, d, bytes.NewReader(data)); err != nil {
				t.Fatalf("Put %s: %v", id, err)
			}
		}
		if got := read(t, s, d, 0); !bytes.Equal(got, data) {
			t.Errorf("blob differs after a second Put")
		}
	})

	t.Run("SHA512", func(t *testing.T) {
		s := newStore(t)
		data := random(t, 777)
		d := oci.FromBytes(oci.SHA512, data)
		if _, err := blob.Put(ctx, s, "sha512", d, bytes.NewReader(data)); err != nil {
			t.Fatalf("Put: %v", err)
		}
		if got := read(t, s, d, 0); !bytes.Equal(got, data) {
			t.Errorf("sha512 blob differs")
		}
	})
}

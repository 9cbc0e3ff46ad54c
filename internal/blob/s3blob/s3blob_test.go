package s3blob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"testing"

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
	t.Helper()
	st, err := config.ParseStorage(s3test.URL(t, "test"))
	if err != nil || st.S3 == nil {
		t.Fatal(err)
	}
	s, err := s3blob.New(context.Background(), s3blob.Config{S3: *st.S3, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return s
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

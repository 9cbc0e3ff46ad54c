package fsblob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/berth-registry/berth/internal/blob"
	"github.com/berth-registry/berth/internal/blob/fsblob"
	"github.com/berth-registry/berth/internal/oci"
)

// BenchmarkPut writes a 64 MiB blob the way a push does — through an upload, hashing as it
// writes, then committing under its digest — and reports MB/s. BenchmarkSHA256 is the limit
// one core sets on it.
func BenchmarkPut(b *testing.B) {
	data := make([]byte, 64<<20)
	ctx := context.Background()
	s, err := fsblob.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	src := rand.NewChaCha8([32]byte{1})
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		_, _ = src.Read(data[:4096]) // a new blob each time
		d := oci.Digest(fmt.Sprintf("sha256:%x", sha256.Sum256(data)))
		b.StartTimer()
		if _, err := blob.Put(ctx, s, fmt.Sprintf("upload%08d", i), d, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSHA256(b *testing.B) {
	data := make([]byte, 64<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		sha256.Sum256(data)
	}
}

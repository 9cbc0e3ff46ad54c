package fsblob

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/berth-registry/berth/internal/oci"
)

// syncRecord is one fsync: of which path, how many bytes it held, and whether the committed
// blob was at its final path at that moment.
type syncRecord struct {
	path      string
	size      int64
	blobThere bool
}

// watchSyncs records every fsync of the package until the test ends.
func watchSyncs(t *testing.T, blobPath string) *[]syncRecord {
	var got []syncRecord
	orig := syncFile
	syncFile = func(f *os.File) error {
		fi, err := f.Stat()
		if err != nil {
			t.Errorf("stat at fsync: %v", err)
		}
		_, there := os.Stat(blobPath)
		got = append(got, syncRecord{path: f.Name(), size: fi.Size(), blobThere: there == nil})
		return orig(f)
	}
	t.Cleanup(func() { syncFile = orig })
	return &got
}

// TestCommitIsDurable checks what "a blob is acknowledged only once durable" needs from the
// filesystem: the upload's data is fsynced with all its bytes before the blob appears, and the
// directory that the rename changed is fsynced before Commit returns.
func TestCommitIsDurable(t *testing.T) {
	ctx := context.Background()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("durable "), 1<<12)
	d := oci.FromBytes(oci.SHA256, data)
	dst := s.blobPath(d)
	syncs := watchSyncs(t, dst)

	w, err := s.Create(ctx, "upload-1")
	if err != nil {
		t.Fatal(err)
	}
	upload := filepath.Join(s.root, "uploads", "upload-1")
	if _, err := w.Write(data[:1000]); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil { // a chunk's checkpoint
		t.Fatal(err)
	}
	if want := []syncRecord{{upload, 1000, false}}; !slices.Equal(*syncs, want) {
		t.Fatalf("Sync after the first chunk: %+v; want %+v", *syncs, want)
	}
	if _, err := w.Write(data[1000:]); err != nil {
		t.Fatal(err)
	}
	*syncs = nil
	if _, err := w.Commit(ctx, d); err != nil {
		t.Fatal(err)
	}
	want := []syncRecord{
		{upload, int64(len(data)), false}, // every byte on disk, before the blob is visible
		{filepath.Dir(dst), 0, true},      // then the rename made durable
	}
	got := *syncs
	if len(got) == 2 {
		got[1].size = 0 // a directory's size says nothing here
	}
	if !slices.Equal(got, want) {
		t.Errorf("fsyncs of Commit: %+v; want %+v", got, want)
	}
}

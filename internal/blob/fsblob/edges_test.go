package fsblob

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-registry/berth/internal/blob"
	"github.com/berth-registry/berth/internal/oci"
)

// openFiles counts this process's open file descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd here: %v", err)
	}
	return len(fds)
}

// TestNoDescriptorLeaks: every way a writer ends (commit, cancel, close, a refused resume)
// gives its file back.
func TestNoDescriptorLeaks(t *testing.T) {
	ctx := context.Background()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	before := openFiles(t)
	for i := range 20 {
		data := []byte(fmt.Sprintf("blob %d", i))
		w, err := s.Create(ctx, fmt.Sprintf("c%d", i))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if _, err := w.Commit(ctx, oci.FromBytes(oci.SHA256, data)); err != nil {
			t.Fatal(err)
		}
		w, _ = s.Create(ctx, fmt.Sprintf("x%d", i))
		w.Write(data)
		if err := w.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
		w, _ = s.Create(ctx, fmt.Sprintf("k%d", i))
		w.Write(data)
		w.Close()
		if _, err := s.Resume(ctx, fmt.Sprintf("k%d", i), 1000); !errors.Is(err, blob.ErrUploadShort) {
			t.Fatalf("resume past the end: %v", err)
		}
	}
	if after := openFiles(t); after > before+2 { // +2: the runtime may open a file of its own
		t.Errorf("%d files open before, %d after 80 writers ended", before, after)
	}
}

// TestCommitReplacesADamagedCopy: a stored file of the wrong size under the digest (a disk
// error, a hand edit) is replaced by the verified upload, not taken for the same content.
func TestCommitReplacesADamagedCopy(t *testing.T) {
	ctx := context.Background()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("the real content")
	d := oci.FromBytes(oci.SHA256, data)
	if err := os.MkdirAll(filepath.Dir(s.blobPath(d)), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.blobPath(d), data[:5], 0o640); err != nil {
		t.Fatal(err)
	}
	w, _ := s.Create(ctx, "u")
	w.Write(data)
	if info, err := w.Commit(ctx, d); err != nil || info.Size != int64(len(data)) {
		t.Fatalf("Commit = %+v, %v", info, err)
	}
	if got, _ := os.ReadFile(s.blobPath(d)); string(got) != string(data) {
		t.Errorf("stored %q after the commit, want %q", got, data)
	}
	// The same content again is taken as stored; the upload's file goes.
	w, _ = s.Create(ctx, "again")
	w.Write(data)
	if _, err := w.Commit(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.root, "uploads", "again")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the second upload's file stayed: %v", err)
	}
}

// TestWalkStopsWhenCancelled: a walk whose context ends stops at the next entry, even inside
// one folder.
func TestWalkStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Three blobs in one folder (the first two hex digits of their digest), and no other: the
	// walk's next entry after the first blob is the second, not a folder.
	byDir := map[string][][]byte{}
	var same [][]byte
	for i := 0; same == nil; i++ {
		data := []byte(fmt.Sprintf("walk %d", i))
		dir := oci.FromBytes(oci.SHA256, data).Encoded()[:2]
		byDir[dir] = append(byDir[dir], data)
		if len(byDir[dir]) == 3 {
			same = byDir[dir]
		}
	}
	for i, data := range same {
		w, _ := s.Create(ctx, fmt.Sprintf("w%d", i))
		w.Write(data)
		if _, err := w.Commit(ctx, oci.FromBytes(oci.SHA256, data)); err != nil {
			t.Fatal(err)
		}
	}
	calls := 0
	err = s.Blobs(ctx, func(blob.Stored) error {
		calls++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Errorf("cancelled in the first callback: %d calls, %v", calls, err)
	}
}

func TestDeleteBlobFailure(t *testing.T) {
	ctx := context.Background()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := oci.FromBytes(oci.SHA256, []byte("x"))
	// Something that cannot be removed stands where the blob would be.
	if err := os.MkdirAll(filepath.Join(s.blobPath(d), "inside"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBlob(ctx, d); err == nil || errors.Is(err, blob.ErrNotFound) {
		t.Errorf("DeleteBlob of what cannot be removed: %v", err)
	}
}

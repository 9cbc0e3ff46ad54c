package fsblob

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/berth-registry/berth/internal/blob"
	"github.com/berth-registry/berth/internal/oci"
)

// TestResumeAgainstCheckpoint: an upload resumes at the recorded offset; bytes written past it
// (a chunk whose checkpoint was never recorded) are cut off; a file shorter than the record is
// refused as short; an id that could not be a file name is unknown, never a path.
func TestResumeAgainstCheckpoint(t *testing.T) {
	ctx := context.Background()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Create(ctx, "up")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("0123456789"))
	if err := w.(*writer).Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.(*writer).Close(); err != nil { // twice is fine
		t.Errorf("second Close: %v", err)
	}
	for _, tc := range []struct {
		offset int64
		err    error
	}{{11, blob.ErrUploadShort}, {10, nil}, {4, nil}} {
		r, err := s.Resume(ctx, "up", tc.offset)
		if !errors.Is(err, tc.err) {
			t.Fatalf("Resume at %d: %v, want %v", tc.offset, err, tc.err)
		}
		if err != nil {
			continue
		}
		if r.Size() != tc.offset {
			t.Errorf("Resume at %d: size %d", tc.offset, r.Size())
		}
		r.Write([]byte("ab"))
		r.(*writer).Close()
		b, _ := os.ReadFile(filepath.Join(s.root, "uploads", "up"))
		if want := "0123456789"[:tc.offset] + "ab"; string(b) != want {
			t.Errorf("Resume at %d then a write: %q, want %q", tc.offset, b, want)
		}
		os.WriteFile(filepath.Join(s.root, "uploads", "up"), []byte("0123456789"), 0o640)
	}
	for _, id := range []string{"../up", "", "a/b"} {
		if _, err := s.Resume(ctx, id, 0); !errors.Is(err, blob.ErrUploadNotFound) {
			t.Errorf("Resume(%q): %v", id, err)
		}
		if _, err := s.Create(ctx, id); !errors.Is(err, blob.ErrUploadNotFound) {
			t.Errorf("Create(%q): %v", id, err)
		}
	}
	if _, err := s.Resume(ctx, "absent", 0); !errors.Is(err, blob.ErrUploadNotFound) {
		t.Errorf("Resume of an absent upload: %v", err)
	}
}

// TestOpenAtAndList: Open reads from an offset; Blobs lists exactly the stored blobs, not
// uploads, temporary files or stray names; Stat and DeleteBlob of an absent blob say so.
func TestOpenAtAndList(t *testing.T) {
	ctx := context.Background()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var want []oci.Digest
	for _, c := range []string{"first blob", "second blob"} {
		d := oci.FromBytes(oci.SHA256, []byte(c))
		w, _ := s.Create(ctx, "u"+c[:1])
		w.Write([]byte(c))
		if _, err := w.Commit(ctx, d); err != nil {
			t.Fatal(err)
		}
		want = append(want, d)
	}
	r, err := s.Open(ctx, want[0], 6)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "blob" {
		t.Errorf("Open at 6: %q", b)
	}
	os.WriteFile(filepath.Join(s.root, "blobs", "sha256", "junk"), []byte("x"), 0o640)
	os.MkdirAll(filepath.Join(s.root, "blobs", "sha256", "ab", "deeper"), 0o750)
	os.WriteFile(filepath.Join(s.root, "blobs", "sha256", "ab", "not-a-digest.tmp"), []byte("x"), 0o640)
	os.WriteFile(filepath.Join(s.root, "uploads", "pending"), []byte("x"), 0o640)
	var got []oci.Digest
	if err := s.Blobs(ctx, func(st blob.Stored) error {
		got = append(got, st.Digest)
		if st.Size <= 0 {
			t.Errorf("%s: size %d", st.Digest, st.Size)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Blobs = %v, want %v", got, want)
	}
	stop := errors.New("stop")
	if err := s.Blobs(ctx, func(blob.Stored) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("an error of the callback: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Blobs(cctx, func(blob.Stored) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled walk: %v", err)
	}
	absent := oci.FromBytes(oci.SHA256, []byte("absent"))
	if _, err := s.Stat(ctx, absent); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Stat of an absent blob: %v", err)
	}
	if err := s.DeleteBlob(ctx, absent); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("DeleteBlob of an absent blob: %v", err)
	}
	if _, err := s.Open(ctx, absent, 0); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Open of an absent blob: %v", err)
	}
	// A store whose blob folder is gone (removed under it) lists nothing, without an error.
	empty, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(empty.root, "blobs"))
	if err := empty.Blobs(ctx, func(blob.Stored) error { t.Error("a blob in an empty store"); return nil }); err != nil {
		t.Errorf("Blobs without its folder: %v", err)
	}
	ups, err := s.Uploads(ctx)
	if err != nil || len(ups) != 1 || ups[0].ID != "pending" || ups[0].ModTime == 0 {
		t.Errorf("Uploads = %+v, %v", ups, err)
	}
}

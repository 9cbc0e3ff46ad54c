// Package fsblob keeps blobs on a local filesystem: blobs/<alg>/<2 hex>/<hex> for content and
// uploads/<id> for uploads in progress. A blob appears by an atomic rename after its data is
// fsynced, so a reader never sees part of one.
package fsblob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-registry/berth/internal/blob"
	"github.com/berth-registry/berth/internal/oci"
)

// Store is a filesystem blob store.
type Store struct {
	root string
}

var (
	_ blob.Store        = (*Store)(nil)
	_ blob.Deleter      = (*Store)(nil)
	_ blob.UploadLister = (*Store)(nil)
	_ blob.Lister       = (*Store)(nil)
	_ blob.ReadBacker   = (*writer)(nil)
)

// New returns a store rooted at dir, creating the folders it needs.
func New(dir string) (*Store, error) {
	for _, sub := range []string{"blobs", "uploads"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("fsblob: %w", err)
		}
	}
	return &Store{root: dir}, nil
}

func (s *Store) blobPath(d oci.Digest) string {
	enc := d.Encoded()
	return filepath.Join(s.root, "blobs", string(d.Algorithm()), enc[:2], enc)
}

func (s *Store) uploadPath(id string) (string, error) {
	if !blob.ValidUploadID(id) {
		return "", fmt.Errorf("fsblob: upload id %q: %w", id, blob.ErrUploadNotFound)
	}
	return filepath.Join(s.root, "uploads", id), nil
}

// Open implements blob.Store.
func (s *Store) Open(ctx context.Context, d oci.Digest, offset int64) (io.ReadCloser, error) {
	f, err := os.Open(s.blobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, blob.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("fsblob: open %s: %w", d, err)
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("fsblob: seek %s: %w", d, err)
		}
	}
	return f, nil
}

// Stat implements blob.Store.
func (s *Store) Stat(ctx context.Context, d oci.Digest) (blob.Info, error) {
	fi, err := os.Stat(s.blobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return blob.Info{}, blob.ErrNotFound
	}
	if err != nil {
		return blob.Info{}, fmt.Errorf("fsblob: stat %s: %w", d, err)
	}
	return blob.Info{Digest: d, Size: fi.Size()}, nil
}

// DeleteBlob implements blob.Deleter.
func (s *Store) DeleteBlob(ctx context.Context, d oci.Digest) error {
	err := os.Remove(s.blobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return blob.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("fsblob: delete %s: %w", d, err)
	}
	return nil
}

// Create implements blob.Store.
func (s *Store) Create(ctx context.Context, id string) (blob.Writer, error) {
	p, err := s.uploadPath(id)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("fsblob: create upload: %w", err)
	}
	return &writer{s: s, path: p, f: f}, nil
}

// Resume implements blob.Store.
func (s *Store) Resume(ctx context.Context, id string, offset int64) (blob.Writer, error) {
	p, err := s.uploadPath(id)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, blob.ErrUploadNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("fsblob: resume upload: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("fsblob: resume upload: %w", err)
	}
	switch {
	case fi.Size() < offset:
		f.Close()
		return nil, fmt.Errorf("fsblob: upload %s has %d bytes, %d recorded: %w", id, fi.Size(), offset, blob.ErrUploadShort)
	case fi.Size() > offset:
		if err := f.Truncate(offset); err != nil {
			f.Close()
			return nil, fmt.Errorf("fsblob: resume upload: %w", err)
		}
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("fsblob: resume upload: %w", err)
	}
	return &writer{s: s, path: p, f: f, size: offset, flushed: offset}, nil
}

// Delete implements blob.Store.
func (s *Store) Delete(ctx context.Context, id string) error {
	p, err := s.uploadPath(id)
	if err != nil {
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("fsblob: delete upload: %w", err)
	}
	return nil
}

// Uploads implements blob.UploadLister.
func (s *Store) Uploads(ctx context.Context) ([]blob.Upload, error) {
	entries, err := os.ReadDir(filepath.Join(s.root, "uploads"))
	if err != nil {
		return nil, fmt.Errorf("fsblob: list uploads: %w", err)
	}
	out := make([]blob.Upload, 0, len(entries))
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, blob.Upload{ID: e.Name(), ModTime: fi.ModTime().Unix()})
	}
	return out, nil
}

type writer struct {
	s      *Store
	path   string
	f      *os.File
	size   int64
	closed bool
	// flushed is how far the disk has been asked to write back (see writeBackEvery).
	flushed int64
}

// writeBackEvery is how much a writer lets accumulate before it asks the kernel to start
// writing it to the disk: the fsync that makes the blob durable then has little left to wait
// for, and the disk works while the rest of the upload arrives.
const writeBackEvery = 4 << 20

func (w *writer) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.size += int64(n)
	if w.size-w.flushed >= writeBackEvery {
		startWriteBack(w.f, w.flushed, w.size-w.flushed)
		w.flushed = w.size
	}
	return n, err
}

func (w *writer) Size() int64 { return w.size }

func (w *writer) Sync() error { return syncFile(w.f) }

func (w *writer) ReadBack(ctx context.Context) (io.ReadCloser, error) {
	return os.Open(w.path)
}

func (w *writer) Commit(ctx context.Context, d oci.Digest) (blob.Info, error) {
	if err := syncFile(w.f); err != nil {
		return blob.Info{}, fmt.Errorf("fsblob: commit %s: %w", d, err)
	}
	if err := w.Close(); err != nil {
		return blob.Info{}, fmt.Errorf("fsblob: commit %s: %w", d, err)
	}
	dst := w.s.blobPath(d)
	if fi, err := os.Stat(dst); err == nil && fi.Size() == w.size {
		// Already stored by another push of the same content.
		return blob.Info{Digest: d, Size: w.size}, os.Remove(w.path)
	}
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return blob.Info{}, fmt.Errorf("fsblob: commit %s: %w", d, err)
	}
	if err := os.Rename(w.path, dst); err != nil {
		return blob.Info{}, fmt.Errorf("fsblob: commit %s: %w", d, err)
	}
	if err := syncDir(dir); err != nil {
		return blob.Info{}, fmt.Errorf("fsblob: commit %s: %w", d, err)
	}
	return blob.Info{Digest: d, Size: w.size}, nil
}

func (w *writer) Cancel(ctx context.Context) error {
	cerr := w.Close()
	if err := os.Remove(w.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("fsblob: cancel upload: %w", err)
	}
	return cerr
}

func (w *writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	return w.f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return syncFile(d)
}

// syncFile is fsync; the durability tests watch it.
var syncFile = (*os.File).Sync

// Blobs implements blob.Lister: it walks blobs/<alg>/<2 hex>/<hex>.
func (s *Store) Blobs(ctx context.Context, fn func(blob.Stored) error) error {
	root := filepath.Join(s.root, "blobs")
	return filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() || ctx.Err() != nil {
			return ctx.Err()
		}
		rel, _ := filepath.Rel(root, path)
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if len(parts) != 3 {
			return nil
		}
		d, err := oci.ParseDigest(parts[0] + ":" + parts[2])
		if err != nil {
			return nil // not a blob (a temporary file)
		}
		info, err := e.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		return fn(blob.Stored{Digest: d, Size: info.Size(), ModTime: info.ModTime()})
	})
}

// Package blob stores content-addressed blobs and the uploads that become them. Store is the
// small core every driver implements; optional capabilities are extension interfaces that callers
// probe for.
package blob

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/berth-registry/berth/internal/oci"
)

// Errors drivers return; callers test them with errors.Is.
var (
	ErrNotFound       = errors.New("blob: not found")
	ErrUploadNotFound = errors.New("blob: upload not found")
	// ErrUploadShort means the upload's stored data is shorter than the offset the caller
	// recorded: the bytes after the last checkpoint were lost.
	ErrUploadShort = errors.New("blob: upload data is shorter than recorded")
)

// Info describes a stored blob.
type Info struct {
	Digest oci.Digest
	Size   int64
}

// Store is what the registry needs of a blob store.
type Store interface {
	// Open reads blob d from offset on. It returns ErrNotFound for an unknown blob.
	Open(ctx context.Context, d oci.Digest, offset int64) (io.ReadCloser, error)
	// Stat returns the size of blob d, or ErrNotFound.
	Stat(ctx context.Context, d oci.Digest) (Info, error)
	// Create starts a new upload with the given id.
	Create(ctx context.Context, uploadID string) (Writer, error)
	// Resume continues upload id at offset, dropping anything stored past offset (bytes written
	// after the caller's last checkpoint). It returns ErrUploadNotFound or ErrUploadShort.
	Resume(ctx context.Context, uploadID string, offset int64) (Writer, error)
	// Delete removes upload id's data; an unknown id is not an error.
	Delete(ctx context.Context, uploadID string) error
}

// Writer appends to an upload. Commit makes the data visible as a blob; Close keeps the data
// for a later Resume; Cancel discards it.
type Writer interface {
	io.Writer
	// Size is the number of bytes in the upload so far.
	Size() int64
	// Sync makes what was written durable, so that a checkpoint at Size survives a crash.
	Sync() error
	// Commit publishes the upload as blob d, atomically: a reader sees the whole blob or none.
	// The caller has verified d. Committing a blob that already exists is not an error.
	Commit(ctx context.Context, d oci.Digest) (Info, error)
	Cancel(ctx context.Context) error
	Close() error
}

// DigestSyncer is an optional Writer capability: SyncDigest is Sync for the first bytes of an
// upload (nothing was synced before), whose digest the caller has computed as they were written.
// The driver may keep them where blob d belongs, readable by Open before any Commit, so that a
// Commit(d) that follows moves nothing; the caller keeps garbage collection away from d while
// the upload is open (store.CheckpointUpload's held digest).
type DigestSyncer interface {
	SyncDigest(d oci.Digest) error
}

// ReadBacker is an optional Writer capability: reading the upload's data before commit, for
// verifying a digest under an algorithm that was not computed while writing.
type ReadBacker interface {
	ReadBack(ctx context.Context) (io.ReadCloser, error)
}

// Deleter is an optional Store capability: removing a committed blob (garbage collection).
type Deleter interface {
	DeleteBlob(ctx context.Context, d oci.Digest) error
}

// Stored is a blob as a Lister reports it.
type Stored struct {
	Digest  oci.Digest
	Size    int64
	ModTime time.Time
}

// Lister is an optional Store capability: listing every stored blob (garbage collection).
type Lister interface {
	Blobs(ctx context.Context, fn func(Stored) error) error
}

// Redirector is an optional Store capability: a URL from which clients download blob d
// themselves, valid for ttl; "" means serve it through berth.
type Redirector interface {
	URL(ctx context.Context, d oci.Digest, ttl time.Duration) (string, error)
}

// Upload describes upload data held by a driver, for purging abandoned uploads.
type Upload struct {
	ID      string
	ModTime int64 // unix seconds
}

// UploadLister is an optional Store capability: listing upload data, so that data with no
// upload session (left by a crash) can be removed.
type UploadLister interface {
	Uploads(ctx context.Context) ([]Upload, error)
}

// Put stores r as blob d through a new upload called uploadID, verifying the digest while
// writing. It returns an error wrapping oci.ErrDigestInvalid when the content does not match.
func Put(ctx context.Context, s Store, uploadID string, d oci.Digest, r io.Reader) (Info, error) {
	w, err := s.Create(ctx, uploadID)
	if err != nil {
		return Info{}, err
	}
	h := d.Algorithm().New()
	n, err := io.Copy(io.MultiWriter(w, h), r)
	if err != nil {
		return Info{}, errors.Join(err, w.Cancel(ctx))
	}
	if got := oci.NewDigest(d.Algorithm(), h); got != d {
		return Info{}, errors.Join(&DigestMismatchError{Want: d, Got: got}, w.Cancel(ctx))
	}
	if ds, ok := w.(DigestSyncer); ok && n > 0 {
		if err := ds.SyncDigest(d); err != nil {
			return Info{}, errors.Join(err, w.Cancel(ctx))
		}
	}
	return w.Commit(ctx, d)
}

// DigestMismatchError reports content whose digest is not the one claimed.
type DigestMismatchError struct{ Want, Got oci.Digest }

func (e *DigestMismatchError) Error() string {
	return "content digest " + string(e.Got) + " does not match " + string(e.Want)
}

func (e *DigestMismatchError) Unwrap() error { return oci.ErrDigestInvalid }

// ValidUploadID reports whether id can name an upload in a driver's namespace (a file name, an
// object key segment): 1 to 128 characters of [A-Za-z0-9_-]. Drivers refuse any other id as
// ErrUploadNotFound, so that an id from the network never reaches a path.
func ValidUploadID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

package s3blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/berth-registry/berth/internal/blob"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/oci"
)

// writer appends to an upload: bytes go to a local temporary file, which Sync (or Close)
// uploads as the piece that starts at its offset.
type writer struct {
	s      *Store
	id     string
	dir    string
	ctx    context.Context
	pieces []piece
	size   int64
	f      *os.File // the piece being written, nil when everything is stored
	start  int64    // its offset
	done   bool
}

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("s3blob: write after close")
	}
	if w.f == nil {
		f, err := os.CreateTemp(w.s.temp, "berth-upload-*")
		if err != nil {
			return 0, fmt.Errorf("s3blob: %w", err)
		}
		w.f, w.start = f, w.size
	}
	n, err := w.f.Write(p)
	w.size += int64(n)
	return n, err
}

func (w *writer) Size() int64 { return w.size }

// Sync stores the piece written since the last Sync, so that a checkpoint at Size survives the
// loss of this replica.
func (w *writer) Sync() error { return w.flush() }

func (w *writer) flush() error {
	if w.f == nil {
		return nil
	}
	f := w.f
	w.f = nil
	defer func() { f.Close(); os.Remove(f.Name()) }()
	n := w.size - w.start
	if n == 0 {
		return nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("s3blob: %w", err)
	}
	key := fmt.Sprintf("%s%020d", w.dir, w.start)
	// The flush outlives a client that hung up: what it sent before is kept, as on a filesystem.
	ctx := context.WithoutCancel(w.ctx)
	if _, err := w.s.c.PutObject(ctx, w.s.cfg.Bucket, key, f, n, PutOptions(w.s.cfg.S3, n)); err != nil {
		w.size = w.start
		return fmt.Errorf("s3blob: store piece %s: %w", key, err)
	}
	w.pieces = append(w.pieces, piece{key: key, rec: key, offset: w.start, end: w.size})
	return nil
}

// SyncDigest implements blob.DigestSyncer: the upload's first piece is stored where blob d
// belongs (unless that blob is there already), with a record of it in the upload, so that a
// Commit(d) copies nothing. Any other piece is synced as usual.
func (w *writer) SyncDigest(d oci.Digest) error {
	if w.f == nil || w.start != 0 || len(w.pieces) > 0 {
		return w.flush()
	}
	f := w.f
	w.f = nil
	moved := false // into the cache
	defer func() {
		f.Close()
		if !moved {
			os.Remove(f.Name())
		}
	}()
	n := w.size
	fail := func(err error) error { w.size = 0; return err } // nothing of the upload is stored
	ctx := context.WithoutCancel(w.ctx)                      // as in flush: what the client sent is kept
	key := w.s.blobKey(d)
	info, err := w.s.Stat(ctx, d)
	switch {
	case err == nil && info.Size == n: // the same bytes are there already
	case err == nil || errors.Is(err, blob.ErrNotFound): // a damaged blob object is replaced by the verified bytes
		if _, err = f.Seek(0, io.SeekStart); err == nil {
			_, err = w.s.c.PutObject(ctx, w.s.cfg.Bucket, key, f, n, PutOptions(w.s.cfg.S3, n))
		}
		if err != nil {
			return fail(fmt.Errorf("s3blob: store %s: %w", d, err))
		}
	default:
		return fail(err)
	}
	// Without its record the blob object is one nothing references: garbage collection's.
	rec := placedRecord(w.dir, 0, n, d)
	if _, err := w.s.c.PutObject(ctx, w.s.cfg.Bucket, rec, strings.NewReader(""), 0, minio.PutObjectOptions{}); err != nil {
		return fail(fmt.Errorf("s3blob: store piece %s: %w", rec, err))
	}
	moved = w.s.cache.take(f, d, n) // the bytes d was computed from, as they arrived
	w.pieces = append(w.pieces, piece{key: key, rec: rec, offset: 0, end: n, placed: true})
	return nil
}

// PutOptions are the options of berth's uploads of size bytes to the store cfg names: up to
// 5 GiB in one streamed PUT, never held in memory; beyond that, one part at a time in at most
// 9 000 parts. The bytes are read once, with a CRC32C trailer the store checks, or (with
// payload_signing=true over plain HTTP) twice, to sign them.
func PutOptions(cfg config.S3, size int64) minio.PutObjectOptions {
	part := max(int64(minPart), size)
	if size > maxCopy {
		part = max(int64(minPart), (size+8999)/9000)
	}
	o := minio.PutObjectOptions{ContentType: "application/octet-stream", PartSize: uint64(part), NumThreads: 1}
	if !cfg.PayloadSigning {
		// Checksum, not AutoChecksum: minio-go 7.4.1 sends an automatic one's algorithm header
		// without the checksum itself (TestChangedOnTheWay).
		o.DisableContentSha256, o.Checksum = true, minio.ChecksumCRC32C
	}
	return o
}

// ReadBack implements blob.ReadBacker: the upload's bytes so far.
func (w *writer) ReadBack(ctx context.Context) (io.ReadCloser, error) {
	if err := w.flush(); err != nil {
		return nil, err
	}
	return w.s.concat(ctx, w.pieces), nil
}

// concat reads pieces one after the other, opening each when it is reached.
func (s *Store) concat(ctx context.Context, ps []piece) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		for _, p := range ps {
			obj, err := s.c.GetObject(ctx, s.cfg.Bucket, p.key, minio.GetObjectOptions{})
			if err == nil {
				_, err = io.Copy(pw, obj)
				obj.Close()
			}
			if err != nil {
				pw.CloseWithError(fmt.Errorf("s3blob: read piece %s: %w", p.key, err))
				return
			}
		}
		pw.Close()
	}()
	return pr
}

// Commit implements blob.Writer: the pieces become blob d, then the upload is removed.
func (w *writer) Commit(ctx context.Context, d oci.Digest) (blob.Info, error) {
	if err := w.flush(); err != nil {
		return blob.Info{}, err
	}
	w.done = true
	info := blob.Info{Digest: d, Size: w.size}
	if len(w.pieces) == 1 && w.pieces[0].placed && w.pieces[0].key == w.s.blobKey(d) {
		return info, w.removeRecords(ctx) // the bytes are where the blob belongs
	}
	if _, err := w.s.Stat(ctx, d); err == nil { // the blob is already there: same content
		return info, w.removeRecords(ctx)
	} else if !errors.Is(err, blob.ErrNotFound) {
		return blob.Info{}, err
	}
	if err := w.s.assemble(ctx, w.s.blobKey(d), w.pieces, w.size); err != nil {
		return blob.Info{}, err
	}
	return info, w.removeRecords(ctx)
}

// removeRecords removes the committed upload's marker and pieces (a placed piece's record, not
// its blob) in one request. Anything else under the upload (left by a crash) has no session any
// more, which the purge of orphaned uploads removes.
func (w *writer) removeRecords(ctx context.Context) error {
	keys := make(chan minio.ObjectInfo, len(w.pieces)+1)
	keys <- minio.ObjectInfo{Key: w.dir + "info"}
	for _, p := range w.pieces {
		keys <- minio.ObjectInfo{Key: p.rec}
	}
	close(keys)
	for e := range w.s.c.RemoveObjects(ctx, w.s.cfg.Bucket, keys, minio.RemoveObjectsOptions{}) {
		if e.Err != nil && !notFound(e.Err) {
			return fmt.Errorf("s3blob: delete upload %s: %w", w.id, e.Err)
		}
	}
	return nil
}

// assemble writes the pieces, in order, to key: a server-side copy for one piece, a server-side
// compose when every piece but the last is at least S3's smallest part, else a streamed upload.
func (s *Store) assemble(ctx context.Context, key string, ps []piece, size int64) error {
	dst := minio.CopyDestOptions{Bucket: s.cfg.Bucket, Object: key}
	composable := len(ps) > 1 && len(ps) <= 10000
	for i, p := range ps {
		if i < len(ps)-1 && p.end-p.offset < minPart {
			composable = false
		}
	}
	var err error
	switch {
	case len(ps) == 1 && size <= maxCopy:
		_, err = s.c.CopyObject(ctx, dst, minio.CopySrcOptions{Bucket: s.cfg.Bucket, Object: ps[0].key})
	case composable:
		srcs := make([]minio.CopySrcOptions, len(ps))
		for i, p := range ps {
			srcs[i] = minio.CopySrcOptions{Bucket: s.cfg.Bucket, Object: p.key}
		}
		_, err = s.c.ComposeObject(ctx, dst, srcs...)
	default:
		r := s.concat(ctx, ps)
		defer r.Close()
		_, err = s.c.PutObject(ctx, s.cfg.Bucket, key, r, size, PutOptions(s.cfg.S3, size))
	}
	if err != nil {
		return fmt.Errorf("s3blob: commit %s: %w", key, err)
	}
	return nil
}

// Cancel implements blob.Writer: the upload's data is removed.
func (w *writer) Cancel(ctx context.Context) error {
	w.done = true
	if w.f != nil {
		w.f.Close()
		os.Remove(w.f.Name())
		w.f = nil
	}
	return w.s.removePrefix(ctx, w.dir)
}

// Close implements blob.Writer: what was written is stored for a later Resume.
func (w *writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	return w.flush()
}

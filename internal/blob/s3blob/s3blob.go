// Package s3blob keeps blobs in an S3-compatible object store (AWS S3, MinIO, Ceph RGW …)
// through minio-go: blobs/<alg>/<hex> for content, and for each upload in progress a marker
// uploads/<id>/info and one object per checkpoint, uploads/<id>/<offset>, holding the bytes
// written from that offset to the next. Nothing of an upload lives on the replica that wrote
// it once the writer is synced or closed, so any replica resumes any upload. Commit assembles
// the pieces into the blob object server-side (copy or compose) when S3's part rules allow,
// else by streaming them through; the blob object appears whole or not at all.
package s3blob

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/berth-registry/berth/internal/blob"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/oci"
)

// minPart is S3's smallest multipart part (all but the last).
const minPart = 5 << 20

// maxCopy is the largest object one server-side copy may produce.
const maxCopy = 5 << 30

// Config names a bucket and how to reach it (config.S3, read from the storage URL by
// config.ParseStorage), and where pieces wait between checkpoints.
type Config struct {
	config.S3
	// TempDir holds the piece being written between checkpoints; empty means os.TempDir().
	TempDir string
	// CacheDir keeps up to S3.CacheSize bytes of recently pushed and pulled blobs (the replica's
	// own disk, read before the bucket); empty means no cache.
	CacheDir string
}

// Store is an S3 blob store.
type Store struct {
	c     *minio.Client
	core  minio.Core // the same client's plain calls: a GET that answers at once, no read-ahead
	cfg   Config
	temp  string
	cache *cache // nil: none
}

var (
	_ blob.Store        = (*Store)(nil)
	_ blob.Deleter      = (*Store)(nil)
	_ blob.UploadLister = (*Store)(nil)
	_ blob.Lister       = (*Store)(nil)
	_ blob.ReadBacker   = (*writer)(nil)
	_ blob.DigestSyncer = (*writer)(nil)
)

// Client is a client of the endpoint cfg names, with its credentials, as berth reaches it.
func Client(cfg config.S3) (*minio.Client, error) {
	creds := credentials.NewChainCredentials([]credentials.Provider{&credentials.EnvAWS{}, &credentials.EnvMinio{}})
	if cfg.CredentialsFile != "" {
		creds = credentials.NewFileAWSCredentials(cfg.CredentialsFile, cfg.Profile)
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	// Without payload signing, uploads carry a CRC32C trailer (one pass over the data, which the
	// store checks) instead of a SHA-256 of every chunk on both sides.
	c, err := minio.New(endpointOf(cfg), &minio.Options{Creds: creds, Secure: !cfg.Insecure, Region: cfg.Region, BucketLookup: lookup,
		TrailingHeaders: !cfg.PayloadSigning})
	if err != nil {
		return nil, fmt.Errorf("s3blob: %w", err)
	}
	return c, nil
}

func endpointOf(cfg config.S3) string {
	if cfg.Endpoint == "" {
		return "s3.amazonaws.com"
	}
	return cfg.Endpoint
}

// New connects to the bucket, which must exist.
func New(ctx context.Context, cfg Config) (*Store, error) {
	endpoint := endpointOf(cfg.S3)
	c, err := Client(cfg.S3)
	if err != nil {
		return nil, err
	}
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3blob: bucket %q at %s: %w", cfg.Bucket, endpoint, err)
	}
	if !ok && cfg.CreateBucket {
		if err := c.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region}); err != nil &&
			minio.ToErrorResponse(err).Code != "BucketAlreadyOwnedByYou" {
			return nil, fmt.Errorf("s3blob: create bucket %q at %s: %w", cfg.Bucket, endpoint, err)
		}
	} else if !ok {
		return nil, fmt.Errorf("s3blob: bucket %q does not exist at %s (create it, or add create_bucket=true)", cfg.Bucket, endpoint)
	}
	if !cfg.PayloadSigning {
		// A store that refuses trailing checksums says so now, not at the first push.
		var b [8]byte
		rand.Read(b[:])
		key := cfg.Prefix + "uploads/probe-" + hex.EncodeToString(b[:])
		if _, err := c.PutObject(ctx, cfg.Bucket, key, strings.NewReader("berth"), 5, PutOptions(cfg.S3, 5)); err != nil {
			return nil, fmt.Errorf("s3blob: a test upload to bucket %q at %s failed (a store that refuses CRC32C trailers needs payload_signing=true in the storage URL): %w", cfg.Bucket, endpoint, err)
		}
		c.RemoveObject(ctx, cfg.Bucket, key, minio.RemoveObjectOptions{})
	}
	temp := cfg.TempDir
	if temp == "" {
		temp = os.TempDir()
	}
	st := &Store{c: c, core: minio.Core{Client: c}, cfg: cfg, temp: temp}
	if cfg.CacheDir != "" && cfg.CacheSize > 0 {
		if st.cache, err = openCache(cfg.CacheDir, cfg.CacheSize); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func (s *Store) blobKey(d oci.Digest) string {
	return s.cfg.Prefix + "blobs/" + string(d.Algorithm()) + "/" + d.Encoded()
}

func (s *Store) uploadDir(id string) (string, error) {
	if !blob.ValidUploadID(id) {
		return "", fmt.Errorf("s3blob: upload id %q: %w", id, blob.ErrUploadNotFound)
	}
	return s.cfg.Prefix + "uploads/" + id + "/", nil
}

func notFound(err error) bool {
	code := minio.ToErrorResponse(err).Code
	return code == "NoSuchKey" || code == "NotFound" || code == "NoSuchUpload"
}

// Open implements blob.Store: the cached file, else one GET, whose reply says whether the blob
// exists (before the caller has written anything) and streams it — through the cache when the
// whole blob is read.
func (s *Store) Open(ctx context.Context, d oci.Digest, offset int64) (io.ReadCloser, error) {
	if f := s.cache.open(d, offset); f != nil {
		return f, nil
	}
	var o minio.GetObjectOptions
	if offset > 0 {
		if err := o.SetRange(offset, 0); err != nil {
			return nil, fmt.Errorf("s3blob: %w", err)
		}
	}
	body, info, _, err := s.core.GetObject(ctx, s.cfg.Bucket, s.blobKey(d), o)
	if notFound(err) {
		return nil, blob.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("s3blob: get %s: %w", d, err)
	}
	if offset == 0 {
		return s.cache.through(body, d, info.Size), nil
	}
	return body, nil
}

// Stat implements blob.Store.
func (s *Store) Stat(ctx context.Context, d oci.Digest) (blob.Info, error) {
	info, err := s.c.StatObject(ctx, s.cfg.Bucket, s.blobKey(d), minio.StatObjectOptions{})
	if notFound(err) {
		return blob.Info{}, blob.ErrNotFound
	}
	if err != nil {
		return blob.Info{}, fmt.Errorf("s3blob: stat %s: %w", d, err)
	}
	return blob.Info{Digest: d, Size: info.Size}, nil
}

// URL returns a presigned GET URL of blob d valid for ttl, when redirects are configured ("" if
// not).
func (s *Store) URL(ctx context.Context, d oci.Digest, ttl time.Duration) (string, error) {
	if !s.cfg.Redirect {
		return "", nil
	}
	u, err := s.c.PresignedGetObject(ctx, s.cfg.Bucket, s.blobKey(d), ttl, nil)
	if err != nil {
		return "", fmt.Errorf("s3blob: presign %s: %w", d, err)
	}
	return u.String(), nil
}

// DeleteBlob implements blob.Deleter.
func (s *Store) DeleteBlob(ctx context.Context, d oci.Digest) error {
	s.cache.remove(d)
	if err := s.c.RemoveObject(ctx, s.cfg.Bucket, s.blobKey(d), minio.RemoveObjectOptions{}); err != nil && !notFound(err) {
		return fmt.Errorf("s3blob: delete %s: %w", d, err)
	}
	return nil
}

// piece is one checkpointed part of an upload: the object key holds its bytes; rec is its
// object in the upload (key itself, or for a placed piece a record naming the blob).
type piece struct {
	key, rec    string
	offset, end int64
	// placed: the bytes are blob key's, stored there by SyncDigest (an upload's first piece):
	// the upload never removes or changes that object, which another upload or a manifest may
	// hold as well.
	placed bool
}

// placedRecord names the record of a placed piece: uploads/<id>/<offset>.<end>.<alg>.<hex>.
func placedRecord(dir string, offset, end int64, d oci.Digest) string {
	return fmt.Sprintf("%s%020d.%020d.%s.%s", dir, offset, end, d.Algorithm(), d.Encoded())
}

// parsePiece reads the piece an upload's object name stands for (ok false for its marker and
// anything else).
func (s *Store) parsePiece(key, name string, size int64) (piece, bool) {
	if off, err := strconv.ParseInt(name, 10, 64); err == nil {
		return piece{key: key, rec: key, offset: off, end: off + size}, off >= 0
	}
	parts := strings.Split(name, ".")
	if len(parts) != 4 {
		return piece{}, false
	}
	off, err1 := strconv.ParseInt(parts[0], 10, 64)
	end, err2 := strconv.ParseInt(parts[1], 10, 64)
	d, err3 := oci.ParseDigest(parts[2] + ":" + parts[3])
	if err1 != nil || err2 != nil || err3 != nil || off < 0 || end < off {
		return piece{}, false
	}
	return piece{key: s.blobKey(d), rec: key, offset: off, end: end, placed: true}, true
}

// pieces lists upload id's pieces in order; exists is false when its marker is missing.
func (s *Store) pieces(ctx context.Context, id string) (ps []piece, exists bool, err error) {
	dir, err := s.uploadDir(id)
	if err != nil {
		return nil, false, err
	}
	for obj := range s.c.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: dir}) {
		if obj.Err != nil {
			return nil, false, fmt.Errorf("s3blob: list %s: %w", dir, obj.Err)
		}
		name := strings.TrimPrefix(obj.Key, dir)
		if name == "info" {
			exists = true
			continue
		}
		if p, ok := s.parsePiece(obj.Key, name, obj.Size); ok {
			ps = append(ps, p)
		}
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].offset < ps[j].offset })
	return ps, exists, nil
}

// Create implements blob.Store.
func (s *Store) Create(ctx context.Context, id string) (blob.Writer, error) {
	dir, err := s.uploadDir(id)
	if err != nil {
		return nil, err
	}
	if _, err := s.c.PutObject(ctx, s.cfg.Bucket, dir+"info", strings.NewReader(""), 0, minio.PutObjectOptions{}); err != nil {
		return nil, fmt.Errorf("s3blob: create upload %s: %w", id, err)
	}
	return &writer{s: s, id: id, dir: dir, ctx: ctx}, nil
}

// Resume implements blob.Store: pieces from offset on are dropped, and a piece that crosses it
// is cut back to it (server-side).
func (s *Store) Resume(ctx context.Context, id string, offset int64) (blob.Writer, error) {
	ps, exists, err := s.pieces(ctx, id)
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, blob.ErrUploadNotFound
	}
	dir, _ := s.uploadDir(id)
	var kept []piece
	var size int64
	for _, p := range ps {
		switch {
		case p.offset >= offset:
			if err := s.c.RemoveObject(ctx, s.cfg.Bucket, p.rec, minio.RemoveObjectOptions{}); err != nil {
				return nil, fmt.Errorf("s3blob: resume %s: %w", id, err)
			}
		case p.placed:
			// The blob object is not the upload's to change: garbage collection may even have
			// taken it (an upload idle for longer than its grace, on an older server that did
			// not spare it). A cut copies its head into a piece of the upload's own.
			info, err := s.c.StatObject(ctx, s.cfg.Bucket, p.key, minio.StatObjectOptions{})
			if notFound(err) || err == nil && info.Size != p.end-p.offset {
				return nil, fmt.Errorf("%w: the blob holding bytes %d-%d is gone", blob.ErrUploadShort, p.offset, p.end)
			}
			if err != nil {
				return nil, fmt.Errorf("s3blob: resume %s: %w", id, err)
			}
			if p.end > offset {
				own := fmt.Sprintf("%s%020d", dir, p.offset)
				if err := s.copyHead(ctx, p.key, own, offset-p.offset); err != nil {
					return nil, fmt.Errorf("s3blob: resume %s: %w", id, err)
				}
				if err := s.c.RemoveObject(ctx, s.cfg.Bucket, p.rec, minio.RemoveObjectOptions{}); err != nil {
					return nil, fmt.Errorf("s3blob: resume %s: %w", id, err)
				}
				p = piece{key: own, rec: own, offset: p.offset, end: offset}
			}
			kept, size = append(kept, p), p.end
		case p.end > offset: // cut the piece back to offset
			tmp := p.key + ".cut"
			if err := s.copyHead(ctx, p.key, tmp, offset-p.offset); err != nil {
				return nil, fmt.Errorf("s3blob: resume %s: %w", id, err)
			}
			if _, err := s.c.CopyObject(ctx, minio.CopyDestOptions{Bucket: s.cfg.Bucket, Object: p.key},
				minio.CopySrcOptions{Bucket: s.cfg.Bucket, Object: tmp}); err != nil {
				return nil, fmt.Errorf("s3blob: resume %s: %w", id, err)
			}
			s.c.RemoveObject(ctx, s.cfg.Bucket, tmp, minio.RemoveObjectOptions{})
			p.end = offset
			kept, size = append(kept, p), offset
		default:
			kept, size = append(kept, p), p.end
		}
	}
	if size < offset {
		return nil, fmt.Errorf("%w: %d bytes stored, %d recorded", blob.ErrUploadShort, size, offset)
	}
	return &writer{s: s, id: id, dir: dir, ctx: ctx, pieces: kept, size: size}, nil
}

// copyHead copies the first n bytes of object src to dst, server-side (a ranged copy needs
// compose).
func (s *Store) copyHead(ctx context.Context, src, dst string, n int64) error {
	from := minio.CopySrcOptions{Bucket: s.cfg.Bucket, Object: src, MatchRange: true, Start: 0, End: n - 1}
	_, err := s.c.ComposeObject(ctx, minio.CopyDestOptions{Bucket: s.cfg.Bucket, Object: dst}, from)
	return err
}

// Delete implements blob.Store.
func (s *Store) Delete(ctx context.Context, id string) error {
	dir, err := s.uploadDir(id)
	if err != nil {
		return nil
	}
	return s.removePrefix(ctx, dir)
}

func (s *Store) removePrefix(ctx context.Context, prefix string) error {
	objs := make(chan minio.ObjectInfo)
	var listErr error
	go func() {
		defer close(objs)
		for obj := range s.c.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if obj.Err != nil {
				listErr = obj.Err
				return
			}
			objs <- obj
		}
	}()
	for e := range s.c.RemoveObjects(ctx, s.cfg.Bucket, objs, minio.RemoveObjectsOptions{}) {
		if e.Err != nil && !notFound(e.Err) {
			return fmt.Errorf("s3blob: delete %s: %w", prefix, e.Err)
		}
	}
	if listErr != nil {
		return fmt.Errorf("s3blob: delete %s: %w", prefix, listErr)
	}
	return nil
}

// Uploads implements blob.UploadLister: each upload's id and the time of its newest object.
func (s *Store) Uploads(ctx context.Context) ([]blob.Upload, error) {
	prefix := s.cfg.Prefix + "uploads/"
	latest := map[string]int64{}
	for obj := range s.c.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("s3blob: list uploads: %w", obj.Err)
		}
		id, _, ok := strings.Cut(strings.TrimPrefix(obj.Key, prefix), "/")
		if !ok {
			continue
		}
		if t := obj.LastModified.Unix(); t > latest[id] {
			latest[id] = t
		}
	}
	out := make([]blob.Upload, 0, len(latest))
	for id, t := range latest {
		out = append(out, blob.Upload{ID: id, ModTime: t})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Blobs implements blob.Lister.
func (s *Store) Blobs(ctx context.Context, fn func(blob.Stored) error) error {
	prefix := s.cfg.Prefix + "blobs/"
	for obj := range s.c.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("s3blob: list blobs: %w", obj.Err)
		}
		alg, enc, ok := strings.Cut(strings.TrimPrefix(obj.Key, prefix), "/")
		if !ok {
			continue
		}
		d, err := oci.ParseDigest(alg + ":" + enc)
		if err != nil {
			continue
		}
		if err := fn(blob.Stored{Digest: d, Size: obj.Size, ModTime: obj.LastModified}); err != nil {
			return err
		}
	}
	return nil
}

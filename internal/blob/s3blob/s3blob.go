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
}

// Store is an S3 blob store.
type Store struct {
	c    *minio.Client
	core minio.Core // the same client's plain calls: a GET that answers at once, no read-ahead
	cfg  Config
	temp string
}

var (
	_ blob.Store        = (*Store)(nil)
	_ blob.Deleter      = (*Store)(nil)
	_ blob.UploadLister = (*Store)(nil)
	_ blob.Lister       = (*Store)(nil)
	_ blob.ReadBacker   = (*writer)(nil)
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
	c, err := minio.New(endpointOf(cfg), &minio.Options{Creds: creds, Secure: !cfg.Insecure, Region: cfg.Region, BucketLookup: lookup})
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
	temp := cfg.TempDir
	if temp == "" {
		temp = os.TempDir()
	}
	return &Store{c: c, core: minio.Core{Client: c}, cfg: cfg, temp: temp}, nil
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

// Open implements blob.Store: one GET, whose reply says whether the blob exists (before the
// caller has written anything) and streams it.
func (s *Store) Open(ctx context.Context, d oci.Digest, offset int64) (io.ReadCloser, error) {
	var o minio.GetObjectOptions
	if offset > 0 {
		if err := o.SetRange(offset, 0); err != nil {
			return nil, fmt.Errorf("s3blob: %w", err)
		}
	}
	body, _, _, err := s.core.GetObject(ctx, s.cfg.Bucket, s.blobKey(d), o)
	if notFound(err) {
		return nil, blob.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("s3blob: get %s: %w", d, err)
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
	if err := s.c.RemoveObject(ctx, s.cfg.Bucket, s.blobKey(d), minio.RemoveObjectOptions{}); err != nil && !notFound(err) {
		return fmt.Errorf("s3blob: delete %s: %w", d, err)
	}
	return nil
}

// piece is one checkpointed part of an upload.
type piece struct {
	key         string
	offset, end int64
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
		off, err := strconv.ParseInt(name, 10, 64)
		if err != nil {
			continue
		}
		ps = append(ps, piece{key: obj.Key, offset: off, end: off + obj.Size})
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
	var kept []piece
	var size int64
	for _, p := range ps {
		switch {
		case p.offset >= offset:
			if err := s.c.RemoveObject(ctx, s.cfg.Bucket, p.key, minio.RemoveObjectOptions{}); err != nil {
				return nil, fmt.Errorf("s3blob: resume %s: %w", id, err)
			}
		case p.end > offset: // cut the piece back to offset
			src := minio.CopySrcOptions{Bucket: s.cfg.Bucket, Object: p.key, MatchRange: true, Start: 0, End: offset - p.offset - 1}
			tmp := minio.CopyDestOptions{Bucket: s.cfg.Bucket, Object: p.key + ".cut"}
			if _, err := s.c.ComposeObject(ctx, tmp, src); err != nil { // ranged copies need compose
				return nil, fmt.Errorf("s3blob: resume %s: %w", id, err)
			}
			if _, err := s.c.CopyObject(ctx, minio.CopyDestOptions{Bucket: s.cfg.Bucket, Object: p.key},
				minio.CopySrcOptions{Bucket: s.cfg.Bucket, Object: tmp.Object}); err != nil {
				return nil, fmt.Errorf("s3blob: resume %s: %w", id, err)
			}
			s.c.RemoveObject(ctx, s.cfg.Bucket, tmp.Object, minio.RemoveObjectOptions{})
			p.end = offset
			kept, size = append(kept, p), offset
		default:
			kept, size = append(kept, p), p.end
		}
	}
	if size < offset {
		return nil, fmt.Errorf("%w: %d bytes stored, %d recorded", blob.ErrUploadShort, size, offset)
	}
	dir, _ := s.uploadDir(id)
	return &writer{s: s, id: id, dir: dir, ctx: ctx, pieces: kept, size: size}, nil
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

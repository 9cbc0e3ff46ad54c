package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/berth-registry/berth/internal/blob/s3blob"
	"github.com/berth-registry/berth/internal/config"
)

// s3LimitName is the metric of the S3 upload limit for objects of size bytes.
func s3LimitName(size int64) string {
	return fmt.Sprintf("S3 upload limit, %s objects (minio-go, one stream)", sizeLabel(size))
}

// s3Limit measures what bounds a push to a registry over the S3 bucket of cfg.S3Limit: a plain
// upload with minio-go (with the options of berth's own uploads: s3blob.PutOptions) of fresh random
// objects of the blobs section's layer size and of the big section's, one at a time. The
// objects are removed afterwards.
func (r *runner) s3Limit(ctx context.Context, res *Result) error {
	st, err := config.ParseStorage(r.cfg.S3Limit)
	if err != nil {
		return fmt.Errorf("--s3-limit: %w", err)
	}
	if st.S3 == nil {
		return errors.New("--s3-limit must be an s3:// storage URL, as berth serve --storage takes it")
	}
	c, err := s3blob.Client(*st.S3)
	if err != nil {
		return err
	}
	ok, err := c.BucketExists(ctx, st.S3.Bucket)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", st.S3.Bucket, err)
	}
	if !ok {
		return fmt.Errorf("bucket %s does not exist", st.S3.Bucket)
	}
	for _, size := range []int64{r.cfg.LayerSize, r.cfg.BigSize} {
		// About 256 MiB of objects: at least two, at most 32.
		n := min(32, max(2, int((256<<20)/size)))
		rate, err := s3Uploads(ctx, c, st.S3.Bucket, st.S3.Prefix+"berth-bench-limit/", size, n, s3blob.PutOptions(*st.S3, size))
		if err != nil {
			return err
		}
		res.add(s3LimitName(size), rate, "MiB/s", false)
	}
	return nil
}

// s3Uploads uploads n objects of size fresh random bytes one after the other under prefix and
// returns MiB/s; it removes them.
func s3Uploads(ctx context.Context, c *minio.Client, bucket, prefix string, size int64, n int, o minio.PutObjectOptions) (float64, error) {
	buf := make([]byte, size)
	rnd := mrand.NewChaCha8([32]byte{byte(size), byte(n), 7})
	var keys []string
	defer func() {
		for _, k := range keys {
			_ = c.RemoveObject(context.WithoutCancel(ctx), bucket, k, minio.RemoveObjectOptions{})
		}
	}()
	var elapsed time.Duration
	for i := range n {
		_, _ = rnd.Read(buf) // fresh bytes, outside the timed part
		key := fmt.Sprintf("%s%d-%d", prefix, size, i)
		start := time.Now()
		if _, err := c.PutObject(ctx, bucket, key, bytes.NewReader(buf), size, o); err != nil {
			return 0, fmt.Errorf("upload %s: %w", key, err)
		}
		elapsed += time.Since(start)
		keys = append(keys, key)
	}
	return float64(size*int64(n)) / float64(1<<20) / elapsed.Seconds(), nil
}

// Proxy is a round-robin reverse proxy over backends, as a load balancer in front of replicas:
// consecutive requests, even of one upload, go to different backends. The Host header stays the
// client's (the registry's login server).
func Proxy(backends []string) (http.Handler, error) {
	if len(backends) == 0 {
		return nil, errors.New("bench: a proxy needs at least one backend")
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
	}
	proxies := make([]*httputil.ReverseProxy, len(backends))
	for i, b := range backends {
		u, err := url.Parse(b)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("bench: backend %q is not http://host:port", b)
		}
		p := httputil.NewSingleHostReverseProxy(u)
		p.Transport = tr
		p.FlushInterval = -1 // stream bodies as they come
		proxies[i] = p
	}
	var next atomic.Uint64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxies[(next.Add(1)-1)%uint64(len(proxies))].ServeHTTP(w, r)
	}), nil
}

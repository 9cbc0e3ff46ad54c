package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/berth-registry/berth/internal/blob/s3blob"
	"github.com/berth-registry/berth/internal/blob/s3blob/s3test"
	"github.com/berth-registry/berth/internal/config"
)

// TestProxy: requests go to the backends in turn, with the client's Host, bodies and replies
// streamed through; a backend that is not an http URL is refused.
func TestProxy(t *testing.T) {
	var backends []string
	for i := range 3 {
		b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%d %s %s", i, r.Host, body)
		}))
		defer b.Close()
		backends = append(backends, b.URL)
	}
	h, err := Proxy(backends)
	if err != nil {
		t.Fatal(err)
	}
	p := httptest.NewServer(h)
	defer p.Close()
	host := strings.TrimPrefix(p.URL, "http://")
	for i := range 6 {
		resp, err := http.Post(p.URL+"/v2/", "text/plain", strings.NewReader("body"))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("%d %s body", i%3, host); string(got) != want {
			t.Errorf("request %d answered %q, want %q", i, got, want)
		}
	}
	for _, bad := range [][]string{nil, {"ftp://x"}, {"127.0.0.1:5000"}} {
		if _, err := Proxy(bad); err == nil {
			t.Errorf("Proxy(%q) took it", bad)
		}
	}
}

// TestS3Limit (MinIO, BERTH_TEST_S3): the limit section measures plain uploads of both sizes to
// the bucket and leaves nothing behind; a URL that is not s3:// is refused.
func TestS3Limit(t *testing.T) {
	u := s3test.URL(t, "bench")
	r := &runner{cfg: Config{S3Limit: u, LayerSize: 1 << 20, BigSize: 6 << 20}}
	res := &Result{}
	if err := r.s3Limit(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{s3LimitName(1 << 20), s3LimitName(6 << 20)} {
		if m, ok := res.Get(name); !ok || m.Value <= 0 {
			t.Errorf("%s: %+v, %v", name, m, ok)
		}
	}
	st, err := config.ParseStorage(u)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s3blob.Client(*st.S3)
	if err != nil {
		t.Fatal(err)
	}
	for o := range c.ListObjects(context.Background(), st.S3.Bucket, minio.ListObjectsOptions{Prefix: st.S3.Prefix, Recursive: true}) {
		t.Errorf("left behind: %s (%v)", o.Key, o.Err)
	}
	for _, bad := range []string{"fs:/tmp/x", "http://127.0.0.1:9000/bucket"} {
		r.cfg.S3Limit = bad
		if err := r.s3Limit(context.Background(), &Result{}); err == nil {
			t.Errorf("--s3-limit %s was taken", bad)
		}
	}
}

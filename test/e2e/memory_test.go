package e2e

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/registrytest"
)

// genReader yields n pseudo-random bytes without holding them, hashing them as it goes.
type genReader struct {
	left int64
	rng  *rand.ChaCha8
	h    hash.Hash
}

func newGen(n int64, seed byte) *genReader {
	var s [32]byte
	s[0] = seed
	return &genReader{left: n, rng: rand.NewChaCha8(s), h: sha256.New()}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	g.rng.Read(p)
	g.h.Write(p)
	g.left -= int64(len(p))
	return len(p), nil
}

func (g *genReader) digest() string { return fmt.Sprintf("sha256:%x", g.h.Sum(nil)) }

// TestLargeBlobStreams pushes a 512 MiB blob and checks the server's heap does not grow with
// it: bodies are streamed to disk, never held.
func TestLargeBlobStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 512 MiB")
	}
	const size = 512 << 20
	s := registrytest.New(t, registrytest.Options{})
	useAdminOf(t, s)
	// Collect garbage early, so that the peak measures what is held, not what some driver's
	// buffers churn through (the S3 client's) between collections of a heap other tests grew.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	resp, body := request(t, "POST", s.URL+"/v2/big/repo/blobs/uploads/", nil, nil)
	if resp.StatusCode != 202 {
		t.Fatalf("start: %d %s", resp.StatusCode, body)
	}
	loc := absolute(s.URL, resp.Header.Get("Location"))
	gen := newGen(size, 1)
	req, _ := http.NewRequest("PATCH", loc, gen)
	req.Header.Set("Authorization", basicAuth)
	req.ContentLength = -1 // streamed, chunked transfer encoding
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 202 {
		t.Fatalf("PATCH: %d", r.StatusCode)
	}
	d := gen.digest()
	if resp, body := request(t, "PUT", loc+"?digest="+d, nil, nil); resp.StatusCode != 201 {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
	close(stop)
	<-sampled

	growth := int64(peak.Load()) - int64(before.HeapInuse)
	t.Logf("heap in use before %d MiB, peak %d MiB, growth %.1f MiB while pushing %d MiB",
		before.HeapInuse>>20, peak.Load()>>20, float64(growth)/(1<<20), size>>20)
	if growth > 8<<20 {
		t.Errorf("heap grew by %.1f MiB while pushing a %d MiB blob; want at most 8 MiB", float64(growth)/(1<<20), size>>20)
	}
	// The blob is complete and correct.
	resp, _ = request(t, "HEAD", s.URL+"/v2/big/repo/blobs/"+d, nil, nil)
	if resp.StatusCode != 200 || resp.ContentLength != size {
		t.Errorf("HEAD: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
}

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/registrytest"
)

// BenchmarkPushPull pushes and pulls 3 layers of 64 MiB through a real socket (POST, streamed
// PATCH, PUT; then GET) and reports push and pull throughput in MB/s.
func BenchmarkPushPull(b *testing.B) {
	const layers, size = 3, 64 << 20
	s := registrytest.New(b, registrytest.Options{})
	useAdminOf(b, s)
	var pushTime, pullTime time.Duration
	for i := 0; i < b.N; i++ {
		digests := make([]string, layers)
		start := time.Now()
		for l := 0; l < layers; l++ {
			resp, body := request(b, "POST", s.URL+"/v2/bench/repo/blobs/uploads/", nil, nil)
			if resp.StatusCode != 202 {
				b.Fatalf("start: %d %s", resp.StatusCode, body)
			}
			loc := absolute(s.URL, resp.Header.Get("Location"))
			gen := newGen(size, byte(i*layers+l+1))
			req, _ := http.NewRequest("PATCH", loc, gen)
			req.Header.Set("Authorization", basicAuth)
			req.ContentLength = size
			r, err := http.DefaultClient.Do(req)
			if err != nil || r.StatusCode != 202 {
				b.Fatalf("PATCH: %v %v", err, r)
			}
			r.Body.Close()
			digests[l] = gen.digest()
			if resp, body := request(b, "PUT", loc+"?digest="+digests[l], nil, nil); resp.StatusCode != 201 {
				b.Fatalf("PUT: %d %s", resp.StatusCode, body)
			}
		}
		pushTime += time.Since(start)
		start = time.Now()
		for _, d := range digests {
			greq, _ := http.NewRequest("GET", s.URL+"/v2/bench/repo/blobs/"+d, nil)
			greq.Header.Set("Authorization", basicAuth)
			r, err := http.DefaultClient.Do(greq)
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, r.Body)
			r.Body.Close()
			if err != nil || n != size {
				b.Fatalf("pull: %d bytes, %v", n, err)
			}
		}
		pullTime += time.Since(start)
	}
	mb := float64(b.N*layers*size) / 1e6
	b.ReportMetric(mb/pushTime.Seconds(), "push-MB/s")
	b.ReportMetric(mb/pullTime.Seconds(), "pull-MB/s")
	b.ReportMetric(0, "ns/op")
	fmt.Printf("push %.0f MB/s, pull %.0f MB/s (%d x %d MiB layers, %d rounds)\n", mb/pushTime.Seconds(), mb/pullTime.Seconds(), layers, size>>20, b.N)
}

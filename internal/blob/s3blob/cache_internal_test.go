package s3blob

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"

	"github.com/berth-registry/berth/internal/oci"
)

// TestThroughStopsAtSize: a download read to its size, as the server reads it (never asking for
// the end), is cached; one cut short is not.
func TestThroughStopsAtSize(t *testing.T) {
	c, err := openCache(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 100_000)
	rand.Read(b)
	d := oci.FromBytes(oci.SHA256, b)
	for _, n := range []int64{int64(len(b)) - 1, int64(len(b))} {
		c.missedBefore(d) // a miss before this one
		// bytes.Reader returns the last bytes without io.EOF; only a further read says the end.
		r := c.through(io.NopCloser(bytes.NewReader(b)), d, int64(len(b)))
		got, _ := io.ReadAll(io.LimitReader(r, n))
		r.Close()
		if whole := n == int64(len(b)); c.has(d) != whole || !bytes.Equal(got, b[:n]) {
			t.Errorf("read %d of %d bytes: cached %v, want %v", n, len(b), c.has(d), whole)
		}
	}
}

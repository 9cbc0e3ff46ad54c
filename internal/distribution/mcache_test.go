package distribution

import (
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/oci"
)

func TestManifestCache(t *testing.T) {
	body := func(s string, n int) []byte { return []byte(strings.Repeat(s, n)) }
	d := func(b []byte) oci.Digest { return oci.FromBytes(oci.SHA256, b) }
	a, b, c, big := body("a", 40), body("b", 40), body("c", 40), body("z", 61)
	cache := newManifestCache(100, 60)
	for _, x := range [][]byte{a, b, big} {
		cache.put(d(x), x)
	}
	if _, ok := cache.get(d(big)); ok {
		t.Error("a manifest over the per-item bound was kept")
	}
	if got, ok := cache.get(d(a)); !ok || string(got) != string(a) {
		t.Errorf("get(a) = %q, %v", got, ok)
	}
	cache.put(d(c), c) // 120 bytes > 100: the least recently used (b) goes
	if _, ok := cache.get(d(b)); ok {
		t.Error("the least recently used manifest stayed past the bound")
	}
	for _, x := range [][]byte{a, c} {
		if got, ok := cache.get(d(x)); !ok || string(got) != string(x) {
			t.Errorf("get(%c) = %q, %v", x[0], got, ok)
		}
	}
	cache.put(d(a), a) // again: counted once
	if cache.size != 80 || cache.order.Len() != 2 || len(cache.byKey) != 2 {
		t.Errorf("size %d, %d in order, %d by key; want 80, 2, 2", cache.size, cache.order.Len(), len(cache.byKey))
	}
}

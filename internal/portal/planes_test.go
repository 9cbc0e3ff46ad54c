package portal

import (
	"fmt"
	"testing"
	"time"

	"github.com/berth-registry/berth/client"
)

// TestPlanes: a session's data-plane clients are kept for planeLife, forgotten at sign-out (only
// that session's), and the cache holds at most maxPlanes, dropping expired ones first.
func TestPlanes(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	p := newPlanes(func() time.Time { return now })
	a, b := &client.DataPlane{Base: "a"}, &client.DataPlane{Base: "b"}
	p.put("s1\x00default", a)
	p.put("s2\x00default", b)
	if p.get("s1\x00default") != a || p.get("s2\x00default") != b || p.get("s1\x00other") != nil {
		t.Fatal("get after put")
	}
	now = now.Add(planeLife - time.Second)
	if p.get("s1\x00default") != a {
		t.Fatal("forgotten before its life ended")
	}
	now = now.Add(2 * time.Second)
	if p.get("s1\x00default") != nil || len(p.m) != 1 { // s2's is still there: get forgets only what it looks up
		t.Fatalf("kept after its life: %d entries", len(p.m))
	}
	p.put("s1\x00default", a)
	p.put("s1\x00other", a)
	p.put("s2\x00default", b)
	p.put("s1\x00third", a)
	p.forget("s1\x00third")
	if p.get("s1\x00third") != nil || p.get("s1\x00other") != a {
		t.Fatal("forget dropped the wrong client")
	}
	p.drop("s1")
	if p.get("s1\x00default") != nil || p.get("s1\x00other") != nil || p.get("s2\x00default") != b {
		t.Fatal("drop forgot the wrong sessions")
	}
	// Full: expired entries go first, then whatever it takes to make room.
	p = newPlanes(func() time.Time { return now })
	for i := range maxPlanes - 1 {
		p.m[fmt.Sprint("live", i)] = planeEntry{dp: a, expires: now.Add(time.Minute)}
	}
	p.m["old"] = planeEntry{dp: a, expires: now.Add(-time.Minute)}
	p.put("new", b)
	if _, ok := p.m["old"]; ok || p.get("new") != b || len(p.m) != maxPlanes {
		t.Fatalf("a full cache: %d entries, old kept %v", len(p.m), ok)
	}
	for i := range 10 {
		p.put(fmt.Sprint("more", i), b)
		if len(p.m) != maxPlanes || p.get(fmt.Sprint("more", i)) != b {
			t.Fatalf("a full cache of live clients holds %d after a put", len(p.m))
		}
	}
}

func TestShort(t *testing.T) {
	for in, want := range map[string]string{
		"sha256:0123456789abcdef0123": "sha256:0123456789ab",
		"sha256:0123456789abc":        "sha256:0123456789ab",
		"sha256:0123456789ab":         "sha256:0123456789ab",
		"sha256:01234567":             "sha256:01234567",
	} {
		if got := short(in); got != want {
			t.Errorf("short(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 1 << 20: "1.0 MiB", 5<<30 + 1<<29: "5.5 GiB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}

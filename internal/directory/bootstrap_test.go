package directory

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/store"
)

// TestBootstrapPasswordLength: the bootstrap owner's password follows every user's rule, 12 to
// 256 characters, at both ends.
func TestBootstrapPasswordLength(t *testing.T) {
	for _, tc := range []struct {
		n  int
		ok bool
	}{{11, false}, {12, true}, {256, true}, {257, false}} {
		ctx := context.Background()
		st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "berth.db"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		d := New(st, NewHasher(cheap, 1, time.Now), time.Now)
		err = d.Bootstrap(ctx, t.TempDir(), strings.Repeat("p", tc.n), slog.New(slog.DiscardHandler))
		if (err == nil) != tc.ok {
			t.Errorf("a %d-character bootstrap password: %v; want accepted %v", tc.n, err, tc.ok)
		}
		if n, _ := st.CountUsers(ctx); (n == 1) != tc.ok {
			t.Errorf("a %d-character bootstrap password: %d users", tc.n, n)
		}
		st.Close()
	}
}

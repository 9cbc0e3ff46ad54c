package authn

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/access"
	"github.com/berth-registry/berth/internal/directory"
	"github.com/berth-registry/berth/internal/store"
)

// TestDirectoryRefreshEdges: no refresh token when the lifetime is 0; a token expires with its
// lifetime; what does not look like one (prefix, at most 128 characters) is refused before any
// lookup, and a well-formed unknown one is "not known"; a deleted user's token renews nothing.
func TestDirectoryRefreshEdges(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "berth.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	clock := func() time.Time { return now }
	// Refresh tokens are opaque: no token service is needed.
	s := NewService(st, directory.New(st, directory.NewHasher(directory.Params{Time: 1, Memory: 64, Threads: 1}, 1, clock), clock), nil, DefaultThrottling, slog.New(slog.DiscardHandler), clock)
	u, err := st.CreateUser(ctx, "alice", "x")
	if err != nil {
		t.Fatal(err)
	}
	alice := access.Principal{Kind: access.KindUser, Name: "alice", ID: u.ID}

	if raw, err := s.IssueDirectoryRefresh(ctx, alice, ""); raw != "" || err != nil {
		t.Errorf("lifetime 0: %q %v; want no refresh token", raw, err)
	}
	s.DirectoryRefreshTTL = time.Hour
	raw, err := s.IssueDirectoryRefresh(ctx, alice, "")
	if err != nil || !strings.HasPrefix(raw, "bdr_") || len(raw) > 128 {
		t.Fatalf("issue: %q %v", raw, err)
	}
	reason := func(err error) string {
		var ae *Error
		if errors.As(err, &ae) {
			return ae.Message
		}
		return ""
	}
	for _, tc := range []struct {
		raw, want string
	}{
		{"xyz_" + raw[4:], "not a berth refresh token"},
		{"bdr_" + strings.Repeat("a", 124), "has expired or is not known"}, // 128 characters: looked up
		{"bdr_" + strings.Repeat("a", 125), "not a berth refresh token"},   // 129: refused
	} {
		if _, _, err := s.DirectoryRefresh(ctx, tc.raw); !strings.Contains(reason(err), tc.want) {
			t.Errorf("DirectoryRefresh(%d characters): %v; want %q", len(tc.raw), err, tc.want)
		}
	}
	now = now.Add(time.Hour + time.Millisecond)
	if _, _, err := s.DirectoryRefresh(ctx, raw); !strings.Contains(reason(err), "has expired") {
		t.Errorf("a refresh token past its lifetime: %v", err)
	}
	now = now.Add(-time.Hour)
	fresh, _ := s.IssueDirectoryRefresh(ctx, alice, "")
	if p, family, err := s.DirectoryRefresh(ctx, fresh); err != nil || p.Name != "alice" || p.ID != u.ID || family == "" {
		t.Errorf("a fresh refresh token: %+v %q %v", p, family, err)
	}
	again, _ := s.IssueDirectoryRefresh(ctx, alice, "")
	if err := st.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.DirectoryRefresh(ctx, again); !strings.Contains(reason(err), "no longer exists") {
		t.Errorf("the refresh token of a deleted user: %v", err)
	}
}

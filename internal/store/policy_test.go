package store_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/policy"
	"github.com/berth-registry/berth/internal/store"
)

// TestEngineFollowsTheStore: policy.Load reads what the store holds (PolicyInput), Refresh publishes a new snapshot
// (and calls OnReload) only when the store's policy version moved, Watch does it on its own,
// Publish replaces the snapshot.
func TestEngineFollowsTheStore(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "berth.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := policy.Load(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	e := policy.NewEngine(s)
	if e.Snapshot() != s {
		t.Fatal("NewEngine does not hold its snapshot")
	}
	var reloads atomic.Int32
	e.OnReload = func() { reloads.Add(1) }
	if err := e.Refresh(ctx, st); err != nil || e.Snapshot() != s || reloads.Load() != 0 {
		t.Fatalf("Refresh without a change: %v, new snapshot %v, %d reloads", err, e.Snapshot() != s, reloads.Load())
	}
	if _, err := st.CreateRegistry(ctx, "team", ""); err != nil {
		t.Fatal(err)
	}
	abac := "rbac-abac"
	if _, err := st.UpdateRegistry(ctx, "team", store.RegistryUpdate{RoleAssignmentMode: &abac}); err != nil {
		t.Fatal(err)
	}
	if err := e.Refresh(ctx, st); err != nil || e.Snapshot() == s || reloads.Load() != 1 {
		t.Fatalf("Refresh after a change: %v, new snapshot %v, %d reloads", err, e.Snapshot() != s, reloads.Load())
	}
	if got := e.RegistryMode("team"); got != "rbac-abac" {
		t.Errorf("RegistryMode(team) = %q", got)
	}
	if got := e.RegistryMode("nope"); got != "" {
		t.Errorf("RegistryMode(nope) = %q", got)
	}
	if e.Snapshot().Version <= s.Version {
		t.Errorf("version %d after a change, %d before", e.Snapshot().Version, s.Version)
	}
	// Watch picks up a change by itself.
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { e.Watch(wctx, st, 10*time.Millisecond, slog.New(slog.DiscardHandler)); close(done) }()
	if _, err := st.CreateRegistry(ctx, "late", ""); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.RegistryMode("late") == "" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if e.RegistryMode("late") != "rbac" || reloads.Load() != 2 {
		t.Errorf("Watch: mode of late %q, %d reloads", e.RegistryMode("late"), reloads.Load())
	}
	// Watch says when a refresh fails, and not when it stops because its context ended.
	var logged syncBuffer
	wctx, cancel = context.WithCancel(ctx)
	done = make(chan struct{})
	go func() {
		e.Watch(wctx, st, 10*time.Millisecond, slog.New(slog.NewTextHandler(&logged, nil)))
		close(done)
	}()
	time.Sleep(50 * time.Millisecond)
	if strings.Contains(logged.String(), "refresh failed") {
		t.Errorf("Watch over a working store logged: %s", logged.String())
	}
	st.Close()
	for !strings.Contains(logged.String(), "policy refresh failed") && time.Now().Before(deadline.Add(5*time.Second)) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if !strings.Contains(logged.String(), "policy refresh failed") {
		t.Error("Watch over a closed store logged nothing")
	}
	other := policy.Compile(policy.Input{Version: 99})
	e.Publish(other)
	if e.Snapshot() != other {
		t.Error("Publish did not replace the snapshot")
	}
}

// syncBuffer is a bytes.Buffer safe for a logger on another goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

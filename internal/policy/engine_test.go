package policy

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/golden"
	"github.com/berth-registry/berth/internal/store"
)

// TestEngineFollowsTheStore: Load reads what the store holds, Refresh publishes a new snapshot
// (and calls OnReload) only when the store's policy version moved, Watch does it on its own,
// Publish replaces the snapshot.
func TestEngineFollowsTheStore(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "berth.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := Load(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(s)
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
	other := Compile(fixture("rbac", ""))
	e.Publish(other)
	if e.Snapshot() != other {
		t.Error("Publish did not replace the snapshot")
	}
}

// TestRolesGolden lists every role's data actions in both modes and control permissions, and
// ParseMode's answers, against testdata/roles.golden (-update rewrites it).
func TestRolesGolden(t *testing.T) {
	var b strings.Builder
	for _, r := range Roles {
		fmt.Fprintf(&b, "%s\n  rbac: %v\n  rbac-abac: %v\n  control: %v\n", r.Name, r.DataActions(ModeRBAC), r.DataActions(ModeRBACABAC), r.Control())
	}
	for _, m := range []string{"rbac", "RBAC", "rbac-abac", "LegacyRegistryPermissions", "AbacRepositoryPermissions", "abac", ""} {
		mode, ok := ParseMode(m)
		fmt.Fprintf(&b, "ParseMode(%q) = %s %v\n", m, mode, ok)
	}
	golden.Compare(t, "testdata/roles.golden", b.String())
}

package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/golden"
)

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

func TestAddressList(t *testing.T) {
	l, err := ParseAddressList([]string{"10.0.0.0/8", " ", "", "192.0.2.7", "2001:db8::/32"})
	if err != nil || len(l) != 3 {
		t.Fatalf("ParseAddressList = %v, %v", l, err)
	}
	for _, tc := range []struct {
		ip   string
		want bool
	}{
		{"10.1.2.3", true}, {"11.0.0.1", false}, {"192.0.2.7", true}, {"192.0.2.8", false},
		{"::ffff:10.0.0.1", true}, // a mapped IPv4 address is that address
		{"2001:db8::1", true}, {"2001:db9::1", false},
	} {
		if got := l.Contains(netip.MustParseAddr(tc.ip)); got != tc.want {
			t.Errorf("Contains(%s) = %v, want %v", tc.ip, got, tc.want)
		}
	}
	if (AddressList{}).Contains(netip.MustParseAddr("10.0.0.1")) {
		t.Error("an empty list contains an address")
	}
	if _, err := ParseAddressList([]string{"10.0.0.0/8", "not-an-address"}); err == nil {
		t.Error("a bad entry is accepted")
	}
}

// memSource is a policy.Source in memory: a version, an input, and an error to return.
type memSource struct {
	mu  sync.Mutex
	in  Input
	err error
}

func (m *memSource) PolicyVersion(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.in.Version, m.err
}

func (m *memSource) PolicyInput(context.Context) (Input, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.in, m.err
}

func (m *memSource) set(f func(*memSource)) { m.mu.Lock(); f(m); m.mu.Unlock() }

// TestEngineRefresh: Refresh publishes a new snapshot (and calls OnReload) only when the
// source's version moved, Watch does it by itself and logs failures (not the end of its
// context), Load and Refresh pass errors on. (store's TestEngineFollowsTheStore does the same
// over a real store.)
func TestEngineRefresh(t *testing.T) {
	ctx := context.Background()
	src := &memSource{in: fixture("rbac", "")}
	s, err := Load(ctx, src)
	if err != nil || s.Version != 1 {
		t.Fatalf("Load: %v, version %v", err, s)
	}
	e := NewEngine(s)
	var reloads atomic.Int32
	e.OnReload = func() { reloads.Add(1) }
	if err := e.Refresh(ctx, src); err != nil || e.Snapshot() != s || reloads.Load() != 0 {
		t.Fatalf("Refresh at the same version: %v, new snapshot %v, %d reloads", err, e.Snapshot() != s, reloads.Load())
	}
	src.set(func(m *memSource) { m.in.Version = 2; m.in.Registries[0].RoleAssignmentMode = "rbac-abac" })
	if err := e.Refresh(ctx, src); err != nil || e.Snapshot() == s || reloads.Load() != 1 || e.RegistryMode("r") != "rbac-abac" {
		t.Fatalf("Refresh after a change: %v, %d reloads, mode %q", err, reloads.Load(), e.RegistryMode("r"))
	}
	// A fresh engine (no snapshot yet) loads whatever the version.
	fresh := NewEngine(nil)
	if err := fresh.Refresh(ctx, src); err != nil || fresh.Snapshot() == nil || fresh.Snapshot().Version != 2 {
		t.Fatalf("first Refresh: %v", err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var logged syncLog
	go func() {
		e.Watch(wctx, src, 5*time.Millisecond, slog.New(slog.NewTextHandler(&logged, nil)))
		close(done)
	}()
	src.set(func(m *memSource) { m.in.Version = 3; m.in.Registries[0].RoleAssignmentMode = "rbac" })
	deadline := time.Now().Add(5 * time.Second)
	for e.RegistryMode("r") != "rbac" && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	if e.RegistryMode("r") != "rbac" || reloads.Load() != 2 {
		t.Errorf("Watch: mode %q, %d reloads", e.RegistryMode("r"), reloads.Load())
	}
	src.set(func(m *memSource) { m.err = errors.New("database gone") })
	for !strings.Contains(logged.String(), "policy refresh failed") && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	cancel()
	<-done
	if !strings.Contains(logged.String(), "database gone") {
		t.Errorf("Watch did not log the failure: %s", logged.String())
	}
	if err := e.Refresh(ctx, src); err == nil {
		t.Error("Refresh hid the source's error")
	}
	if _, err := Load(ctx, src); err == nil {
		t.Error("Load hid the source's error")
	}
}

type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *syncLog) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// slowSource hands out its input once release is closed, for the first load only.
type slowSource struct {
	memSource
	release chan struct{}
	first   sync.Once
	loading chan struct{}
}

func (s *slowSource) PolicyInput(ctx context.Context) (Input, error) {
	in, err := s.memSource.PolicyInput(ctx)
	slow := false
	s.first.Do(func() { slow = true })
	if slow {
		close(s.loading)
		<-s.release
	}
	return in, err
}

// TestRefreshNeverGoesBack: two refreshes overlap (the watcher's tick and a change's); the older
// load, ending last, does not replace the newer snapshot.
func TestRefreshNeverGoesBack(t *testing.T) {
	src := &slowSource{release: make(chan struct{}), loading: make(chan struct{})}
	src.in = Input{Version: 1}
	e := NewEngine(Compile(Input{Version: 0}))
	done := make(chan error)
	go func() { done <- e.Refresh(context.Background(), src) }() // loads version 1, slowly
	<-src.loading
	src.set(func(m *memSource) { m.in.Version = 2 })
	if err := e.Refresh(context.Background(), src); err != nil { // loads version 2
		t.Fatal(err)
	}
	close(src.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v := e.Snapshot().Version; v != 2 {
		t.Errorf("snapshot version %d after the older load ended last, want 2", v)
	}
}

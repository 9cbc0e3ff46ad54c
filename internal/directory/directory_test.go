package directory

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

var cheap = Params{Time: 1, Memory: 64, Threads: 1}

func TestHasherMatch(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	h := NewHasher(cheap, 2, func() time.Time { return now })
	a, err := h.Hash(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := h.Hash(ctx, "bravo")
	if a == b || !strings.HasPrefix(a, "$argon2id$v=19$m=64,t=1,p=1$") || strings.Contains(a, "alpha") {
		t.Fatalf("hashes %q, %q", a, b)
	}
	for _, tc := range []struct {
		name    string
		hashes  []string
		secret  string
		want    int
		compute int64 // argon2 runs: always max(2, len), unless remembered
	}{
		{"unknown identity", nil, "alpha", -1, 2},
		{"one secret, wrong", []string{a}, "charlie", -1, 2},
		{"one secret, right", []string{a}, "alpha", 0, 2},
		{"right, remembered", []string{a}, "alpha", 0, 0},
		{"second of two", []string{a, b}, "bravo", 1, 2},
		{"two, wrong", []string{a, b}, "delta", -1, 2},
	} {
		before := h.computed.Load()
		got, err := h.Match(ctx, tc.hashes, tc.secret)
		if err != nil || got != tc.want {
			t.Errorf("%s: Match = %d, %v; want %d", tc.name, got, err, tc.want)
		}
		if n := h.computed.Load() - before; n != tc.compute {
			t.Errorf("%s: %d argon2 computations; want %d", tc.name, n, tc.compute)
		}
	}
	// A renewed secret has a new hash: the memo of the old pair cannot answer for it.
	a2, _ := h.Hash(ctx, "alpha2")
	if got, _ := h.Match(ctx, []string{a2}, "alpha"); got != -1 {
		t.Error("the old secret matched a renewed hash")
	}
	// Memos expire.
	now = now.Add(memoTTL + time.Second)
	before := h.computed.Load()
	h.Match(ctx, []string{a}, "alpha")
	if h.computed.Load() == before {
		t.Error("an expired memo still answered")
	}
}

func TestVerifyRejectsMalformedHashes(t *testing.T) {
	for _, bad := range []string{"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA", "$argon2id$v=18$m=64,t=1,p=1$c2FsdA$aGFzaA",
		"$argon2id$v=19$m=0,t=1,p=1$c2FsdA$aGFzaA", "$argon2id$v=19$m=64,t=1,p=1$!!$aGFzaA", "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$"} {
		if ok, err := verify(bad, "x"); ok || err == nil {
			t.Errorf("verify(%q) = %v, %v; want an error", bad, ok, err)
		}
	}
}

func TestGUIDs(t *testing.T) {
	g := NewGUID()
	if !IsGUID(g) || g[14] != '4' || g != strings.ToLower(g) || NewGUID() == g {
		t.Errorf("NewGUID = %q", g)
	}
	for s, want := range map[string]bool{"00000000-0000-0000-0000-000000000000": true, "ABCDEF01-2345-6789-abcd-ef0123456789": true,
		"abcdef012345-6789-abcd-ef0123456789": false, "g0000000-0000-0000-0000-000000000000": false, "ci-samples": false} {
		if IsGUID(s) != want {
			t.Errorf("IsGUID(%q) = %v", s, !want)
		}
	}
	if s := GenerateSecret(); len(s) != 43 || s == GenerateSecret() {
		t.Errorf("GenerateSecret = %q", s)
	}
}

func TestScopeRules(t *testing.T) {
	for _, tc := range []struct {
		repo    string
		actions []string
		err     string
	}{
		{"samples/*", []string{"content/read", "CONTENT/WRITE"}, ""},
		{"*", []string{"metadata/read"}, ""},
		{"a/b/c", []string{"content/delete"}, ""},
		{"sample/*/teama", []string{"content/read"}, "wildcard"},
		{"sample/teama*", []string{"content/read"}, "wildcard"},
		{"sample/teama/*/projectb/*", []string{"content/read"}, "wildcard"},
		{"*/*", []string{"content/read"}, "wildcard"},
		{"Upper/*", []string{"content/read"}, "invalid"},
		{"samples/a", nil, "At least one action must be specified"},
		{"samples/a", []string{"content/execute"}, `Invalid action "content/execute"`},
	} {
		rules, err := ScopeRules([]RepositoryActions{{Repository: tc.repo, Actions: tc.actions}})
		switch {
		case tc.err == "" && (err != nil || len(rules) != len(tc.actions)):
			t.Errorf("%q %v: %v, %v", tc.repo, tc.actions, rules, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q %v: err %v; want one with %q", tc.repo, tc.actions, err, tc.err)
		}
	}
	rules, _ := ScopeRules([]RepositoryActions{{Repository: "samples/*", Actions: []string{"Content/Write"}}})
	if got := ARMActions(rules); len(got) != 1 || got[0] != "repositories/samples/*/content/write" {
		t.Errorf("ARMActions = %v", got)
	}
	if ra, err := ParseARMAction("repositories/samples/*/content/read"); err != nil || ra.Repository != "samples/*" || ra.Actions[0] != "content/read" {
		t.Errorf("ParseARMAction = %+v, %v", ra, err)
	}
}

// TestHasherSharesConcurrentChecks: a herd of identical checks computes once (each computation
// holds Params.Memory), different secrets do not share, and every caller gets the answer.
func TestHasherSharesConcurrentChecks(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(cheap, 1, nil)
	a, _ := h.Hash(ctx, "alpha")
	// Hold the only slot so that every check queues up before any computes.
	if err := h.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	before := h.computed.Load()
	secrets := []string{"alpha", "alpha", "alpha", "alpha", "alpha", "alpha", "wrong", "wrong"}
	got := make([]int, len(secrets))
	var wg sync.WaitGroup
	for i, s := range secrets {
		wg.Go(func() {
			var err error
			if got[i], err = h.Match(ctx, []string{a}, s); err != nil {
				t.Error(err)
			}
		})
	}
	time.Sleep(100 * time.Millisecond) // let every check join its flight
	h.release()
	wg.Wait()
	for i, s := range secrets {
		if want := map[string]int{"alpha": 0, "wrong": -1}[s]; got[i] != want {
			t.Errorf("check %d (%s) = %d, want %d", i, s, got[i], want)
		}
	}
	// Two flights (alpha, wrong) of max(slots, 1) = 2 computations each.
	if n := h.computed.Load() - before; n != 4 {
		t.Errorf("%d argon2 computations for 8 checks of 2 secrets, want 4", n)
	}
	// A caller that gives up does not wait for the computation.
	if err := h.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.release()
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := h.Match(cctx, []string{a}, "other"); err == nil {
		t.Error("a cancelled check returned no error")
	}
}

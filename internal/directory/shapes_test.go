package directory

import (
	"slices"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/store"
)

// TestIsGUIDShapes pins IsGUID to the exact 8-4-4-4-12 shape.
func TestIsGUIDShapes(t *testing.T) {
	good := "0123abcd-4567-89ef-ABCD-0123456789ab"
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{good, true},
		{good[:35], false},
		{good + "0", false},
		{strings.Replace(good, "-", "0", 1), false},    // a digit where a dash goes
		{"0123abcd04567-89ef-ABCD-0123456789a", false}, // right length, a dash moved
		{"0123abcd-4567-89ef-ABCD-0123456789a-", false},
		{"0123abcd-4567-89ef-ABCD-0123456789aX", false},
		{"0123abcd-4567-89ef-ABCD-0123456789-b", false},
		{"", false},
	} {
		if got := IsGUID(tc.s); got != tc.want {
			t.Errorf("IsGUID(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}

// TestScopeRulesOrder checks that the rules come out sorted by repository, then action, and that
// a repository's actions are all kept.
func TestScopeRulesOrder(t *testing.T) {
	rules, err := ScopeRules([]RepositoryActions{
		{Repository: "b/*", Actions: []string{"metadata/read", "content/read"}},
		{Repository: "a", Actions: []string{"content/write", "content/delete", "content/read"}},
		{Repository: "*", Actions: []string{"metadata/write"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []store.ScopeRule{{Repository: "*", Action: "metadata/write"}, {Repository: "a", Action: "content/delete"},
		{Repository: "a", Action: "content/read"}, {Repository: "a", Action: "content/write"},
		{Repository: "b/*", Action: "content/read"}, {Repository: "b/*", Action: "metadata/read"}}
	if !slices.Equal(rules, want) {
		t.Errorf("ScopeRules = %v\nwant %v", rules, want)
	}
	for _, bad := range []string{"repositories/a/content", "repositories/", "samples/a/content/read", ""} {
		if _, err := ParseARMAction(bad); err == nil {
			t.Errorf("ParseARMAction(%q) accepted", bad)
		}
	}
	if ra, err := ParseARMAction("repositories/a/b/c/metadata/write"); err != nil || ra.Repository != "a/b/c" || !slices.Equal(ra.Actions, []string{"metadata/write"}) {
		t.Errorf("ParseARMAction of a nested repository = %+v, %v", ra, err)
	}
}

package blob

import (
	"strings"
	"testing"
)

func TestValidUploadID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"a", true},
		{"AZaz09-_", true},
		{strings.Repeat("x", 128), true},
		{strings.Repeat("x", 129), false},
		{"", false},
		{"../etc", false},
		{"a/b", false},
		{"a.b", false},
		{"a b", false},
		{"é", false},
		{"a\x00", false},
		{"`", false}, {"@", false}, {"[", false}, {"{", false}, {":", false}, {"/", false}, // the neighbours of each range
	} {
		if got := ValidUploadID(tc.id); got != tc.want {
			t.Errorf("ValidUploadID(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

package blob

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/oci"
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

func TestDigestMismatchError(t *testing.T) {
	err := error(&DigestMismatchError{Want: "sha256:aa", Got: "sha256:bb"})
	if got, want := err.Error(), "content digest sha256:bb does not match sha256:aa"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, oci.ErrDigestInvalid) {
		t.Error("a digest mismatch is not oci.ErrDigestInvalid")
	}
}

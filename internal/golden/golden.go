// Package golden compares a test's output with a file kept beside the test (testdata/*.golden)
// and rewrites the file when the test runs with -update, so that a change of behaviour shows as
// a diff to review.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the code (then review the diff)")

// Compare fails t at the first line where got differs from the file at path; with -update it
// first writes got to the file.
func Compare(t testing.TB, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got == string(want) {
		return
	}
	gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(gl) || i < len(wl); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Fatalf("%s differs from the code at line %d:\n got: %s\nwant: %s\n(run the test with -update to rewrite it, then review the diff)", path, i+1, g, w)
		}
	}
}

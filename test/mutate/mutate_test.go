package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSurvivorsFileReads: the committed list parses, every entry has a reason, and no key is
// listed twice.
func TestSurvivorsFileReads(t *testing.T) {
	m, err := readSurvivors("survivors.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile("survivors.txt")
	reasons := strings.Count(string(b), "\n  equivalent: ") + strings.Count(string(b), "\n  open: ")
	if len(m) != reasons || len(m) == 0 {
		t.Errorf("%d entries read, %d reasons in the file", len(m), reasons)
	}
	bad := filepath.Join(t.TempDir(), "s.txt")
	for _, text := range []string{"key-without-reason\n", "k\n  maybe: why\n", "k\n  equivalent: a\nk\n  open: b\n", "  equivalent: orphan\n"} {
		os.WriteFile(bad, []byte(text), 0o644)
		if _, err := readSurvivors(bad); err == nil {
			t.Errorf("%q was accepted", text)
		}
	}
}

// TestMutantsApply: each operator yields the change it names, and applying it to the source
// changes exactly that text.
func TestMutantsApply(t *testing.T) {
	dir := t.TempDir()
	src := "package p\n\nfunc f(a, b int, ok bool) int {\n\tif a < b && ok {\n\t\treturn a + b\n\t}\n\tg()\n\tif !ok {\n\t\treturn 0\n\t}\n\ta++\n\treturn 1\n}\n\nfunc g() { println(\"x\" + \"y\") }\n"
	os.WriteFile(filepath.Join(dir, "p.go"), []byte(src), 0o644)
	ms, err := findMutants(dir, "p.go")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range ms {
		got[m.Operator+" "+m.Orig+"→"+m.Repl] = string(m.apply([]byte(src)))
	}
	for _, want := range []string{"CONDITIONALS_NEGATION <→>=", "CONDITIONALS_BOUNDARY <→<=", "INVERT_LOGICAL &&→||", "ARITHMETIC_BASE +→-",
		"REMOVE_CALL g()→", "NEGATE_CONDITION !→", "REMOVE_GUARD_RETURN if !ok {\n\t\treturn 0\n\t}→", "INCREMENT_DECREMENT ++→--"} {
		if _, ok := got[want]; !ok {
			t.Errorf("no mutant %q", want)
		}
	}
	if out := got["INVERT_LOGICAL &&→||"]; !strings.Contains(out, "if a < b || ok {") {
		t.Errorf("&&→|| gave:\n%s", out)
	}
	arith := 0
	for _, m := range ms {
		if m.Operator == opArith {
			arith++
		}
	}
	if arith != 1 {
		t.Errorf("%d arithmetic mutants; want 1 (a + b, not the string concatenation)", arith)
	}
}

func TestCovers(t *testing.T) {
	// A switch whose second clause never ran:
	//   10  switch {
	//   11  case a:        // body block 11.9–12.20, ran
	//   12      f()
	//   13  case b != nil: // body block 13.15–14.20, never ran
	//   14      g()
	c := coverProfile{"f.go": {
		run:    []block{{11, 9, 12, 20}},
		notRun: []block{{13, 15, 14, 20}, {20, 1, 22, 2}},
	}}
	for _, tc := range []struct {
		file      string
		line, col int
		want      bool
	}{
		{"f.go", 12, 5, true},  // in the block that ran
		{"f.go", 13, 8, true},  // the case expression: in no block, tested
		{"f.go", 14, 5, false}, // the body that never ran
		{"f.go", 21, 3, false},
		{"f.go", 16, 1, true},    // between blocks: tested
		{"other.go", 1, 1, true}, // a file the profile does not know: tested
	} {
		if got := c.covers(tc.file, tc.line, tc.col); got != tc.want {
			t.Errorf("covers(%s:%d:%d) = %v, want %v", tc.file, tc.line, tc.col, got, tc.want)
		}
	}
	if !coverProfile(nil).covers("f.go", 14, 5) {
		t.Error("without a profile every mutant is tested")
	}
}

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// coverProfile holds the covered blocks of one target's files.
type coverProfile map[string][]block // relative file → blocks run at least once

type block struct{ startLine, startCol, endLine, endCol int }

// covers reports whether the line of a position is in a block the tests ran. Lines, not
// columns: the conditions of if, for and case clauses lie just outside the blocks the cover
// tool counts (which start after their '{' or ':'), so a column test would call them never run.
// A line shared with a block that did not run is counted as run: the mutant is then tested,
// not assumed to survive.
func (c coverProfile) covers(file string, line, _ int) bool {
	if c == nil {
		return true // not measured: every mutant is run
	}
	for _, b := range c[file] {
		if b.startLine <= line && line <= b.endLine {
			return true
		}
	}
	return false
}

// coverage runs the target's tests once, unmutated, with coverage of its package. They must
// pass: a mutant is only judged against a green suite.
func coverage(root, work string, tg target) (coverProfile, error) {
	prof := filepath.Join(work, strings.ReplaceAll(tg.Pkg, "/", "_")+".cover")
	args := append([]string{"test", "-count=1", "-coverpkg=./" + tg.Pkg, "-coverprofile=" + prof}, tg.Tests...)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("the unmutated tests fail: %v\n%s", err, tail(string(b), 30))
	}
	modPath, err := modulePath(root)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(prof)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := coverProfile{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "mode:") {
			continue
		}
		// github.com/x/y/file.go:12.3,15.4 2 1
		name, rest, ok := strings.Cut(line, ":")
		fields := strings.Fields(rest)
		if !ok || len(fields) != 3 || fields[2] == "0" {
			continue
		}
		var b block
		if _, err := fmt.Sscanf(fields[0], "%d.%d,%d.%d", &b.startLine, &b.startCol, &b.endLine, &b.endCol); err != nil {
			return nil, fmt.Errorf("cover profile line %q: %w", line, err)
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(name, modPath), "/")
		out[rel] = append(out[rel], b)
	}
	return out, sc.Err()
}

func modulePath(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(strings.TrimSpace(l), "module "); ok {
			return strconv.Unquote(strconv.Quote(strings.TrimSpace(p)))
		}
	}
	return "", fmt.Errorf("go.mod has no module line")
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

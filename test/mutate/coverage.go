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

// coverProfile holds the blocks of one target's files the cover tool counted, by whether the
// tests ran them.
type coverProfile map[string]*fileCover // relative file →

type fileCover struct{ run, notRun []block }

type block struct{ startLine, startCol, endLine, endCol int }

// covers reports whether the position of a mutant was run by the tests. A position in a block
// that ran counts as run; one in no block at all too (the cover tool counts no block for the
// expressions of a case clause, which lie between the switch's block and the clause's body, nor
// is it sure which ran): the mutant is then tested, not assumed to survive. Only a position
// inside blocks that never ran is not covered.
func (c coverProfile) covers(file string, line, col int) bool {
	if c == nil {
		return true // not measured: every mutant is run
	}
	fc := c[file]
	if fc == nil {
		return true
	}
	in := func(bs []block) bool {
		for _, b := range bs {
			after := line > b.startLine || line == b.startLine && col >= b.startCol
			before := line < b.endLine || line == b.endLine && col < b.endCol
			if after && before {
				return true
			}
		}
		return false
	}
	return in(fc.run) || !in(fc.notRun)
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
		if !ok || len(fields) != 3 {
			continue
		}
		var b block
		if _, err := fmt.Sscanf(fields[0], "%d.%d,%d.%d", &b.startLine, &b.startCol, &b.endLine, &b.endCol); err != nil {
			return nil, fmt.Errorf("cover profile line %q: %w", line, err)
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(name, modPath), "/")
		fc := out[rel]
		if fc == nil {
			fc = &fileCover{}
			out[rel] = fc
		}
		if fields[2] == "0" {
			fc.notRun = append(fc.notRun, b)
		} else {
			fc.run = append(fc.run, b)
		}
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

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

type listing struct {
	kind string // equivalent or open
	line int
}

// readSurvivors reads survivors.txt: blocks of "KEY" on one line and "  equivalent: why" or
// "  open: what test is missing" on the next; '#' starts a comment.
func readSurvivors(path string) (map[string]listing, error) {
	out := map[string]listing{}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	key, keyLine, n := "", 0, 0
	for sc.Scan() {
		n++
		l := sc.Text()
		t := strings.TrimSpace(l)
		switch {
		case t == "" || strings.HasPrefix(t, "#"):
		case !strings.HasPrefix(l, " ") && !strings.HasPrefix(l, "\t"):
			if key != "" {
				return nil, fmt.Errorf("%s:%d: %s has no reason", path, keyLine, key)
			}
			key, keyLine = t, n
		default:
			kind, why, ok := strings.Cut(t, ":")
			if key == "" || !ok || (kind != "equivalent" && kind != "open") || strings.TrimSpace(why) == "" {
				return nil, fmt.Errorf("%s:%d: want \"  equivalent: why\" or \"  open: what is missing\" after a mutant's key", path, n)
			}
			if _, dup := out[key]; dup {
				return nil, fmt.Errorf("%s:%d: %s is listed twice", path, keyLine, key)
			}
			out[key] = listing{kind: kind, line: keyLine}
			key = ""
		}
	}
	if key != "" {
		return nil, fmt.Errorf("%s:%d: %s has no reason", path, keyLine, key)
	}
	return out, sc.Err()
}

// recordSurvivors appends the unlisted survivors to path as open entries.
func recordSurvivors(path string, rs []result) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, r := range rs {
		if (r.Status == Lived || r.Status == NotCovered) && r.Listed == "" {
			if _, err := fmt.Fprintf(f, "%s\n  open: %s at line %d, not analysed yet (%s)\n", r.Key, r.Status, r.Line, oneLine(r.Orig)); err != nil {
				return err
			}
		}
	}
	return nil
}

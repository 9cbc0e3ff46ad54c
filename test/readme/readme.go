// Package readme runs the README as a new user would: every shell block, in order, exactly as
// written, in one shell, in a copy of the repository with a home folder of its own and no berth
// data (scripts/test.sh runs it as a stage of its own).
//
// A comment on the line before a block can say how it runs:
//
//	<!-- readme-test: background until URL answers -->   runs in the background; the next block
//	                                                      starts once URL answers 200
//	<!-- readme-test: not run: REASON -->                 is not run, for REASON (required)
//
// Every other shell block (```sh or ```bash) runs, and must succeed.
package readme

import (
	"bufio"
	"fmt"
	"regexp"
	"strings"
)

// Block is one shell block of a Markdown file.
type Block struct {
	Doc        string // the file, for messages
	Line       int    // of its opening fence, 1-based
	Code       string // its lines, as written
	Background string // the URL to wait for, when it runs in the background
	NotRun     string // why it is not run, when it is not
}

var (
	markerRE     = regexp.MustCompile(`^<!--\s*readme-test:\s*(.*?)\s*-->$`)
	backgroundRE = regexp.MustCompile(`^background until (\S+) answers$`)
	notRunRE     = regexp.MustCompile(`^not run:\s*(\S.*)$`)
)

// Parse returns the shell blocks of a Markdown document, with what their markers say. An
// unknown marker, a marker before no shell block, or an unclosed fence is an error.
func Parse(doc string) ([]Block, error) {
	var blocks []Block
	var marker string
	markerLine := 0
	sc := bufio.NewScanner(strings.NewReader(doc))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	line := 0
	var open *Block
	fence := ""
	for sc.Scan() {
		line++
		text := sc.Text()
		trimmed := strings.TrimSpace(text)
		if fence != "" { // inside a fence
			if trimmed == fence {
				if open != nil {
					blocks = append(blocks, *open)
					open = nil
				}
				fence = ""
				continue
			}
			if open != nil {
				open.Code += text + "\n"
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") {
			fence = "```"
			lang := strings.TrimSpace(strings.TrimPrefix(trimmed, "```"))
			if lang == "sh" || lang == "bash" || lang == "shell" {
				open = &Block{Line: line}
				if marker != "" {
					if err := open.mark(marker); err != nil {
						return nil, fmt.Errorf("line %d: %w", markerLine, err)
					}
				}
			} else if marker != "" {
				return nil, fmt.Errorf("line %d: a readme-test marker before a %q block, not a shell block", markerLine, lang)
			}
			marker = ""
			continue
		}
		if m := markerRE.FindStringSubmatch(trimmed); m != nil {
			marker, markerLine = m[1], line
			continue
		}
		if trimmed != "" && marker != "" {
			return nil, fmt.Errorf("line %d: a readme-test marker must be on the line before its block", markerLine)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if fence != "" {
		return nil, fmt.Errorf("a fence is not closed at the end of the document")
	}
	if marker != "" {
		return nil, fmt.Errorf("line %d: a readme-test marker before no block", markerLine)
	}
	return blocks, nil
}

func (b *Block) mark(marker string) error {
	if m := backgroundRE.FindStringSubmatch(marker); m != nil {
		b.Background = m[1]
		return nil
	}
	if m := notRunRE.FindStringSubmatch(marker); m != nil {
		b.NotRun = m[1]
		return nil
	}
	return fmt.Errorf("readme-test marker %q: want \"background until URL answers\" or \"not run: REASON\"", marker)
}

// Script is one bash script that runs the blocks in order, in one shell (so that what a block
// exports or sets, the next sees): it stops at the first command that fails, saying which block
// it was in, and prints "=== block N done" after each block that ran. Background blocks log to
// logDir/background-LINE.log.
func Script(blocks []Block, logDir string) string {
	var b strings.Builder
	b.WriteString("set -eo pipefail\n")
	b.WriteString("trap 'echo \"=== block $BLOCK ($LINE) failed: exit $?\"' ERR\n")
	b.WriteString(`ready() { for _ in $(seq 1200); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.5; done; echo "=== $1 never answered"; return 1; }` + "\n")
	for i, bl := range blocks {
		if bl.NotRun != "" {
			continue
		}
		fmt.Fprintf(&b, "BLOCK=%d LINE='%s:%d'\necho '=== block %d (%s:%d)'\n", i+1, bl.Doc, bl.Line, i+1, bl.Doc, bl.Line)
		if bl.Background != "" {
			fmt.Fprintf(&b, "(\n%s) >%q 2>&1 &\nready %q\n", bl.Code, fmt.Sprintf("%s/background-%d.log", logDir, i+1), bl.Background)
		} else {
			b.WriteString(bl.Code)
		}
		fmt.Fprintf(&b, "echo '=== block %d done'\n", i+1)
	}
	b.WriteString("echo '=== all blocks done'\n")
	return b.String()
}

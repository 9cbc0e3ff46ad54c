package main

import (
	"fmt"
	"sort"
	"strings"
)

// render prints the table of a run: per package, the mutants by status and the share killed
// of those that are not equivalent; then the survivors; then the hand mutants.
func render(byTarget map[string][]result, hand []handResult, sample int) string {
	var b strings.Builder
	what := "full run"
	if sample > 0 {
		what = fmt.Sprintf("sample of %d", sample)
	}
	fmt.Fprintf(&b, "\n## Mutation testing (%s)\n\n", what)
	b.WriteString("| package | mutants | killed | timed out | lived | not covered | not viable | equivalent | killed of non-equivalent |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	pkgs := make([]string, 0, len(byTarget))
	for p := range byTarget {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	var total counts
	var survivors []result
	for _, p := range pkgs {
		var c counts
		for _, r := range byTarget[p] {
			c.add(r)
			if r.Status == Lived || r.Status == NotCovered {
				survivors = append(survivors, r)
			}
		}
		total.merge(c)
		fmt.Fprintf(&b, "| %s | %s |\n", p, c.row())
	}
	fmt.Fprintf(&b, "| **all** | %s |\n", total.row())
	if len(survivors) > 0 {
		b.WriteString("\nSurvivors (as survivors.txt lists them, or not listed):\n\n")
		for _, r := range survivors {
			l := r.Listed
			if l == "" {
				l = "NOT LISTED"
			}
			fmt.Fprintf(&b, "- %s:%d:%d `%s` → `%s` (%s, %s, %s)\n", r.File, r.Line, r.Col, oneLine(r.Orig), oneLine(r.Repl), r.Operator, r.Status, l)
		}
	}
	if len(hand) > 0 {
		b.WriteString("\n| hand mutant (issue 14) | file | status | killed by |\n|---|---|---|---|\n")
		for i, h := range hand {
			fmt.Fprintf(&b, "| %d. %s | %s | %s | %s |\n", i+1, h.Name, h.File, h.Status, h.Test)
		}
	}
	return b.String()
}

type counts struct {
	all, killed, timedOut, lived, notCovered, notViable, equivalent int
}

func (c *counts) add(r result) {
	c.all++
	switch r.Status {
	case Killed:
		c.killed++
	case TimedOut:
		c.timedOut++
	case Lived:
		c.lived++
	case NotCovered:
		c.notCovered++
	case NotViable:
		c.notViable++
	}
	if (r.Status == Lived || r.Status == NotCovered) && r.Listed == "equivalent" {
		c.equivalent++
	}
}

func (c *counts) merge(o counts) {
	c.all += o.all
	c.killed += o.killed
	c.timedOut += o.timedOut
	c.lived += o.lived
	c.notCovered += o.notCovered
	c.notViable += o.notViable
	c.equivalent += o.equivalent
}

func (c counts) row() string {
	judged := c.killed + c.timedOut + c.lived + c.notCovered - c.equivalent
	pct := "–"
	if judged > 0 {
		pct = fmt.Sprintf("%.1f %%", 100*float64(c.killed+c.timedOut)/float64(judged))
	}
	return fmt.Sprintf("%d | %d | %d | %d | %d | %d | %d | %s", c.all, c.killed, c.timedOut, c.lived, c.notCovered, c.notViable, c.equivalent, pct)
}

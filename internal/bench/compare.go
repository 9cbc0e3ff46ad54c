package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Comparison holds the medians of several runs per target and metric.
type Comparison struct {
	// Base is the target every other one is compared with.
	Base    string
	Targets []string
	Runs    map[string]int
	Metrics []Metric // names, units and directions, in first-seen order
	// Median[target][metric name]
	Median map[string]map[string]float64
}

// ReadResults decodes results written by WriteJSON, one or several per stream.
func ReadResults(r io.Reader) ([]*Result, error) {
	dec := json.NewDecoder(r)
	var out []*Result
	for {
		var res Result
		err := dec.Decode(&res)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("bench: read results: %w", err)
		}
		out = append(out, &res)
	}
}

// Compare takes the median of each metric per target. base names the target the ratios are
// taken against (the first target seen when empty).
func Compare(results []*Result, base string) (*Comparison, error) {
	c := &Comparison{Base: base, Runs: map[string]int{}, Median: map[string]map[string]float64{}}
	values := map[string]map[string][]float64{}
	seen := map[string]bool{}
	for _, res := range results {
		if !slices.Contains(c.Targets, res.Target) {
			c.Targets = append(c.Targets, res.Target)
			values[res.Target] = map[string][]float64{}
		}
		c.Runs[res.Target]++
		for _, m := range res.Metrics {
			if !seen[m.Name] {
				seen[m.Name] = true
				c.Metrics = append(c.Metrics, Metric{Name: m.Name, Unit: m.Unit, Lower: m.Lower})
			}
			values[res.Target][m.Name] = append(values[res.Target][m.Name], m.Value)
		}
	}
	if len(c.Targets) == 0 {
		return nil, fmt.Errorf("bench: no results to compare")
	}
	if c.Base == "" { // berth if it was measured, else the first target seen
		c.Base = c.Targets[0]
		if slices.Contains(c.Targets, "berth") {
			c.Base = "berth"
		}
	}
	if !slices.Contains(c.Targets, c.Base) {
		return nil, fmt.Errorf("bench: no results for %q (have %s)", c.Base, strings.Join(c.Targets, ", "))
	}
	// The base first, the others in the order seen.
	c.Targets = append([]string{c.Base}, slices.DeleteFunc(c.Targets, func(t string) bool { return t == c.Base })...)
	for t, byName := range values {
		c.Median[t] = map[string]float64{}
		for name, vs := range byName {
			c.Median[t][name] = median(vs)
		}
	}
	return c, nil
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Advantage is how many times better the base is than target on m: base/target where higher
// is better, target/base where lower is. ok is false when either lacks the metric.
func (c *Comparison) Advantage(m Metric, target string) (float64, bool) {
	b, ok1 := c.Median[c.Base][m.Name]
	t, ok2 := c.Median[target][m.Name]
	if !ok1 || !ok2 || b == 0 || t == 0 {
		return 0, false
	}
	if m.Lower {
		return t / b, true
	}
	return b / t, true
}

// WriteMarkdown writes the comparison as a Markdown table: medians per target, then the
// base's advantage over each other target (×2.0: twice as fast, or half the latency/memory).
func (c *Comparison) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| metric | unit |")
	for _, t := range c.Targets {
		fmt.Fprintf(&b, " %s (%d runs) |", t, c.Runs[t])
	}
	for _, t := range c.Targets[1:] {
		fmt.Fprintf(&b, " %s vs %s |", c.Base, t)
	}
	b.WriteString("\n|---|---|")
	b.WriteString(strings.Repeat("---:|", 2*len(c.Targets)-1))
	b.WriteString("\n")
	for _, m := range c.Metrics {
		unit := m.Unit
		if m.Lower {
			unit += " ↓"
		}
		fmt.Fprintf(&b, "| %s | %s |", m.Name, unit)
		for _, t := range c.Targets {
			if v, ok := c.Median[t][m.Name]; ok {
				fmt.Fprintf(&b, " %s |", format(v))
			} else {
				b.WriteString(" — |")
			}
		}
		for _, t := range c.Targets[1:] {
			if a, ok := c.Advantage(m, t); ok {
				fmt.Fprintf(&b, " ×%.2f |", a)
			} else {
				b.WriteString(" — |")
			}
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

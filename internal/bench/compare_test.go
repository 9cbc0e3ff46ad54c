package bench

import (
	"bytes"
	"strings"
	"testing"
)

func TestCompare(t *testing.T) {
	run := func(target string, push, p50 float64) *Result {
		return &Result{Target: target, Metrics: []Metric{
			{Name: "push", Value: push, Unit: "MiB/s"},
			{Name: "head p50", Value: p50, Unit: "ms", Lower: true},
		}}
	}
	var buf bytes.Buffer
	for _, r := range []*Result{
		run("dist", 100, 4), run("berth", 290, 1), run("dist", 120, 2), run("berth", 300, 1.2),
		run("dist", 80, 3), run("berth", 1000, 0.8), {Target: "berth", Metrics: []Metric{{Name: "only berth", Value: 1}}},
	} {
		if err := WriteJSON(&buf, r); err != nil {
			t.Fatal(err)
		}
	}
	results, err := ReadResults(&buf)
	if err != nil || len(results) != 7 {
		t.Fatalf("read %d results: %v", len(results), err)
	}
	c, err := Compare(results, "berth")
	if err != nil {
		t.Fatal(err)
	}
	if c.Targets[0] != "berth" || c.Runs["berth"] != 4 || c.Runs["dist"] != 3 {
		t.Errorf("targets %v, runs %v", c.Targets, c.Runs)
	}
	tests := []struct {
		metric    string
		median    float64 // berth's
		advantage float64 // over dist
		ok        bool
	}{
		{"push", 300, 3, true},      // medians 300 and 100: the outlier 1000 does not count
		{"head p50", 1, 3, true},    // lower is better: 3 ms / 1 ms
		{"only berth", 1, 0, false}, // dist lacks it
	}
	for _, tt := range tests {
		m := Metric{Name: tt.metric}
		for _, mm := range c.Metrics {
			if mm.Name == tt.metric {
				m = mm
			}
		}
		if got := c.Median["berth"][tt.metric]; got != tt.median {
			t.Errorf("%s: median %v, want %v", tt.metric, got, tt.median)
		}
		a, ok := c.Advantage(m, "dist")
		if ok != tt.ok || a != tt.advantage {
			t.Errorf("%s: advantage %v %v, want %v %v", tt.metric, a, ok, tt.advantage, tt.ok)
		}
	}
	var out bytes.Buffer
	if err := c.WriteMarkdown(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| berth (4 runs) | dist (3 runs) | berth vs dist |", "| push | MiB/s | 300 | 100 | ×3.00 |", "| head p50 | ms ↓ | 1.00 | 3.00 | ×3.00 |", "| only berth |  | 1.00 | — | — |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := Compare(results, "zot"); err == nil {
		t.Error("a base without results was accepted")
	}
}

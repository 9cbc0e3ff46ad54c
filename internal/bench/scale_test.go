package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestScale seeds two scales into SQLite (and PostgreSQL when BERTH_TEST_POSTGRES names one),
// measures every operation, and writes the table and the charts.
func TestScale(t *testing.T) {
	dbs := []string{"sqlite"}
	if dsn := os.Getenv("BERTH_TEST_POSTGRES"); dsn != "" {
		dbs = append(dbs, dsn)
	}
	pts, err := Scale(context.Background(), ScaleConfig{Databases: dbs, Scales: []int{1, 3}, Reps: 3, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, p := range pts {
		seen[p.Database+"/"+p.Op]++
		if p.Millis <= 0 {
			t.Errorf("%+v: no time measured", p)
		}
		// 1 200 manifests and as many layers per scale, and a tenth more that nothing references.
		if strings.HasPrefix(p.Op, "GC") && p.Rows != int64(2640*p.Scale) {
			t.Errorf("%+v: GC scanned %d blobs, want %d", p, p.Rows, 2640*p.Scale)
		}
	}
	for _, db := range []string{"sqlite", "postgres"} {
		if db == "postgres" && len(dbs) == 1 {
			continue
		}
		for _, op := range append(append([]string{}, scaleFlat...), scaleLinear...) {
			if seen[db+"/"+op] != 2 {
				t.Errorf("%s %q measured %d times, want once per scale", db, op, seen[db+"/"+op])
			}
		}
	}
	var table bytes.Buffer
	if err := WriteScaleTable(&table, pts); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "| sqlite | manifest HEAD (tag lookup) |") || !strings.Contains(table.String(), "growth ×1 → ×3") {
		t.Errorf("table:\n%s", table.String())
	}
	dir := t.TempDir()
	files, err := PlotScale(pts, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2*len(dbs) {
		t.Errorf("charts %v, want two per database", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("%s is not a PNG (%v)", f, err)
		}
	}
	if _, err := json.Marshal(pts); err != nil {
		t.Fatal(err)
	}
	if _, err := Scale(context.Background(), ScaleConfig{Databases: dbs, Scales: []int{0}, Reps: 1}); err == nil {
		t.Error("a scale of 0 was taken")
	}
	if _, err := Scale(context.Background(), ScaleConfig{Databases: []string{"mysql://x"}, Scales: []int{1}, Reps: 1, Dir: t.TempDir()}); err == nil {
		t.Error("a database that is neither sqlite nor postgres was taken")
	}
}

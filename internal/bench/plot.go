package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// PlotScale draws the scale points as PNG charts in dir, two per database — the operations that
// must stay flat, and those that grow with the data they touch — each operation's median cost
// (ms) against the scale, both axes logarithmic. It returns the files written.
func PlotScale(pts []ScalePoint, dir string) ([]string, error) {
	var dbs []string
	for _, p := range pts {
		if !slices.Contains(dbs, p.Database) {
			dbs = append(dbs, p.Database)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files []string
	for _, db := range dbs {
		for _, g := range []struct {
			name, title string
			ops         []string
		}{
			{"flat", "must stay flat", scaleFlat},
			{"growing", "grow with the data they touch", scaleLinear},
		} {
			p := plot.New()
			p.Title.Text = fmt.Sprintf("berth on %s: operations that %s", db, g.title)
			p.X.Label.Text = "scale (× the base data set)"
			p.Y.Label.Text = "median cost (ms)"
			p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
			p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
			p.Legend.Top, p.Legend.Left = true, true
			p.Add(plotter.NewGrid())
			var lines []any
			top := 0.0
			for _, op := range g.ops {
				var xys plotter.XYs
				for _, pt := range pts {
					if pt.Database == db && pt.Op == op && pt.Millis > 0 {
						xys = append(xys, plotter.XY{X: float64(pt.Scale), Y: pt.Millis})
						top = max(top, pt.Millis)
					}
				}
				if len(xys) == 0 {
					continue
				}
				sort.Slice(xys, func(i, j int) bool { return xys[i].X < xys[j].X })
				lines = append(lines, op, xys)
			}
			if len(lines) == 0 {
				continue
			}
			if err := plotutil.AddLinePoints(p, lines...); err != nil {
				return files, err
			}
			p.Y.Max = top * 1000 // room above the curves for the legend (three decades)
			file := filepath.Join(dir, fmt.Sprintf("scale-%s-%s.png", db, g.name))
			if err := p.Save(9*vg.Inch, 6*vg.Inch, file); err != nil {
				return files, err
			}
			files = append(files, file)
		}
	}
	return files, nil
}

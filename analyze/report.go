package analyze

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"nasd/arch"
)

// Plots returns the report's plots, by file name (without .svg), in order.
func (r *Run) Plots(o SummaryOptions) []NamedSVG {
	o.defaults()
	var out []NamedSVG
	add := func(name, svg string) { out = append(out, NamedSVG{name, svg}) }
	best := r.BestSoFar()
	idx := make([]float64, len(r.Trials))
	wall := make([]float64, len(r.Trials))
	rewards := make([]float64, len(r.Trials))
	for i, t := range r.Trials {
		idx[i] = float64(i + 1)
		wall[i] = r.wallAt(t.Logged)
		rewards[i] = math.NaN()
		if t.OK() {
			rewards[i] = t.Reward
		}
	}
	{
		p := newPlot("best-vs-trials", "Best reward so far, by trials", "trials finished", "reward", idx, rewards, false)
		for i, t := range r.Trials {
			if t.OK() {
				p.circle(idx[i], t.Reward, 2.2, colFaint, fmt.Sprintf("%s: %.4f", t.ID, t.Reward))
			}
		}
		p.polyline(idx, best, colBest, 2, true)
		add(p.id, p.svg())
	}
	{
		p := newPlot("best-vs-time", "Best reward so far, by search time", "search time (s, rank 0's clock, all segments)", "reward", wall, rewards, false)
		p.polyline(wall, best, colBest, 2, true)
		add(p.id, p.svg())
	}
	{
		var rs []float64
		for _, v := range rewards {
			if !math.IsNaN(v) {
				rs = append(rs, v)
			}
		}
		lo, hi := span(rs, false)
		const bins = 20
		counts := make([]float64, bins)
		for _, v := range rs {
			counts[min(bins-1, int((v-lo)/(hi-lo)*bins))]++
		}
		maxC := 0.0
		for _, c := range counts {
			maxC = max(maxC, c)
		}
		p := newPlot("reward-histogram", "Reward distribution (ok trials)", "reward", "trials", []float64{lo, hi}, []float64{0, maxC}, false)
		p.intY = true
		p.x0, p.x1, p.y0 = lo, hi, 0
		for b, c := range counts {
			if c > 0 {
				w := (hi - lo) / bins
				p.rect(lo+float64(b)*w, 0, lo+float64(b+1)*w, c, colMark, fmt.Sprintf("%d trials", int(c)))
			}
		}
		add(p.id, p.svg())
	}
	{
		var ex, ey []float64
		for _, t := range r.Trials {
			for e, v := range t.ValAcc {
				ex, ey = append(ex, float64(e+1)), append(ey, v)
			}
		}
		if len(ex) > 0 {
			p := newPlot("learning-curves", "Validation accuracy per epoch, every trial (the 5 best in red)", "epoch", "validation accuracy", ex, ey, false)
			p.intX = true
			top := map[string]bool{}
			for _, t := range r.Best()[:min(5, len(r.Best()))] {
				top[t.ID] = true
			}
			for pass := range 2 {
				for _, t := range r.Trials {
					if len(t.ValAcc) == 0 || top[t.ID] != (pass == 1) {
						continue
					}
					xs := make([]float64, len(t.ValAcc))
					for e := range xs {
						xs[e] = float64(e + 1)
					}
					col, w := colFaint, 0.8
					if pass == 1 {
						col, w = colBest, 1.6
					}
					p.polyline(xs, t.ValAcc, col, w, false)
				}
			}
			add(p.id, p.svg())
		}
	}
	{
		var ux, mean, base, ent []float64
		for _, u := range r.Updates {
			if u.Updates > 0 && (len(ux) == 0 || float64(u.Updates) != ux[len(ux)-1]) {
				ux, mean, base, ent = append(ux, float64(u.Updates)), append(mean, u.MeanReward), append(base, u.Baseline), append(ent, u.Entropy)
			}
		}
		if len(ux) > 1 {
			p := newPlot("strategy-learning", "The controller's updates: batch mean reward (blue) and baseline (red)", "update", "reward", ux, append(append([]float64(nil), mean...), base...), false)
			p.intX = true
			p.polyline(ux, mean, colMark, 1.5, false)
			p.polyline(ux, base, colBest, 1.5, false)
			add(p.id, p.svg())
			q := newPlot("strategy-entropy", "The controller's policy entropy per update", "update", "entropy (nats, summed over decisions)", ux, ent, false)
			q.intX = true
			q.polyline(ux, ent, colMark, 1.5, false)
			add(q.id, q.svg())
		}
	}
	if pop, label := r.population(); pop > 0 {
		var ix, mean, best []float64
		var window []float64
		for i, t := range r.Trials {
			if !t.OK() {
				continue
			}
			window = append(window, t.Reward)
			if len(window) > pop {
				window = window[1:]
			}
			m, _ := meanCI(window)
			ix, mean, best = append(ix, float64(i+1)), append(mean, m), append(best, slices.Max(window))
		}
		if len(ix) > 1 {
			p := newPlot("population", fmt.Sprintf("Population fitness: the last %d ok results (%s), mean (blue) and best (red)", pop, label),
				"trials finished", "reward", ix, append(append([]float64(nil), mean...), best...), false)
			p.polyline(ix, mean, colMark, 1.5, false)
			p.polyline(ix, best, colBest, 1.5, false)
			add(p.id, p.svg())
		}
	}
	{
		var xs, ys []float64
		for _, t := range r.Trials {
			if !t.Dispatched.IsZero() {
				xs = append(xs, r.wallAt(t.Dispatched), r.wallAt(t.Logged))
				ys = append(ys, float64(t.Rank)-0.4, float64(t.Rank)+0.4)
			}
		}
		if len(xs) > 0 {
			p := newPlot("timeline", "Ranks over time (a bar per trial, dispatch to result, by status)", "search time (s)", "worker rank", xs, ys, false)
			p.intY = true
			for _, t := range r.Trials {
				if !t.Dispatched.IsZero() {
					p.rect(r.wallAt(t.Dispatched), float64(t.Rank)-0.35, r.wallAt(t.Logged), float64(t.Rank)+0.35, statusCol(t.Status),
						fmt.Sprintf("%s on rank %d: %s, %.1fs", t.ID, t.Rank, t.Status, t.Seconds))
				}
			}
			add(p.id, p.svg())
		}
	}
	for _, c := range []struct {
		id, label string
		cost      func(*Trial) float64
	}{{"acc-vs-params", "parameters", func(t *Trial) float64 { return float64(t.Params) }},
		{"acc-vs-flops", "forward FLOPs per example", func(t *Trial) float64 { return float64(t.FLOPs) }}} {
		var xs, ys []float64
		for _, t := range r.Best() {
			xs, ys = append(xs, c.cost(t)), append(ys, t.Reward)
		}
		if len(xs) == 0 {
			continue
		}
		p := newPlot(c.id, "Reward against "+c.label+" (green: the Pareto front)", c.label+" (log scale)", "reward", xs, ys, true)
		for _, t := range r.Best() {
			p.circle(c.cost(t), t.Reward, 2.5, colMark, fmt.Sprintf("%s: %.4f, %d", t.ID, t.Reward, int64(c.cost(t))))
		}
		var fx, fy []float64
		for _, t := range r.Pareto(c.cost) {
			fx, fy = append(fx, c.cost(t)), append(fy, t.Reward)
		}
		p.polyline(fx, fy, colFront, 1.8, true)
		add(p.id, p.svg())
	}
	stats := r.DecisionStats(o.TopQ)
	for k, d := range stats[:min(o.Decisions, len(stats))] {
		var xs, ys []float64
		for _, c := range d.Choices {
			xs = append(xs, float64(c.Choice))
		}
		for _, t := range r.Best() {
			ys = append(ys, t.Reward)
		}
		p := newPlot(fmt.Sprintf("slice-%d", k+1), fmt.Sprintf("%s (importance %.3f)", d.Name, d.Importance), "choice", "reward", xs, ys, false)
		p.x0, p.x1 = p.x0-0.5, p.x1+0.5
		p.xTicks = nil
		for _, c := range d.Choices {
			p.xTicks = append(p.xTicks, tick{float64(c.Choice), c.Name})
		}
		for _, t := range r.Best() {
			if d.Index < len(t.Arch.Decisions) {
				c := float64(t.Arch.Decisions[d.Index])
				p.circle(c+jitter(t.ID), t.Reward, 2, colFaint, fmt.Sprintf("%s: %.4f", t.ID, t.Reward))
			}
		}
		for _, c := range d.Choices {
			p.rect(float64(c.Choice)-0.3, c.Mean, float64(c.Choice)+0.3, c.Mean, colBest, fmt.Sprintf("mean %.4f over %d", c.Mean, c.Count))
		}
		add(p.id, p.svg())
	}
	if pt, ok := r.Perturbation(); ok && len(pt.Neighbours) > 0 {
		var xs, ys []float64
		for i, n := range pt.Neighbours {
			xs = append(xs, float64(i+1), float64(i+1))
			ys = append(ys, n.Diff-2*n.SE, n.Diff+2*n.SE)
		}
		ys = append(ys, 0)
		p := newPlot("perturb", fmt.Sprintf("One-decision neighbours against the base (%d better, %d equal, %d worse)", pt.Better, pt.Equal, pt.Worse),
			"neighbour, by reward difference", "reward − base's (± 2 s.e.)", xs, ys, false)
		p.intX = true
		p.polyline([]float64{p.x0, p.x1}, []float64{0, 0}, colFaint, 1, false)
		for i, n := range pt.Neighbours {
			x := float64(i + 1)
			col := map[string]string{"better": colFront, "worse": colBest}[n.Verdict]
			if col == "" {
				col = colMark
			}
			if n.SE > 0 {
				p.polyline([]float64{x, x}, []float64{n.Diff - 2*n.SE, n.Diff + 2*n.SE}, col, 1, false)
			}
			p.circle(x, n.Diff, 2.5, col, fmt.Sprintf("%s: %+.4f (%s)", n.Trial.ID, n.Diff, n.Verdict))
		}
		add(p.id, p.svg())
	}
	if r.Space != nil {
		dist, _ := r.SecondBest(3)
		for k, d := range dist {
			if svg, err := drawArch(fmt.Sprintf("arch-%d", k+1), fmt.Sprintf("%d. %s (mean reward %.4f)", k+1, d.Trial.ID, d.Mean), r.Space, d.Trial.Arch); err == nil {
				add(fmt.Sprintf("arch-%d", k+1), svg)
			}
		}
	}
	return out
}

// population is an evolutionary run's population size, from its
// configuration (0 for other strategies), and where it came from.
func (r *Run) population() (int, string) {
	if r.Strategy != "ga" && r.Strategy != "aging-evolution" {
		return 0, ""
	}
	var cfg struct {
		Strategy struct {
			Options map[string]any `json:"options"`
		} `json:"strategy"`
	}
	json.Unmarshal(r.Config, &cfg)
	if v, ok := cfg.Strategy.Options["population"].(float64); ok && v >= 2 {
		return int(v), "the configured population"
	}
	return max(5, len(r.Trials)/10), "a window of a tenth of the trials: the log does not give the population's default"
}

// NamedSVG is one plot.
type NamedSVG struct {
	Name string
	SVG  string
}

// jitter is a deterministic horizontal offset in ±0.25 from a trial's ID.
func jitter(id string) float64 {
	h := fnv.New32a()
	h.Write([]byte(id))
	return (float64(h.Sum32()%1000)/999 - 0.5) * 0.5
}

// wallAt is search time at t: seconds since the run began, gaps between
// segments left out.
func (r *Run) wallAt(t time.Time) float64 {
	before := 0.0
	for _, s := range r.Segments {
		if !t.Before(s.Start) && !t.After(s.End) {
			return before + t.Sub(s.Start).Seconds()
		}
		if t.Before(s.Start) {
			return before
		}
		before += s.End.Sub(s.Start).Seconds()
	}
	return before
}

// drawArch draws an architecture layer by layer: a box per layer with its
// op and output shape, inputs as lines and skips as arcs on the right.
func drawArch(id, title string, s arch.Space, a arch.Arch) (string, error) {
	an, err := arch.Analyze(s, a)
	if err != nil {
		return "", err
	}
	const rowH, boxW, boxH, x0 = 34, 300, 24, 40
	n := len(an.Layers)
	if n > 400 {
		return "", fmt.Errorf("%d layers: too many to draw", n)
	}
	h := 40 + n*rowH
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" id="%s" class="plot arch" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="10">`+"\n", id, plotW, h, plotW, h)
	fmt.Fprintf(&b, `<text x="%d" y="17" font-size="13" font-weight="bold">%s</text>`+"\n", x0, html.EscapeString(title))
	row := map[string]int{}
	for i, l := range an.Layers {
		row[l.Name] = i
	}
	y := func(i int) int { return 30 + i*rowH }
	for i, l := range an.Layers {
		for _, in := range l.Inputs {
			if j, ok := row[in]; ok {
				if j == i-1 {
					fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#444"/>`+"\n", x0+boxW/2, y(j)+boxH, x0+boxW/2, y(i))
				} else {
					bend := x0 + boxW + 12 + 6*((i-j)%20)
					fmt.Fprintf(&b, `<path d="M%d %d C%d %d %d %d %d %d" fill="none" stroke="#444"/>`+"\n", x0+boxW, y(j)+boxH/2, bend, y(j)+boxH/2, bend, y(i)+boxH/2, x0+boxW, y(i)+boxH/2)
				}
			}
		}
		for _, in := range l.Skips {
			if j, ok := row[in]; ok {
				bend := x0 + boxW + 20 + 8*((i-j)%20)
				fmt.Fprintf(&b, `<path d="M%d %d C%d %d %d %d %d %d" fill="none" stroke="%s" stroke-dasharray="4 2"/>`+"\n", x0+boxW, y(j)+boxH/2, bend, y(j)+boxH/2, bend, y(i)+boxH/2, x0+boxW, y(i)+boxH/2, colBest)
			}
		}
		label := fmt.Sprintf("%s: %s → %s", l.Name, l.Op, l.Output.String())
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" rx="3" fill="#eef3fb" stroke="#1f77b4"/><text x="%d" y="%d">%s</text>`+"\n",
			x0, y(i), boxW, boxH, x0+6, y(i)+15, html.EscapeString(firstLine(label, 58)))
	}
	b.WriteString("</svg>\n")
	return b.String(), nil
}

// WriteHTML writes the self-contained report: no external URL, inline SVG,
// the same bytes for the same log.
func (r *Run) WriteHTML(w io.Writer, o SummaryOptions) error {
	o.defaults()
	var summary bytes.Buffer
	r.Summary(&summary, o)
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
	fmt.Fprintf(&b, "<title>nasd run %s</title>\n", html.EscapeString(filepath.Base(r.Dir)))
	b.WriteString(`<style>
body { font-family: sans-serif; margin: 2em; max-width: 1200px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
pre { background: #f6f8fa; padding: 1em; overflow-x: auto; font-size: 12px; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; }
table { border-collapse: collapse; font-size: 12px; } td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
</style>
</head>
<body>
`)
	fmt.Fprintf(&b, "<h1>nasd run %s</h1>\n", html.EscapeString(r.Dir))
	b.WriteString("<h2>Summary</h2>\n<pre id=\"summary\">" + html.EscapeString(summary.String()) + "</pre>\n")
	sections := []struct {
		title  string
		prefix []string
	}{
		{"Search progress", []string{"best-vs-trials", "best-vs-time", "reward-histogram", "learning-curves", "strategy-learning", "strategy-entropy", "population"}},
		{"How busy the ranks were", []string{"timeline"}},
		{"Cost and reward", []string{"acc-vs-params", "acc-vs-flops"}},
		{"The decisions that matter most: reward by choice (grey: trials, red: mean)", []string{"slice-"}},
		{"Is the best a local optimum? (nasd perturb)", []string{"perturb"}},
		{"The best distinct architectures", []string{"arch-"}},
	}
	plots := r.Plots(o)
	for _, s := range sections {
		var in []string
		for _, p := range plots {
			for _, pre := range s.prefix {
				if p.Name == pre || (strings.HasSuffix(pre, "-") && strings.HasPrefix(p.Name, pre)) {
					in = append(in, p.SVG)
				}
			}
		}
		if len(in) == 0 {
			continue
		}
		fmt.Fprintf(&b, "<h2>%s</h2>\n<div class=\"plots\">\n%s</div>\n", html.EscapeString(s.title), strings.Join(in, ""))
	}
	// The rendered size of every plot, for a headless browser's DOM dump to
	// show that each one was laid out (the tests check it).
	b.WriteString(`<script>
for (const s of document.querySelectorAll("svg.plot")) {
  const r = s.getBoundingClientRect();
  s.setAttribute("data-rendered", Math.round(r.width) + "x" + Math.round(r.height));
}
</script>
`)
	b.WriteString("</body>\n</html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteSVGs writes each plot to dir/NAME.svg.
func (r *Run) WriteSVGs(dir string, o SummaryOptions) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("analyze: %w", err)
	}
	var files []string
	for _, p := range r.Plots(o) {
		path := filepath.Join(dir, p.Name+".svg")
		if err := os.WriteFile(path+".tmp", []byte(p.SVG), 0o644); err != nil {
			return files, fmt.Errorf("analyze: %w", err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			return files, fmt.Errorf("analyze: %w", err)
		}
		files = append(files, path)
	}
	return files, nil
}

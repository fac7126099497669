package analyze

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
)

// Group is runs compared as one (a strategy over seeds, say).
type Group struct {
	Name  string
	Runs  []*Run
	Final []float64 // each run's best ok reward (NaN: none)
}

// GroupRuns groups runs by key (a run's strategy, for instance), groups in
// order of first appearance.
func GroupRuns(runs []*Run, key func(*Run) string) []*Group {
	var gs []*Group
	by := map[string]*Group{}
	for _, r := range runs {
		k := key(r)
		g, ok := by[k]
		if !ok {
			g = &Group{Name: k}
			by[k] = g
			gs = append(gs, g)
		}
		g.Runs = append(g.Runs, r)
		best := math.NaN()
		if b := r.Best(); len(b) > 0 {
			best = b[0].Reward
		}
		g.Final = append(g.Final, best)
	}
	return gs
}

// MannWhitneyGreater is the one-sided p-value of the Mann–Whitney U test
// that x tends to be larger than y: exact (every split of the pooled values
// enumerated, ties counted half) while C(n+m, n) ≤ 200 000, else the normal
// approximation with a tie-free variance and a continuity correction.
func MannWhitneyGreater(x, y []float64) float64 {
	u := func(a, b []float64) float64 {
		s := 0.0
		for _, ai := range a {
			for _, bj := range b {
				switch {
				case ai > bj:
					s++
				case ai == bj:
					s += 0.5
				}
			}
		}
		return s
	}
	n, m := len(x), len(y)
	if n == 0 || m == 0 {
		return math.NaN()
	}
	obs := u(x, y)
	if binom(n+m, n) <= 200000 {
		pooled := append(append([]float64(nil), x...), y...)
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		count, total := 0, 0
		in := make([]bool, n+m)
		for {
			clear(in)
			for _, i := range idx {
				in[i] = true
			}
			a, b := make([]float64, 0, n), make([]float64, 0, m)
			for i, v := range pooled {
				if in[i] {
					a = append(a, v)
				} else {
					b = append(b, v)
				}
			}
			total++
			if u(a, b) >= obs-1e-9 {
				count++
			}
			// next combination
			i := n - 1
			for i >= 0 && idx[i] == n+m-n+i {
				i--
			}
			if i < 0 {
				break
			}
			idx[i]++
			for j := i + 1; j < n; j++ {
				idx[j] = idx[j-1] + 1
			}
		}
		return float64(count) / float64(total)
	}
	mu := float64(n*m) / 2
	sd := math.Sqrt(float64(n*m*(n+m+1)) / 12)
	z := (obs - mu - 0.5) / sd
	return 0.5 * math.Erfc(z/math.Sqrt2)
}

func binom(n, k int) float64 {
	r := 1.0
	for i := 1; i <= k; i++ {
		r = r * float64(n-k+i) / float64(i)
	}
	return r
}

// Cost is what a run spent until its best reward first reached a target.
type Cost struct {
	Reached      bool
	Trials       int     // results logged until then
	ChildEpochs  int     // epochs trained by those trials
	WorkerHours  float64 // Σ their training seconds / 3600 (worker time; × cores per worker for core-hours)
	SearchSecond float64 // search time until then (rank 0's clock)
}

// CostTo is the cost for r to reach reward target.
func (r *Run) CostTo(target float64) Cost {
	var c Cost
	for _, t := range r.Trials {
		c.Trials++
		c.ChildEpochs += len(t.ValAcc)
		c.WorkerHours += t.Seconds / 3600
		if t.OK() && t.Reward >= target {
			c.Reached = true
			c.SearchSecond = r.wallAt(t.Logged)
			return c
		}
	}
	return c
}

// WriteComparison writes the groups' table: runs, final best reward
// (mean ± sd, median), the cost to reach target, and the one-sided
// Mann–Whitney test of every ordered pair of groups.
func WriteComparison(w io.Writer, gs []*Group, target float64) {
	fmt.Fprintf(w, "Final best reward by group (each run's best ok trial):\n")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  group\truns\tmean ± sd\tmedian\truns reaching %.4f\ttrials to it (median)\tchild-epochs\tworker-hours\n", target)
	for _, g := range gs {
		vals := finite(g.Final)
		m, sd := meanSD(vals)
		var trials, epochs []float64
		var hours []float64
		for _, r := range g.Runs {
			if c := r.CostTo(target); c.Reached {
				trials = append(trials, float64(c.Trials))
				epochs = append(epochs, float64(c.ChildEpochs))
				hours = append(hours, c.WorkerHours)
			}
		}
		fmt.Fprintf(tw, "  %s\t%d\t%.4f ± %.4f\t%.4f\t%d/%d\t%s\t%s\t%s\n", g.Name, len(g.Runs), m, sd, median(vals),
			len(trials), len(g.Runs), medTxt(trials, "%.0f"), medTxt(epochs, "%.0f"), medTxt(hours, "%.3f"))
	}
	tw.Flush()
	if len(gs) < 2 {
		return
	}
	fmt.Fprintf(w, "\nOne-sided Mann–Whitney U tests of the final best rewards (exact for small groups): p that A's are not larger than B's\n")
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  A\tB\tp (A > B)")
	for _, a := range gs {
		for _, b := range gs {
			if a != b {
				fmt.Fprintf(tw, "  %s\t%s\t%.4f\n", a.Name, b.Name, MannWhitneyGreater(finite(a.Final), finite(b.Final)))
			}
		}
	}
	tw.Flush()
}

func finite(xs []float64) []float64 {
	var out []float64
	for _, x := range xs {
		if !math.IsNaN(x) {
			out = append(out, x)
		}
	}
	return out
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medTxt(xs []float64, f string) string {
	if len(xs) == 0 {
		return "-"
	}
	return fmt.Sprintf(f, median(xs))
}

// ComparisonPlot draws every group's best-so-far curve against trials: the
// median over its runs, with the band between the lowest and highest run.
func ComparisonPlot(gs []*Group) string {
	colours := []string{colMark, colBest, colFront, "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"}
	var xs, ys []float64
	for _, g := range gs {
		for _, r := range g.Runs {
			for i, v := range r.BestSoFar() {
				xs, ys = append(xs, float64(i+1)), append(ys, v)
			}
		}
	}
	var names []string
	for _, g := range gs {
		names = append(names, g.Name)
	}
	p := newPlot("compare", "Best reward so far: median of each group's runs, band min–max ("+strings.Join(names, ", ")+")", "trials finished", "best reward", xs, ys, false)
	for k, g := range gs {
		col := colours[k%len(colours)]
		n := 0
		for _, r := range g.Runs {
			n = max(n, len(r.Trials))
		}
		var ix, lo, hi, med []float64
		for i := range n {
			var vs []float64
			for _, r := range g.Runs {
				if b := r.BestSoFar(); i < len(b) && !math.IsNaN(b[i]) {
					vs = append(vs, b[i])
				}
			}
			if len(vs) == 0 {
				continue
			}
			ix = append(ix, float64(i+1))
			lo, hi, med = append(lo, slices.Min(vs)), append(hi, slices.Max(vs)), append(med, median(vs))
		}
		if len(ix) == 0 {
			continue
		}
		var pts []string
		for i := range ix {
			pts = append(pts, f2(p.px(ix[i]))+","+f2(p.py(hi[i])))
		}
		for i := len(ix) - 1; i >= 0; i-- {
			pts = append(pts, f2(p.px(ix[i]))+","+f2(p.py(lo[i])))
		}
		fmt.Fprintf(&p.b, `<polygon points="%s" fill="%s" fill-opacity="0.15" stroke="none"/>`+"\n", strings.Join(pts, " "), col)
		p.polyline(ix, med, col, 2, true)
		fmt.Fprintf(&p.b, `<text x="%d" y="%d" fill="%s">%s (%d runs)</text>`+"\n", marginL+10, marginT+16+14*k, col, g.Name, len(g.Runs))
	}
	return p.svg()
}

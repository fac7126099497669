package strategytest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"nasd/arch"
	"nasd/controller"
)

// NKOptions configure an NK landscape.
type NKOptions struct {
	// Seed draws the interaction graph and the contribution tables.
	Seed uint64
	// K is the number of other decisions each decision's contribution
	// depends on: 0 makes the landscape additively separable, len(decisions)−1
	// makes it uncorrelated (every decision depends on all others).
	K int
	// Noise is the standard deviation of the Gaussian noise added to a
	// trial's accuracy, drawn from the trial's seed.
	Noise float64
}

// NK is an NK fitness landscape (Reference: Kauffman & Weinberger 1989,
// "The NK model of rugged fitness landscapes and its application to
// maturation of the immune response", J. Theor. Biol. 141(2):211–245;
// Kauffman 1993, "The Origins of Order", ch. 2) over the decisions of an
// arch.Space: a toy objective whose decisions interact, unlike surrogate's,
// where each decision adds its own weight whatever the others are.
//
// Each decision i has K neighbours, distinct other decisions drawn
// uniformly at random (Kauffman's "random interactions" model), and a table
// of contributions f_i, one for each combination of the choices of i and its
// neighbours, drawn uniformly from [0, 1). Decisions may have any number of
// choices (the model's generalisation beyond binary genes). The fitness of
// an architecture is F = Σ_i f_i(x_i, x_{neighbours of i}) (Kauffman takes
// the mean; the scaling below makes that immaterial); its noise-free
// accuracy is F scaled so that the worst architecture of the space scores
// 0.1 and the best 0.95, the range of surrogate's accuracy:
//
//	accuracy = 0.1 + 0.85 · (F − F_min) / (F_max − F_min)
//
// F_min and F_max are exact: NewNK finds both by branch and bound over the
// whole space. A trial's result is one epoch at that accuracy plus Gaussian
// noise of standard deviation NKOptions.Noise drawn from the trial's seed,
// clamped to [0, 1]; its reward is the accuracy cubed, as surrogate's. NK
// is safe for concurrent use, and the same trial always gives the same
// result.
type NK struct {
	space arch.Space
	opt   NKOptions
	card  []int       // choices of each decision
	vars  [][]int     // vars[i]: decision i, then its K neighbours
	table [][]float64 // table[i][mixed-radix index of the choices of vars[i]]
	min   float64     // F of the worst architecture
	max   float64     // F of the best
	best  []int       // the best architecture's decisions
}

// nkMaxEntries bounds the size of an NK landscape's tables (8 MiB of
// float64) and so the time NewNK takes to find its extremes (under a second
// in the 3-layer nas space; ~10 ms at K = 3).
const nkMaxEntries = 1 << 20

// NewNK draws an NK landscape over space from opt.Seed and finds its best
// and worst architectures. K must be in 0..len(space.Decisions())−1, and
// small enough that the tables hold at most 2²⁰ entries in all (K ≤ 7 in
// the 3-layer nas space whatever the seed; K ≥ 11 never).
func NewNK(space arch.Space, opt NKOptions) (*NK, error) {
	ds := space.Decisions()
	n := len(ds)
	switch {
	case n == 0:
		return nil, fmt.Errorf("strategytest: NK landscape over space %s: no decisions", space.Name())
	case opt.K < 0 || opt.K >= n:
		return nil, fmt.Errorf("strategytest: NK landscape over space %s: K = %d: want 0..%d (the space has %d decisions)",
			space.Name(), opt.K, n-1, n)
	case opt.Noise < 0 || math.IsNaN(opt.Noise):
		return nil, fmt.Errorf("strategytest: NK landscape: noise %v: want ≥ 0", opt.Noise)
	}
	r := rand.New(rand.NewPCG(opt.Seed, 0x6e6b_6c61_6e64)) // "nkland"
	o := &NK{space: space, opt: opt, card: make([]int, n), vars: make([][]int, n), table: make([][]float64, n)}
	for i, d := range ds {
		o.card[i] = len(d.Choices)
	}
	entries := 0
	for i := range n {
		others := make([]int, 0, n-1)
		for j := range n {
			if j != i {
				others = append(others, j)
			}
		}
		r.Shuffle(len(others), func(a, b int) { others[a], others[b] = others[b], others[a] })
		o.vars[i] = append([]int{i}, others[:opt.K]...)
		size := 1
		for _, v := range o.vars[i] {
			size *= o.card[v]
		}
		if entries += size; entries > nkMaxEntries {
			return nil, fmt.Errorf("strategytest: NK landscape over space %s: K = %d: more than %d table entries; use a smaller K",
				space.Name(), opt.K, nkMaxEntries)
		}
		o.table[i] = make([]float64, size)
		for k := range o.table[i] {
			o.table[i][k] = r.Float64()
		}
	}
	o.max, o.best = o.extreme(1)
	lo, _ := o.extreme(-1)
	o.min = -lo
	return o, nil
}

// Fitness is F, the sum of the contributions of decisions d (a complete
// assignment of the space's decisions).
func (o *NK) Fitness(d []int) float64 {
	f := 0.0
	for i := range o.table {
		f += o.table[i][o.index(i, d)]
	}
	return f
}

// index is the position in table[i] of the choices d makes for vars[i].
func (o *NK) index(i int, d []int) int {
	k := 0
	for _, v := range o.vars[i] {
		k = k*o.card[v] + d[v]
	}
	return k
}

// Accuracy is the noise-free accuracy of a: 0.1 at the worst architecture
// of the space, 0.95 at the best. An architecture with the wrong number of
// decisions or a choice out of range scores 0.
func (o *NK) Accuracy(a arch.Arch) float64 {
	if len(a.Decisions) != len(o.card) {
		return 0
	}
	for i, c := range a.Decisions {
		if c < 0 || c >= o.card[i] {
			return 0
		}
	}
	return o.scale(o.Fitness(a.Decisions))
}

func (o *NK) scale(f float64) float64 {
	if o.max == o.min {
		return baseAcc + rangeAcc
	}
	return baseAcc + rangeAcc*(f-o.min)/(o.max-o.min)
}

// Accuracy range, as surrogate's: 0.1 (chance for 10 classes) at the worst
// architecture, 0.95 at the best.
const (
	baseAcc  = 0.1
	rangeAcc = 0.85
)

// Optimum returns the best architecture and its noise-free reward
// (0.95³ ≈ 0.857).
func (o *NK) Optimum() (arch.Arch, float64) {
	a, err := o.space.Arch(o.best)
	if err != nil {
		panic("strategytest: NK optimum is not an architecture of its space: " + err.Error())
	}
	return a, math.Pow(baseAcc+rangeAcc, 3)
}

// Train evaluates t at once: one epoch whose validation accuracy is
// Accuracy(t.Arch) plus the trial's noise, clamped to [0, 1], and reward
// that accuracy cubed; t.Epochs is ignored. A ctx that has ended gives
// status "timeout" (deadline) or "canceled" with no epochs; an architecture
// of another space or options gives status "failed". It has Train's
// signature of surrogate.Objective, so it can stand in for it.
func (o *NK) Train(ctx context.Context, t controller.Trial) controller.Result {
	res := controller.Result{TrialID: t.ID}
	an, err := arch.Analyze(o.space, t.Arch)
	if err != nil {
		res.Status, res.Reason = "failed", "strategytest: NK: "+err.Error()
		return res
	}
	res.Params, res.FLOPs = an.Params, an.FLOPs
	if err := ctx.Err(); err != nil {
		res.Status = "canceled"
		if errors.Is(err, context.DeadlineExceeded) {
			res.Status = "timeout"
		}
		res.Reason = "stopped after 0 of 1 epochs: " + err.Error()
		return res
	}
	acc := o.Accuracy(t.Arch)
	if o.opt.Noise > 0 {
		acc += o.opt.Noise * rand.New(rand.NewPCG(t.Seed, 0x6e6b6e6f697365)).NormFloat64() // "nknoise"
	}
	acc = min(max(acc, 0), 1)
	res.Status, res.ValAcc, res.BestValAcc, res.Reward = "ok", []float64{acc}, acc, acc*acc*acc
	return res
}

// extreme returns the maximum of sign·F over every assignment of the
// decisions, as sign·F, and an assignment that attains it. It is a
// depth-first branch and bound over the decisions in order: a table's
// contribution is known once the last of its decisions is assigned; the
// bound adds, for each table not yet complete, its largest entry among
// those consistent with the decisions assigned so far (precomputed for each
// prefix of its decisions, in assignment order). The bound never
// underestimates, so the result is exact; NK's tests compare it with
// enumeration.
func (o *NK) extreme(sign float64) (float64, []int) {
	n := len(o.card)
	// For each table, its decisions in assignment order and, for each
	// prefix length j, the largest entry given the first j of them:
	// part[i][j] indexed by the mixed-radix index of those j choices.
	type term struct {
		order []int       // decisions, ascending
		part  [][]float64 // part[j][prefix index]
	}
	terms := make([]term, n)
	for i := range n {
		ord := slices.Clone(o.vars[i])
		slices.Sort(ord)
		m := len(ord)
		part := make([][]float64, m+1)
		// part[m]: the table re-indexed by ord.
		size := len(o.table[i])
		part[m] = make([]float64, size)
		d := make([]int, n)
		for k := range size {
			// decode k in ord's radix into d
			rem := k
			for q := m - 1; q >= 0; q-- {
				v := ord[q]
				d[v] = rem % o.card[v]
				rem /= o.card[v]
			}
			part[m][k] = sign * o.table[i][o.index(i, d)]
		}
		for j := m - 1; j >= 0; j-- {
			c := o.card[ord[j]]
			part[j] = make([]float64, len(part[j+1])/c)
			for k := range part[j] {
				b := math.Inf(-1)
				for x := range c {
					b = max(b, part[j+1][k*c+x])
				}
				part[j][k] = b
			}
		}
		terms[i] = term{order: ord, part: part}
	}
	// byVar[v]: the tables that contain decision v.
	byVar := make([][]int, n)
	for i, t := range terms {
		for _, v := range t.order {
			byVar[v] = append(byVar[v], i)
		}
	}
	// State: for each table, how many of its decisions are assigned and the
	// prefix index of their choices.
	done := make([]int, n)
	idx := make([]int, n)
	bound := 0.0 // Σ over tables of part[done][idx]
	for i := range terms {
		bound += terms[i].part[0][0]
	}
	d := make([]int, n)
	bestVal, best := math.Inf(-1), make([]int, n)
	var visit func(v int)
	visit = func(v int) {
		if v == n {
			if f := sign * o.Fitness(d); f > bestVal {
				bestVal = f
				copy(best, d)
			}
			return
		}
		// Try the choices in order of their bound, best first.
		type cand struct {
			x int
			b float64
		}
		cs := make([]cand, o.card[v])
		for x := range cs {
			b := bound
			for _, i := range byVar[v] {
				t := &terms[i]
				b += t.part[done[i]+1][idx[i]*o.card[v]+x] - t.part[done[i]][idx[i]]
			}
			cs[x] = cand{x, b}
		}
		slices.SortStableFunc(cs, func(a, b cand) int {
			switch {
			case a.b > b.b:
				return -1
			case a.b < b.b:
				return 1
			}
			return 0
		})
		saved := bound
		for _, c := range cs {
			if c.b < bestVal-boundSlack {
				break
			}
			for _, i := range byVar[v] {
				done[i]++
				idx[i] = idx[i]*o.card[v] + c.x
			}
			d[v], bound = c.x, c.b
			visit(v + 1)
			for _, i := range byVar[v] {
				done[i]--
				idx[i] /= o.card[v]
			}
			bound = saved
		}
	}
	visit(0)
	return bestVal, best
}

// boundSlack keeps extreme exact despite rounding: the bound is updated by
// differences, so it may drift from the exact sum by a few ulps (sums of at
// most a few dozen values in [0, 1)); a branch is pruned only when its bound
// is below the best value found by more than that, and a leaf's value is
// recomputed exactly.
const boundSlack = 1e-9

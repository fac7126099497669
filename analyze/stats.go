package analyze

import (
	"cmp"
	"math"
	"slices"
	"sort"
	"time"
)

// ChoiceStat is one choice of one decision over the ok trials.
type ChoiceStat struct {
	Choice     int
	Name       string
	Count      int
	Mean       float64 // mean reward
	CI         float64 // half-width of its 95% confidence interval (normal approximation; NaN under 2 trials)
	TopShare   float64 // share of the top trials that took this choice
	AllShare   float64 // share of all ok trials that took it
	Enrichment float64 // TopShare / AllShare: > 1 over-represented among the best
}

// DecisionStat is one decision slot with its choices and its importance.
type DecisionStat struct {
	Index   int
	Name    string
	Choices []ChoiceStat
	// Importance is the total-variation distance between the choice
	// distribution of the top trials and that of all ok trials, ½·Σ|top −
	// all| in [0, 1): how much being among the best depends on this
	// decision (the top-vs-all contrast of PED-ANOVA, Watanabe et al.
	// 2023, with the empirical distributions). Contrasting with all the
	// trials the strategy actually sampled, not with a uniform prior, keeps
	// a strategy that samples non-uniformly (RL, evolution) from making its
	// own preferences look important.
	Importance float64
	// Best is the choice with the highest mean reward among those taken by
	// at least 2 trials (−1: none).
	Best int
}

// DecisionStats computes the per-decision statistics over the ok trials,
// top being the best fraction topQ of them (at least one trial), and
// returns them by importance, most important first.
func (r *Run) DecisionStats(topQ float64) []DecisionStat {
	best := r.Best()
	if len(best) == 0 {
		return nil
	}
	nTop := max(1, int(math.Ceil(topQ*float64(len(best)))))
	top := best[:nTop]
	names := r.DecisionNames()
	var out []DecisionStat
	for i, name := range names {
		d := DecisionStat{Index: i, Name: name, Best: -1}
		byChoice := map[int][]float64{}
		topCount := map[int]int{}
		for _, t := range best {
			if i < len(t.Arch.Decisions) {
				c := t.Arch.Decisions[i]
				byChoice[c] = append(byChoice[c], t.Reward)
			}
		}
		for _, t := range top {
			if i < len(t.Arch.Decisions) {
				topCount[t.Arch.Decisions[i]]++
			}
		}
		choices := make([]int, 0, len(byChoice))
		for c := range byChoice {
			choices = append(choices, c)
		}
		sort.Ints(choices)
		bestMean := math.Inf(-1)
		for _, c := range choices {
			rs := byChoice[c]
			m, ci := meanCI(rs)
			cs := ChoiceStat{Choice: c, Name: r.Choice(i, c), Count: len(rs), Mean: m, CI: ci,
				TopShare: float64(topCount[c]) / float64(nTop), AllShare: float64(len(rs)) / float64(len(best))}
			cs.Enrichment = cs.TopShare / cs.AllShare
			d.Importance += 0.5 * math.Abs(cs.TopShare-cs.AllShare)
			if len(rs) >= 2 && m > bestMean {
				bestMean, d.Best = m, c
			}
			d.Choices = append(d.Choices, cs)
		}
		out = append(out, d)
	}
	slices.SortStableFunc(out, func(a, b DecisionStat) int { return cmp.Compare(b.Importance, a.Importance) })
	return out
}

// meanSD is the mean and the sample standard deviation (NaN under 2 values;
// both NaN for none).
func meanSD(xs []float64) (float64, float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	m := 0.0
	for _, x := range xs {
		m += x
	}
	m /= float64(len(xs))
	if len(xs) < 2 {
		return m, math.NaN()
	}
	ss := 0.0
	for _, x := range xs {
		ss += (x - m) * (x - m)
	}
	return m, math.Sqrt(ss / float64(len(xs)-1))
}

// meanCI is the mean and the half-width of its 95% normal interval.
func meanCI(xs []float64) (float64, float64) {
	m, sd := meanSD(xs)
	return m, 1.96 * sd / math.Sqrt(float64(len(xs)))
}

// Distinct is one architecture of a run: its evaluations pooled.
type Distinct struct {
	Hash    string
	Trial   *Trial // its best evaluation
	Rewards []float64
	Mean    float64
	// Changed lists the decisions where it differs from the best
	// architecture (indices), and Distance is their number (Hamming).
	Changed  []int
	Distance int
	Gap      float64 // the best's mean reward minus this one's
}

// SecondBest returns the k best distinct architectures (by mean reward of
// their ok evaluations), the best first, each compared with the best; and
// the noise: the pooled standard deviation of repeated evaluations of one
// architecture (NaN when no architecture was evaluated twice).
func (r *Run) SecondBest(k int) ([]Distinct, float64) {
	by := map[string]*Distinct{}
	var order []string
	for _, t := range r.Best() {
		d, ok := by[t.Hash]
		if !ok {
			d = &Distinct{Hash: t.Hash, Trial: t}
			by[t.Hash] = d
			order = append(order, t.Hash)
		}
		d.Rewards = append(d.Rewards, t.Reward)
	}
	var all []Distinct
	ss, dof := 0.0, 0
	for _, h := range order {
		d := by[h]
		d.Mean, _ = meanCI(d.Rewards)
		for _, x := range d.Rewards {
			ss += (x - d.Mean) * (x - d.Mean)
		}
		dof += len(d.Rewards) - 1
		all = append(all, *d)
	}
	slices.SortStableFunc(all, func(a, b Distinct) int { return cmp.Compare(b.Mean, a.Mean) })
	all = all[:min(k, len(all))]
	if len(all) > 0 {
		base := all[0].Trial.Arch.Decisions
		for i := range all {
			d := all[i].Trial.Arch.Decisions
			for j := range max(len(base), len(d)) {
				if j >= len(base) || j >= len(d) || base[j] != d[j] {
					all[i].Changed = append(all[i].Changed, j)
				}
			}
			all[i].Distance = len(all[i].Changed)
			all[i].Gap = all[0].Mean - all[i].Mean
		}
	}
	noise := math.NaN()
	if dof > 0 {
		noise = math.Sqrt(ss / float64(dof))
	}
	return all, noise
}

// BestSoFar is the best ok reward after each result, in log order (NaN
// before the first ok one).
func (r *Run) BestSoFar() []float64 {
	out := make([]float64, len(r.Trials))
	best := math.NaN()
	for i, t := range r.Trials {
		if t.OK() && (math.IsNaN(best) || t.Reward > best) {
			best = t.Reward
		}
		out[i] = best
	}
	return out
}

// Pareto returns the ok trials on the front of (high reward, low cost),
// by increasing cost; cost(t) ≤ 0 trials are left out.
func (r *Run) Pareto(cost func(*Trial) float64) []*Trial {
	var ts []*Trial
	for _, t := range r.Best() {
		if cost(t) > 0 {
			ts = append(ts, t)
		}
	}
	slices.SortStableFunc(ts, func(a, b *Trial) int {
		ca, cb := cost(a), cost(b)
		switch {
		case ca < cb:
			return -1
		case ca > cb:
			return 1
		case a.Reward > b.Reward:
			return -1
		case a.Reward < b.Reward:
			return 1
		}
		return 0
	})
	var front []*Trial
	best := math.Inf(-1)
	for _, t := range ts {
		if t.Reward > best {
			front = append(front, t)
			best = t.Reward
		}
	}
	return front
}

// Span is when one trial ran (its worker's clock), on which rank.
type Span struct {
	Rank       int
	Start, End time.Time
}

// SteadyBusy is how busy the worker ranks were while every one of them had
// work: from the latest first start of a trial to the earliest last end.
// That leaves out start-up (launch, first dispatch) and the budget's tail,
// whose share shrinks as a search grows. ok is false when that window is
// empty or a worker ran no trial. Start and end are each worker's clock:
// across nodes their skew shifts the window's ends.
func SteadyBusy(spans []Span, workers int) (frac float64, window time.Duration, ok bool) {
	first, last := map[int]time.Time{}, map[int]time.Time{}
	for _, s := range spans {
		if t, seen := first[s.Rank]; !seen || s.Start.Before(t) {
			first[s.Rank] = s.Start
		}
		if t, seen := last[s.Rank]; !seen || s.End.After(t) {
			last[s.Rank] = s.End
		}
	}
	if workers <= 0 || len(first) < workers {
		return 0, 0, false
	}
	var from, to time.Time
	for r := range first {
		if from.IsZero() || first[r].After(from) {
			from = first[r]
		}
		if to.IsZero() || last[r].Before(to) {
			to = last[r]
		}
	}
	if !to.After(from) {
		return 0, 0, false
	}
	var busy time.Duration
	for _, s := range spans {
		if a, b := later(s.Start, from), earlier(s.End, to); b.After(a) {
			busy += b.Sub(a)
		}
	}
	window = to.Sub(from)
	return busy.Seconds() / (float64(workers) * window.Seconds()), window, true
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// SteadyBusy is SteadyBusy over each segment (job) of the run that has a
// steady window, weighted by the windows: Σ busy in them over Σ workers ×
// window.
func (r *Run) SteadyBusy() (frac float64, window time.Duration, ok bool) {
	bySeg := map[int][]Span{}
	for _, t := range r.Trials {
		if t.Status != "rejected" && !t.Start.IsZero() && t.End.After(t.Start) {
			bySeg[t.Segment] = append(bySeg[t.Segment], Span{t.Rank, t.Start, t.End})
		}
	}
	var busy, capacity float64
	for i, seg := range r.Segments {
		workers := seg.Workers
		if workers == 0 {
			workers = r.Workers
		}
		if f, w, segOK := SteadyBusy(bySeg[i], workers); segOK {
			busy += f * float64(workers) * w.Seconds()
			capacity += float64(workers) * w.Seconds()
			window += w
		}
	}
	if capacity == 0 {
		return 0, 0, false
	}
	return busy / capacity, window, true
}

// Busy is each worker's busy share: Σ of its trials' seconds over the run's
// wall time (the segments' spans summed), by rank.
func (r *Run) Busy() (share map[int]float64, wall float64) {
	for _, s := range r.Segments {
		wall += s.End.Sub(s.Start).Seconds()
	}
	share = map[int]float64{}
	if wall <= 0 {
		return share, wall
	}
	for _, t := range r.Trials {
		if t.Status != "rejected" {
			share[t.Rank] += t.Seconds / wall
		}
	}
	return share, wall
}

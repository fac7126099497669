package rl

import (
	"math"
	"math/rand/v2"
	"testing"

	"nasd/arch"
)

// testModel builds a model for a space with options over the defaults.
func testModel(t testing.TB, space string, ao arch.Options, mod func(*Options)) *model {
	t.Helper()
	sp, err := arch.New(space, ao)
	if err != nil {
		t.Fatal(err)
	}
	opt := DefaultOptions()
	if mod != nil {
		mod(&opt)
	}
	m, err := newModel(sp.Decisions(), opt, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var graphCases = []struct {
	name  string
	space string
	opt   arch.Options
	mod   func(*Options)
}{
	{"nas3", "nas", arch.Options{Layers: 3}, nil},
	{"enas4-temp-tanh", "enas-macro", arch.Options{Layers: 4}, func(o *Options) { o.Temperature, o.TanhConstant, o.Hidden, o.Layers = 5, 2.5, 8, 1 }},
	{"nas2-shared-entropy", "nas", arch.Options{Layers: 2}, func(o *Options) { o.ShareHeads, o.EntropyWeight, o.Hidden, o.InitRange = true, 0.1, 6, 0.5 }},
	// single-choice decisions in the middle and at the end
	{"nas2-single-choices", "nas", arch.Options{Layers: 2, FilterCounts: []int{24}, Strides: []int{1}}, func(o *Options) { o.Hidden = 5 }},
	// only the last decision has a choice
	{"nas1-last-only", "nas", arch.Options{Layers: 1, FilterSizes: []int{3}, FilterCounts: []int{24}, Strides: []int{1, 2}}, nil},
	// ENAS's skip-rate penalty
	{"enas5-skip-penalty", "enas-macro", arch.Options{Layers: 5}, func(o *Options) { o.SkipWeight, o.SkipTarget, o.TanhConstant, o.Hidden, o.Layers = 0.8, 0.4, 1.5, 8, 1 }},
	// one decision: one step, no recurrence
	{"enas1-one-step", "enas-macro", arch.Options{Layers: 1}, nil},
}

// Reference: the sampler (plain Go) and the graph (Gorgonia) must compute
// the same log-probability and entropy; tolerance 1e-9 (float64, only the
// order of additions differs).
func TestGraphMatchesSampler(t *testing.T) {
	for _, tc := range graphCases {
		t.Run(tc.name, func(t *testing.T) {
			m := testModel(t, tc.space, tc.opt, tc.mod)
			w := m.newWork()
			r := rand.New(rand.NewPCG(3, 4))
			var seqs [][]int
			var lps, ents []float64
			for range 5 {
				a, lp, e := m.sample(w, r)
				seqs = append(seqs, a)
				lps, ents = append(lps, lp), append(ents, e)
			}
			bg, err := m.buildGraph(len(seqs)+1, 0.1)
			if err != nil {
				t.Fatal(err)
			}
			for run := range 2 {
				res, err := bg.run(m, seqs, []float64{1, 1, 1, 1, 1}, []float64{1, 1, 1, 1, 1})
				if err != nil {
					t.Fatal(err)
				}
				for i := range seqs {
					if d := math.Abs(res.logp[i] - lps[i]); d > 1e-9 {
						t.Errorf("run %d seq %d: graph log P %.12f, sampler %.12f", run, i, res.logp[i], lps[i])
					}
					if d := math.Abs(res.ent[i] - ents[i]); d > 1e-9 {
						t.Errorf("run %d seq %d: graph entropy %.12f, sampler %.12f", run, i, res.ent[i], ents[i])
					}
				}
			}
		})
	}
}

// Reference: central finite differences, h = 1e-5; float64, so relative
// error below 1e-6 on gradients above 1e-7 in size.
func TestGradientCheck(t *testing.T) {
	for _, tc := range graphCases {
		t.Run(tc.name, func(t *testing.T) {
			m := testModel(t, tc.space, tc.opt, tc.mod)
			beta := 0.1
			w := m.newWork()
			r := rand.New(rand.NewPCG(5, 6))
			var seqs [][]int
			for range 5 {
				a, _, _ := m.sample(w, r)
				seqs = append(seqs, a)
			}
			adv := []float64{0.3, -0.5, 0.1, 0.7, -0.2}
			ent := []float64{0.2, 0.2, 0.2, 0.2, 0.2}
			// Two rows: the batch runs in chunks 2, 2 and 1 (padded), and
			// the gradients are summed.
			bg, err := m.buildGraph(2, beta)
			if err != nil {
				t.Fatal(err)
			}
			res, err := bg.run(m, seqs, adv, ent)
			if err != nil {
				t.Fatal(err)
			}
			loss := func() float64 {
				l := 0.0
				for i, s := range seqs {
					lp, e := m.score(w, s)
					l -= adv[i]*lp + beta*ent[i]*e
					l += m.skipWeight * ent[i] * w.skipKL
				}
				return l
			}
			if d := math.Abs(loss() - res.loss); d > 1e-9 {
				t.Fatalf("graph loss %.12f, plain Go %.12f", res.loss, loss())
			}
			checked := 0
			for pi, p := range m.params {
				for _, i := range []int{0, p.size() / 2, p.size() - 1} {
					old := p.data[i]
					const h = 1e-5
					p.data[i] = old + h
					up := loss()
					p.data[i] = old - h
					down := loss()
					p.data[i] = old
					num := (up - down) / (2 * h)
					got := res.grad[pi][i]
					if math.Abs(num-got) > 1e-6*math.Max(1e-2, math.Abs(num)) {
						t.Errorf("%s[%d]: graph gradient %.10g, finite difference %.10g", p.name, i, got, num)
					}
					checked++
				}
			}
			t.Logf("%d weights in %d tensors, %d gradients checked", m.numWeights(), len(m.params), checked)
		})
	}
}

package strategytest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"nasd/arch"
	"nasd/controller"
	_ "nasd/controller/evolution"
	_ "nasd/controller/random"
	_ "nasd/controller/rl"
	"nasd/surrogate"
)

// contestant is a strategy in the learning test.
type contestant struct {
	name string
	opts map[string]any
	mode string // "sync": rounds of width, observed in trial order; "async": width in flight, random order
}

// Learning-test settings. The space is "nas" with 3 layers: 15 decisions
// (filter height, width, count, stride per layer and 3 skips), 1.7·10⁷
// architectures, small enough that a few hundred trials separate a search
// that learns from one that does not, large enough that random search does
// not stumble on the optimum.
const (
	learnLayers = 3
	learnNoise  = 0.02 // objective noise: the reward a strategy sees is noisy
	learnWidth  = 10   // workers
	learnK      = 3    // interactions per decision of the NK objective: fixed before any run, not tuned
)

// learnAlpha is the significance level of each one-sided comparison with
// random search. Five comparisons are asserted (learnObjectives' claims),
// so the chance that any claim passes by luck is at most 5 × 0.01
// (Bonferroni).
const learnAlpha = 0.01

// learnContestants: the baseline first, then the strategies compared with
// it, with options chosen for a budget of a few hundred trials (before the
// NK objective existed; not retuned for it).
//
//   - random: the baseline (Li & Talwalkar 2019 find it a strong one).
//   - rl: Zoph & Le 2017's controller (Reference: Zoph & Le 2017, §3.1–3.2:
//     LSTM controller, REINFORCE with an EMA baseline, m children per update),
//     with a batch of 10 (one sync round) and learning rate 0.02 instead of
//     the paper's 6e-4, which is tuned for 12,800 children, not 300.
//   - random-policy: the same controller never updated — Zoph & Le's control;
//     reported, not expected to win.
//   - ga: MENNDL's generational GA (Reference: Young et al. 2015, "Optimizing
//     deep learning hyper-parameters through an evolutionary algorithm",
//     MLHPC '15) with a population of 20 (the package default) and
//     tournaments of 3, in sync rounds of 10.
//   - aging-evolution: regularized evolution (Reference: Real et al. 2019,
//     "Regularized Evolution for Image Classifier Architecture Search",
//     Algorithm 1) with population 20 and sample 5 instead of the paper's
//     100 and 25, scaled to the budget, run asynchronously as in the paper.
var learnContestants = []contestant{
	{name: "random", mode: "async"},
	{name: "rl", opts: map[string]any{"batch": int64(10), "lr": 0.02}, mode: "sync"},
	{name: "ga", opts: map[string]any{"population": int64(20), "tournament": int64(3)}, mode: "sync"},
	{name: "aging-evolution", opts: map[string]any{"population": int64(20), "sample": int64(5)}, mode: "async"},
	{name: "random-policy", opts: map[string]any{"batch": int64(10)}, mode: "sync"},
}

// learnObjective is an objective of the learning test, drawn afresh for
// each seed.
type learnObjective struct {
	name  string
	about string
	make  func(space arch.Space, seed uint64) (objective, error)
	// claims are the learners asserted to beat random on this objective at
	// learnAlpha; the others are reported only. They are what the measured
	// results (docs/strategies.md) support, not what one would like.
	claims []string
}

// objective is what the learning test searches.
type objective interface {
	Train(context.Context, controller.Trial) controller.Result
	Accuracy(arch.Arch) float64
}

var learnObjectives = []learnObjective{
	{
		name:  "separable",
		about: "surrogate: accuracy additive over the decisions (each matching the hidden optimum adds its weight)",
		make: func(space arch.Space, seed uint64) (objective, error) {
			return surrogate.New(space, surrogate.Options{Seed: seed, Noise: learnNoise}), nil
		},
		claims: []string{"rl", "ga", "aging-evolution"},
	},
	{
		name:  "nk",
		about: fmt.Sprintf("NK landscape, K = %d: each decision's contribution depends on %d others", learnK, learnK),
		make: func(space arch.Space, seed uint64) (objective, error) {
			return NewNK(space, NKOptions{Seed: seed, K: learnK, Noise: learnNoise})
		},
		// rl beats random over 96 seeds too, by half the margin, but 12
		// seeds show it in only 5 of 8 blocks: reported, not asserted.
		claims: []string{"ga", "aging-evolution"},
	},
}

// learnCISeeds is the number of seeds of the default run; NASD_LONG runs
// 8 disjoint blocks of it and reports, besides the test over all seeds, in
// how many blocks alone a strategy beats random: how often the default run
// would pass with other seeds. -short does not shrink the test: the claims
// hold for this design (the default run takes ~10 s on 2 cores).
const learnCISeeds = 12

// learnBudget is the number of trials of each search.
const learnBudget = 300

// learnSeeds returns the number of seeds.
func learnSeeds() int {
	if os.Getenv("NASD_LONG") != "" {
		return 8 * learnCISeeds
	}
	return learnCISeeds
}

// search runs one search of budget trials and returns the noise-free
// accuracy (obj.Accuracy) of the architecture of its highest observed
// reward: what the search would report as its answer, scored without the
// noise it saw.
func search(t tester, c contestant, space arch.Space, obj objective, seed uint64, budget int) float64 {
	t.Helper()
	st, err := controller.New(c.name, controller.Env{Space: space, Seed: seed, Options: c.opts})
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	best, bestReward := controller.Trial{}, -1.0
	d := newDriver(t, fmt.Sprintf("%s seed %d", c.name, seed), st, space, seed, func(tr controller.Trial) controller.Result {
		r := obj.Train(context.Background(), tr)
		if r.Reward > bestReward {
			best, bestReward = tr, r.Reward
		}
		return r
	})
	for len(d.trials) < budget {
		room := min(learnWidth-len(d.flight), budget-len(d.trials))
		if c.mode == "sync" {
			d.round(room, false)
			continue
		}
		for room > 0 && len(d.propose(room)) > 0 {
			room = min(learnWidth-len(d.flight), budget-len(d.trials))
		}
		d.observe(d.rng.IntN(len(d.flight)))
	}
	d.drain()
	return obj.Accuracy(best.Arch)
}

// TestStrategiesBeatRandom is the learning test. On each objective
// (learnObjectives: the separable surrogate and an NK landscape with
// interactions), with the same trial budget, each strategy's answer (the
// noise-free accuracy of its best-reward architecture) is compared with
// random search's over seeds 1..n. Seed s draws the objective and seeds
// both searches, so the two arms of a seed share one problem: the samples
// are paired, and the comparison is a one-sided Wilcoxon signed-rank test
// (exact p for n ≤ 25; see wilcoxon). The learners an objective claims must
// reach p < learnAlpha; the rest is reported: mean best of the strategy and
// of random, the rank-biserial effect size, p, and a verdict. The test is
// deterministic: the same code gives the same numbers. With -v it logs the
// table of docs/strategies.md.
func TestStrategiesBeatRandom(t *testing.T) {
	seeds, budget := learnSeeds(), learnBudget
	space := mustSpace("nas", arch.Options{Layers: learnLayers})
	registered := controller.Names()

	// acc[o][c][s]: objective o, contestant c, seed s+1.
	acc := make([][][]float64, len(learnObjectives))
	t.Run("runs", func(t *testing.T) {
		for o, lo := range learnObjectives {
			objs := make([]func() (objective, error), seeds)
			for s := range objs {
				objs[s] = sync.OnceValues(func() (objective, error) { return lo.make(space, uint64(s+1)) })
			}
			acc[o] = make([][]float64, len(learnContestants))
			for i, c := range learnContestants {
				if !slices.Contains(registered, c.name) {
					continue
				}
				acc[o][i] = make([]float64, seeds)
				for s := range seeds {
					t.Run(fmt.Sprintf("%s/%s/seed%d", lo.name, c.name, s+1), func(t *testing.T) {
						t.Parallel()
						obj, err := objs[s]()
						if err != nil {
							t.Fatal(err)
						}
						acc[o][i][s] = search(stdT{t}, c, space, obj, uint64(s+1), budget)
					})
				}
			}
		}
	})
	if t.Failed() {
		return
	}
	if acc[0][0] == nil {
		t.Fatal("the baseline, random, is not registered")
	}

	var report, perSeed strings.Builder
	fmt.Fprintf(&report, "nas %d layers, %d seeds, %d trials each, %d workers, noise %.2f, α = %.2g; "+
		"the noise-free accuracy of each search's best-reward architecture (0.95 at the optimum):\n\n",
		learnLayers, seeds, budget, learnWidth, learnNoise, learnAlpha)
	fmt.Fprintf(&report, "| objective | strategy | seeds | budget | mean best | random's mean best | difference | rank-biserial r | W+ (n) | p | verdict |\n")
	fmt.Fprintf(&report, "|---|---|---|---|---|---|---|---|---|---|---|\n")
	var skipped []string
	for o, lo := range learnObjectives {
		base := acc[o][0]
		fmt.Fprintf(&perSeed, "%s (%s):\n  %-16s %s\n", lo.name, lo.about, "random", fmtAcc(base))
		for i, c := range learnContestants[1:] {
			x := acc[o][i+1]
			if x == nil {
				if o == 0 {
					skipped = append(skipped, c.name)
				}
				fmt.Fprintf(&report, "| %s | %s | not registered: skipped |\n", lo.name, c.name)
				continue
			}
			fmt.Fprintf(&perSeed, "  %-16s %s\n", c.name, fmtAcc(x))
			r, rev := wilcoxon(x, base), wilcoxon(base, x)
			verdict := "no significant difference"
			switch {
			case r.P < learnAlpha:
				verdict = "**beats random**"
			case rev.P < learnAlpha:
				verdict = "**worse than random**"
			}
			if len(x) >= 2*learnCISeeds { // NASD_LONG: replicate the default run on disjoint blocks of seeds
				wins := 0
				for b := 0; b+learnCISeeds <= len(x); b += learnCISeeds {
					if wilcoxon(x[b:b+learnCISeeds], base[b:b+learnCISeeds]).P < learnAlpha {
						wins++
					}
				}
				verdict += fmt.Sprintf("; beats random in %d of %d blocks of %d seeds", wins, len(x)/learnCISeeds, learnCISeeds)
			}
			claimed := slices.Contains(lo.claims, c.name)
			if claimed {
				verdict += " (asserted)"
			}
			fmt.Fprintf(&report, "| %s | %s | %d | %d | %.4f | %.4f | %+.4f | %+.2f | %g (%d) | %.2g | %s |\n",
				lo.name, c.name, len(x), budget, mean(x), mean(base), mean(x)-mean(base), r.rankBiserial(), r.WPlus, r.N, r.P, verdict)
			if claimed && r.P >= learnAlpha {
				t.Errorf("%s: %s does not beat random: mean best %.4f vs %.4f over %d seeds, W+ = %g of n = %d, one-sided p = %.3g ≥ α = %g",
					lo.name, c.name, mean(x), mean(base), len(x), r.WPlus, r.N, r.P, learnAlpha)
			}
		}
	}
	t.Log(report.String() + "\nper seed:\n" + perSeed.String())
	if len(skipped) > 0 {
		t.Skipf("strategies not registered, so not tested: %s", strings.Join(skipped, ", "))
	}
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func fmtAcc(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.3f", x)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

package rl_test

import (
	"math"
	"testing"

	"nasd/arch"
	"nasd/controller"
)

// matchReward is a toy objective: the fraction of decisions equal to a fixed
// target architecture (optimum 1; a uniform policy scores the mean of
// 1/|choices| over the decisions).
func matchReward(target []int) func(a arch.Arch) float64 {
	return func(a arch.Arch) float64 {
		n := 0
		for i, d := range a.Decisions {
			if d == target[i] {
				n++
			}
		}
		return float64(n) / float64(len(target))
	}
}

// skipsReward is a toy objective: the fraction of skip decisions that say
// yes (a densely connected network).
func skipsReward(a arch.Arch) float64 {
	sp, _ := arch.New(a.Space, a.Options)
	n, yes := 0, 0
	for i, d := range sp.Decisions() {
		if len(d.Choices) == 2 && d.Choices[1] == "yes" {
			n++
			yes += a.Decisions[i]
		}
	}
	return float64(yes) / float64(n)
}

// runToy runs trials trials through s in sync rounds of batch and returns
// the mean reward of the first and of the last window trials.
func runToy(t *testing.T, s controller.Strategy, trials, batch, window int, reward func(arch.Arch) float64) (first, last float64) {
	t.Helper()
	var rs []float64
	for len(rs) < trials {
		for _, tr := range propose(t, s, batch) {
			r := reward(tr.Arch)
			rs = append(rs, r)
			if err := s.Observe(controller.Result{TrialID: tr.ID, Status: "ok", Reward: r}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, r := range rs[:window] {
		first += r / float64(window)
	}
	for _, r := range rs[len(rs)-window:] {
		last += r / float64(window)
	}
	return first, last
}

// REINFORCE raises the mean reward of sampled architectures within 400
// trials (40 updates of 10, learning rate 0.01 — the paper's 6e-4 is tuned
// for 12,800 trials); random-policy, the same sampler never updated, does
// not. Measured with seed 1, first 50 → last 50 trials:
//
//	nas 2 layers, match target:        rl 0.360 → 1.000   random-policy 0.349 → 0.338
//	enas-macro 4 layers, match target: rl 0.362 → 0.704   random-policy 0.364 → 0.384
//	enas-macro 6 layers, skips yes:    rl 0.571 → 1.000   random-policy 0.525 → 0.489
//
// Seeds 2–5 give the same picture (rl 1.000, 0.686–0.710 and 1.000 at the
// end). On enas-macro the controller settles at 7 of 10: the ops are
// learned, but with the ±0.08 initialisation the anchors h_j start nearly
// equal, so skips that must differ by source layer are hard to tell apart
// before the policy turns deterministic (init_range 0.5 got to 0.8 and 0.99
// on two seeds of five).
func TestLearns(t *testing.T) {
	for _, tc := range []struct {
		name     string
		space    string
		layers   int
		reward   func(arch.Arch) float64
		minGain  float64 // rl: last − first at least
		minFinal float64 // rl: last at least
	}{
		{"nas2-match", "nas", 2, matchReward([]int{3, 0, 2, 1, 1, 3, 0, 0, 1}), 0.5, 0.95},
		{"enas4-match", "enas-macro", 4, matchReward([]int{2, 5, 1, 4, 0, 0, 3, 1, 0, 1}), 0.25, 0.65},
		{"enas6-skips", "enas-macro", 6, skipsReward, 0.35, 0.95},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := map[string]any{"lr": 0.01}
			f, l := runToy(t, newRL(t, "rl", tc.space, tc.layers, 1, opts), 400, 10, 50, tc.reward)
			rf, rlast := runToy(t, newRL(t, "random-policy", tc.space, tc.layers, 1, opts), 400, 10, 50, tc.reward)
			t.Logf("first 50 → last 50 of 400 trials: rl %.3f → %.3f, random-policy %.3f → %.3f", f, l, rf, rlast)
			if l-f < tc.minGain || l < tc.minFinal {
				t.Errorf("rl: %.3f → %.3f, want a gain of at least %.2f to at least %.2f", f, l, tc.minGain, tc.minFinal)
			}
			if math.Abs(rlast-rf) > 0.08 {
				t.Errorf("random-policy: %.3f → %.3f, want no change beyond noise (0.08)", rf, rlast)
			}
			if l-rlast < tc.minGain {
				t.Errorf("rl ends at %.3f, random-policy at %.3f: want a margin of %.2f", l, rlast, tc.minGain)
			}
		})
	}
}

package train

import "math"

// Reward turns the per-epoch validation accuracies of a child into the
// controller's reward. With m the maximum accuracy over the last k epochs
// (all of them when fewer than k were run):
//
//	"power": m^p — Zoph & Le 2017, §4.1: "the reward ... is the maximum
//	         validation accuracy of the last 5 epochs cubed" (k = 5, p = 3);
//	"exp":   exp(p·(m − 1)), in (0, 1], 1 at m = 1; p sets how sharply
//	         the reward separates accuracies near the top.
//
// No epochs give 0. Accuracies are clamped to [0, 1]; k < 1 means all epochs.
// An unknown kind is treated as "power" (Config.Validate rejects it earlier).
func Reward(valAccs []float64, k int, kind string, p float64) float64 {
	if len(valAccs) == 0 {
		return 0
	}
	if k < 1 || k > len(valAccs) {
		k = len(valAccs)
	}
	m := 0.0
	for _, a := range valAccs[len(valAccs)-k:] {
		if a > m { // NaN never wins
			m = a
		}
	}
	m = min(m, 1)
	if kind == "exp" {
		return math.Exp(p * (m - 1))
	}
	return math.Pow(m, p)
}

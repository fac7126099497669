package train

import (
	"math"
	"testing"
)

func TestReward(t *testing.T) {
	accs := []float64{0.5, 0.9, 0.6, 0.7, 0.8, 0.75, 0.72}
	cases := []struct {
		name string
		accs []float64
		k    int
		kind string
		p    float64
		want float64
	}{
		// Zoph & Le 2017, §4.1: max validation accuracy of the last 5 epochs, cubed.
		// The 0.9 of epoch 2 is outside the last 5.
		{"zoph-le", accs, 5, "power", 3, math.Pow(0.8, 3)},
		{"k=6 reaches the 0.9", accs, 6, "power", 3, math.Pow(0.9, 3)},
		{"k=1 is the last epoch", accs, 1, "power", 3, math.Pow(0.72, 3)},
		{"p=1 is the accuracy", accs, 5, "power", 1, 0.8},
		{"fewer than k epochs use all", []float64{0.3, 0.6}, 5, "power", 3, math.Pow(0.6, 3)},
		{"k<1 uses all", accs, 0, "power", 2, 0.81},
		{"no epochs", nil, 5, "power", 3, 0},
		{"exp", accs, 5, "exp", 3, math.Exp(3 * (0.8 - 1))},
		{"exp at 1", []float64{1}, 5, "exp", 10, 1},
		{"clamped above 1", []float64{1.2}, 5, "power", 3, 1},
		{"NaN never wins", []float64{0.4, math.NaN()}, 5, "power", 1, 0.4},
	}
	for _, c := range cases {
		if got := Reward(c.accs, c.k, c.kind, c.p); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%s: Reward = %v, want %v", c.name, got, c.want)
		}
	}
	// Monotone in the best accuracy for both kinds.
	for _, kind := range RewardKinds {
		if Reward([]float64{0.7}, 5, kind, 3) >= Reward([]float64{0.8}, 5, kind, 3) {
			t.Errorf("%s: reward not increasing in accuracy", kind)
		}
	}
}

package train

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"nasd/arch"
)

func TestDefaultConfigValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{Epochs: 1}).Validate(); err != nil {
		t.Errorf("zero fields should take defaults: %v", err)
	}
	if got := (Config{Epochs: 1}).withDefaults(); got.BatchSize != 64 || got.Optimizer != "sgd" || got.RewardEpochs != 5 ||
		got.RewardPower != 3 || got.RewardKind != "power" || got.Schedule != "cosine" || got.LR != 0.1 || got.Momentum != 0 {
		t.Errorf("withDefaults: %+v", got)
	}
}

func TestValidateReportsEverything(t *testing.T) {
	c := Config{Epochs: -3, Steps: -1, BatchSize: -8, Optimizer: "rmsprop", LR: math.NaN(), Momentum: 1.5,
		WeightDecay: -1, Schedule: "linear", StepEvery: -2, StepGamma: 2, RewardEpochs: -1, RewardPower: math.Inf(1),
		RewardKind: "log"}
	c.Augment.Pad = -1
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"epochs = -3", "steps = -1", "batch_size = -8", `optimizer = "rmsprop"`, "lr = NaN",
		"momentum = 1.5", "weight_decay = -1", `schedule = "linear"`, "step_every = -2", "step_gamma = 2",
		"augment.pad = -1", "reward_epochs = -1", "reward_power = +Inf", `reward_kind = "log"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	cases := []struct {
		c    Config
		want string
	}{
		{Config{}, "set at least one budget"},
		{Config{Deadline: time.Minute}, `schedule = "cosine"`},
		{Config{Epochs: 1, Optimizer: "adam", Nesterov: true}, "nesterov = true"},
		{Config{Epochs: 1, Nesterov: true}, "nesterov = true"},
	}
	for _, tc := range cases {
		if err := tc.c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want it to mention %s", tc.c, err, tc.want)
		}
	}
	if err := (Config{Deadline: time.Minute, Schedule: "constant"}).Validate(); err != nil {
		t.Errorf("deadline-only constant schedule: %v", err)
	}
}

func TestSchedules(t *testing.T) {
	c := Config{LR: 0.1, Schedule: "cosine"}
	for _, tc := range []struct {
		step, total int
		want        float64
	}{
		{0, 100, 0.1}, {50, 100, 0.05}, {100, 100, 0}, {25, 100, 0.05 * (1 + math.Sqrt(0.5))},
	} {
		if got := c.lr(tc.step, 1, tc.total); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("cosine step %d/%d: %v, want %v", tc.step, tc.total, got, tc.want)
		}
	}
	s := Config{LR: 1, Schedule: "step", StepEvery: 3, StepGamma: 0.5}
	for epoch, want := range map[int]float64{1: 1, 3: 1, 4: 0.5, 6: 0.5, 7: 0.25} {
		if got := s.lr(0, epoch, 0); got != want {
			t.Errorf("step schedule epoch %d: %v, want %v", epoch, got, want)
		}
	}
	if got := (Config{LR: 0.3, Schedule: "constant"}).lr(99, 9, 100); got != 0.3 {
		t.Errorf("constant: %v", got)
	}
}

// TestOptimizers checks one update of each optimizer on a single weight
// against the update rules written out by hand.
func TestOptimizers(t *testing.T) {
	run := func(c Config, lr float64, grads []float64) float64 {
		o := newOptimizer(c)
		st := &optState{m: make([]float64, 1), v: make([]float64, 1)}
		w := 1.0
		for _, g := range grads {
			c1, c2 := st.begin()
			w = o.delta(w, g, st, 0, lr, c1, c2)
		}
		return w
	}
	// SGD momentum 0.9, wd 0.1: g' = g + 0.1w; v = 0.9v + g'; w -= lr·v.
	w1 := 1 - 0.5*(0.2+0.1)
	v1 := 0.3
	g2 := 0.4 + 0.1*w1
	v2 := 0.9*v1 + g2
	if got, want := run(Config{Optimizer: "sgd", Momentum: 0.9, WeightDecay: 0.1}, 0.5, []float64{0.2, 0.4}), w1-0.5*v2; math.Abs(got-want) > 1e-15 {
		t.Errorf("sgd: %v, want %v", got, want)
	}
	// Nesterov: w -= lr·(g' + μ·v).
	wn1 := 1 - 0.5*(0.3+0.9*0.3)
	gn2 := 0.4 + 0.1*wn1
	vn2 := 0.9*0.3 + gn2
	if got, want := run(Config{Optimizer: "sgd", Momentum: 0.9, Nesterov: true, WeightDecay: 0.1}, 0.5, []float64{0.2, 0.4}), wn1-0.5*(gn2+0.9*vn2); math.Abs(got-want) > 1e-15 {
		t.Errorf("nesterov: %v, want %v", got, want)
	}
	// Adam's first step moves by lr·sign(g) (bias-corrected m/√v = ±1).
	if got := run(Config{Optimizer: "adam"}, 0.01, []float64{-3}); math.Abs(got-1.01) > 1e-9 {
		t.Errorf("adam first step: %v, want 1.01", got)
	}
}

// TestValidateNamesFields: each problem with one field is an
// *arch.FieldError whose Path is its key (nested keys split), so a config
// file can point at its line; a problem of several fields has none.
func TestValidateNamesFields(t *testing.T) {
	c := DefaultConfig()
	c.Epochs, c.LR = 0, -1
	c.Augment.Pad = -2
	err := c.Validate()
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		got = append(got, strings.Join(arch.FieldPath(e), "."))
	}
	if want := []string{"", "lr", "augment.pad"}; !slices.Equal(got, want) {
		t.Errorf("paths %q, want %q; error:\n%v", got, want, err)
	}
}

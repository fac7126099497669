package train

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"nasd/arch"
	"nasd/train/dataset"
)

// Optimizers, schedules and reward kinds Config accepts.
var (
	Optimizers  = []string{"sgd", "adam"}
	Schedules   = []string{"cosine", "step", "constant"}
	RewardKinds = []string{"power", "exp"}
)

// Config is how a child network is trained and scored. A zero field takes its
// default from DefaultConfig, except Momentum, Nesterov, WeightDecay and the
// budget fields, whose zero is meaningful.
type Config struct {
	// Budget: training stops at whichever of these ends first; 0 means no
	// limit, and at least one must be set. A Deadline makes results depend on
	// the machine's speed.
	Epochs   int           `json:"epochs" toml:"epochs"`
	Steps    int           `json:"steps,omitempty" toml:"steps"`
	Deadline time.Duration `json:"deadline,omitempty" toml:"-"`

	BatchSize int `json:"batch_size" toml:"batch_size"` // default 64; also the evaluation batch

	Optimizer   string  `json:"optimizer" toml:"optimizer"` // "sgd" (momentum, optionally Nesterov) or "adam"
	LR          float64 `json:"lr" toml:"lr"`
	Momentum    float64 `json:"momentum" toml:"momentum"` // sgd
	Nesterov    bool    `json:"nesterov" toml:"nesterov"` // sgd
	WeightDecay float64 `json:"weight_decay" toml:"weight_decay"`

	Schedule  string  `json:"schedule" toml:"schedule"`               // "cosine" (per step, to 0 at the budget's end), "step" or "constant"
	StepEvery int     `json:"step_every,omitempty" toml:"step_every"` // step: epochs between decays
	StepGamma float64 `json:"step_gamma,omitempty" toml:"step_gamma"` // step: decay factor

	Augment dataset.Augment `json:"augment" toml:"augment"`

	// Dropout is the rate of inverted dropout on the classifier's input (the
	// last dense layer's), in training only; 0 = none. ENAS's final networks
	// train with it.
	Dropout float64 `json:"dropout,omitzero" toml:"dropout"`

	// Reward = f(max validation accuracy over the last RewardEpochs epochs);
	// see Reward.
	RewardEpochs int     `json:"reward_epochs" toml:"reward_epochs"`
	RewardPower  float64 `json:"reward_power" toml:"reward_power"`
	RewardKind   string  `json:"reward_kind" toml:"reward_kind"`

	EvalTest bool `json:"eval_test" toml:"eval_test"` // also measure test accuracy at the end

	// TestEveryEpoch measures test accuracy after every epoch too
	// (EpochStats.TestAcc), for time-to-accuracy curves (bench/tta.sh); with
	// it the validation set may be empty (no hold-out: validation is
	// skipped and ValAcc is 0). Not a search setting: a search must never
	// look at the test set.
	TestEveryEpoch bool `json:"test_every_epoch,omitempty" toml:"-"`
}

// DefaultConfig returns the defaults: 10 epochs of batch 64, SGD with Nesterov
// momentum 0.9, learning rate 0.1, weight decay 1e-4 (Zoph & Le 2017, §4.1,
// CIFAR-10 children), a cosine schedule, no augmentation, and Zoph & Le's
// reward: (max validation accuracy of the last 5 epochs)³.
func DefaultConfig() Config {
	return Config{
		Epochs:       10,
		BatchSize:    64,
		Optimizer:    "sgd",
		LR:           0.1,
		Momentum:     0.9,
		Nesterov:     true,
		WeightDecay:  1e-4,
		Schedule:     "cosine",
		StepEvery:    10,
		StepGamma:    0.1,
		RewardEpochs: 5,
		RewardPower:  3,
		RewardKind:   "power",
	}
}

// withDefaults fills the zero fields that take a default.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.BatchSize == 0 {
		c.BatchSize = d.BatchSize
	}
	if c.Optimizer == "" {
		c.Optimizer = d.Optimizer
	}
	if c.LR == 0 {
		c.LR = d.LR
	}
	if c.Schedule == "" {
		c.Schedule = d.Schedule
	}
	if c.StepEvery == 0 {
		c.StepEvery = d.StepEvery
	}
	if c.StepGamma == 0 {
		c.StepGamma = d.StepGamma
	}
	if c.RewardEpochs == 0 {
		c.RewardEpochs = d.RewardEpochs
	}
	if c.RewardPower == 0 {
		c.RewardPower = d.RewardPower
	}
	if c.RewardKind == "" {
		c.RewardKind = d.RewardKind
	}
	return c
}

// Validate reports every problem of c at once, each naming the field by its JSON
// (and config-file) key and its value; a problem with one field is an
// *arch.FieldError whose Path is that key.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, v any, why string) {
		errs = append(errs, &arch.FieldError{Path: strings.Split(field, "."),
			Msg: fmt.Sprintf("train: config %s = %v: %s", field, v, why)})
	}
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	oneOf := func(field, v string, allowed []string) {
		if v != "" && !slices.Contains(allowed, v) {
			bad(field, fmt.Sprintf("%q", v), "must be one of "+strings.Join(allowed, ", "))
		}
	}
	if c.Epochs < 0 {
		bad("epochs", c.Epochs, "must be ≥ 0 (0 = no limit)")
	}
	if c.Steps < 0 {
		bad("steps", c.Steps, "must be ≥ 0 (0 = no limit)")
	}
	if c.Deadline < 0 {
		bad("deadline", c.Deadline, "must be ≥ 0 (0 = no limit)")
	}
	if c.Epochs == 0 && c.Steps == 0 && c.Deadline == 0 {
		errs = append(errs, errors.New("train: config epochs, steps and deadline are all 0: set at least one budget"))
	}
	if c.BatchSize < 0 {
		bad("batch_size", c.BatchSize, "must be ≥ 1 (0 = default 64)")
	}
	oneOf("optimizer", c.Optimizer, Optimizers)
	if !finite(c.Dropout) || c.Dropout < 0 || c.Dropout >= 1 {
		bad("dropout", c.Dropout, "must be in [0, 1)")
	}
	if !finite(c.LR) || c.LR < 0 {
		bad("lr", c.LR, "must be a finite number > 0 (0 = default)")
	}
	if !finite(c.Momentum) || c.Momentum < 0 || c.Momentum >= 1 {
		bad("momentum", c.Momentum, "must be in [0, 1)")
	}
	if c.Nesterov && (c.Optimizer == "adam" || c.Momentum == 0) {
		bad("nesterov", c.Nesterov, fmt.Sprintf("needs optimizer sgd with momentum > 0 (optimizer %q, momentum %v)", c.Optimizer, c.Momentum))
	}
	if !finite(c.WeightDecay) || c.WeightDecay < 0 {
		bad("weight_decay", c.WeightDecay, "must be a finite number ≥ 0")
	}
	oneOf("schedule", c.Schedule, Schedules)
	if (c.Schedule == "" || c.Schedule == "cosine") && c.Epochs <= 0 && c.Steps <= 0 && c.Deadline > 0 {
		bad("schedule", `"cosine"`, "needs epochs or steps to know where it ends; with only a deadline use step or constant")
	}
	if c.StepEvery < 0 {
		bad("step_every", c.StepEvery, "must be ≥ 1 (0 = default)")
	}
	if !finite(c.StepGamma) || c.StepGamma < 0 || c.StepGamma > 1 {
		bad("step_gamma", c.StepGamma, "must be in (0, 1] (0 = default)")
	}
	if c.Augment.Pad < 0 {
		bad("augment.pad", c.Augment.Pad, "must be ≥ 0")
	}
	if c.RewardEpochs < 0 {
		bad("reward_epochs", c.RewardEpochs, "must be ≥ 1 (0 = default 5)")
	}
	if !finite(c.RewardPower) || c.RewardPower < 0 {
		bad("reward_power", c.RewardPower, "must be a finite number > 0 (0 = default 3)")
	}
	oneOf("reward_kind", c.RewardKind, RewardKinds)
	return errors.Join(errs...)
}

// lr returns the learning rate for the update at 0-based global step, in
// 1-based epoch, of a run planned for total steps (0 if unknown).
func (c Config) lr(step, epoch, total int) float64 {
	switch c.Schedule {
	case "step":
		return c.LR * math.Pow(c.StepGamma, float64((epoch-1)/c.StepEvery))
	case "cosine":
		if total <= 0 {
			return c.LR
		}
		// SGDR without restarts (Loshchilov & Hutter 2017, eq. 5, η_min = 0).
		return c.LR * 0.5 * (1 + math.Cos(math.Pi*float64(min(step, total))/float64(total)))
	}
	return c.LR
}

package rl

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"nasd/arch"
	"nasd/controller/strategy"
)

// Options are the strategy's settings, decoded from Env.Options. The zero
// value is not valid; DefaultOptions returns the defaults, which live here
// and nowhere else.
type Options struct {
	Layers        int     // LSTM layers
	Hidden        int     // LSTM hidden units, also the embedding size
	Temperature   float64 // logits are divided by it
	TanhConstant  float64 // c > 0: logits ← c·tanh(logits/c); 0: off
	EntropyWeight float64 // β in loss − β·entropy
	BaselineDecay float64 // EMA: b ← decay·b + (1−decay)·R
	LR            float64 // Adam learning rate
	GradClip      float64 // clip the gradient to this global L2 norm; 0: off
	Batch         int     // results per update; 0: the first Propose's n
	FailureReward float64 // reward of a failed trial
	InitRange     float64 // weights start uniform in ±InitRange
	ShareHeads    bool    // one head and embedding per decision kind, not per decision
	SkipWeight    float64 // weight of ENAS's skip-rate penalty KL(p_skip ‖ SkipTarget); 0: off
	SkipTarget    float64 // the skip probability the penalty pulls toward
}

// DefaultOptions returns the defaults: Zoph & Le 2017 §4.1 (2 layers × 35
// units, uniform ±0.08 initialisation, Adam with learning rate 6e-4, an
// exponential-moving-average baseline), temperature 1, no logit clipping, no
// entropy bonus, no gradient clipping, failures rewarded 0.
func DefaultOptions() Options {
	return Options{
		Layers:        2,
		Hidden:        35,
		Temperature:   1,
		TanhConstant:  0,
		EntropyWeight: 0,
		BaselineDecay: 0.95,
		LR:            6e-4,
		GradClip:      0,
		Batch:         0,
		FailureReward: 0,
		InitRange:     0.08,
		ShareHeads:    false,
		SkipWeight:    0,
		SkipTarget:    0.4,
	}
}

// Bounds beyond which an option is surely a typo; they also keep a stray
// value from allocating gigabytes.
const (
	maxLayers = 8
	maxHidden = 1024
	maxBatch  = 1 << 20
)

// option describes one key: how to decode it into Options and what range it
// must lie in.
type option struct {
	set func(o *Options, v any) string // "" or what is wrong
}

func intOpt(field func(*Options) *int, lo, hi int) option {
	return option{set: func(o *Options, v any) string {
		n, ok := strategy.AsInt(v)
		if !ok {
			return fmt.Sprintf("%v (%T): must be an integer", v, v)
		}
		if n < int64(lo) || n > int64(hi) {
			return fmt.Sprintf("%d: must be in %d..%d", n, lo, hi)
		}
		*field(o) = int(n)
		return ""
	}}
}

// floatOpt accepts a float in [lo, hi]; open excludes lo.
func floatOpt(field func(*Options) *float64, lo, hi float64, open bool, want string) option {
	return option{set: func(o *Options, v any) string {
		x, ok := asFloat(v)
		if !ok {
			return fmt.Sprintf("%v (%T): must be a number", v, v)
		}
		if math.IsNaN(x) || math.IsInf(x, 0) || x < lo || x > hi || (open && x == lo) {
			return fmt.Sprintf("%v: must be %s", x, want)
		}
		*field(o) = x
		return ""
	}}
}

var options = map[string]option{
	"layers":         intOpt(func(o *Options) *int { return &o.Layers }, 1, maxLayers),
	"hidden":         intOpt(func(o *Options) *int { return &o.Hidden }, 2, maxHidden),
	"batch":          intOpt(func(o *Options) *int { return &o.Batch }, 0, maxBatch),
	"temperature":    floatOpt(func(o *Options) *float64 { return &o.Temperature }, 0, 1e6, true, "> 0"),
	"tanh_constant":  floatOpt(func(o *Options) *float64 { return &o.TanhConstant }, 0, 1e6, false, "≥ 0 (0 = off)"),
	"entropy_weight": floatOpt(func(o *Options) *float64 { return &o.EntropyWeight }, 0, 1e6, false, "≥ 0"),
	"baseline_decay": floatOpt(func(o *Options) *float64 { return &o.BaselineDecay }, 0, math.Nextafter(1, 0), false, "in [0, 1)"),
	"lr":             floatOpt(func(o *Options) *float64 { return &o.LR }, 0, 10, true, "in (0, 10]"),
	"grad_clip":      floatOpt(func(o *Options) *float64 { return &o.GradClip }, 0, math.MaxFloat64, false, "≥ 0 (0 = off)"),
	"failure_reward": floatOpt(func(o *Options) *float64 { return &o.FailureReward }, -1e6, 1e6, false, "finite, within ±1e6"),
	"skip_weight":    floatOpt(func(o *Options) *float64 { return &o.SkipWeight }, 0, 1e6, false, "≥ 0 (0 = off)"),
	"skip_target":    floatOpt(func(o *Options) *float64 { return &o.SkipTarget }, 0, math.Nextafter(1, 0), true, "in (0, 1)"),
	"init_range":     floatOpt(func(o *Options) *float64 { return &o.InitRange }, 0, 10, true, "in (0, 10]"),
	"share_heads": {set: func(o *Options, v any) string {
		b, ok := v.(bool)
		if !ok {
			return fmt.Sprintf("%v (%T): must be true or false", v, v)
		}
		o.ShareHeads = b
		return ""
	}},
}

// OptionNames lists the option keys, sorted.
func OptionNames() []string {
	names := make([]string, 0, len(options))
	for k := range options {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// ParseOptions decodes a strategy's options as they come from a TOML file
// (integers as int64, floats as float64; Go ints and integral floats are
// accepted too) over the defaults. Every unknown key and bad value is
// reported at once, each error naming the strategy and the key.
func ParseOptions(strategy string, m map[string]any) (Options, error) {
	o := DefaultOptions()
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	var unknown []string
	first := "" // the first unknown key, the field of the message that lists them all
	for _, k := range keys {
		opt, ok := options[k]
		if !ok {
			if first == "" {
				first = k
			}
			unknown = append(unknown, fmt.Sprintf("%q", k))
			continue
		}
		if msg := opt.set(&o, m[k]); msg != "" {
			errs = append(errs, &arch.FieldError{Path: []string{k}, Msg: fmt.Sprintf("%s: option %s = %s", strategy, k, msg)})
		}
	}
	if len(unknown) > 0 {
		s := ""
		if len(unknown) > 1 {
			s = "s"
		}
		errs = append([]error{&arch.FieldError{Path: []string{first}, Msg: fmt.Sprintf("%s: unknown option%s %s (known: %s)",
			strategy, s, strings.Join(unknown, ", "), strings.Join(OptionNames(), ", "))}}, errs...)
	}
	return o, errors.Join(errs...)
}

func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	}
	return 0, false
}

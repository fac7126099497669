package evolution

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"nasd/arch"
)

// Limits of the options. maxPopulation bounds the snapshot, which holds the
// population; maxDedupeWindow bounds the remembered hashes (8 bytes each).
const (
	maxPopulation   = 100_000
	maxDedupeWindow = 1_000_000

	// DefaultDedupeWindow is how many recent architectures dedupe remembers.
	DefaultDedupeWindow = 10_000
)

// common holds the options both strategies take.
type common struct {
	Budget        arch.Budget `json:"budget"`
	FailureReward float64     `json:"failure_reward"`
	Dedupe        bool        `json:"dedupe"`
	DedupeWindow  int         `json:"dedupe_window"`
}

// parser reads a strategy's options from a decoded TOML table: ints arrive
// as int64, floats as float64, booleans as bool. Every problem is collected,
// so one error reports them all. Each option read registers its key as
// known; finish then reports the keys nobody read.
type parser struct {
	name  string // the strategy, prefixed to every error
	opts  map[string]any
	known []string
	errs  []error
}

// add records a problem with option key, as an *arch.FieldError so that a
// config file can point at the key's line.
func (p *parser) add(key, format string, args ...any) {
	p.errs = append(p.errs, &arch.FieldError{Path: []string{key}, Msg: p.name + ": " + fmt.Sprintf(format, args...)})
}

// get registers key and returns its value, if set.
func (p *parser) get(key string) (any, bool) {
	p.known = append(p.known, key)
	v, ok := p.opts[key]
	return v, ok
}

// has reports whether key is set (without registering it).
func (p *parser) has(key string) bool {
	_, ok := p.opts[key]
	return ok
}

// show formats an option's value for an error: strings quoted.
func show(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%v", v)
}

// asInt converts the integer types (and a float64 holding an integer, as
// JSON decodes) to int64.
func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint:
		return int64(x), uint64(x) <= math.MaxInt64
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		return int64(x), x <= math.MaxInt64
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
	}
	return 0, false
}

// int64 reads an integer option in lo..hi.
func (p *parser) int64(key string, def, lo, hi int64) int64 {
	v, ok := p.get(key)
	if !ok {
		return def
	}
	n, ok := asInt(v)
	if !ok {
		p.add(key, "option %s = %s: must be an integer", key, show(v))
		return def
	}
	if n < lo || n > hi {
		if hi == math.MaxInt64 {
			p.add(key, "option %s = %d: must be ≥ %d", key, n, lo)
		} else {
			p.add(key, "option %s = %d: must be in %d..%d", key, n, lo, hi)
		}
		return def
	}
	return n
}

func (p *parser) int(key string, def, lo, hi int) int {
	return int(p.int64(key, int64(def), int64(lo), int64(hi)))
}

// float reads a finite number option in [lo, hi], or (lo, hi] if openLo.
func (p *parser) float(key string, def, lo, hi float64, openLo bool) float64 {
	v, ok := p.get(key)
	if !ok {
		return def
	}
	var f float64
	if n, isInt := asInt(v); isInt {
		f = float64(n)
	} else if x, isFloat := v.(float64); isFloat {
		f = x
	} else if x, isFloat := v.(float32); isFloat {
		f = float64(x)
	} else {
		p.add(key, "option %s = %s: must be a number", key, show(v))
		return def
	}
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		p.add(key, "option %s = %v: must be finite", key, f)
	case openLo && f <= lo, !openLo && f < lo, f > hi:
		l, r := "[", "]"
		if openLo {
			l = "("
		}
		if math.IsInf(hi, 1) {
			p.add(key, "option %s = %v: must be in %s%v, ∞)", key, f, l, lo)
		} else {
			p.add(key, "option %s = %v: must be in %s%v, %v%s", key, f, l, lo, hi, r)
		}
	default:
		return f
	}
	return def
}

func (p *parser) bool(key string, def bool) bool {
	v, ok := p.get(key)
	if !ok {
		return def
	}
	b, ok := v.(bool)
	if !ok {
		p.add(key, "option %s = %s: must be true or false", key, show(v))
		return def
	}
	return b
}

// common reads the options both strategies share.
func (p *parser) common() common {
	c := common{
		Budget: arch.Budget{
			MaxParams:          p.int("max_params", 0, 0, math.MaxInt),
			MaxFLOPs:           p.int64("max_flops", 0, 0, math.MaxInt64),
			MaxActivationBytes: p.int64("max_activation_bytes", 0, 0, math.MaxInt64),
		},
		FailureReward: p.float("failure_reward", 0, math.Inf(-1), math.Inf(1), false),
		Dedupe:        p.bool("dedupe", true),
		DedupeWindow:  p.int("dedupe_window", DefaultDedupeWindow, 1, maxDedupeWindow),
	}
	return c
}

// finish reports every unknown key, naming them and listing the known ones,
// and returns all problems joined.
func (p *parser) finish() error {
	var keys, unknown []string
	for k := range p.opts {
		if !slices.Contains(p.known, k) {
			keys = append(keys, k)
		}
	}
	if len(keys) > 0 {
		slices.Sort(keys)
		for _, k := range keys {
			unknown = append(unknown, fmt.Sprintf("%q", k))
		}
		known := slices.Clone(p.known)
		slices.Sort(known)
		s := ""
		if len(keys) > 1 {
			s = "s"
		}
		// One message for all; its field is the first unknown key.
		p.add(keys[0], "unknown option%s %s (known: %s)", s, strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	return errors.Join(p.errs...)
}

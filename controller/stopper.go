package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"nasd/arch"
	"nasd/cluster"
	"nasd/controller/internal/registry"
)

// Stopper decides, epoch by epoch, whether a running trial should stop
// early, so that the budget goes to promising children (the cost Zoph & Le
// 2017 paid in full: every child trained to the end). Like a Strategy it is
// a pure state machine: no I/O, clock or global randomness; the loop calls
// it from one goroutine, in async mode only.
//
// The loop calls Report for every epoch a reporting trial completes (all
// but the last of its budget) and sends the answer to the worker before it
// trains the next epoch; Finished for every observed result, results
// replayed from the event log on resume included, with the per-epoch
// validation accuracies of the epochs run; Forget for each trial that was
// in flight when a resumed run's checkpoint was written (it restarts from
// scratch, and its partial reports must not count twice). Snapshot and
// Restore carry the state through checkpoints: Snapshot returns JSON.
type Stopper interface {
	Name() string
	// Report says that trial completed epoch (1-based) with validation
	// accuracy valAcc; true stops the trial now.
	Report(trial string, epoch int, valAcc float64) (stop bool)
	// Finished says that trial ended with status ("ok", "stopped", ...)
	// after the epochs whose validation accuracies are valAcc.
	Finished(trial, status string, valAcc []float64)
	// Forget drops what the stopper holds of a trial that did not finish.
	Forget(trial string)
	Snapshot() ([]byte, error)
	Restore(b []byte) error
}

// StopperEnv is what a stopper factory gets: the trials' epoch budget (the
// trainer's epochs; 0 when unknown) and the stopper's options as decoded
// from the config file (TOML gives int64 and float64, JSON float64).
type StopperEnv struct {
	Epochs  int
	Options map[string]any
}

// StopperFactory makes a stopper; it rejects unknown or invalid options,
// naming them.
type StopperFactory func(env StopperEnv) (Stopper, error)

// StopperNone is the name of no early stopping, the default.
const StopperNone = "none"

var stoppers = registry.New[StopperFactory]("controller", "stopper")

func init() {
	RegisterStopper(StopperMedian, newMedian)
	RegisterStopper(StopperASHA, newASHA)
}

// RegisterStopper makes a stopper available to NewStopper under name.
// Registering a name twice, "none", an empty name or a nil factory panics.
func RegisterStopper(name string, f StopperFactory) {
	if name == "" || name == StopperNone || f == nil {
		panic("controller: RegisterStopper: empty or reserved name, or nil factory")
	}
	stoppers.Add("RegisterStopper", name, f)
}

// NewStopper makes the named stopper. "" and "none" give nil: no early
// stopping (options are then an error). An unknown name is an error that
// lists the known ones.
func NewStopper(name string, env StopperEnv) (Stopper, error) {
	if name == "" || name == StopperNone {
		if len(env.Options) > 0 {
			return nil, fmt.Errorf("controller: stopper %q takes no options, got %s", StopperNone, optionKeys(env.Options))
		}
		return nil, nil
	}
	f, ok := stoppers.Get(name)
	if !ok {
		return nil, fmt.Errorf("controller: stopper %q: unknown (known: %s)", name, strings.Join(StopperNames(), ", "))
	}
	return f(env)
}

// StopperNames lists the stoppers, "none" included, sorted.
func StopperNames() []string { return stoppers.Names(StopperNone) }

func optionKeys(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, fmt.Sprintf("%q", k))
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// options reads a stopper's options, collecting every problem.
type options struct {
	stopper string
	m       map[string]any
	known   []string
	errs    []error
}

// bad records a problem with option key, as an arch.FieldError so that a
// config file can point at the key's line.
func (o *options) bad(key string, v any, why string) {
	o.errs = append(o.errs, &arch.FieldError{Path: []string{key},
		Msg: fmt.Sprintf("controller: stopper %s: option %s = %v: %s", o.stopper, key, v, why)})
}

// int returns the option key as an integer (an int, int64, or a float64
// with an integral value, as JSON decodes it), or def when absent.
func (o *options) int(key string, def int) int {
	o.known = append(o.known, key)
	v, ok := o.m[key]
	if !ok {
		return def
	}
	switch x := v.(type) {
	case int:
		return x
	case int64:
		if x == int64(int(x)) {
			return int(x)
		}
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int(x)
		}
	}
	o.bad(key, v, "must be an integer")
	return def
}

// str returns the option key as a string, or def when absent.
func (o *options) str(key, def string) string {
	o.known = append(o.known, key)
	v, ok := o.m[key]
	if !ok {
		return def
	}
	s, ok := v.(string)
	if !ok {
		o.bad(key, v, "must be a string")
		return def
	}
	return s
}

// err reports the problems found and every unknown option.
func (o *options) err() error {
	var unknown []string
	for k := range o.m {
		found := false
		for _, n := range o.known {
			found = found || n == k
		}
		if !found {
			unknown = append(unknown, fmt.Sprintf("%q", k))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		known := append([]string(nil), o.known...)
		sort.Strings(known)
		o.errs = append(o.errs, &arch.FieldError{Path: []string{strings.Trim(unknown[0], `"`)},
			Msg: fmt.Sprintf("controller: stopper %s: unknown option %s (known: %s)", o.stopper, strings.Join(unknown, ", "), strings.Join(known, ", "))})
	}
	return errors.Join(o.errs...)
}

// restoreJSON decodes a built-in stopper's snapshot.
func restoreJSON(name string, b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("controller: stopper %s: Restore: %w", name, err)
	}
	return nil
}

// countsOf reports whether a finished trial's curve informs the stoppers:
// trials that ran to the end or were stopped early. Failed, diverged,
// timed-out and rejected trials do not count.
func countsOf(status string) bool { return status == "ok" || status == StatusStopped }

// Statuses of early stopping and static budgets (see cluster).
const (
	StatusStopped  = cluster.StatusStopped  // a stopper ended the trial early; its result covers the epochs run
	StatusRejected = cluster.StatusRejected // over Config.Budget: never sent to a worker
)

package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"nasd/arch"
)

// Modes of the loop.
const (
	ModeSync  = "sync"  // rounds of Size()-1 trials, observed in trial order: reproducible
	ModeAsync = "async" // every idle worker gets the next trial at once: no straggler stalls the others
)

// DefaultCheckpointEvery is Config.CheckpointEvery's default.
const DefaultCheckpointEvery = 30 * time.Second

// SchemaVersion is the version of the event schema the loop writes (see
// docs/events.md); run_start carries it.
const SchemaVersion = 4

// DefaultPenaltyWeight is Config.PenaltyWeight's default: MnasNet's soft
// constraint, α = β = −0.07 (Tan et al. 2019, §3).
const DefaultPenaltyWeight = -0.07

// Config is how Run searches.
type Config struct {
	Mode string // ModeSync or ModeAsync

	// Budgets of the search; zero means none. When one is reached the loop
	// stops proposing, finishes what is running and ends the run (exit 0).
	MaxTrials int           // finished trials (replayed ones included)
	MaxTime   time.Duration // search time, summed over the run's segments (time after a segment's last checkpoint is not counted)

	// StopAt is when the job ends (the scheduler's end time): not a budget
	// of the search but of this segment. No trial starts after
	// StopAt − StopMargin; trials still running at StopAt − ExitReserve()
	// are interrupted (they run again after resume); then the loop
	// checkpoints and returns Interrupted (exit 3). Zero: no end.
	StopAt     time.Time
	StopMargin time.Duration

	// TrialTimeout is the workers' limit on one trial (0: none). A worker
	// that sends nothing for a trial for TrialTimeout + HangGrace (0:
	// DefaultHangGrace) hangs (a child stuck in a kernel, a node that
	// stopped answering): the loop checkpoints and returns an error naming
	// the rank and its trial, and the caller aborts the job; a resume runs
	// the trial again. Without a TrialTimeout nothing is declared hung.
	TrialTimeout time.Duration
	HangGrace    time.Duration

	// Override lets a resumed run continue with another mode, or another
	// worker count in sync mode (warnings then); otherwise resuming so is
	// an error. Overrides describes the changes the caller allowed, for
	// run_start.
	Override  bool
	Overrides []string

	Seed  uint64 // the run's seed, for run_start (the strategy already has it)
	RunID string // names the run in checkpoints

	// CheckpointEvery is the async checkpoint period (default 30 s); there is
	// also one after the first result and one at the end. Sync runs
	// checkpoint after every round.
	CheckpointEvery time.Duration

	// Logged in run_start when given: the caller's resolved configuration
	// (a JSON object), the job's hosts and the program's version.
	ConfigJSON json.RawMessage
	Hosts      []string
	Version    string

	// Early stopping, async mode only (a sync run with a stopper is a
	// config error). Stopper names a stopper (StopperNames; "" or "none":
	// none) and StopperOptions are its options as decoded from the config
	// file. Trials then report every epoch to rank 0 and wait for its
	// decision; a stopped trial's result has status "stopped" and covers
	// the epochs run.
	Stopper        string
	StopperOptions map[string]any
	// Epochs is the trainer's epochs per trial (0: unknown). Stoppers take
	// it as the trials' budget (asha's top rung needs it), and the journal
	// logs epochs_budget and epochs_saved from it.
	Epochs int

	// Budget is a static limit on each architecture's size (MnasNet, Tan
	// et al. 2019, §3: a hard constraint). A proposed trial over it, by
	// arch.Validate against Space, is never sent to a worker: it becomes a
	// result with status "rejected", reward 0 and Validate's reason, which
	// the strategy observes and the log records. Zero: no limit. Space is
	// required when Budget is set.
	Budget arch.Budget
	Space  arch.Space

	// PenaltyTargetFLOPs T > 0 multiplies the reward of every result with
	// FLOPs > 0 by (FLOPs/T)^w, w = PenaltyWeight, at rank 0 before the
	// strategy observes it (MnasNet's soft constraint, eq. 2 with α = β = w:
	// at w = −0.07 a child of twice the target FLOPs loses 4.7% of its
	// reward, one of half the target gains 5.0%). The log has both rewards.
	// 0: no penalty.
	PenaltyTargetFLOPs int64
	// PenaltyWeight is w; 0 means DefaultPenaltyWeight. Setting it without
	// PenaltyTargetFLOPs is an error.
	PenaltyWeight float64
}

// DefaultHangGrace is Config.HangGrace's default: time for a worker past
// its trial's timeout to report it (a large child's teardown, a slow
// network) before rank 0 calls it hung.
const DefaultHangGrace = time.Minute

// hangAfter is how long a worker may send nothing about a trial; 0: never hung.
func (c Config) hangAfter() time.Duration {
	if c.TrialTimeout <= 0 {
		return 0
	}
	if c.HangGrace > 0 {
		return c.TrialTimeout + c.HangGrace
	}
	return c.TrialTimeout + DefaultHangGrace
}

// MaxExitReserve bounds ExitReserve.
const MaxExitReserve = 30 * time.Second

// ExitReserve is the time before StopAt at which running trials are
// interrupted, to checkpoint and exit: min(StopMargin/2, MaxExitReserve).
func (c Config) ExitReserve() time.Duration { return min(c.StopMargin/2, MaxExitReserve) }

// newStopper makes the configured stopper; nil when there is none.
func (c Config) newStopper() (Stopper, error) {
	return NewStopper(c.Stopper, StopperEnv{Epochs: c.Epochs, Options: c.StopperOptions})
}

// penaltyWeight is the exponent in effect.
func (c Config) penaltyWeight() float64 {
	if c.PenaltyWeight == 0 {
		return DefaultPenaltyWeight
	}
	return c.PenaltyWeight
}

// Validate reports every problem of c for a job of size ranks at once, as
// Run does before it starts: callers use it to refuse a configuration
// before they create anything (a sync run with a stopper, a stopper's bad
// options, a budget without a space, ...).
func (c Config) Validate(size int) error { return c.validate(size) }

func (c Config) validate(size int) error {
	var errs []error
	if c.Mode != ModeSync && c.Mode != ModeAsync {
		errs = append(errs, fmt.Errorf("controller: mode %q: must be %q or %q", c.Mode, ModeSync, ModeAsync))
	}
	if c.MaxTrials < 0 {
		errs = append(errs, fmt.Errorf("controller: MaxTrials = %d: must be ≥ 0 (0: no limit)", c.MaxTrials))
	}
	if c.MaxTime < 0 {
		errs = append(errs, fmt.Errorf("controller: MaxTime = %v: must be ≥ 0 (0: no limit)", c.MaxTime))
	}
	if c.TrialTimeout < 0 || c.HangGrace < 0 {
		errs = append(errs, fmt.Errorf("controller: TrialTimeout = %v, HangGrace = %v: must be ≥ 0", c.TrialTimeout, c.HangGrace))
	}
	if c.StopMargin < 0 {
		errs = append(errs, fmt.Errorf("controller: StopMargin = %v: must be ≥ 0", c.StopMargin))
	}
	if c.CheckpointEvery < 0 {
		errs = append(errs, fmt.Errorf("controller: CheckpointEvery = %v: must be ≥ 0 (0: %v)", c.CheckpointEvery, DefaultCheckpointEvery))
	}
	if len(c.ConfigJSON) > 0 && !json.Valid(c.ConfigJSON) {
		errs = append(errs, errors.New("controller: ConfigJSON is not valid JSON"))
	}
	if size < 2 {
		errs = append(errs, fmt.Errorf("controller: the job has %d rank(s): it needs rank 0 and at least one worker", size))
	}
	if c.Epochs < 0 {
		errs = append(errs, fmt.Errorf("controller: Epochs = %d: must be ≥ 0 (0: unknown)", c.Epochs))
	}
	if st, err := c.newStopper(); err != nil {
		errs = append(errs, err)
	} else if st != nil && c.Mode == ModeSync {
		errs = append(errs, fmt.Errorf("controller: stopper %q needs mode %q: early stopping decides as each epoch's result arrives, "+
			"while a sync round waits for all its trials and is reproducible only in trial order (set mode = %q or stopper = %q)",
			c.Stopper, ModeAsync, ModeAsync, StopperNone))
	}
	b := c.Budget
	if b.MaxParams < 0 || b.MaxFLOPs < 0 || b.MaxActivationBytes < 0 {
		errs = append(errs, fmt.Errorf("controller: Budget %+v: every limit must be ≥ 0 (0: none)", b))
	}
	if b != (arch.Budget{}) && c.Space == nil {
		errs = append(errs, errors.New("controller: Budget is set but Space is nil: the budget is checked against the space's static shapes"))
	}
	if c.PenaltyTargetFLOPs < 0 {
		errs = append(errs, fmt.Errorf("controller: PenaltyTargetFLOPs = %d: must be ≥ 0 (0: no penalty)", c.PenaltyTargetFLOPs))
	}
	if math.IsNaN(c.PenaltyWeight) || math.IsInf(c.PenaltyWeight, 0) {
		errs = append(errs, fmt.Errorf("controller: PenaltyWeight = %v: must be a finite number", c.PenaltyWeight))
	} else if c.PenaltyWeight != 0 && c.PenaltyTargetFLOPs == 0 {
		errs = append(errs, fmt.Errorf("controller: PenaltyWeight = %v without PenaltyTargetFLOPs: set the target FLOPs (or leave the weight at 0)", c.PenaltyWeight))
	}
	return errors.Join(errs...)
}

// Progress is what Run reports after every sync round and every async result.
type Progress struct {
	Done, Budget int // trials finished; MaxTrials (0: none)
	Best         float64
	BestTrial    string // "" until an ok result
	Running      int    // trials in flight
	Elapsed      time.Duration
	ETA          time.Duration // 0 when unknown
}

// Summary is the outcome of Run.
type Summary struct {
	Trials, OK, Failed int     // finished trials; Failed counts every status but "ok", "stopped" and "rejected"
	Stopped            int     // stopped early by the stopper
	Rejected           int     // over Config.Budget, never trained
	EpochsSaved        int     // Σ over stopped trials of (epoch budget − epochs run); 0 when Epochs is unknown
	Best               *Result // the ok result with the highest reward (the earliest on ties); nil if none
	// Interrupted: ctx or the job's end (StopAt) ended the segment; it
	// checkpointed with the trials in flight and can be resumed (the
	// caller exits 3). Reason says which.
	Interrupted bool
	Reason      string // run_end's reason
}

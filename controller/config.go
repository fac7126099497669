package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
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
const SchemaVersion = 1

// Config is how Run searches.
type Config struct {
	Mode string // ModeSync or ModeAsync

	// Budgets; zero means none. When one is reached the loop stops
	// proposing, finishes what is running and ends the run normally.
	MaxTrials int           // finished trials (replayed ones included)
	MaxTime   time.Duration // search time, summed over the run's segments (time after a segment's last checkpoint is not counted)
	StopAt    time.Time     // wall-clock time to stop proposing at

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
}

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
	if c.CheckpointEvery < 0 {
		errs = append(errs, fmt.Errorf("controller: CheckpointEvery = %v: must be ≥ 0 (0: %v)", c.CheckpointEvery, DefaultCheckpointEvery))
	}
	if len(c.ConfigJSON) > 0 && !json.Valid(c.ConfigJSON) {
		errs = append(errs, errors.New("controller: ConfigJSON is not valid JSON"))
	}
	if size < 2 {
		errs = append(errs, fmt.Errorf("controller: the job has %d rank(s): it needs rank 0 and at least one worker", size))
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
	Trials, OK, Failed int     // finished trials; Failed counts every status but "ok"
	Best               *Result // the ok result with the highest reward (the earliest on ties); nil if none
	// Interrupted: ctx ended the run; it checkpointed with the trials in
	// flight and can be resumed (the caller exits 3).
	Interrupted bool
}

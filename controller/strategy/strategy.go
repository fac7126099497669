package strategy

import (
	"time"

	"nasd/arch"
)

// Strategy is a search method as a pure state machine: no MPI, files, wall
// clock or global randomness inside. The loop asks it for trials, feeds it
// results in a deterministic order, and checkpoints it.
type Strategy interface {
	Name() string
	// Propose returns up to n new trials; fewer (even none) when it must wait
	// for results, e.g. the end of a generation.
	Propose(n int) ([]Trial, error)
	// Observe takes the result of a trial that Propose returned.
	Observe(r Result) error
	// Snapshot encodes the whole state, random generator included; Restore
	// on a fresh strategy of the same configuration continues exactly.
	Snapshot() ([]byte, error)
	Restore(b []byte) error
}

// Env is what a strategy factory gets: the space to search, the run's seed
// and the strategy's own options as decoded from the config file.
type Env struct {
	Space   arch.Space
	Seed    uint64
	Options map[string]any
}

// Factory makes a strategy; it rejects unknown or invalid options, naming them.
type Factory func(env Env) (Strategy, error)

// UpdateStats describes a learning strategy's last update (rl: one
// REINFORCE step over a batch of results).
type UpdateStats struct {
	Updates      int     `json:"updates"`       // updates completed so far, this one included
	Batch        int     `json:"batch"`         // results in this update
	MeanReward   float64 `json:"mean_reward"`   // mean reward of the batch
	Baseline     float64 `json:"baseline"`      // the baseline the advantages were taken against
	Loss         float64 `json:"loss"`          // loss at the weights before the step
	Entropy      float64 `json:"entropy"`       // mean policy entropy over the batch
	MaxStaleness int     `json:"max_staleness"` // most updates between a trial's proposal and its result (async)
}

// Learner is implemented by strategies that learn in discrete updates; the
// loop logs each new update in strategy_update.
type Learner interface {
	LastUpdate() UpdateStats
}

// Trial is one architecture to train: the unit the strategy proposes and a
// worker executes. Its result depends only on (Arch, Seed, Epochs), never on
// the rank that ran it. It is also the wire record of a task (cluster.Trial).
type Trial struct {
	ID     string    `json:"id"` // made by the strategy, unique within a run
	Arch   arch.Arch `json:"arch"`
	Seed   uint64    `json:"seed"`             // derived from (run seed, ID)
	Epochs int       `json:"epochs,omitempty"` // budget override; 0 = the run's
	// Report asks the worker to send rank 0 a Progress after each epoch
	// but the last and to wait for its Decision before going on (early
	// stopping, async mode only). Rank 0 sets it when the run has a stopper.
	Report bool `json:"report,omitempty"`
}

// Result statuses beyond train's (ok, diverged, timeout, canceled, error).
const (
	StatusFailed = "failed" // the worker could not train the child (panic, bad input, out of memory)
	// StatusStopped: rank 0's stopper ended the trial at an epoch boundary;
	// the result covers the epochs run (ValAcc) and its reward is computed
	// over them.
	StatusStopped = "stopped"
	// StatusRejected: rank 0 never sent the trial to a worker, because its
	// architecture is over the run's static budget (Reason says which);
	// its reward is 0.
	StatusRejected = "rejected"
)

// Result is what a worker reports for a trial. It is also the wire record
// of a result (cluster.Result).
type Result struct {
	TrialID    string    `json:"trial"`
	Status     string    `json:"status"` // "ok", "diverged", "timeout", "failed", ...
	Reason     string    `json:"reason,omitempty"`
	Reward     float64   `json:"reward"`
	ValAcc     []float64 `json:"val_acc,omitempty"` // per epoch
	BestValAcc float64   `json:"best_val_acc"`
	TestAcc    *float64  `json:"test_acc,omitempty"`
	Params     int       `json:"params"`
	FLOPs      int64     `json:"flops"`
	Rank       int       `json:"rank"`
	Host       string    `json:"host"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	ImgPerSec  float64   `json:"img_per_sec,omitempty"`
	// Language models (-data ptb): perplexity per epoch and on the test
	// split. Reward and ValAcc are then on the reward's scale, c/perplexity,
	// so strategies and early stopping treat them as accuracies.
	ValPPL  []float64 `json:"val_ppl,omitempty"`
	TestPPL *float64  `json:"test_ppl,omitempty"`
}

package controller

import (
	"nasd/arch"
	"nasd/cluster"
)

// Trial and Result are the records strategies propose and observe; they are
// the wire records too, so nothing converts between the two.
type (
	Trial  = cluster.Trial
	Result = cluster.Result
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

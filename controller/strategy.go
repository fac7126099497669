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

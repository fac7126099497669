package controller

import "nasd/controller/strategy"

// The strategy API lives in package controller/strategy, which strategies
// import instead of this package (so that they depend on nothing but it and
// arch). These aliases and forwarders keep the loop and its callers written
// against controller.Strategy, controller.New, ... unchanged.
type (
	// Strategy is strategy.Strategy: a search method as a pure state machine.
	Strategy = strategy.Strategy
	// Trial is strategy.Trial (and cluster.Trial): one architecture to train.
	Trial = strategy.Trial
	// Result is strategy.Result (and cluster.Result): a trial's outcome.
	Result = strategy.Result
	// Env is strategy.Env: what a strategy factory gets.
	Env = strategy.Env
	// Factory is strategy.Factory: makes a strategy from an Env.
	Factory = strategy.Factory
	// UpdateStats is strategy.UpdateStats: a learning strategy's last update.
	UpdateStats = strategy.UpdateStats
	// Learner is strategy.Learner: a strategy that learns in discrete updates.
	Learner = strategy.Learner
)

// Register is strategy.Register: it makes a strategy available to New.
func Register(name string, f Factory) { strategy.Register(name, f) }

// New is strategy.New: it makes the named strategy.
func New(name string, env Env) (Strategy, error) { return strategy.New(name, env) }

// Names is strategy.Names: the registered strategies, sorted.
func Names() []string { return strategy.Names() }

// TrialSeed is strategy.TrialSeed: a trial's seed from the run's seed and
// the trial's ID.
func TrialSeed(runSeed uint64, trialID string) uint64 { return strategy.TrialSeed(runSeed, trialID) }

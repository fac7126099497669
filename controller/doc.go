// Package controller is rank 0 of a search: the loop that connects a
// Strategy (a pure state machine that proposes trials and observes their
// results) to the workers over a cluster.Transport and records everything in
// the run's journal.
//
// The strategy API (the Strategy interface, Trial and Result, the registry,
// TrialSeed) lives in package controller/strategy, which the strategies
// import instead of this package, so that a strategy depends on nothing but
// that API and arch; this package re-exports it under the same names
// (Strategy, Trial, Result, Env, Register, New, Names, TrialSeed, ...).
// Strategies register by name; each lives in its own package under
// controller/ (random, rl, evolution), imported for its side effect. They
// create trial IDs and draw trial seeds from TrialSeed(run seed, ID), so a
// trial's result depends only on the trial.
//
// Run has two modes. "sync" runs rounds of Size()-1 trials (Scatter, Gather)
// and observes each round in trial order, so the same seed and rank count
// give the same run; it checkpoints after every round. "async" keeps every
// worker busy and observes results as they arrive, checkpointing every
// Config.CheckpointEvery.
//
// The event log is the run's write-ahead record and a checkpoint a snapshot
// at a position in it (docs/events.md lists the events). The log records
// every call the loop makes to the strategy and the stopper: each Propose
// (strategy_propose), each Observe (trial_result) and each epoch report
// (trial_progress). Resuming loads the newest good checkpoint and makes the
// same calls again, in the same order, so a deterministic strategy ends up
// exactly where it was; a re-proposed trial must have the logged ID and
// architecture (else an error names it). Logged results are never run
// again; the trials proposed without a result are dispatched again.
// Checkpoints hold counters, the best result and the trials in flight:
// their size does not grow with the trials run.
//
// Budgets and the job's end: MaxTrials and MaxTime end the search (the
// loop finishes the running trials). StopAt is the job's end: no trial
// starts after StopAt − StopMargin, trials still running at StopAt −
// ExitReserve() are interrupted, and the loop checkpoints and returns
// Interrupted with reason "deadline" (the caller exits 3, the next job
// resumes).
//
// Early stopping (async only): Config.Stopper names a Stopper ("median",
// "asha"; NewStopper, StopperNames, RegisterStopper), a pure state machine
// like a Strategy. Trials are dispatched with Trial.Report set; the worker
// sends each epoch's validation accuracy (cluster.KindProgress), Run answers
// between results with the stopper's decision (cluster.KindDecision), and a
// stopped trial's result has status "stopped" and the epochs it ran. Static
// constraints (MnasNet): trials over Config.Budget are rejected before
// dispatch (status "rejected", reward 0) and Config.PenaltyTargetFLOPs
// scales rewards by (FLOPs/target)^w before the strategy observes them.
//
// Flushing: a sync round flushes the log (journal.Log.Flush: a zstd block
// written and fsynced) after dispatching and after its results, then
// checkpoints. An async run commits the log (journal.Log.Commit: the block
// written, no fsync) after each result, before its worker gets the next
// trial, and before every wait, so a kill -9 of rank 0 loses nothing logged;
// it fsyncs after dispatching, at most twice a second and at most a second
// after a commit, so a crash of rank 0's machine loses at most a second of
// results, which then run again.
package controller

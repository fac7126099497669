// Package strategy is the API between rank 0's search loop (package
// controller) and the search strategies (controller/random, controller/rl,
// controller/evolution, ...): the Strategy interface, the Trial a strategy
// proposes and the Result it observes, the name → Factory registry (Register,
// New, Names), TrialSeed and TrialID.
//
// A strategy is a pure state machine: no MPI, files, wall clock or global
// randomness inside. A strategy package therefore imports this package and
// arch, and nothing else of ours (rl may also use Gorgonia): not the loop, the
// transport, the journal, MPI, the logger or zstd. A test in this package
// enforces that for every strategy.
//
// Strategies create trial IDs (TrialID(1), TrialID(2), ... in proposal
// order) and draw each trial's seed from TrialSeed(run seed, ID), so a
// trial's result depends only on the trial. Each registers itself by name in
// an init function and is imported for that side effect:
//
//	import _ "nasd/controller/random"
//
// Trial and Result are also the wire records (package cluster aliases them),
// so nothing converts between the two.
package strategy

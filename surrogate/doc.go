// Package surrogate is a synthetic, deterministic objective over
// architectures: it stands in for training so that the search runtime —
// strategies, the rank-0 loop, transports, checkpoints — can be tested and
// benchmarked in milliseconds, against an optimum that is known.
//
// A hidden optimum (one choice per decision) and a weight per decision are
// drawn from Options.Seed. A trial's final accuracy is
//
//	0.1 + 0.85 · (weighted fraction of its decisions equal to the optimum's)
//
// plus Gaussian noise of standard deviation Options.Noise drawn from the
// trial's seed; its reward is the final accuracy cubed (Zoph & Le 2017's
// reward on a monotone curve). The per-epoch validation accuracies rise from
// 0.1 towards the final accuracy. Training "takes" Options.Duration and
// honours its context like the real trainer: a deadline gives status
// "timeout", a cancellation "canceled". The same trial always gives the same
// result, whichever rank runs it.
//
// The objective is additively separable: each decision adds its weight or
// not, whatever the others are, so a search can improve one decision at a
// time. That makes it an easy test of learning; controller/strategytest's
// NK landscape is one whose decisions interact.
//
// The package imports only arch and cluster, so both the worker (as a
// worker.Trainer) and tests of the controller can use it.
package surrogate

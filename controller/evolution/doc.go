// Package evolution registers two evolutionary strategies: "ga", a genetic
// algorithm in the style of MENNDL, and "aging-evolution", regularized
// evolution. Import it for its side effect:
//
//	import _ "nasd/controller/evolution"
//
// Both treat an architecture's genome as its decision sequence and are pure
// state machines: all randomness comes from one PCG seeded with the run seed
// (its state is in the snapshot), trial IDs are strategy.TrialID(1),
// strategy.TrialID(2), ... in proposal order, and each trial's seed is
// strategy.TrialSeed(run seed, ID).
//
// # ga
//
// Young, Rose, Karnowski, Lim & Patton 2015, "Optimizing deep learning
// hyper-parameters through an evolutionary algorithm", MLHPC '15 (MENNDL, run
// on ORNL's Titan). A population of `population` genomes; parents are chosen
// by tournament (the fittest of `tournament` members drawn uniformly with
// replacement); with probability `crossover_rate` a child takes each layer
// — the decisions named "layer <i> ..." — whole from one of two parents
// (decisions of no layer, or a space with fewer than two layers, are
// exchanged one by one: uniform crossover); then each decision is mutated
// with probability `mutation_rate` to another choice, and if none was, one
// decision chosen uniformly is, so every child differs from what it was bred
// from.
//
// Generational (the default, for synchronous rounds): the first generation is
// random. Propose hands out the members of the current generation not yet
// proposed, so it returns fewer than asked, or none, while the generation
// waits for results; a generation may span several rounds. Once every member
// has a result the next generation is bred: the `elite` fittest members carry
// over with their fitness (they are not run again) and population − elite
// children are bred from the finished generation.
//
// Steady state (`steady_state = true`, for asynchronous dispatch): the first
// `population` trials are random; after that every Propose breeds its
// children at once from the population as it stands, and every result joins
// the population, the worst member leaving when it is over `population`
// (ties: the oldest; the new child itself if it is the worst). Replacing the
// worst is elitist already, so `elite` is not an option here.
//
// # aging-evolution
//
// Real, Aggarwal, Huang & Le 2019, "Regularized Evolution for Image
// Classifier Architecture Search", AAAI, Algorithm 1. The first `population`
// trials are random. Each later child mutates the fittest of `sample`
// members drawn uniformly (with replacement) from the population: one
// decision chosen uniformly gets another choice chosen uniformly, i.e. a
// Space.Neighbours neighbour. Each result joins the population as its
// youngest member and the oldest (the first to have joined, not the worst)
// leaves. It never waits: Propose(n) breeds n children from the population as
// it is; with asynchronous workers "oldest" is the order results arrived in.
// Before any result has arrived the children are random.
//
// # Validity and duplicates
//
// Every child is checked with arch.Validate against the budget of
// `max_params`, `max_flops` and `max_activation_bytes` (0: unlimited) before
// it is proposed; an invalid child is bred again (up to 32 tries), then
// replaced by a random valid sample (up to 1000 tries, after which Propose
// returns an error: the budget admits almost nothing). No invalid
// architecture is ever proposed, the first random ones included.
//
// With `dedupe` (the default), a child identical to one of the last
// `dedupe_window` architectures proposed (default 10,000; those in flight and
// the current generation included) is bred again, within the same 32 tries;
// if every try repeats or is invalid, the first repeat is taken, since a
// small or converged space may have nothing new near its parents (a random
// sample, by contrast, is drawn again up to 32 times while it repeats). The
// window, 8 bytes per architecture, keeps the snapshot bounded; an
// architecture proposed longer ago may be proposed again.
//
// # Fitness
//
// Fitness is Result.Reward for status "ok" and for "stopped" (stopped early:
// the reward is used as reported). Any other status, or a reward that is NaN
// or infinite, gives `failure_reward` (default 0). Failed members stay in
// the population, where they rarely win a tournament and, in aging
// evolution, age out like the others.
//
// # Options
//
// Both: population, failure_reward, dedupe, dedupe_window, max_params,
// max_flops, max_activation_bytes. ga: tournament (default 3), crossover_rate
// (0.5), mutation_rate (1/number of decisions with more than one choice),
// elite (2), steady_state (false); population defaults to 20.
// aging-evolution: sample (25); population defaults to 100. Options come from
// TOML (integers as int64, floats as float64); Go ints and integral float64
// are accepted too. An unknown key or a value out of range is an error that
// names it; all of them are reported at once.
//
// # Snapshots
//
// A snapshot holds the options, the PCG state, the next trial number, the
// generation counter, the population (each member's trial number, decisions,
// fitness and state; joining order is age), the trials in flight, the best
// result and the dedupe hashes. Its size is bounded by population and
// dedupe_window, not by the length of the run. Restore on a fresh strategy
// of the same seed, options and space continues exactly; a snapshot of other
// options is refused, naming both.
package evolution

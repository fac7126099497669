// Package random registers the "random" strategy: every decision of the
// search space drawn uniformly and independently, the baseline every other
// strategy must beat (Zoph & Le 2017 compare against it; Li & Talwalkar 2019,
// "Random Search and Reproducibility for NAS", find it hard to beat).
//
// Trial IDs are t000001, t000002, ... in proposal order, and each trial's
// seed is strategy.TrialSeed(run seed, ID). The generator is a PCG seeded
// from the run seed; its state is part of the snapshot, so a restored
// strategy proposes exactly what the original would have. Import the package
// for its side effect to make "random" known to strategy.New:
//
//	import _ "nasd/controller/random"
package random

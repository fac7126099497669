// Package perturb registers the "perturb" strategy: it asks whether an
// architecture is a local optimum of its space. It trains the base
// architecture `repeats` times (other trial IDs, so other seeds: the noise
// floor) and then every architecture one decision away from it (or a seeded
// sample of them), each `neighbour_repeats` times. The list is fixed by
// (options, space, seed); Propose hands it out in order and returns nothing
// once it is exhausted, which ends the run ("strategy done").
//
// The strategytest conformance suite assumes an open-ended search over its
// own spaces (proposals whenever nothing is in flight, other architectures
// for another seed), which a fixed list of one architecture's neighbours is
// not; the package's tests check the rest of the contract (IDs and seeds,
// Propose(0) and (-1), Observe errors, Snapshot/Restore with trials in
// flight, garbage snapshots).
//
// Neighbours that the space rejects (arch.Validate: e.g. an enas-macro
// network whose feature map collapses) are skipped and counted (Plan).
//
//	import _ "nasd/controller/perturb"
package perturb

// Package perturb registers the "perturb" strategy: it asks whether an
// architecture is a local optimum of its space. It trains the base
// architecture `repeats` times (other trial IDs, so other seeds: the noise
// floor) and then every architecture one decision away from it (or a seeded
// sample of them), each `neighbour_repeats` times. The list is fixed by
// (options, space, seed); Propose hands it out in order and returns nothing
// once it is exhausted, which ends the run ("strategy done").
//
// Neighbours that the space rejects (arch.Validate: e.g. an enas-macro
// network whose feature map collapses) are skipped and counted (Plan).
//
//	import _ "nasd/controller/perturb"
package perturb

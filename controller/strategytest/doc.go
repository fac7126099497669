// Package strategytest is the conformance suite every search strategy
// passes (DESIGN.md, style rule 9), with the harness that drives a strategy
// against the synthetic surrogate objective the way the rank-0 loop does.
//
// A strategy package calls Run from its own tests:
//
//	func TestConforms(t *testing.T) {
//		strategytest.Run(t, "ga", map[string]any{"population": int64(10)})
//	}
//
// Run makes the strategy by name through strategy.New (so the package under
// test must be imported, which it is in its own tests) and checks, each in a
// subtest, the contract of strategy.Strategy as the loop relies on it:
// valid, uniquely named, correctly seeded proposals; determinism; Propose's
// count; results of every status, in any order; Snapshot and Restore;
// duplicate architectures; and bounded snapshots. Run's documentation lists
// each check.
//
// The package also provides NK, an NK landscape over a space's decisions:
// a toy objective whose decisions interact (each decision's contribution
// depends on K others), with its optimum found exactly.
//
// The package's own tests run the suite on every strategy of the project and
// hold the learning test, TestStrategiesBeatRandom: on the separable
// surrogate objective and on an NK landscape (K = 3), each strategy's best
// architecture is compared with random search's, same budget, paired by
// seed, by a one-sided Wilcoxon signed-rank test; the comparisons the
// measurements support are asserted at α = 0.01, the others reported
// (docs/strategies.md has the table). NASD_LONG=1 runs bigger versions of
// both; -short shortens the suite, not the learning test.
//
// Deviation from DESIGN.md's table: besides controller/strategy and arch
// the package imports surrogate (which imports only arch and cluster), so
// that the harness plays against the same separable objective as the
// controller's own tests; NK, the objective with interactions, lives here
// because only tests use it.
package strategytest

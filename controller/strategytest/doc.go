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
// The package's own tests run the suite on every strategy of the project and
// hold the learning test: on the surrogate objective, each learning strategy
// must find better architectures than random search with the same budget,
// by a one-sided Mann–Whitney U test. NASD_LONG=1 runs bigger versions of
// both; -short smaller ones.
//
// Deviation from DESIGN.md's table: besides controller/strategy and arch
// the package imports surrogate (which imports only arch and cluster), so
// that the harness plays against the same objective as the controller's own tests
// rather than a second toy objective.
package strategytest

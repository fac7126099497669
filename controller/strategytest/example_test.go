package strategytest_test

import (
	"testing"

	"nasd/controller/strategytest"
)

// A strategy package runs the suite from its own tests, which import the
// package and so register its strategies. In controller/evolution, say:
//
//	func TestAgingConforms(t *testing.T) {
//		strategytest.Run(t, "aging-evolution", map[string]any{"population": int64(20), "sample": int64(5)})
//	}
//
// Options are given as a config file decodes them (TOML integers as int64).
// Each check is a subtest, so one can be run alone:
//
//	go test ./controller/evolution -run 'TestAgingConforms/SnapshotRestore'
func ExampleRun() {
	testAgingConforms := func(t *testing.T) {
		strategytest.Run(t, "aging-evolution", map[string]any{"population": int64(20), "sample": int64(5)})
	}
	_ = testAgingConforms // go test calls it with its *testing.T
}

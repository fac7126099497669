package strategytest_test

import (
	"context"
	"fmt"
	"testing"

	"nasd/arch"
	"nasd/controller"
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

// An NK landscape is a toy objective whose decisions interact: with K = 3,
// each decision's contribution depends on 3 others. Its best and worst
// architectures are found exactly, so accuracy runs from 0.1 to 0.95.
func ExampleNewNK() {
	space, err := arch.New("nas", arch.Options{Layers: 3})
	if err != nil {
		panic(err)
	}
	nk, err := strategytest.NewNK(space, strategytest.NKOptions{Seed: 1, K: 3, Noise: 0.02})
	if err != nil {
		panic(err)
	}
	best, reward := nk.Optimum()
	fmt.Printf("optimum: accuracy %.2f, reward %.3f\n", nk.Accuracy(best), reward)
	res := nk.Train(context.Background(), controller.Trial{ID: "t1", Arch: best, Seed: 1})
	fmt.Printf("trained: %s, accuracy with noise %.3f\n", res.Status, res.BestValAcc)
	// Output:
	// optimum: accuracy 0.95, reward 0.857
	// trained: ok, accuracy with noise 0.969
}

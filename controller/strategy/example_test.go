package strategy_test

import (
	"fmt"

	"nasd/arch"
	_ "nasd/controller/random" // registers "random"
	"nasd/controller/strategy"
)

// TrialSeed is fixed forever: runs depend on it.
func ExampleTrialSeed() {
	fmt.Println(strategy.TrialSeed(1, "t000001"))
	// Output:
	// 15970411904913852585
}

// A strategy is made by name and driven by hand the way the loop drives it:
// propose, train (here: a made-up reward), observe.
func ExampleNew() {
	space, _ := arch.New("nas", arch.Options{Layers: 3})
	s, err := strategy.New("random", strategy.Env{Space: space, Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	trials, _ := s.Propose(2)
	for _, tr := range trials {
		fmt.Println(tr.ID, tr.Seed == strategy.TrialSeed(1, tr.ID))
		if err := s.Observe(strategy.Result{TrialID: tr.ID, Status: "ok", Reward: 0.5}); err != nil {
			fmt.Println(err)
		}
	}
	// Output:
	// t000001 true
	// t000002 true
}

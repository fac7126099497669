package rl_test

import (
	"fmt"

	"nasd/arch"
	"nasd/controller"
	"nasd/controller/rl"
)

// Strategies are made by name; importing the package registers "rl" and
// "random-policy". With batch 0 the first Propose fixes the batch (here 3),
// and the third result triggers the first update.
func Example() {
	space, _ := arch.New("nas", arch.Options{Layers: 2})
	s, err := controller.New("rl", controller.Env{Space: space, Seed: 1,
		Options: map[string]any{"lr": 0.01, "entropy_weight": 1e-4}})
	if err != nil {
		fmt.Println(err)
		return
	}
	trials, _ := s.Propose(3)
	for i, t := range trials {
		fmt.Println(t.ID, t.Arch.Decisions)
		status := "ok"
		if i == 2 {
			status = "failed" // rewarded failure_reward, 0 by default
		}
		s.Observe(controller.Result{TrialID: t.ID, Status: status, Reward: 0.5 + 0.1*float64(i)})
	}
	u := s.(*rl.Strategy).LastUpdate()
	fmt.Printf("update %d: batch %d, mean reward %.2f, baseline %.2f\n", u.Updates, u.Batch, u.MeanReward, u.Baseline)
	// Output:
	// t000001 [1 2 2 0 1 2 2 0 1]
	// t000002 [2 3 2 0 1 2 1 0 0]
	// t000003 [2 1 2 1 3 1 3 0 0]
	// update 1: batch 3, mean reward 0.37, baseline 0.37
}

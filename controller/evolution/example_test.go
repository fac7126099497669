package evolution_test

import (
	"fmt"

	"nasd/arch"
	"nasd/controller"
	"nasd/controller/evolution"
)

// A generational GA of 4 with one elite, in rounds of 3 workers: the first
// generation spans two rounds, and the second round is short because the
// generation ends; the next generation is bred only once all four results
// are in, and the elite is not run again.
func Example() {
	space, _ := arch.New("nas", arch.Options{Layers: 2})
	s, err := controller.New("ga", controller.Env{Space: space, Seed: 1, Options: map[string]any{
		"population": int64(4), "elite": int64(1), "tournament": int64(2),
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	// A toy objective: the share of decisions that choose 0.
	reward := func(a arch.Arch) float64 {
		n := 0
		for _, d := range a.Decisions {
			if d == 0 {
				n++
			}
		}
		return float64(n) / float64(len(a.Decisions))
	}
	for round := 1; round <= 4; round++ {
		trials, _ := s.Propose(3)
		for _, t := range trials {
			r := reward(t.Arch)
			fmt.Printf("round %d, generation %d: %s %v %.2f\n", round, s.(*evolution.GA).Generation(), t.ID, t.Arch.Decisions, r)
			s.Observe(controller.Result{TrialID: t.ID, Status: "ok", Reward: r})
		}
	}
	best, _ := s.(*evolution.GA).Best()
	fmt.Printf("best: %s %v %.2f\n", best.ID, best.Decisions, best.Fitness)

	// Unknown options are errors that list the known ones.
	_, err = controller.New("aging-evolution", controller.Env{Space: space, Options: map[string]any{"size": int64(50)}})
	fmt.Println(err)
	// Output:
	// round 1, generation 0: t000001 [3 2 2 1 3 3 0 1 0] 0.22
	// round 1, generation 0: t000002 [3 3 0 0 0 0 0 1 1] 0.56
	// round 1, generation 0: t000003 [0 3 1 0 2 1 0 1 1] 0.33
	// round 2, generation 0: t000004 [3 3 0 0 3 2 0 1 0] 0.44
	// round 3, generation 1: t000005 [3 2 2 1 3 2 0 0 0] 0.33
	// round 3, generation 1: t000006 [0 3 1 0 2 0 0 1 1] 0.44
	// round 3, generation 1: t000007 [3 2 2 1 0 3 0 1 0] 0.33
	// round 4, generation 2: t000008 [0 3 1 1 2 0 0 1 1] 0.33
	// round 4, generation 2: t000009 [1 3 0 0 0 0 0 1 1] 0.56
	// round 4, generation 2: t000010 [0 3 1 0 2 0 0 0 0] 0.67
	// best: t000010 [0 3 1 0 2 0 0 0 0] 0.67
	// aging-evolution: unknown option "size" (known: dedupe, dedupe_window, failure_reward, max_activation_bytes, max_flops, max_params, population, sample)
}

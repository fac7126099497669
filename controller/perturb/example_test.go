package perturb_test

import (
	"fmt"

	"nasd/arch"
	"nasd/controller"
	_ "nasd/controller/perturb"
)

// The base twice, then its neighbours one decision away, in decision order.
func Example() {
	space, _ := arch.New("nas", arch.Options{Layers: 1}) // 4 decisions: 4 + 4 + 4 + 2 choices
	s, err := controller.New("perturb", controller.Env{Space: space, Seed: 1,
		Options: map[string]any{"arch": []any{int64(1), int64(1), int64(0), int64(0)}, "repeats": int64(2)}})
	if err != nil {
		fmt.Println(err)
		return
	}
	trials, _ := s.Propose(100)
	fmt.Println(len(trials), "trials")
	for _, t := range trials[:5] {
		fmt.Println(t.ID, t.Arch.Decisions)
	}
	// Output:
	// 12 trials
	// t000001 [1 1 0 0]
	// t000002 [1 1 0 0]
	// t000003 [0 1 0 0]
	// t000004 [2 1 0 0]
	// t000005 [3 1 0 0]
}

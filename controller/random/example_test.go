package random_test

import (
	"fmt"

	"nasd/arch"
	"nasd/controller"
	_ "nasd/controller/random"
)

// Strategies are made by name; importing the package registers "random".
func Example() {
	space, _ := arch.New("nas", arch.Options{Layers: 2})
	s, err := controller.New("random", controller.Env{Space: space, Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	trials, _ := s.Propose(3)
	for _, t := range trials {
		fmt.Println(t.ID, t.Arch.Decisions)
	}
	// Output:
	// t000001 [1 1 1 0 2 1 3 1 0]
	// t000002 [3 2 1 1 0 3 3 0 0]
	// t000003 [2 1 0 0 3 3 0 0 0]
}

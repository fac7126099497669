package surrogate_test

import (
	"context"
	"fmt"

	"nasd/arch"
	"nasd/cluster"
	"nasd/surrogate"
)

// The surrogate trains nothing: it scores an architecture by how many of its
// decisions match a hidden optimum, so a search's progress can be measured
// against the known best.
func Example() {
	space, _ := arch.New("nas", arch.Options{Layers: 2})
	obj := surrogate.New(space, surrogate.Options{Seed: 1, Epochs: 3})
	best, reward := obj.Optimum()
	fmt.Printf("optimum reward %.4f\n", reward)

	res := obj.Train(context.Background(), cluster.Trial{ID: "t000001", Arch: best, Seed: 42})
	fmt.Println(res.Status, len(res.ValAcc), "epochs")
	fmt.Printf("val acc %.3f, reward %.4f\n", res.ValAcc, res.Reward)
	// Output:
	// optimum reward 0.8574
	// ok 3 epochs
	// val acc [0.665 0.873 0.950], reward 0.8574
}

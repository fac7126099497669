package dataset_test

import (
	"fmt"
	"log"

	"nasd/train/dataset"
)

// Load Fashion-MNIST with a small seeded training subset, as a cheap proxy
// for ranking architectures, and serve it with augmentation.
// (Not run by go test: it needs the installed data set.)
func ExampleLoad() {
	sp, err := dataset.Load(dataset.Spec{Name: "fashion-mnist", TrainSubset: 10000, Seed: 1})
	if err != nil {
		log.Fatal(err) // e.g. the files are missing: the error says how to install them
	}
	fmt.Println(sp.Train.Len(), sp.Val.Len(), sp.Test.Len(), sp.Train.C, sp.Train.H, sp.Train.W)

	const batch = 128
	b := dataset.NewBatches(sp.Train, batch, true, dataset.Augment{Pad: 2, FlipH: true}, 1)
	x, y := make([]float32, batch*sp.Train.Size()), make([]int32, batch)
	for b.Epoch() < 1 {
		n := b.Next(x, y)
		_ = x[:n*sp.Train.Size()] // train on n examples
	}
}

func ExampleNewBatches() {
	// Five 1×1×2 examples whose values show which example they are.
	s := &dataset.Set{
		Images: []float32{0, 0, 1, 1, 2, 2, 3, 3, 4, 4},
		Labels: []int32{0, 1, 0, 1, 0},
		C:      1, H: 1, W: 2, Classes: 2,
	}
	b := dataset.NewBatches(s, 2, false, dataset.Augment{}, 1)
	x, y := make([]float32, 2*s.Size()), make([]int32, 2)
	for b.Epoch() < 2 {
		n := b.Next(x, y)
		fmt.Printf("epoch %d: %d examples %v labels %v\n", b.Epoch(), n, x[:n*s.Size()], y[:n])
	}
	// Output:
	// epoch 0: 2 examples [0 0 1 1] labels [0 1]
	// epoch 0: 2 examples [2 2 3 3] labels [0 1]
	// epoch 0: 1 examples [4 4] labels [0]
	// epoch 1: 0 examples [] labels []
	// epoch 1: 2 examples [0 0 1 1] labels [0 1]
	// epoch 1: 2 examples [2 2 3 3] labels [0 1]
	// epoch 1: 1 examples [4 4] labels [0]
	// epoch 2: 0 examples [] labels []
}

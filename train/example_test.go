package train_test

import (
	"context"
	"fmt"

	"gorgonia.org/tensor"

	"nasd/arch"
	"nasd/train"
	"nasd/train/dataset"
)

// A network lowered to primitives — here written by hand; normally from
// arch.Space.Lower — trained for three epochs and scored.
func Example() {
	g := &arch.Graph{Input: arch.Shape{C: 1, H: 6, W: 6}, Classes: 2, Nodes: []arch.Node{
		{Op: arch.Op{Kind: arch.KindInput}},
		{Op: arch.Op{Kind: arch.KindConv, KH: 3, KW: 3, Stride: 1, Out: 4}, Inputs: []int{0}},
		{Op: arch.Op{Kind: arch.KindBatchNorm}, Inputs: []int{1}},
		{Op: arch.Op{Kind: arch.KindReLU}, Inputs: []int{2}},
		{Op: arch.Op{Kind: arch.KindMaxPool, KH: 2, KW: 2, Stride: 2}, Inputs: []int{3}},
		{Op: arch.Op{Kind: arch.KindFlatten}, Inputs: []int{4}},
		{Op: arch.Op{Kind: arch.KindDense, Out: 2}, Inputs: []int{5}},
	}}
	data := &dataset.Splits{Train: dataset.Halves(200, 1), Val: dataset.Halves(50, 2)}

	cfg := train.DefaultConfig()
	cfg.Epochs, cfg.BatchSize, cfg.LR = 3, 16, 0.05
	res, err := train.Train(context.Background(), g, data, cfg, 42, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("status:", res.Status)
	fmt.Println("epochs:", len(res.Epochs), "steps:", res.Steps, "parameters:", res.Params)
	fmt.Println("learned:", res.BestValAcc > 0.9)
	fmt.Printf("reward = best^3: %v\n", res.Reward == res.BestValAcc*res.BestValAcc*res.BestValAcc)
	// Output:
	// status: ok
	// epochs: 3 steps: 39 parameters: 118
	// learned: true
	// reward = best^3: true
}

// Build compiles a network against a Weights store; nets built on the same
// store share their parameters.
func ExampleBuild() {
	w := train.NewWeights(tensor.Float32, 1)
	net, err := train.Build(train.ReferenceCNN(), w, train.BuildOptions{Batch: 64, Train: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer net.Close()
	fmt.Println("logits:", net.Shapes()[len(net.Shapes())-1])
	fmt.Println("parameters:", w.Count())
	fmt.Println("first:", w.Names()[0])
	// Output:
	// logits: (64, 10, 1, 1)
	// parameters: 430890
	// first: node1/conv/W
}

// A supernet holds every candidate op's weights of an enas-macro space in
// one flat buffer; each Step trains one sampled child on its own sub-graph
// and adds its gradients into one flat gradient buffer.
func ExampleSupernet() {
	s, err := arch.New("enas-macro", arch.Options{Layers: 3, Input: arch.Shape{C: 1, H: 8, W: 8}, Classes: 2, Channels: 4})
	if err != nil {
		fmt.Println(err)
		return
	}
	sn, err := train.NewSupernet(s, 1, train.SupernetOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sn.Close()
	// Layer 0 conv3x3; layer 1 avgpool3x3 + skip from 0; layer 2 sepconv3x3 + skip from 1.
	child, _ := s.Arch([]int{0, 5, 1, 2, 0, 1})
	used, _ := sn.UsedBuckets(child)
	n := 0
	for i, b := range sn.Buckets() {
		if used[i] {
			fmt.Println(b.Name)
			n++
		}
	}
	fmt.Printf("%d of %d buckets, %d shared weights\n", n, len(used), len(sn.Weights()))

	x, y := make([]float32, 8*64), []int32{0, 1, 0, 1, 0, 1, 0, 1}
	for i := range x {
		x[i] = float32(y[i/64]) - 0.5
	}
	sn.ZeroGrad()
	if _, err := sn.Step(child, x, y); err != nil {
		fmt.Println(err)
		return
	}
	// Here ranks would sum sn.Grad() and call sn.ScaleGrad(1/ranks).
	sn.ApplySGD(0.1, 0.9, true, 1e-4)
	// Output:
	// stem
	// layer 0/conv3x3
	// pool after layer 0/from layer 0
	// layer 1/avgpool3x3
	// layer 1/out
	// pool after layer 1/from layer 1
	// layer 2/sepconv3x3
	// layer 2/out
	// head
	// 9 of 25 buckets, 2806 shared weights
}

package train

import "nasd/arch"

// ReferenceCNN is the fixed network the benchmarks, `nasd train` and the
// PyTorch peer (bench/pytorch_ref.py) share: on a 1×28×28 input, conv 3×3
// 1→32, ReLU, conv 3×3 32→32, ReLU, max pool 2×2/2, conv 3×3 32→64, ReLU, max
// pool 2×2/2, flatten, dense 3136→128, ReLU, dense 128→10. Convolutions have
// biases and pad 1 (PyTorch's nn.Conv2d(..., padding=1)). 68.8 MFLOP per
// training example (forward + backward ≈ 3× forward).
func ReferenceCNN() *arch.Graph {
	conv := func(out int) arch.Op {
		return arch.Op{Kind: arch.KindConv, KH: 3, KW: 3, Stride: 1, Out: out, Bias: true}
	}
	relu := arch.Op{Kind: arch.KindReLU}
	pool := arch.Op{Kind: arch.KindMaxPool, KH: 2, KW: 2, Stride: 2}
	ops := []struct {
		op    arch.Op
		layer string
	}{
		{arch.Op{Kind: arch.KindInput}, "input"},
		{conv(32), "conv1"}, {relu, "conv1"},
		{conv(32), "conv2"}, {relu, "conv2"},
		{pool, "pool1"},
		{conv(64), "conv3"}, {relu, "conv3"},
		{pool, "pool2"},
		{arch.Op{Kind: arch.KindFlatten}, "flatten"},
		{arch.Op{Kind: arch.KindDense, Out: 128}, "fc1"}, {relu, "fc1"},
		{arch.Op{Kind: arch.KindDense, Out: 10}, "fc2"},
	}
	g := &arch.Graph{Input: arch.Shape{C: 1, H: 28, W: 28}, Classes: 10}
	for i, o := range ops {
		n := arch.Node{Op: o.op, Layer: o.layer}
		if i > 0 {
			n.Inputs = []int{i - 1}
		}
		g.Nodes = append(g.Nodes, n)
	}
	return g
}

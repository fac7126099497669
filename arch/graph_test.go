package arch_test

import (
	"strings"
	"testing"

	"nasd/arch"
)

// nodeWant is the expected static result of one node.
type nodeWant struct {
	kind   arch.Kind
	layer  string
	shape  arch.Shape
	params int
	flops  int64
}

func checkNodes(t *testing.T, g *arch.Graph, want []nodeWant) []arch.Stats {
	t.Helper()
	st, err := g.Infer()
	if err != nil {
		t.Fatalf("Infer: %v", err)
	}
	if len(g.Nodes) != len(want) {
		for i, n := range g.Nodes {
			t.Logf("node %d: %s %s %v %+v", i, n.Op.Kind, n.Layer, n.Inputs, st[i])
		}
		t.Fatalf("graph has %d nodes, want %d", len(g.Nodes), len(want))
	}
	for i, w := range want {
		n, s := g.Nodes[i], st[i]
		if n.Op.Kind != w.kind || n.Layer != w.layer || s.Shape != w.shape || s.Params != w.params || s.FLOPs != w.flops {
			t.Errorf("node %d = %s (%s) %v, %d params, %d FLOPs; want %s (%s) %v, %d params, %d FLOPs",
				i, n.Op.Kind, n.Layer, s.Shape, s.Params, s.FLOPs, w.kind, w.layer, w.shape, w.params, w.flops)
		}
	}
	return st
}

// A two-layer nas network on an 8×8 image, computed by hand. Convolutions pad
// (K-1)/2, so out = (in + 2·((K-1)/2) - K)/stride + 1; a conv has KH·KW·Cin·Cout
// params and 2·KH·KW·Cin FLOPs per output value; batchnorm has 2·C params and
// 2 FLOPs per value; a dense layer N→M has N·M+M params and 2·N·M FLOPs.
func TestNASHandComputed(t *testing.T) {
	s, err := arch.New("nas", arch.Options{
		Layers: 2, Input: arch.Shape{C: 1, H: 8, W: 8}, Classes: 3,
		FilterSizes: []int{1, 3}, FilterCounts: []int{2, 4}, Strides: []int{1, 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	// layer 0: height 3, width 1, 4 filters, stride 2.
	// layer 1: height 1, width 3, 2 filters, stride 1, skip from layer 0.
	a, err := s.Arch([]int{1, 0, 1, 1, 0, 1, 0, 0, 1})
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.Lower(a)
	if err != nil {
		t.Fatal(err)
	}
	checkNodes(t, g, []nodeWant{
		{arch.KindInput, "image", arch.Shape{C: 1, H: 8, W: 8}, 0, 0},
		// H = (8+2-3)/2+1 = 4, W = (8+0-1)/2+1 = 4; params 3·1·1·4 = 12; FLOPs 2·3·1·1·64 = 384.
		{arch.KindConv, "layer 0", arch.Shape{C: 4, H: 4, W: 4}, 12, 384},
		{arch.KindBatchNorm, "layer 0", arch.Shape{C: 4, H: 4, W: 4}, 8, 128},
		{arch.KindReLU, "layer 0", arch.Shape{C: 4, H: 4, W: 4}, 0, 64},
		// reads layer 0 (its only chosen input): params 1·3·4·2 = 24; FLOPs 2·3·4·32 = 768.
		{arch.KindConv, "layer 1", arch.Shape{C: 2, H: 4, W: 4}, 24, 768},
		{arch.KindBatchNorm, "layer 1", arch.Shape{C: 2, H: 4, W: 4}, 4, 64},
		{arch.KindReLU, "layer 1", arch.Shape{C: 2, H: 4, W: 4}, 0, 32},
		// layer 0 has a consumer, so only layer 1 reaches the head: no concat.
		{arch.KindGlobalAvgPool, "head", arch.Shape{C: 2, H: 1, W: 1}, 0, 32},
		{arch.KindDense, "head", arch.Shape{C: 3, H: 1, W: 1}, 2*3 + 3, 2 * 2 * 3},
	})
	an, err := arch.Analyze(s, a)
	if err != nil {
		t.Fatal(err)
	}
	// 12+8+24+4+9 params; 384+128+64+768+64+32+32+12 FLOPs;
	// 4 bytes × (64 + 3·64 + 3·32 + 2 + 3) values.
	if an.Params != 57 || an.FLOPs != 1484 || an.ActivationBytes != 4*357 {
		t.Errorf("totals = %d params, %d FLOPs, %d bytes; want 57, 1484, %d", an.Params, an.FLOPs, an.ActivationBytes, 4*357)
	}

	// Without the skip, layer 1 reads the image (the paper's rule), not layer 0,
	// and both layers reach the head through a zero-padding concat.
	a.Decisions[8] = 0
	g, err = s.Lower(a)
	if err != nil {
		t.Fatal(err)
	}
	checkNodes(t, g, []nodeWant{
		{arch.KindInput, "image", arch.Shape{C: 1, H: 8, W: 8}, 0, 0},
		{arch.KindConv, "layer 0", arch.Shape{C: 4, H: 4, W: 4}, 12, 384},
		{arch.KindBatchNorm, "layer 0", arch.Shape{C: 4, H: 4, W: 4}, 8, 128},
		{arch.KindReLU, "layer 0", arch.Shape{C: 4, H: 4, W: 4}, 0, 64},
		// params 1·3·1·2 = 6; FLOPs 2·3·1·128 = 768.
		{arch.KindConv, "layer 1", arch.Shape{C: 2, H: 8, W: 8}, 6, 768},
		{arch.KindBatchNorm, "layer 1", arch.Shape{C: 2, H: 8, W: 8}, 4, 256},
		{arch.KindReLU, "layer 1", arch.Shape{C: 2, H: 8, W: 8}, 0, 128},
		// 4×4×4 padded to 8×8, plus 2×8×8: 6×8×8.
		{arch.KindConcat, "head", arch.Shape{C: 6, H: 8, W: 8}, 0, 0},
		{arch.KindGlobalAvgPool, "head", arch.Shape{C: 6, H: 1, W: 1}, 0, 384},
		{arch.KindDense, "head", arch.Shape{C: 3, H: 1, W: 1}, 6*3 + 3, 2 * 6 * 3},
	})
	if g.Nodes[4].Inputs[0] != 0 {
		t.Errorf("layer 1 without skips reads node %d, want the image (node 0)", g.Nodes[4].Inputs[0])
	}
}

// A three-layer enas-macro network on an 8×8 image with a reduction after
// layer 0, computed by hand (formulas as in TestNASHandComputed; a pool costs
// KH·KW FLOPs per output value, an add one per value per extra input).
// enasHand is the small enas-macro architecture the hand-computed tests
// check: layer 0 sepconv3x3; layer 1 conv3x3, skip from 0; layer 2
// maxpool3x3, skip from 0; a reduction after layer 0.
func enasHand(t *testing.T, final bool) (arch.Space, arch.Arch, *arch.Graph) {
	t.Helper()
	s, err := arch.New("enas-macro", arch.Options{
		Layers: 3, Input: arch.Shape{C: 1, H: 8, W: 8}, Classes: 2, Channels: 4,
		Ops: []string{"conv3x3", "sepconv3x3", "maxpool3x3"}, ReduceAfter: []int{0}, FinalNetwork: final,
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Arch([]int{1, 0, 1, 2, 1, 0})
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.Lower(a)
	if err != nil {
		t.Fatal(err)
	}
	return s, a, g
}

func TestENASHandComputed(t *testing.T) {
	s, a, g := enasHand(t, false)
	sh := func(c, h, w int) arch.Shape { return arch.Shape{C: c, H: h, W: w} }
	checkNodes(t, g, []nodeWant{
		{arch.KindInput, "image", sh(1, 8, 8), 0, 0},
		{arch.KindConv, "stem", sh(4, 8, 8), 3 * 3 * 1 * 4, 2 * 9 * 256}, // 36 params, 4608 FLOPs
		{arch.KindBatchNorm, "stem", sh(4, 8, 8), 8, 512},
		{arch.KindDepthwiseConv, "layer 0", sh(4, 8, 8), 3 * 3 * 4, 2 * 9 * 256},
		{arch.KindConv, "layer 0", sh(4, 8, 8), 4 * 4, 2 * 4 * 256},
		{arch.KindBatchNorm, "layer 0", sh(4, 8, 8), 8, 512},
		{arch.KindReLU, "layer 0", sh(4, 8, 8), 0, 256}, // layer 0: no skip-sum batchnorm, as in ENAS
		{arch.KindMaxPool, "pool after layer 0", sh(4, 4, 4), 0, 4 * 64},
		{arch.KindConv, "layer 1", sh(4, 4, 4), 3 * 3 * 4 * 4, 2 * 36 * 64}, // 144 params, 4608 FLOPs
		{arch.KindBatchNorm, "layer 1", sh(4, 4, 4), 8, 128},
		{arch.KindReLU, "layer 1", sh(4, 4, 4), 0, 64},
		{arch.KindAvgPool, "layer 1", sh(4, 4, 4), 0, 4 * 64}, // layer 0 (8×8) brought down to 4×4
		{arch.KindAdd, "layer 1", sh(4, 4, 4), 0, 64},
		{arch.KindBatchNorm, "layer 1", sh(4, 4, 4), 8, 128},
		{arch.KindMaxPool, "layer 2", sh(4, 4, 4), 0, 9 * 64}, // 3×3 stride 1 pad 1
		{arch.KindAvgPool, "layer 2", sh(4, 4, 4), 0, 4 * 64},
		{arch.KindAdd, "layer 2", sh(4, 4, 4), 0, 64},
		{arch.KindBatchNorm, "layer 2", sh(4, 4, 4), 8, 128},
		{arch.KindGlobalAvgPool, "head", sh(4, 1, 1), 0, 64},
		{arch.KindDense, "head", sh(2, 1, 1), 4*2 + 2, 2 * 4 * 2},
	})
	an, err := arch.Analyze(s, a)
	if err != nil {
		t.Fatal(err)
	}
	// stem 36+8 + layer 0 36+16+8 + layer 1 144+8+8 + layer 2 8 + head 10 = 282.
	if an.Params != 282 || an.FLOPs != 19152 {
		t.Errorf("totals = %d params, %d FLOPs; want 282, 19152", an.Params, an.FLOPs)
	}
	if got := g.Nodes[11].Inputs; len(got) != 1 || got[0] != 6 {
		t.Errorf("layer 1's skip avgpool reads %v, want layer 0's output (node 6)", got)
	}
}

func TestInferRejects(t *testing.T) {
	in := arch.Node{Op: arch.Op{Kind: arch.KindInput}, Layer: "image"}
	conv := func(k, out int, inputs ...int) arch.Node {
		return arch.Node{Op: arch.Op{Kind: arch.KindConv, KH: k, KW: k, Stride: 1, Out: out}, Inputs: inputs, Layer: "layer 1"}
	}
	gap := arch.Node{Op: arch.Op{Kind: arch.KindGlobalAvgPool}, Inputs: []int{1}, Layer: "head"}
	dense := func(out int, from int) arch.Node {
		return arch.Node{Op: arch.Op{Kind: arch.KindDense, Out: out}, Inputs: []int{from}, Layer: "head"}
	}
	shape := arch.Shape{C: 1, H: 4, W: 4}
	for _, tc := range []struct {
		name  string
		g     arch.Graph
		wants []string // substrings, one per expected error line
	}{
		{"empty", arch.Graph{}, []string{"must start with an input node"}},
		{"no input first", arch.Graph{Input: shape, Classes: 2, Nodes: []arch.Node{conv(3, 2, 0)}}, []string{"must start with an input node"}},
		{"forward input", arch.Graph{Input: shape, Classes: 2, Nodes: []arch.Node{in, conv(3, 2, 2), dense(2, 1)}},
			[]string{"node 1 (conv, layer 1): input 2 is not an earlier node"}},
		{"even kernel", arch.Graph{Input: shape, Classes: 2, Nodes: []arch.Node{in, conv(2, 2, 0), gap, dense(2, 2)}},
			[]string{"node 1 (conv, layer 1): kernel 2×2 stride 1"}},
		{"dense not flat", arch.Graph{Input: shape, Classes: 2, Nodes: []arch.Node{in, dense(2, 0)}},
			[]string{"node 1 (dense, head): input 1×4×4 is not flat"}},
		{"add mismatch", arch.Graph{Input: shape, Classes: 2, Nodes: []arch.Node{in, conv(3, 2, 0),
			{Op: arch.Op{Kind: arch.KindAdd}, Inputs: []int{0, 1}, Layer: "layer 2"}}},
			[]string{"node 2 (add, layer 2): adds inputs of shapes 1×4×4 and 2×4×4"}},
		{"wrong logits", arch.Graph{Input: shape, Classes: 3, Nodes: []arch.Node{in, conv(3, 2, 0), gap, dense(2, 2)}},
			[]string{"last node outputs 2×1×1, want 3×1×1 logits"}},
		{"unknown kind", arch.Graph{Input: shape, Classes: 2, Nodes: []arch.Node{in, {Op: arch.Op{Kind: "softmax"}, Inputs: []int{0}, Layer: "x"}}},
			[]string{`node 1 (softmax, x): unknown op kind "softmax"`}},
		{"second input node", arch.Graph{Input: shape, Classes: 2, Nodes: []arch.Node{in, in}},
			[]string{"node 1 (input, image): only node 0 may be the input"}},
		{"bad input shape", arch.Graph{Input: arch.Shape{C: 1, H: 0, W: 4}, Classes: 2, Nodes: []arch.Node{in}},
			[]string{"node 0 (input, image): output shape 1×0×4"}},
		// A 2×2 stride-2 pool on 1×1 gives floor((1-2)/2)+1 = 0, as in PyTorch (truncating
		// division would say 1). The nodes after it are not reported again.
		{"pool collapse", arch.Graph{Input: arch.Shape{C: 1, H: 1, W: 1}, Classes: 2, Nodes: []arch.Node{in,
			{Op: arch.Op{Kind: arch.KindMaxPool, KH: 2, KW: 2, Stride: 2}, Inputs: []int{0}, Layer: "pool"},
			{Op: arch.Op{Kind: arch.KindGlobalAvgPool}, Inputs: []int{1}, Layer: "head"}, dense(2, 2)}},
			[]string{"node 1 (maxpool, pool): output shape 1×0×0: spatial size shrank below 1"}},
		{"two problems at once", arch.Graph{Input: shape, Classes: 2, Nodes: []arch.Node{in, conv(4, 2, 0), conv(3, 0, 0), gap, dense(2, 2)}},
			[]string{"node 1 (conv, layer 1): kernel 4×4", "node 2 (conv, layer 1): filters = 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.g.Infer()
			if err == nil {
				t.Fatal("Infer accepted a bad graph")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.wants) {
				t.Errorf("got %d error lines, want %d:\n%v", len(lines), len(tc.wants), err)
			}
			for i, w := range tc.wants {
				if i < len(lines) && (!strings.Contains(lines[i], w) || !strings.HasPrefix(lines[i], "arch: ")) {
					t.Errorf("line %d = %q, want it to start with \"arch: \" and contain %q", i, lines[i], w)
				}
			}
		})
	}
}

// hugeNAS is the nas space at its option limits: a 65536×65536 image, 99×99
// filters, 65536 of them. Each layer alone costs 2·99·99·1·2^48 ≈ 5.5e18
// FLOPs (it fits); two layers pass int64 (≈ 9.2e18), which wrapped to a
// negative total before Infer checked its arithmetic.
func hugeNAS(t *testing.T) (arch.Space, arch.Arch) {
	t.Helper()
	s, err := arch.New("nas", arch.Options{
		Input: arch.Shape{C: 1, H: 65536, W: 65536}, FilterSizes: []int{99}, FilterCounts: []int{65536}, Strides: []int{1},
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Arch(make([]int, len(s.Decisions()))) // no skips: every layer reads the image
	if err != nil {
		t.Fatal(err)
	}
	return s, a
}

func TestOverflowTotalFLOPs(t *testing.T) {
	s, a := hugeNAS(t)
	const want = "arch: node 4 (conv, layer 1): total FLOPs up to this node overflow int64"
	an, err := arch.Analyze(s, a)
	if err == nil || !strings.Contains(err.Error(), want) {
		if an != nil {
			t.Logf("analysis: %d FLOPs, %d params", an.FLOPs, an.Params)
		}
		t.Fatalf("Analyze: error %v, want one containing %q", err, want)
	}
	// A FLOPs budget must reject it, not compare against a wrapped total.
	err = arch.Validate(s, a, arch.Budget{MaxFLOPs: 1_000_000_000})
	if err == nil {
		t.Fatal("Validate under max_flops 1e9 passed an architecture whose FLOPs overflow int64")
	}
	for _, w := range []string{want, "FLOPs more than 9,223,372,036,854,775,807 over budget 1,000,000,000"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Validate error lacks %q:\n%v", w, err)
		}
	}
	// Without a budget it is still an error: the costs are not representable.
	if err := arch.Validate(s, a, arch.Budget{}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Validate without budget: %v, want %q", err, want)
	}
}

// Per-node products that pass int64 fail the node, naming the quantity, its
// factors and the layer; the totals of the rest never wrap.
func TestOverflowNode(t *testing.T) {
	const big = 1 << 16
	for _, tc := range []struct {
		name  string
		g     arch.Graph
		wants []string
	}{
		{"conv FLOPs", arch.Graph{Input: arch.Shape{C: big, H: big, W: big}, Classes: 2, Nodes: []arch.Node{
			{Op: arch.Op{Kind: arch.KindInput}, Layer: "image"},
			{Op: arch.Op{Kind: arch.KindConv, KH: 99, KW: 99, Stride: 1, Out: big}, Inputs: []int{0}, Layer: "layer 0"},
			{Op: arch.Op{Kind: arch.KindGlobalAvgPool}, Inputs: []int{1}, Layer: "head"},
			{Op: arch.Op{Kind: arch.KindDense, Out: 2}, Inputs: []int{2}, Layer: "head"},
		}}, []string{"arch: node 1 (conv, layer 0): FLOPs = 2×99×99×65536×65536×65536×65536 overflows int64"}},
		{"dense params and FLOPs", arch.Graph{Input: arch.Shape{C: big, H: big, W: big}, Classes: 1 << 24, Nodes: []arch.Node{
			{Op: arch.Op{Kind: arch.KindInput}, Layer: "image"},
			{Op: arch.Op{Kind: arch.KindFlatten}, Inputs: []int{0}, Layer: "head"},
			{Op: arch.Op{Kind: arch.KindDense, Out: 1 << 24}, Inputs: []int{1}, Layer: "head"},
		}}, []string{
			"arch: node 2 (dense, head): params = 281474976710656×16777216 overflows int64",
			"arch: node 2 (dense, head): FLOPs = 2×281474976710656×16777216 overflows int64",
		}},
		{"activation", arch.Graph{Input: arch.Shape{C: 1 << 40, H: big, W: big}, Classes: 2, Nodes: []arch.Node{
			{Op: arch.Op{Kind: arch.KindInput}, Layer: "image"},
		}}, []string{"arch: node 0 (input, image): activation bytes = 4×1099511627776×65536×65536 overflows int64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := tc.g.Infer()
			if err == nil {
				t.Fatalf("Infer passed; stats %+v", st)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			for i, s := range st {
				if s.FLOPs < 0 || s.Params < 0 {
					t.Errorf("node %d: wrapped stats %+v", i, s)
				}
			}
		})
	}
}

// The final network of the same architecture as TestENASHandComputed: joins
// by concat → relu → conv 1×1, channels doubled after the reduction.
func TestENASFinalNetworkHandComputed(t *testing.T) {
	_, a, g := enasHand(t, true)
	sh := func(c, h, w int) arch.Shape { return arch.Shape{C: c, H: h, W: w} }
	checkNodes(t, g, []nodeWant{
		{arch.KindInput, "image", sh(1, 8, 8), 0, 0},
		{arch.KindConv, "stem", sh(4, 8, 8), 36, 4608},
		{arch.KindBatchNorm, "stem", sh(4, 8, 8), 8, 512},
		{arch.KindDepthwiseConv, "layer 0", sh(4, 8, 8), 36, 4608},
		{arch.KindConv, "layer 0", sh(4, 8, 8), 16, 2048},
		{arch.KindBatchNorm, "layer 0", sh(4, 8, 8), 8, 512},
		{arch.KindReLU, "layer 0", sh(4, 8, 8), 0, 256}, // layer 0 has no join
		{arch.KindMaxPool, "pool after layer 0", sh(4, 4, 4), 0, 256},
		{arch.KindConv, "layer 1", sh(8, 4, 4), 3 * 3 * 4 * 8, 2 * 288 * 16}, // 8 channels after the reduction
		{arch.KindBatchNorm, "layer 1", sh(8, 4, 4), 16, 256},
		{arch.KindReLU, "layer 1", sh(8, 4, 4), 0, 128},
		{arch.KindAvgPool, "layer 1", sh(4, 4, 4), 0, 256},
		{arch.KindConcat, "layer 1", sh(12, 4, 4), 0, 0}, // skip's 4 channels, then the branch's 8
		{arch.KindReLU, "layer 1", sh(12, 4, 4), 0, 192},
		{arch.KindConv, "layer 1", sh(8, 4, 4), 12 * 8, 2 * 96 * 16},
		{arch.KindBatchNorm, "layer 1", sh(8, 4, 4), 16, 256},
		{arch.KindMaxPool, "layer 2", sh(8, 4, 4), 0, 9 * 128},
		{arch.KindAvgPool, "layer 2", sh(4, 4, 4), 0, 256},
		{arch.KindConcat, "layer 2", sh(12, 4, 4), 0, 0},
		{arch.KindReLU, "layer 2", sh(12, 4, 4), 0, 192},
		{arch.KindConv, "layer 2", sh(8, 4, 4), 96, 3072}, // the 1×1 gives the pool branch the layer's width
		{arch.KindBatchNorm, "layer 2", sh(8, 4, 4), 16, 256},
		{arch.KindGlobalAvgPool, "head", sh(8, 1, 1), 0, 128},
		{arch.KindDense, "head", sh(2, 1, 1), 8*2 + 2, 2 * 8 * 2},
	})
	if _, b, _ := enasHand(t, false); a.Hash() == b.Hash() {
		t.Error("the final network hashes like the searched child")
	}
	for _, name := range []string{"nas", "enas-micro"} {
		if _, err := arch.New(name, arch.Options{FinalNetwork: true}); err == nil || !strings.Contains(err.Error(), "final_network") {
			t.Errorf("%s with final_network: %v, want an error naming final_network", name, err)
		}
	}
}

package train

import (
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"nasd/arch"
	"nasd/train/dataset"
)

// snMicroSpace is a small enas-micro space: normal, reduction, normal cell
// on 8×8 images, so the last cell's prev-prev is factorized-reduced, the
// first cell calibrates the 3C-wide stem by conv, and the reduction cell's
// identity is a factorized reduction.
func snMicroSpace(t testing.TB, nodes, channels int, in arch.Shape, classes int, ops ...string) arch.Space {
	t.Helper()
	s, err := arch.New("enas-micro", arch.Options{Nodes: nodes, Cells: 1, Stages: 2, Channels: channels, Input: in,
		Classes: classes, Ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// microArch builds decisions from f(cell type, node, slot) = (input, op),
// with ops indexing the default list: sep3x3, sep5x5, avg3x3, max3x3,
// identity.
func microArch(t testing.TB, s arch.Space, f func(typ, node, slot int) (int, int)) arch.Arch {
	t.Helper()
	nodes := s.Options().Nodes
	var d []int
	for typ := range 2 {
		for node := range nodes {
			for slot := range 2 {
				in, op := f(typ, node, slot)
				d = append(d, in, op)
			}
		}
	}
	a, err := s.Arch(d)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

const (
	mSep3 = iota
	mSep5
	mAvg
	mMax
	mIdentity
)

// microChildren are test children of a 3-node default-op space: every op
// on every kind of input; one whose first cell is dead (its successors read
// only prev-prev) and whose first node adds prev to itself; a random one.
func microChildren(t testing.TB, s arch.Space) []arch.Arch {
	all := microArch(t, s, func(typ, node, slot int) (int, int) {
		return (node + slot + typ) % (2 + node), (3*node + slot + typ) % 5
	})
	seps := microArch(t, s, func(typ, node, slot int) (int, int) { return (node + slot) % (2 + node), slot })
	dead := microArch(t, s, func(typ, node, slot int) (int, int) {
		if node == 0 {
			if typ == 0 {
				return 1, mIdentity // prev + prev
			}
			return 0, []int{mIdentity, mMax}[slot]
		}
		if slot == 0 {
			return 1 + node, []int{mMax, mSep3}[node-1] // the previous node
		}
		return 1 - typ, []int{mAvg, mSep5}[node-1] // normal: prev; reduce: prev-prev
	})
	return []arch.Arch{all, seps, dead, s.Sample(rand.New(rand.NewPCG(1, 2)))}
}

// A micro supernet training one child reproduces that child trained
// stand-alone, bit for bit, as TestSupernetMatchesStandAlone for macro.
func TestSupernetMicroMatchesStandAlone(t *testing.T) {
	s := snMicroSpace(t, 3, 4, arch.Shape{C: 1, H: 8, W: 8}, 3)
	checkMatchesStandAlone(t, s, microChildren(t, s))
}

// The supernet's child is the space's derived network: the same number of
// trainable parameters as arch.Analyze counts (the output conv's blocks
// summed are its one conv over the concatenation), so pruning and the
// calibrations agree with arch/micro.go.
func TestSupernetMicroParamsMatchSpace(t *testing.T) {
	s := snMicroSpace(t, 3, 4, arch.Shape{C: 1, H: 8, W: 8}, 3)
	sn := newSn(t, s, 1)
	r := rand.New(rand.NewPCG(3, 3))
	children := microChildren(t, s)
	for range 20 {
		children = append(children, s.Sample(r))
	}
	for _, c := range children {
		an, err := arch.Analyze(s, c)
		if err != nil {
			t.Fatal(err)
		}
		w, err := sn.ChildWeights(c)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, name := range w.Names() {
			if p := w.Get(name); p.Trainable {
				got += tensor.Shape(p.Shape).TotalSize()
			}
		}
		if got != an.Params {
			t.Errorf("%v: supernet child has %d parameters, the space's network %d", c.Decisions, got, an.Params)
		}
	}
}

// With one stage (no factorized reduction, so the space lowers), the
// supernet's child computes the space's own network: with the same weights
// (the output conv's blocks stacked into one conv) both give the same
// loss, up to float32 summation order.
func TestSupernetMicroEqualsSpaceLowering(t *testing.T) {
	s, err := arch.New("enas-micro", arch.Options{Nodes: 3, Cells: 2, Stages: 1, Channels: 4,
		Input: arch.Shape{C: 1, H: 8, W: 8}, Classes: 3})
	if err != nil {
		t.Fatal(err)
	}
	set := syntheticSet(16, 1, 8, 8, 3, 0.5, 8)
	x, y := batchOf(set, 8, 0)
	sn := newSn(t, s, 2)
	r := rand.New(rand.NewPCG(4, 4))
	for range 5 {
		child := s.Sample(r)
		sg, err := sn.ChildGraph(child)
		if err != nil {
			t.Fatal(err)
		}
		sw, err := sn.ChildWeights(child)
		if err != nil {
			t.Fatal(err)
		}
		// The supernet child's parameter tensors in graph order.
		var src [][]float32
		for _, n := range sg.Nodes {
			switch n.Op.Kind {
			case arch.KindConv:
				src = append(src, sw.Get(n.Layer+"/conv/W").Value.Float32s())
			case arch.KindDepthwiseConv:
				src = append(src, sw.Get(n.Layer+"/dwconv/W").Value.Float32s())
			case arch.KindBatchNorm:
				src = append(src, sw.Get(n.Layer+"/bn/gamma").Value.Float32s(), sw.Get(n.Layer+"/bn/beta").Value.Float32s())
			case arch.KindDense:
				src = append(src, sw.Get(n.Layer+"/dense/W").Value.Float32s(), sw.Get(n.Layer+"/dense/b").Value.Float32s())
			}
		}
		g, err := s.Lower(child)
		if err != nil {
			t.Fatal(err)
		}
		st, err := g.Infer()
		if err != nil {
			t.Fatal(err)
		}
		w := NewWeights(tensor.Float32, 0)
		next := func() []float32 {
			if len(src) == 0 {
				t.Fatalf("%v: the space's network has more parameter tensors", child.Decisions)
			}
			v := src[0]
			src = src[1:]
			return v
		}
		for i, n := range g.Nodes {
			pre := "node" + strconv.Itoa(i)
			var inC int
			if len(n.Inputs) > 0 {
				inC = st[n.Inputs[0]].Shape.C
			}
			switch n.Op.Kind {
			case arch.KindConv:
				c := n.Op.Out
				// A cell's output conv over k loose nodes: k c×c blocks.
				k := 1
				if strings.HasSuffix(n.Layer, " output") {
					k = inC / c
				}
				v := make([]float32, 0, c*inC)
				for range k {
					v = append(v, next()...)
				}
				if len(v) != c*inC*n.Op.KH*n.Op.KW {
					t.Fatalf("%v: node %d (%s): conv of %d weights, supernet gives %d", child.Decisions, i, n.Layer, c*inC*n.Op.KH*n.Op.KW, len(v))
				}
				if k > 1 { // stack the blocks: W[o][j·c+i] = block j [o][i]
					stacked := make([]float32, len(v))
					for j := range k {
						for o := range c {
							copy(stacked[o*inC+j*c:o*inC+(j+1)*c], v[j*c*c+o*c:j*c*c+(o+1)*c])
						}
					}
					v = stacked
				}
				w.put(pre+"/conv/W", []int{c, inC, n.Op.KH, n.Op.KW}, true, v)
			case arch.KindDepthwiseConv:
				w.put(pre+"/dwconv/W", []int{inC, 1, n.Op.KH, n.Op.KW}, true, next())
			case arch.KindBatchNorm:
				w.put(pre+"/bn/gamma", []int{inC}, true, next())
				w.put(pre+"/bn/beta", []int{inC}, true, next())
			case arch.KindDense:
				w.put(pre+"/dense/W", []int{n.Op.Out, inC}, true, next())
				w.put(pre+"/dense/b", []int{n.Op.Out}, true, next())
			}
		}
		if len(src) != 0 {
			t.Fatalf("%v: %d supernet tensors left over", child.Decisions, len(src))
		}
		ln, err := Build(g, w, BuildOptions{Batch: 8, BatchStats: true})
		if err != nil {
			t.Fatal(err)
		}
		sn2, err := Build(sg, sw, BuildOptions{Batch: 8, BatchStats: true, Prefix: SupernetPrefix})
		if err != nil {
			t.Fatal(err)
		}
		lossSpace, _, err := ln.Run(x, y)
		if err != nil {
			t.Fatal(err)
		}
		lossSn, _, err := sn2.Run(x, y)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(lossSpace-lossSn) > 1e-5*math.Max(1, math.Abs(lossSpace)) {
			t.Errorf("%v: loss %v through the supernet, %v through the space's lowering", child.Decisions, lossSn, lossSpace)
		}
	}
}

// A Step writes only the gradients of the buckets its child reads, every
// one of those gets some, and the buckets tile the flat buffer. The dead
// first cell of one child reads none of its buckets.
func TestSupernetMicroGradOnlyUsedBuckets(t *testing.T) {
	s := snMicroSpace(t, 3, 4, arch.Shape{C: 1, H: 8, W: 8}, 3)
	set := syntheticSet(16, 1, 8, 8, 3, 0.5, 5)
	sn := newSn(t, s, 6)
	off := 0
	for _, b := range sn.Buckets() {
		if b.Offset != off || b.Len < 1 {
			t.Fatalf("bucket %s at %d+%d, want offset %d", b.Name, b.Offset, b.Len, off)
		}
		off += b.Len
	}
	if off != len(sn.Weights()) {
		t.Fatalf("buckets cover %d of %d weights", off, len(sn.Weights()))
	}
	x, y := batchOf(set, 8, 0)
	r := rand.New(rand.NewPCG(7, 8))
	children := microChildren(t, s)
	for range 6 {
		children = append(children, s.Sample(r))
	}
	for ci, c := range children {
		used, err := sn.UsedBuckets(c)
		if err != nil {
			t.Fatal(err)
		}
		sn.ZeroGrad()
		if _, err := sn.Step(c, x, y); err != nil {
			t.Fatal(err)
		}
		w, g, st := slices.Clone(sn.Weights()), slices.Clone(sn.Grad()), slices.Clone(sn.RunningStats())
		if _, err := sn.Evaluate(c, x, y); err != nil {
			t.Fatal(err)
		}
		if !sameBits(w, sn.Weights()) || !sameBits(g, sn.Grad()) || !sameBits(st, sn.RunningStats()) {
			t.Fatalf("%v: Evaluate changed the supernet", c.Decisions)
		}
		n := 0
		for i, b := range sn.Buckets() {
			nonzero := false
			for _, g := range sn.Grad()[b.Offset : b.Offset+b.Len] {
				nonzero = nonzero || g != 0
			}
			if nonzero != used[i] {
				t.Errorf("%v: bucket %s: used %v, has non-zero gradient %v", c.Decisions, b.Name, used[i], nonzero)
			}
			if used[i] {
				n++
			}
			if ci == 2 && used[i] && strings.HasPrefix(b.Name, "cell 0 ") {
				t.Errorf("dead first cell: bucket %s used", b.Name)
			}
		}
		if n < 5 || n == len(used) {
			t.Errorf("%v: %d of %d buckets used", c.Decisions, n, len(used))
		}
	}
}

// The same seed and children give bit-identical weights, momentum and
// running statistics, cached or rebuilt; another seed, other weights.
func TestSupernetMicroDeterministic(t *testing.T) {
	s := snMicroSpace(t, 3, 4, arch.Shape{C: 1, H: 8, W: 8}, 3)
	set := syntheticSet(64, 1, 8, 8, 3, 0.5, 6)
	run := func(seed uint64, maxNets int) *Supernet {
		sn, err := NewSupernet(s, seed, SupernetOptions{MaxNets: maxNets})
		if err != nil {
			t.Fatal(err)
		}
		defer sn.Close()
		r := rand.New(rand.NewPCG(9, 9))
		for k := range 5 {
			sn.ZeroGrad()
			for j := range 2 {
				x, y := batchOf(set, 8, 2*k+j)
				if _, err := sn.Step(s.Sample(r), x, y); err != nil {
					t.Fatal(err)
				}
			}
			sn.ScaleGrad(0.5)
			sn.ApplySGD(0.05, 0.9, true, 1e-4)
		}
		return sn
	}
	a, b, c := run(1, 0), run(1, 1), run(2, 0)
	if !sameBits(a.Weights(), b.Weights()) || !sameBits(a.RunningStats(), b.RunningStats()) {
		t.Fatal("same seed, different weights or running statistics")
	}
	for i, v := range a.Momentum() {
		if math.Float64bits(v) != math.Float64bits(b.Momentum()[i]) {
			t.Fatalf("same seed, momentum[%d] %v vs %v", i, v, b.Momentum()[i])
		}
	}
	if sameBits(a.Weights(), c.Weights()) {
		t.Fatal("seeds 1 and 2 gave the same weights")
	}
}

// A child of another space, or of other options, is refused.
func TestSupernetMicroRefusesOtherArch(t *testing.T) {
	s := snMicroSpace(t, 3, 4, arch.Shape{C: 1, H: 8, W: 8}, 3)
	sn := newSn(t, s, 1)
	other := snMicroSpace(t, 2, 4, arch.Shape{C: 1, H: 8, W: 8}, 3)
	macro := snSpace(t, 3, 4, arch.Shape{C: 1, H: 8, W: 8}, 3)
	for _, c := range []arch.Arch{other.Sample(rand.New(rand.NewPCG(1, 1))), macro.Sample(rand.New(rand.NewPCG(1, 1)))} {
		if _, err := sn.UsedBuckets(c); err == nil {
			t.Errorf("%s %v: accepted", c.Space, c.Decisions)
		}
		x, y := make([]float32, 2*64), []int32{0, 1}
		if _, err := sn.Step(c, x, y); err == nil {
			t.Errorf("%s %v: Step accepted", c.Space, c.Decisions)
		}
	}
}

// Training sampled children on Fashion-MNIST lifts the mean accuracy of
// random children well above chance (10%). Not a timing test.
func TestSupernetMicroFashionMNIST(t *testing.T) {
	if _, err := os.Stat(fashionDir); err != nil {
		t.Skipf("Fashion-MNIST not installed at %s: %v", fashionDir, err)
	}
	data, err := dataset.Load(dataset.Spec{Name: "fashion-mnist", Dir: fashionDir, TrainSubset: 4000, ValSubset: 256, TestSubset: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	s := snMicroSpace(t, 2, 8, arch.Shape{C: 1, H: 28, W: 28}, 10, "sep3x3", "max3x3", "identity")
	sn := newSn(t, s, 1)
	r := rand.New(rand.NewPCG(3, 4))
	var probe []arch.Arch
	for range 6 {
		probe = append(probe, s.Sample(r))
	}
	xv, yv := batchOf(data.Val, 256, 0)
	mean := func() float64 {
		var sum float64
		for _, c := range probe {
			acc, err := sn.Evaluate(c, xv, yv)
			if err != nil {
				t.Fatal(err)
			}
			sum += acc
		}
		return sum / float64(len(probe))
	}
	before := mean()
	const batch = 32
	batches := dataset.NewBatches(data.Train, batch, true, dataset.Augment{}, 5)
	x, y := make([]float32, batch*data.Train.Size()), make([]int32, batch)
	for range 300 {
		if batches.Next(x, y) < batch {
			batches.Next(x, y)
		}
		sn.ZeroGrad()
		if _, err := sn.Step(s.Sample(r), x, y); err != nil {
			t.Fatal(err)
		}
		sn.ApplySGD(0.1, 0.9, true, 1e-4)
	}
	after := mean()
	t.Logf("mean accuracy of %d random children on %d validation images: %.3f before, %.3f after 300 steps", len(probe), len(yv), before, after)
	if after < 0.3 || after < before+0.15 {
		t.Fatalf("mean accuracy %.3f after training (%.3f before): want ≥ 0.3 and 0.15 above", after, before)
	}
}

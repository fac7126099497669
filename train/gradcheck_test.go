package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"nasd/arch"
)

// Gradient checks: every primitive's analytical gradient (Gorgonia's G.Grad
// through our SymDiff) against central finite differences,
// (L(θ+h) − L(θ−h)) / 2h, in float64 on small odd shapes, with
// L = Σ R ⊙ op(inputs) for a fixed random R.
//
// Tolerance: |analytic − numeric| ≤ gradTol · max(1, |analytic|, |numeric|)
// with h = 1e-6 and gradTol = 1e-6. Reference: CS231n, "Gradient checks"
// (cs231n.github.io/neural-networks-3/#gradcheck): use the centred formula and
// double precision; a relative error ≤ 1e-7 is expected for smooth functions
// and kinks (ReLU, max) make it larger. Truncation error here is O(h²) ≈ 1e-12
// and rounding error ≈ ε·|L|/h ≈ 1e-9, so a correct gradient sits far below
// the bound, while a wrong one misses it by the gradient's own size (≈ 0.1–1
// with these random inputs). Random inputs keep h from crossing a kink (the
// gap between the two largest values of a pooling window is ≫ h).
const (
	gradH   = 1e-6
	gradTol = 1e-6
	// gradSamples bounds the entries checked per tensor (picked at random
	// when a tensor is larger) to keep the test fast.
	gradSamples = 40
)

type k64 = goKernels[float64]

func randVals(r *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = r.NormFloat64()
	}
	return v
}

func randTensor(r *rand.Rand, shape ...int) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(randVals(r, tensor.Shape(shape).TotalSize())))
}

// gradCase is one op applied to inputs of the given shapes; every input is
// differentiated.
type gradCase struct {
	name   string
	shapes [][]int
	build  func(xs []*G.Node) (*G.Node, error)
	// prepare may adjust the random inputs (e.g. to keep values apart).
	prepare func(vals [][]float64)
}

func checkGradCase(t *testing.T, c gradCase, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 99))
	g := G.NewGraph()
	var xs G.Nodes
	var vals [][]float64
	for i, s := range c.shapes {
		v := randTensor(r, s...)
		vals = append(vals, v.Float64s())
		xs = append(xs, G.NewTensor(g, tensor.Float64, len(s), G.WithShape(s...), G.WithName(fmt.Sprintf("in%d", i)), G.WithValue(v)))
	}
	if c.prepare != nil {
		c.prepare(vals)
	}
	y, err := c.build(xs)
	if err != nil {
		t.Fatalf("%s: build: %v", c.name, err)
	}
	loss := y
	if !y.IsScalar() {
		R := G.NewTensor(g, tensor.Float64, y.Dims(), G.WithShape(y.Shape()...), G.WithName("R"), G.WithValue(randTensor(r, y.Shape()...)))
		loss = G.Must(G.Sum(G.Must(G.HadamardProd(y, R))))
	}
	grads, err := G.Grad(loss, xs...)
	if err != nil {
		t.Fatalf("%s: grad: %v", c.name, err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	eval := func() float64 {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatalf("%s: run: %v", c.name, err)
		}
		return scalarOf[float64](loss.Value())
	}
	eval()
	analytic := make([][]float64, len(xs))
	for i, gn := range grads {
		analytic[i] = append([]float64(nil), raw[float64](gn.Value())...)
	}
	checked := 0
	for i, v := range vals {
		for _, j := range sampleIndices(r, len(v)) {
			old := v[j]
			v[j] = old + gradH
			lp := eval()
			v[j] = old - gradH
			lm := eval()
			v[j] = old
			num := (lp - lm) / (2 * gradH)
			a := analytic[i][j]
			if d := math.Abs(a - num); d > gradTol*max(1, math.Abs(a), math.Abs(num)) {
				t.Errorf("%s: input %d %v element %d: analytic %.9g, numeric %.9g (diff %.2e)", c.name, i, c.shapes[i], j, a, num, d)
			}
			checked++
		}
	}
	// The analytical pass also must not depend on the perturbation runs:
	// run once more and compare (catches state leaking between steps).
	eval()
	for i, gn := range grads {
		for j, v := range raw[float64](gn.Value()) {
			if v != analytic[i][j] {
				t.Fatalf("%s: gradient of input %d changed between identical runs at %d: %g vs %g", c.name, i, j, v, analytic[i][j])
			}
		}
	}
	t.Logf("%s: %d entries within %.0e", c.name, checked, gradTol)
}

func sampleIndices(r *rand.Rand, n int) []int {
	if n <= gradSamples {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	return r.Perm(n)[:gradSamples]
}

// spread replaces v by a random permutation of evenly spaced values, so no two
// entries are within 1e-2 of each other: max pooling then never switches its
// argmax under a perturbation of h.
func spread(v []float64) {
	r := rand.New(rand.NewPCG(uint64(len(v)), 5))
	for i, j := range r.Perm(len(v)) {
		v[i] = -2 + 4*float64(j)/float64(len(v))
	}
}

func TestGradients(t *testing.T) {
	var k k64
	one := func(f func(x *G.Node) (*G.Node, error)) func(xs []*G.Node) (*G.Node, error) {
		return func(xs []*G.Node) (*G.Node, error) { return f(xs[0]) }
	}
	cases := []gradCase{
		{name: "conv 3×3 s1 bias", shapes: [][]int{{2, 3, 5, 7}, {4, 3, 3, 3}, {4}},
			build: func(xs []*G.Node) (*G.Node, error) { return k.Conv(xs[0], xs[1], xs[2], 3, 3, 1, true, false) }},
		{name: "conv 3×5 s2", shapes: [][]int{{2, 2, 7, 9}, {3, 2, 3, 5}},
			build: func(xs []*G.Node) (*G.Node, error) { return k.Conv(xs[0], xs[1], nil, 3, 5, 2, true, false) }},
		{name: "conv 5×1 s2 bias", shapes: [][]int{{3, 2, 7, 5}, {3, 2, 5, 1}, {3}},
			build: func(xs []*G.Node) (*G.Node, error) { return k.Conv(xs[0], xs[1], xs[2], 5, 1, 2, true, false) }},
		{name: "conv 1×1 s1", shapes: [][]int{{2, 3, 3, 5}, {5, 3, 1, 1}},
			build: func(xs []*G.Node) (*G.Node, error) { return k.Conv(xs[0], xs[1], nil, 1, 1, 1, true, false) }},
		{name: "conv 7×7 s1 on 3×5", shapes: [][]int{{2, 2, 3, 5}, {2, 2, 7, 7}},
			build: func(xs []*G.Node) (*G.Node, error) { return k.Conv(xs[0], xs[1], nil, 7, 7, 1, true, false) }},
		{name: "conv 5×5 s1 on 1×1", shapes: [][]int{{2, 3, 1, 1}, {2, 3, 5, 5}, {2}},
			build: func(xs []*G.Node) (*G.Node, error) { return k.Conv(xs[0], xs[1], xs[2], 5, 5, 1, true, false) }},
		{name: "conv 7×7 s2 on 2×2", shapes: [][]int{{2, 2, 2, 2}, {3, 2, 7, 7}},
			build: func(xs []*G.Node) (*G.Node, error) { return k.Conv(xs[0], xs[1], nil, 7, 7, 2, true, false) }},
		{name: "depthwise 3×3 s1", shapes: [][]int{{2, 3, 5, 7}, {3, 1, 3, 3}},
			build: func(xs []*G.Node) (*G.Node, error) { return k.DepthwiseConv(xs[0], xs[1], 3, 3, 1, true) }},
		{name: "depthwise 5×3 s2", shapes: [][]int{{2, 2, 7, 6}, {2, 1, 5, 3}},
			build: func(xs []*G.Node) (*G.Node, error) { return k.DepthwiseConv(xs[0], xs[1], 5, 3, 2, true) }},
		{name: "maxpool 3×3 s1 p1", shapes: [][]int{{2, 3, 5, 7}}, prepare: func(v [][]float64) { spread(v[0]) },
			build: one(func(x *G.Node) (*G.Node, error) { return k.MaxPool(x, 3, 3, 1, 1) })},
		{name: "maxpool 2×2 s2", shapes: [][]int{{2, 3, 7, 5}}, prepare: func(v [][]float64) { spread(v[0]) },
			build: one(func(x *G.Node) (*G.Node, error) { return k.MaxPool(x, 2, 2, 2, 0) })},
		{name: "avgpool 3×3 s1 p1", shapes: [][]int{{2, 3, 5, 7}},
			build: one(func(x *G.Node) (*G.Node, error) { return k.AvgPool(x, 3, 3, 1, 1) })},
		{name: "avgpool 2×2 s2", shapes: [][]int{{2, 3, 7, 5}},
			build: one(func(x *G.Node) (*G.Node, error) { return k.AvgPool(x, 2, 2, 2, 0) })},
		{name: "batchnorm train", shapes: [][]int{{3, 4, 3, 5}, {4}, {4}},
			build: func(xs []*G.Node) (*G.Node, error) {
				return k.BatchNorm(xs[0], xs[1], xs[2], tensor.New(tensor.WithBacking(make([]float64, 4))), tensor.New(tensor.WithBacking([]float64{1, 1, 1, 1})), true)
			}},
		{name: "batchnorm train 1×1 maps", shapes: [][]int{{5, 3, 1, 1}, {3}, {3}},
			build: func(xs []*G.Node) (*G.Node, error) {
				return k.BatchNorm(xs[0], xs[1], xs[2], tensor.New(tensor.WithBacking(make([]float64, 3))), tensor.New(tensor.WithBacking([]float64{1, 1, 1})), true)
			}},
		{name: "relu", shapes: [][]int{{2, 3, 5, 3}},
			build: one(func(x *G.Node) (*G.Node, error) { return k.ReLU(x) })},
		{name: "concat zero-pad", shapes: [][]int{{2, 2, 5, 5}, {2, 3, 3, 4}, {2, 1, 5, 3}},
			build: func(xs []*G.Node) (*G.Node, error) { return k.Concat(xs) }},
		{name: "add 3 inputs", shapes: [][]int{{2, 3, 3, 5}, {2, 3, 3, 5}, {2, 3, 3, 5}},
			build: func(xs []*G.Node) (*G.Node, error) { return k.Add(xs) }},
		{name: "gap", shapes: [][]int{{2, 3, 5, 3}},
			build: one(func(x *G.Node) (*G.Node, error) { return k.GlobalAvgPool(x) })},
		{name: "flatten", shapes: [][]int{{2, 3, 3, 5}},
			build: one(func(x *G.Node) (*G.Node, error) { return k.Flatten(x) })},
		{name: "shift", shapes: [][]int{{2, 1, 4, 5}}, // 40 entries: all checked
			build: one(func(x *G.Node) (*G.Node, error) { return k.Shift(x) })},
		{name: "shift 1-wide", shapes: [][]int{{2, 2, 3, 1}},
			build: one(func(x *G.Node) (*G.Node, error) { return k.Shift(x) })},
		{name: "dense", shapes: [][]int{{3, 7, 1, 1}, {5, 7}, {5}},
			build: func(xs []*G.Node) (*G.Node, error) { return k.Dense(xs[0], xs[1], xs[2], true) }},
		{name: "softmax cross-entropy", shapes: [][]int{{3, 5, 1, 1}},
			build: one(func(x *G.Node) (*G.Node, error) {
				l, h, err := k.SoftmaxCE(x)
				if err == nil {
					h.Set([]int32{4, 0, 2})
				}
				return l, err
			})},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkGradCase(t, c, uint64(i)) })
	}
}

// TestNetGradients checks the gradients of whole built networks — every
// parameter of every kind, through fan-out (skip connections), concat with
// zero padding, and the loss — against central differences, as above.
func TestNetGradients(t *testing.T) {
	tied := newGraph(3, 5, 5, 3)
	tied.add(convOp(3, 3, 1))
	tied.add(reluOp)
	tied.add(convOp(3, 3, 1))
	tied.add(gapOp)
	tied.add(denseOp(3))
	nets := map[string]struct {
		g      *arch.Graph
		prefix func(int, arch.Node) string
	}{
		"enas-like": {enasLike(2, 9, 7, 3, 3), nil},
		"concat":    {concatNet(), nil},
		// Three stages: factorized reductions, so shifts, inside a network.
		"enas-micro": {microGraph(t, arch.Options{Nodes: 2, Cells: 1, Channels: 2, Input: arch.Shape{C: 1, H: 7, W: 6}, Classes: 3}, 1), nil},
		// Nodes 1 and 3 share one weight tensor: its gradient is the sum
		// over both uses.
		"tied": {tied.g, func(i int, _ arch.Node) string { return fmt.Sprint("n", min(i, 3)%2) }},
	}
	for name, c := range nets {
		g := c.g
		t.Run(name, func(t *testing.T) {
			w := NewWeights(tensor.Float64, 3)
			n, err := Build(g, w, BuildOptions{Batch: 3, Train: true, Prefix: c.prefix})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			r := rand.New(rand.NewPCG(5, 6))
			in := g.Input.Elems()
			x := make([]float32, 3*in)
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			y := []int32{0, 2, 1}
			loss := func() float64 {
				l, _, err := n.Run(x, y)
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			loss()
			analytic := make([][]float64, len(n.Params()))
			for i := range analytic {
				analytic[i] = append([]float64(nil), n.gradOf(i).([]float64)...)
			}
			checked := 0
			for i, p := range n.Params() {
				v := p.Value.Float64s()
				for _, j := range sampleIndices(r, len(v)) {
					old := v[j]
					v[j] = old + gradH
					lp := loss()
					v[j] = old - gradH
					lm := loss()
					v[j] = old
					num := (lp - lm) / (2 * gradH)
					a := analytic[i][j]
					if d := math.Abs(a - num); d > gradTol*max(1, math.Abs(a), math.Abs(num)) {
						t.Errorf("%s[%d]: analytic %.9g, numeric %.9g (diff %.2e)", p.Name, j, a, num, d)
					}
					checked++
				}
			}
			t.Logf("%d entries of %d parameters within %.0e", checked, len(n.Params()), gradTol)
		})
	}
}

// concatNet exercises concat of differently sized maps, avg pooling, a
// strided depthwise conv, flatten and two dense layers.
func concatNet() *arch.Graph {
	b := newGraph(2, 7, 7, 3)
	a := b.convBNReLU(3, 3, 1, 0)
	c := b.add(convOp(5, 2, 2), 0)
	d := b.add(dwOp(3, 2), a)
	e := b.add(poolOp(arch.KindAvgPool, 3, 1, 1), a)
	cat := b.add(arch.Op{Kind: arch.KindConcat}, e, c, d)
	b.add(bnOp, cat)
	b.add(reluOp)
	b.add(poolOp(arch.KindMaxPool, 2, 2, 0))
	b.add(arch.Op{Kind: arch.KindFlatten})
	b.add(denseOp(5))
	b.add(reluOp)
	b.add(denseOp(3))
	return b.g
}

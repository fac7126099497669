package train

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"nasd/arch"
)

// checkAgainstInfer builds g for batch examples and requires every node's
// Gorgonia shape and parameter count to equal arch's static inference.
func checkAgainstInfer(t *testing.T, name string, g *arch.Graph, batch int, train bool) *Net {
	t.Helper()
	stats, err := g.Infer()
	if err != nil {
		t.Fatalf("%s: Infer: %v", name, err)
	}
	w := NewWeights(tensor.Float32, 1)
	n, err := Build(g, w, BuildOptions{Batch: batch, Train: train})
	if err != nil {
		t.Fatalf("%s: Build: %v", name, err)
	}
	shapes := n.Shapes()
	perNode := make([]int, len(g.Nodes))
	for _, p := range n.Params() {
		i, err := strconv.Atoi(strings.TrimPrefix(p.Name[:strings.IndexByte(p.Name, '/')], "node"))
		if err != nil {
			t.Fatalf("%s: parameter name %q", name, p.Name)
		}
		perNode[i] += p.Value.Shape().TotalSize()
	}
	total := 0
	for i, s := range stats {
		if want := (tensor.Shape{batch, s.Shape.C, s.Shape.H, s.Shape.W}); !shapes[i].Eq(want) {
			t.Errorf("%s: node %d (%s): built %v, Infer %v", name, i, g.Nodes[i].Op.Kind, shapes[i], want)
		}
		if perNode[i] != s.Params {
			t.Errorf("%s: node %d (%s): %d parameters built, Infer %d", name, i, g.Nodes[i].Op.Kind, perNode[i], s.Params)
		}
		total += s.Params
	}
	if w.Count() != total {
		t.Errorf("%s: store holds %d trainable values, Infer %d", name, w.Count(), total)
	}
	return n
}

func TestBuildMatchesInfer(t *testing.T) {
	odd := newGraph(3, 11, 9, 4)
	a := odd.add(convOp(5, 6, 2), 0)
	odd.add(arch.Op{Kind: arch.KindConv, KH: 1, KW: 7, Stride: 1, Out: 5, Bias: true}, 0)
	b := odd.add(poolOp(arch.KindAvgPool, 3, 2, 1))
	c := odd.add(dwOp(3, 1), a)
	cat := odd.add(arch.Op{Kind: arch.KindConcat}, c, b, 0)
	odd.add(bnOp, cat)
	odd.add(arch.Op{Kind: arch.KindFlatten})
	odd.add(denseOp(4))
	graphs := map[string]*arch.Graph{
		"reference": ReferenceCNN(),
		"enas-like": enasLike(1, 28, 28, 10, 16),
		"concat":    concatNet(),
		"odd":       odd.g,
	}
	for name, g := range graphs {
		for _, train := range []bool{true, false} {
			n := checkAgainstInfer(t, name, g, 3, train)
			x, y := randomBatch(3, g.Input.Elems(), g.Classes)
			if _, _, err := n.Run(x, y); err != nil {
				t.Errorf("%s: run: %v", name, err)
			}
			n.Close()
		}
	}
}

// TestBuildSpaces is a property test over the search spaces: for random
// architectures of each space (small options), the built graph's shapes and
// parameter counts equal Infer's, and one training step runs.
func TestBuildSpaces(t *testing.T) {
	spaces := []struct {
		name string
		opt  arch.Options
	}{
		{"nas", arch.Options{Layers: 5, Input: arch.Shape{C: 1, H: 9, W: 7}, Classes: 3,
			FilterSizes: []int{1, 3, 5}, FilterCounts: []int{2, 3}, Strides: []int{1, 2}}},
		{"enas-macro", arch.Options{Layers: 6, Input: arch.Shape{C: 2, H: 8, W: 8}, Classes: 3, Channels: 3}},
		// The default nas space on a small image: stride-2 layers shrink it to
		// 1×1 under 5×5 and 7×7 kernels (kernels larger than the image).
		{"nas", arch.Options{Layers: 6, Input: arch.Shape{C: 1, H: 11, W: 9}, Classes: 3, FilterCounts: []int{2, 4}}},
		// enas-micro: identity branches make add(x, x) and reuse; with the
		// default 3 stages, reductions to 3×3 and 2×2 and factorized
		// reductions (shifts) of odd-sized maps.
		{"enas-micro", arch.Options{Stages: 1, Cells: 2, Nodes: 3, Input: arch.Shape{C: 1, H: 6, W: 5}, Classes: 3, Channels: 3}},
		{"enas-micro", arch.Options{Cells: 1, Nodes: 3, Input: arch.Shape{C: 1, H: 6, W: 5}, Classes: 3, Channels: 2}},
	}
	const samples = 200
	for _, sp := range spaces {
		s, err := arch.New(sp.name, sp.opt)
		if err != nil {
			t.Fatalf("%s: %v", sp.name, err)
		}
		r := rand.New(rand.NewPCG(1, 2))
		kinds := map[arch.Kind]bool{}
		for i := range samples {
			a := s.Sample(r)
			g, err := s.Lower(a)
			if err != nil {
				t.Fatalf("%s sample %d: Lower: %v", sp.name, i, err)
			}
			for _, n := range g.Nodes {
				kinds[n.Op.Kind] = true
			}
			n := checkAgainstInfer(t, sp.name+" "+a.Hash(), g, 2, true)
			x, y := randomBatch(2, g.Input.Elems(), g.Classes)
			if loss, _, err := n.Run(x, y); err != nil || !finite(loss) {
				t.Errorf("%s sample %d: run: loss %v, %v", sp.name, i, loss, err)
			}
			n.Close()
		}
		t.Logf("%s: %d architectures, kinds %v", sp.name, samples, kinds)
	}
}

// TestEvalBatchIndependent evaluates the same examples with evaluation nets
// of batch 1, 4 (padded last batch) and 16 (one padded batch): padding never
// changes a prediction or the loss.
func TestEvalBatchIndependent(t *testing.T) {
	g := enasLike(1, 9, 7, 3, 3)
	w := NewWeights(tensor.Float32, 4)
	// Train a little so batch-norm running statistics are not trivial.
	tr, err := Build(g, w, BuildOptions{Batch: 5, Train: true})
	if err != nil {
		t.Fatal(err)
	}
	opt := newOptimizer(Config{Optimizer: "sgd", Momentum: 0.9})
	for i := range 3 {
		x, y := randomBatch(5, g.Input.Elems(), 3)
		x[i] += 1
		if _, _, err := tr.Run(x, y); err != nil {
			t.Fatal(err)
		}
		opt.update(tr, 0.1)
	}
	x, y := randomBatch(11, g.Input.Elems(), 3)
	size := g.Input.Elems()
	var losses []float64
	var corrects []int
	for _, b := range []int{1, 4, 16} {
		n, err := Build(g, w, BuildOptions{Batch: b})
		if err != nil {
			t.Fatal(err)
		}
		lossSum, correct := 0.0, 0
		for i := 0; i < len(y); i += b {
			m := min(b, len(y)-i)
			l, c, err := n.Run(x[i*size:(i+m)*size], y[i:i+m])
			if err != nil {
				t.Fatal(err)
			}
			lossSum += l * float64(m)
			correct += c
		}
		losses, corrects = append(losses, lossSum/11), append(corrects, correct)
	}
	for i := range losses {
		if corrects[i] != corrects[0] || math.Abs(losses[i]-losses[0]) > 1e-5 {
			t.Errorf("batch-dependent evaluation: losses %v, correct %v", losses, corrects)
		}
	}
}

// TestWeights: initial values depend only on (seed, name), follow He-uniform
// bounds, and a name cannot change shape.
func TestWeights(t *testing.T) {
	a, b := NewWeights(tensor.Float32, 9), NewWeights(tensor.Float32, 9)
	if _, err := b.param("other/W", []int{3}, initHe, 3, true); err != nil {
		t.Fatal(err)
	}
	pa, err := a.param("node1/conv/W", []int{8, 4, 3, 3}, initHe, 36, true)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := b.param("node1/conv/W", []int{8, 4, 3, 3}, initHe, 36, true)
	if err != nil {
		t.Fatal(err)
	}
	bound := math.Sqrt(6.0 / 36)
	va, vb := pa.Value.Float32s(), pb.Value.Float32s()
	var sum, sumSq float64
	for i := range va {
		if va[i] != vb[i] {
			t.Fatalf("same seed and name, different values at %d: %v vs %v", i, va[i], vb[i])
		}
		if math.Abs(float64(va[i])) > bound {
			t.Fatalf("value %v outside ±%v", va[i], bound)
		}
		sum += float64(va[i])
		sumSq += float64(va[i]) * float64(va[i])
	}
	// U(−b, b) has variance b²/3 = 2/fanIn (He et al. 2015, eq. 10).
	if v := sumSq / float64(len(va)); math.Abs(v-2.0/36) > 0.3*2.0/36 {
		t.Errorf("variance %v, want ≈ %v", v, 2.0/36)
	}
	c := NewWeights(tensor.Float32, 10)
	pc, _ := c.param("node1/conv/W", []int{8, 4, 3, 3}, initHe, 36, true)
	if pc.Value.Float32s()[0] == va[0] && pc.Value.Float32s()[1] == va[1] {
		t.Errorf("seeds 9 and 10 gave the same values")
	}
	if _, err := a.param("node1/conv/W", []int{8, 4, 1, 1}, initHe, 4, true); err == nil {
		t.Errorf("re-requesting a name with another shape: no error")
	}
	if got := a.Names(); len(got) != 1 || got[0] != "node1/conv/W" {
		t.Errorf("names %v", got)
	}
}

// TestSharedWeights: nets built on one store read and train the same
// tensors, and Prefix maps nodes to shared names (the ENAS use).
func TestSharedWeights(t *testing.T) {
	g1 := enasLike(1, 7, 7, 3, 2)
	g2 := enasLike(1, 7, 7, 3, 2)
	g2.Nodes = append(g2.Nodes[:len(g2.Nodes)-1], arch.Node{Op: denseOp(3), Inputs: []int{len(g2.Nodes) - 2}, Layer: "head"})
	w := NewWeights(tensor.Float32, 1)
	shared := func(i int, n arch.Node) string { return "shared" + strconv.Itoa(i) }
	n1, err := Build(g1, w, BuildOptions{Batch: 4, Train: true, Prefix: shared})
	if err != nil {
		t.Fatal(err)
	}
	before := len(w.Names())
	n2, err := Build(g2, w, BuildOptions{Batch: 2, Prefix: shared})
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Names()) != before {
		t.Errorf("second net created parameters: %d → %d", before, len(w.Names()))
	}
	x, y := randomBatch(4, 49, 3)
	l0, _, _ := n2.Run(x[:2*49], y[:2])
	if _, _, err := n1.Run(x, y); err != nil {
		t.Fatal(err)
	}
	newOptimizer(Config{Optimizer: "sgd"}).update(n1, 0.5)
	l1, _, _ := n2.Run(x[:2*49], y[:2])
	if l0 == l1 {
		t.Errorf("training net 1 did not change net 2's loss (%v)", l0)
	}
}

// TestDeterministicAcrossThreads: results do not depend on GOMAXPROCS (the
// kernels split work so that sums never depend on the thread count).
func TestDeterministicAcrossThreads(t *testing.T) {
	data := syntheticSplits(40, 12, 1, 1, 9, 9, 3, 1)
	g := enasLike(1, 9, 9, 3, 8)
	cfg := Config{Epochs: 2, BatchSize: 16}
	var results []Result
	for _, p := range []int{1, 2, 3} {
		old := runtime.GOMAXPROCS(p)
		res, err := Train(context.Background(), g, data, cfg, 3, nil)
		runtime.GOMAXPROCS(old)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, res)
	}
	for i := range results {
		if !sameMetrics(results[0], results[i]) {
			t.Errorf("GOMAXPROCS changes results:\n%+v\n%+v", results[0].Epochs, results[i].Epochs)
		}
	}
}

// panicKernels panics inside ReLU's Do (on a goroutine of a parallel loop)
// or, with atBuild, while building the conv node.
type panicKernels struct {
	goKernels[float32]
	atBuild bool
}

func (panicKernels) ReLU(x *G.Node) (*G.Node, error) {
	o := newOp("boom", x.Shape(), []int{4}, func([]G.Value) (G.Value, error) {
		parRun(2, func(w int) {
			if w == 1 {
				panic("boom in a worker")
			}
		})
		return nil, nil
	})
	o.wrt = []bool{true}
	o.diff = func(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) { return G.Nodes{grad}, nil }
	return G.ApplyOp(o, x)
}

func (k panicKernels) Conv(x, w, b *G.Node, kh, kw, stride int, needDX, relu bool) (*G.Node, error) {
	if k.atBuild {
		var m map[string]int
		m["x"] = 1 // nil map write: a runtime panic
	}
	return k.goKernels.Conv(x, w, b, kh, kw, stride, needDX, relu)
}

func TestTrainRecoversPanics(t *testing.T) {
	data := syntheticSplits(16, 8, 8, 1, 7, 7, 3, 0.5)
	g := enasLike(1, 7, 7, 3, 2)
	for _, atBuild := range []bool{false, true} {
		res, err := trainWith(context.Background(), g, data, Config{Epochs: 1, BatchSize: 8}, 1, Hooks{}, panicKernels{atBuild: atBuild})
		if err == nil || res.Status != StatusError {
			t.Fatalf("atBuild=%v: status %q, error %v; want an error", atBuild, res.Status, err)
		}
		want := "boom in a worker"
		if atBuild {
			want = "nil map"
		}
		if !strings.Contains(err.Error(), want) || !strings.Contains(res.Reason, want) {
			t.Errorf("atBuild=%v: error %q, reason %q; want them to mention %q", atBuild, err, res.Reason, want)
		}
	}
}

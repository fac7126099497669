package train

import (
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"gorgonia.org/tensor"

	"nasd/arch"
	"nasd/train/dataset"
)

// snSpace is a small enas-macro space. The tests' 5 layers on 8×8 images
// reduce after layers 0 and 2, so skips cross one and two factorized
// reductions.
func snSpace(t testing.TB, layers, channels int, in arch.Shape, classes int, reduceAfter ...int) arch.Space {
	t.Helper()
	s, err := arch.New("enas-macro", arch.Options{Layers: layers, Input: in, Classes: classes, Channels: channels,
		ReduceAfter: reduceAfter})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newSn(t testing.TB, s arch.Space, seed uint64) *Supernet {
	t.Helper()
	sn, err := NewSupernet(s, seed, SupernetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sn.Close() })
	return sn
}

// fullChild has every op index o%len(ops) and every skip on.
func fullChild(t testing.TB, s arch.Space, o int) arch.Arch {
	t.Helper()
	ds := s.Decisions()
	d := make([]int, len(ds))
	for i, dec := range ds {
		if len(dec.Choices) == 2 && dec.Choices[0] == "no" {
			d[i] = 1
		} else {
			d[i] = (o + i) % len(dec.Choices)
		}
	}
	a, err := s.Arch(d)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// batchOf returns batch k of size b from set (wrapping).
func batchOf(set *dataset.Set, b, k int) ([]float32, []int32) {
	size := set.Size()
	x, y := make([]float32, b*size), make([]int32, b)
	for i := range b {
		j := (k*b + i) % set.Len()
		copy(x[i*size:], set.Images[j*size:(j+1)*size])
		y[i] = set.Labels[j]
	}
	return x, y
}

// A supernet training one child reproduces that child trained stand-alone
// by Build and Train's optimizer, bit for bit: the same kernels run the same
// graph on the same values, and the flat SGD is Train's rule element-wise.
func TestSupernetMatchesStandAlone(t *testing.T) {
	s := snSpace(t, 5, 4, arch.Shape{C: 1, H: 8, W: 8}, 3, 0, 2)
	checkMatchesStandAlone(t, s, []arch.Arch{fullChild(t, s, 0), fullChild(t, s, 3), s.Sample(rand.New(rand.NewPCG(1, 2)))})
}

// checkMatchesStandAlone trains each child 4 steps through a fresh supernet
// and stand-alone (ChildGraph, ChildWeights, Train's optimizer): the
// initial values, every loss and the final weights must agree bit for bit.
func checkMatchesStandAlone(t *testing.T, s arch.Space, children []arch.Arch) {
	t.Helper()
	set := syntheticSet(64, 1, 8, 8, 3, 0.5, 3)
	const seed, batch, lr, mom, l2 = 11, 8, 0.05, 0.9, 1e-3
	for o, child := range children {
		sn := newSn(t, s, seed)
		g, err := sn.ChildGraph(child)
		if err != nil {
			t.Fatal(err)
		}
		w, err := sn.ChildWeights(child)
		if err != nil {
			t.Fatal(err)
		}
		// The initial values are those of a plain store of the same seed
		// (the constant shift kernels aside).
		fresh := NewWeights(tensor.Float32, seed)
		for _, name := range w.Names() {
			if p := w.Get(name); isShift(name) {
				fresh.put(name, p.Shape, false, p.Value.Float32s())
			}
		}
		if _, err := Build(g, fresh, BuildOptions{Batch: batch, Train: true, Prefix: SupernetPrefix}); err != nil {
			t.Fatal(err)
		}
		for _, name := range w.Names() {
			if !sameBits(w.Get(name).Value.Float32s(), fresh.Get(name).Value.Float32s()) {
				t.Fatalf("child %d: %s starts differently from a store of the same seed", o, name)
			}
		}
		n, err := Build(g, w, BuildOptions{Batch: batch, Train: true, Prefix: SupernetPrefix})
		if err != nil {
			t.Fatal(err)
		}
		opt := newOptimizer(Config{Optimizer: "sgd", Momentum: mom, Nesterov: true, WeightDecay: l2})
		for k := range 4 {
			x, y := batchOf(set, batch, k)
			want, _, err := n.Run(x, y)
			if err != nil {
				t.Fatal(err)
			}
			opt.update(n, lr)
			sn.ZeroGrad()
			got, err := sn.Step(child, x, y)
			if err != nil {
				t.Fatal(err)
			}
			sn.ApplySGD(lr, mom, true, l2)
			if got != want {
				t.Fatalf("child %d step %d: loss %v, stand-alone %v", o, k, got, want)
			}
		}
		for _, name := range w.Names() {
			if !sameBits(sn.trainW.Get(name).Value.Float32s(), w.Get(name).Value.Float32s()) {
				t.Errorf("child %d: %s differs from stand-alone after 4 steps", o, name)
			}
		}
	}
}

// Steps add their gradients; the buffer holds the sum of the children's
// mean-loss gradients, and ScaleGrad(1/k) before ApplySGD makes it the
// mean, which is what a caller summing over ranks (Allreduce) wants.
func TestSupernetGradAccumulation(t *testing.T) {
	s := snSpace(t, 5, 4, arch.Shape{C: 1, H: 8, W: 8}, 3, 0, 2)
	set := syntheticSet(32, 1, 8, 8, 3, 0.5, 4)
	a, b := fullChild(t, s, 0), fullChild(t, s, 1)
	x1, y1 := batchOf(set, 8, 0)
	x2, y2 := batchOf(set, 8, 1)

	one := newSn(t, s, 5)
	if _, err := one.Step(a, x1, y1); err != nil {
		t.Fatal(err)
	}
	gA := append([]float32(nil), one.Grad()...)
	one.ZeroGrad()
	if _, err := one.Step(b, x2, y2); err != nil {
		t.Fatal(err)
	}
	gB := append([]float32(nil), one.Grad()...)

	both := newSn(t, s, 5)
	w0 := append([]float32(nil), both.Weights()...)
	for _, st := range []struct {
		c    arch.Arch
		x    []float32
		y    []int32
		name string
	}{{a, x1, y1, "A"}, {b, x2, y2, "B"}} {
		if _, err := both.Step(st.c, st.x, st.y); err != nil {
			t.Fatal(err)
		}
	}
	for i, g := range both.Grad() {
		if g != gA[i]+gB[i] {
			t.Fatalf("grad[%d] = %v after A and B, want %v + %v", i, g, gA[i], gB[i])
		}
	}
	const lr, l2 = 0.1, 1e-2
	both.ScaleGrad(0.5)
	both.ApplySGD(lr, 0, false, l2)
	for i, w := range both.Weights() {
		// Train's rule at momentum 0: w − lr·(g + l2·w), in float64.
		g := float64((gA[i] + gB[i]) * 0.5)
		want := float32(float64(w0[i]) - lr*(g+float64(l2*float64(w0[i]))))
		if w != want {
			t.Fatalf("w[%d] = %v after the mean update, want %v", i, w, want)
		}
	}
}

// A Step writes only the gradients of the buckets its child reads, and
// every one of those gets some; the buckets tile the flat buffer.
func TestSupernetGradOnlyUsedBuckets(t *testing.T) {
	s := snSpace(t, 5, 4, arch.Shape{C: 1, H: 8, W: 8}, 3, 0, 2)
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
	children := []arch.Arch{fullChild(t, s, 2)}
	for range 6 {
		children = append(children, s.Sample(r))
	}
	for _, c := range children {
		used, err := sn.UsedBuckets(c)
		if err != nil {
			t.Fatal(err)
		}
		sn.ZeroGrad()
		if _, err := sn.Step(c, x, y); err != nil {
			t.Fatal(err)
		}
		// Evaluate changes nothing: weights, gradients, running statistics.
		w, g, st := slices.Clone(sn.Weights()), slices.Clone(sn.Grad()), slices.Clone(sn.RunningStats())
		if _, err := sn.Evaluate(c, x, y); err != nil {
			t.Fatal(err)
		}
		if !sameBits(w, sn.Weights()) || !sameBits(g, sn.Grad()) || !sameBits(st, sn.RunningStats()) {
			t.Fatalf("%v: Evaluate changed the supernet", c.Decisions)
		}
		for i, b := range sn.Buckets() {
			nonzero := false
			for _, g := range sn.Grad()[b.Offset : b.Offset+b.Len] {
				nonzero = nonzero || g != 0
			}
			if nonzero != used[i] {
				t.Errorf("%v: bucket %s: used %v, has non-zero gradient %v", c.Decisions, b.Name, used[i], nonzero)
			}
		}
	}
}

// The same seed and children give bit-identical weights, momentum and
// running statistics, whether child nets are cached or rebuilt every step;
// another seed gives other weights.
func TestSupernetDeterministic(t *testing.T) {
	s := snSpace(t, 5, 4, arch.Shape{C: 1, H: 8, W: 8}, 3, 0, 2)
	set := syntheticSet(64, 1, 8, 8, 3, 0.5, 6)
	run := func(seed uint64, maxNets int) *Supernet {
		sn, err := NewSupernet(s, seed, SupernetOptions{MaxNets: maxNets})
		if err != nil {
			t.Fatal(err)
		}
		defer sn.Close()
		r := rand.New(rand.NewPCG(9, 9))
		for k := range 6 {
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

// The fixed shift of a factorized reduction reads pixel (2y+1, 2x+1), zero
// beyond the edge: the authors' pad-and-crop path.
func TestSupernetShift(t *testing.T) {
	s := snSpace(t, 3, 2, arch.Shape{C: 2, H: 5, W: 5}, 2, 0)
	sn := newSn(t, s, 1)
	b := newGraph(2, 5, 5, 2)
	b.g.Nodes = append(b.g.Nodes, arch.Node{Op: dwOp(3, 2), Inputs: []int{0}, Layer: shiftPrefix})
	b.add(gapOp)
	b.add(denseOp(2))
	n, err := Build(b.g, sn.evalW, BuildOptions{Batch: 1, Prefix: SupernetPrefix})
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 50)
	for i := range x {
		x[i] = float32(i + 1)
	}
	if _, _, err := n.Run(x, []int32{0}); err != nil {
		t.Fatal(err)
	}
	got := n.prog.value(n.nodes[1]).(*tensor.Dense).Float32s()
	for c := range 2 {
		for yy := range 3 {
			for xx := range 3 {
				var want float32
				if 2*yy+1 < 5 && 2*xx+1 < 5 {
					want = x[c*25+(2*yy+1)*5+2*xx+1]
				}
				if v := got[c*9+yy*3+xx]; v != want {
					t.Fatalf("shift[%d][%d][%d] = %v, want %v", c, yy, xx, v, want)
				}
			}
		}
	}
}

// Training sampled children on Fashion-MNIST lifts the mean accuracy of
// random children well above chance (10%). Not a timing test.
func TestSupernetFashionMNIST(t *testing.T) {
	if _, err := os.Stat(fashionDir); err != nil {
		t.Skipf("Fashion-MNIST not installed at %s: %v", fashionDir, err)
	}
	data, err := dataset.Load(dataset.Spec{Name: "fashion-mnist", Dir: fashionDir, TrainSubset: 4000, ValSubset: 256, TestSubset: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	s, err := arch.New("enas-macro", arch.Options{Layers: 4, Input: arch.Shape{C: 1, H: 28, W: 28}, Classes: 10, Channels: 8,
		Ops: []string{"conv3x3", "sepconv5x5", "maxpool3x3"}, ReduceAfter: []int{0, 2}})
	if err != nil {
		t.Fatal(err)
	}
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

// BenchmarkSupernetStep compares one training step of a sampled enas-macro
// child (6 layers, 16 channels, 28×28, batch 64) through the supernet (zero
// the gradient, Step, ApplySGD over every shared weight) with the same
// child's graph trained stand-alone as Train does (Run, then the optimizer
// over the child's own weights). "interleaved" alternates the two in one
// loop and reports supernet/standalone time, which a busy machine's drift
// does not skew. "space-lowering" is the space's own lowering of the child
// trained by Train's trainer: another network, for scale. "miss-vs-hit"
// prices building a new child's net.
func BenchmarkSupernetStep(b *testing.B) {
	const batch, lr = 64, 0.05
	s, err := arch.New("enas-macro", arch.Options{Layers: 6, Input: arch.Shape{C: 1, H: 28, W: 28}, Classes: 10, Channels: 16})
	if err != nil {
		b.Fatal(err)
	}
	child := s.Sample(rand.New(rand.NewPCG(5, 7)))
	x, y := randomBatch(batch, s.Options().Input.Elems(), 10)
	supernet := func(b *testing.B) func() {
		sn := newSn(b, s, 1)
		step := func() {
			sn.ZeroGrad()
			if _, err := sn.Step(child, x, y); err != nil {
				b.Fatal(err)
			}
			sn.ApplySGD(lr, 0.9, true, 1e-4)
		}
		step()
		return step
	}
	standalone := func(b *testing.B) func() {
		sn := newSn(b, s, 1)
		g, err := sn.ChildGraph(child)
		if err != nil {
			b.Fatal(err)
		}
		w, err := sn.ChildWeights(child)
		if err != nil {
			b.Fatal(err)
		}
		n, err := Build(g, w, BuildOptions{Batch: batch, Train: true, Prefix: SupernetPrefix, Buffers: NewBuffers()})
		if err != nil {
			b.Fatal(err)
		}
		opt := newOptimizer(Config{Optimizer: "sgd", Momentum: 0.9, Nesterov: true, WeightDecay: 1e-4})
		step := func() {
			if _, _, err := n.Run(x, y); err != nil {
				b.Fatal(err)
			}
			opt.update(n, lr)
		}
		step()
		return step
	}
	b.Run("supernet", func(b *testing.B) { measure(b, batch, supernet(b)) })
	b.Run("standalone", func(b *testing.B) { measure(b, batch, standalone(b)) })
	b.Run("interleaved", func(b *testing.B) {
		sup, alone := supernet(b), standalone(b)
		var ts, ta time.Duration
		b.ResetTimer()
		timed := func(f func()) time.Duration {
			t0 := time.Now()
			f()
			return time.Since(t0)
		}
		for i := range b.N {
			if i%2 == 0 { // alternate which goes first
				ts += timed(sup)
				ta += timed(alone)
			} else {
				ta += timed(alone)
				ts += timed(sup)
			}
		}
		b.ReportMetric(float64(batch*b.N)/ts.Seconds(), "supernet-img/s")
		b.ReportMetric(float64(batch*b.N)/ta.Seconds(), "standalone-img/s")
		b.ReportMetric(ts.Seconds()/ta.Seconds(), "time-ratio")
	})
	// A new child (a cache miss) builds its net first: each iteration
	// steps a newly sampled child twice, a miss then a hit.
	b.Run("miss-vs-hit", func(b *testing.B) {
		sn := newSn(b, s, 1)
		r := rand.New(rand.NewPCG(6, 8))
		var miss, hit time.Duration
		b.ResetTimer()
		for range b.N {
			c := s.Sample(r)
			for k := range 2 {
				t0 := time.Now()
				sn.ZeroGrad()
				if _, err := sn.Step(c, x, y); err != nil {
					b.Fatal(err)
				}
				sn.ApplySGD(lr, 0.9, true, 1e-4)
				if k == 0 {
					miss += time.Since(t0)
				} else {
					hit += time.Since(t0)
				}
			}
		}
		b.ReportMetric(miss.Seconds()*1e3/float64(b.N), "miss-ms")
		b.ReportMetric(hit.Seconds()*1e3/float64(b.N), "hit-ms")
	})
	b.Run("space-lowering", func(b *testing.B) {
		g, err := s.Lower(child)
		if err != nil {
			b.Fatal(err)
		}
		cfg := Config{Epochs: 1, BatchSize: batch, Optimizer: "sgd", LR: lr, Momentum: 0.9, Nesterov: true, WeightDecay: 1e-4, Schedule: "constant"}
		t := newTrainer(g, cfg.withDefaults(), 1)
		defer t.close()
		if _, _, err := t.step(x, y, lr); err != nil {
			b.Fatal(err)
		}
		measure(b, batch, func() {
			if _, _, err := t.step(x, y, lr); err != nil {
				b.Fatal(err)
			}
		})
	})
}

func TestSupernetRejectsFinalNetwork(t *testing.T) {
	s, err := arch.New("enas-macro", arch.Options{Layers: 3, Channels: 4, FinalNetwork: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSupernet(s, 1, SupernetOptions{}); err == nil || !strings.Contains(err.Error(), "final_network") {
		t.Fatalf("NewSupernet of a final-network space: %v, want an error naming final_network", err)
	}
}

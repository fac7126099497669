package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"nasd/arch"
)

// sharedPrefix maps a node to a name shared by every architecture that has
// the same kind of node at the same place of the same layer, as weight
// sharing (ENAS) does: children of one space then read one set of weights.
func sharedPrefix() func(i int, n arch.Node) string {
	seen := map[string]int{}
	last := -1
	return func(i int, n arch.Node) string {
		if i <= last { // a new build starts again at node 0
			clear(seen)
		}
		last = i
		k := fmt.Sprintf("%s/%s%dx%ds%d", n.Layer, n.Op.Kind, n.Op.KH, n.Op.KW, n.Op.Stride)
		seen[k]++
		return fmt.Sprintf("%s#%d", k, seen[k])
	}
}

// enasChildren samples n children of bench/enas-child.json's space
// (enas-macro, 8 layers × 24 channels) from a fixed seed.
func enasChildren(tb testing.TB, n int) ([]string, []*arch.Graph) {
	tb.Helper()
	_, s, err := arch.Load(enasChildArch)
	if err != nil {
		tb.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 7))
	var keys []string
	var gs []*arch.Graph
	for range n {
		a := s.Sample(r)
		g, err := s.Lower(a)
		if err != nil {
			tb.Fatal(err)
		}
		keys, gs = append(keys, a.Hash()), append(gs, g)
	}
	return keys, gs
}

func TestNetCache(t *testing.T) {
	keys, gs := enasChildren(t, 3)
	w := NewWeights(tensor.Float32, 1)
	c, err := NewNetCache(w, 2, sharedPrefix())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := c.Get(keys[0], gs[0], 4, true)
	if err != nil {
		t.Fatal(err)
	}
	params := len(w.order)
	if again, _ := c.Get(keys[0], gs[0], 4, true); again != a || c.Hits != 1 || c.Builds != 1 {
		t.Fatalf("second Get: same net %v, hits %d, builds %d; want the cached net, 1 hit, 1 build", again == a, c.Hits, c.Builds)
	}
	if ev, _ := c.Get(keys[0], gs[0], 4, false); ev == a || c.Builds != 2 {
		t.Fatalf("evaluation net: got the training net or %d builds", c.Builds)
	}
	// A second child reuses the weights of the places it shares with the first.
	if _, err := c.Get(keys[1], gs[1], 4, true); err != nil {
		t.Fatal(err)
	}
	if added := len(w.order) - params; added >= params {
		t.Fatalf("second child added %d parameters to the %d of the first: weights not shared", added, params)
	}
	if c.Len() != 2 {
		t.Fatalf("cache of max 2 holds %d nets", c.Len())
	}
	// keys[0]'s training net is the least recently used and was evicted.
	if _, err := c.Get(keys[0], gs[0], 4, true); err != nil || c.Builds != 4 {
		t.Fatalf("evicted net: err %v, builds %d, want a rebuild (4)", err, c.Builds)
	}
	if _, err := NewNetCache(w, 0, nil); err == nil {
		t.Fatal("NewNetCache(max 0): no error")
	}
}

// TestSwitchAllocatesNothing: once every child is built, switching children
// and training a step allocates nothing, on one thread and on two. (Not in
// the pure-Go build: gonum's gemm allocates its workers on every call.)
func TestSwitchAllocatesNothing(t *testing.T) {
	if GemmBackend == "gonum" {
		t.Skip("gonum's sgemm allocates per call; the cgo builds are allocation-free")
	}
	keys, gs := enasChildren(t, 2)
	for _, procs := range []int{1, 2} {
		t.Run(fmt.Sprintf("procs=%d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			w := NewWeights(tensor.Float32, 1)
			c, _ := NewNetCache(w, 4, sharedPrefix())
			defer c.Close()
			cfg := Config{Optimizer: "sgd", LR: 0.01, Momentum: 0.9}.withDefaults()
			opt := newOptimizer(cfg)
			x, y := randomBatch(8, gs[0].Input.Elems(), gs[0].Classes)
			i := 0
			step := func() {
				n, err := c.Get(keys[i%2], gs[i%2], len(y), true)
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := n.Run(x, y); err != nil {
					t.Fatal(err)
				}
				opt.update(n, cfg.LR)
				i++
			}
			for range 4 {
				step()
			}
			if a := testing.AllocsPerRun(10, step); a != 0 {
				t.Fatalf("%v allocations per switch and step, want 0", a)
			}
		})
	}
}

// TestProgramMatchesTapeMachine: the package's executor computes exactly what
// Gorgonia's TapeMachine computes on the same graph: loss and every gradient,
// bit for bit, on a child with skip connections (so G.Grad sums gradients).
func TestProgramMatchesTapeMachine(t *testing.T) {
	g := enasChild(t)
	w := NewWeights(tensor.Float64, 3)
	n, err := Build(g, w, BuildOptions{Batch: 3, Train: true})
	if err != nil {
		t.Fatal(err)
	}
	x, y := randomBatch(3, g.Input.Elems(), g.Classes)
	loss, _, err := n.Run(x, y)
	if err != nil {
		t.Fatal(err)
	}
	var ours [][]float64
	for i := range n.grads {
		ours = append(ours, slices.Clone(n.gradOf(i).([]float64)))
	}
	vm := G.NewTapeMachine(n.g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	if tape := n.head.Loss(); tape != loss {
		t.Fatalf("loss: program %v, TapeMachine %v", loss, tape)
	}
	for i, gn := range n.grads {
		if tape := raw[float64](gn.Value()); !slices.Equal(tape, ours[i]) {
			t.Fatalf("gradient of %s differs between the program and the TapeMachine", n.params[i].Name)
		}
	}
}

// BenchmarkNetSwitch measures what switching children costs a weight-sharing
// search (enas-macro 8×24 children, batch 64, SGD steps on one Weights store):
//   - build: building a child (what a cache miss costs), with buffers of its
//     own or on the cache's shared Buffers (memory already there);
//   - lookup: a cache hit;
//   - step/same: a training step, 4 children in turn, each for a quarter of
//     the steps;
//   - step/switch: the same steps, switching child every step.
//
// step/switch − step/same is the switch's cost in a step (cold caches).
func BenchmarkNetSwitch(b *testing.B) {
	const batch = 64
	keys, gs := enasChildren(b, 4)
	x, y := randomBatch(batch, gs[0].Input.Elems(), gs[0].Classes)
	for _, shared := range []bool{false, true} {
		name := "build/own-buffers"
		if shared {
			name = "build/shared-buffers"
		}
		b.Run(name, func(b *testing.B) {
			w := NewWeights(tensor.Float32, 1)
			opt := BuildOptions{Batch: batch, Train: true, Prefix: sharedPrefix()}
			if shared {
				opt.Buffers = NewBuffers()
			}
			for i := range b.N {
				n, err := Build(gs[i%len(gs)], w, opt)
				if err != nil {
					b.Fatal(err)
				}
				n.Close()
			}
		})
	}
	c, _ := NewNetCache(NewWeights(tensor.Float32, 1), len(gs), sharedPrefix())
	defer c.Close()
	for i := range gs {
		if _, err := c.Get(keys[i], gs[i], batch, true); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("lookup", func(b *testing.B) {
		b.ReportMetric(float64(c.Bytes())/1e6, "MB-shared")
		for i := range b.N {
			if _, err := c.Get(keys[i%len(keys)], gs[i%len(gs)], batch, true); err != nil {
				b.Fatal(err)
			}
		}
	})
	cfg := Config{Optimizer: "sgd", LR: 0.01, Momentum: 0.9}.withDefaults()
	opt := newOptimizer(cfg)
	// Both runs train each child b.N/4 steps: in blocks (same) or in turn
	// (switch), so they differ only in how often the child changes.
	for _, switching := range []bool{false, true} {
		name := "step/same"
		if switching {
			name = "step/switch"
		}
		b.Run(name, func(b *testing.B) {
			start := time.Now()
			for i := range b.N {
				k := i * len(gs) / b.N
				if switching {
					k = i % len(gs)
				}
				n, _ := c.Get(keys[k], gs[k], batch, true)
				if _, _, err := n.Run(x, y); err != nil {
					b.Fatal(err)
				}
				opt.update(n, cfg.LR)
			}
			b.ReportMetric(float64(batch*b.N)/time.Since(start).Seconds(), "img/s")
		})
	}
}

// poison fills every buffer of b with NaN, as stale data from another net.
func poison(b *Buffers) {
	fill(b.p32.slab, float32(math.NaN()))
	fill(b.p32.scr, float32(math.NaN()))
	fill(b.p64.slab, math.NaN())
	fill(b.p64.scr, math.NaN())
	for _, bufs := range b.f32.classes {
		for _, c := range bufs {
			for i := range c {
				c[i] = float32(math.NaN())
			}
		}
	}
	for _, bufs := range b.f64.classes {
		for _, c := range bufs {
			for i := range c {
				c[i] = math.NaN()
			}
		}
	}
	for _, bufs := range b.i32.classes {
		for _, c := range bufs {
			for i := range c {
				c[i] = -1 << 31
			}
		}
	}
}

// TestSharedBuffers: nets built on shared Buffers compute, run after run,
// exactly what nets with buffers of their own compute, although every shared
// buffer is filled with NaN (another net's stale data) before each run: no op
// reads a buffer before writing it in the same run. Covers every op the
// spaces use (the enas child: convs, separable convs, pools, BN, skip adds;
// the reference CNN: conv bias, dense; a nas network: concat with padding;
// variantsGraph: the remaining kernel paths) in training and evaluation mode,
// evaluation with short (padded) batches too.
func TestSharedBuffers(t *testing.T) {
	nasGraph := nasTestGraph(t)
	_, others := enasChildren(t, 1)
	for _, net := range []struct {
		name string
		g    *arch.Graph
	}{{"enas-child", enasChild(t)}, {"reference-cnn", ReferenceCNN()}, {"nas", nasGraph}, {"variants", variantsGraph()},
		{"enas-micro", microGraph(t, arch.Options{Nodes: 2, Cells: 1, Channels: 4, Input: arch.Shape{C: 1, H: 9, W: 8}, Classes: 3}, 1)}} {
		for _, train := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/train=%v", net.name, train), func(t *testing.T) {
				const batch = 3
				w := NewWeights(tensor.Float32, 4)
				own, err := Build(net.g, w, BuildOptions{Batch: batch, Train: train})
				if err != nil {
					t.Fatal(err)
				}
				buf := NewBuffers()
				shared, err := Build(net.g, w, BuildOptions{Batch: batch, Train: train, Buffers: buf})
				if err != nil {
					t.Fatal(err)
				}
				other, err := Build(others[0], NewWeights(tensor.Float32, 5), BuildOptions{Batch: batch, Train: true, Buffers: buf})
				if err != nil {
					t.Fatal(err)
				}
				for round := range 3 {
					m := batch
					if !train {
						m -= round % 2
					}
					r := rand.New(rand.NewPCG(uint64(round), 9))
					x, y := randomData(r, m, net.g.Input.Elems(), net.g.Classes)
					xo, yo := randomData(r, batch, others[0].Input.Elems(), others[0].Classes)
					poison(buf)
					if _, _, err := other.Run(xo, yo); err != nil {
						t.Fatal(err)
					}
					poison(buf)
					lossS, corrS, err := shared.Run(x, y)
					if err != nil {
						t.Fatal(err)
					}
					lossO, corrO, err := own.Run(x, y)
					if err != nil {
						t.Fatal(err)
					}
					if math.Float64bits(lossS) != math.Float64bits(lossO) || corrS != corrO || math.IsNaN(lossO) {
						t.Fatalf("round %d: shared buffers: loss %v, correct %d; own buffers: %v, %d", round, lossS, corrS, lossO, corrO)
					}
					for i := range own.grads {
						if !sameBits(shared.gradOf(i).([]float32), own.gradOf(i).([]float32)) {
							t.Fatalf("round %d: gradient of %s differs with shared buffers", round, own.params[i].Name)
						}
					}
				}
				if buf.Bytes() == 0 {
					t.Fatal("shared nets hold no shared memory")
				}
			})
		}
	}
}

// variantsGraph has the op variants TestSharedBuffers' networks lack: 1×1
// convs with bias (stride 1 and 2), a stride-2 depthwise conv, 3×3/2 and 5×5/1
// pools, a 4-input add, a 3-input concat.
func variantsGraph() *arch.Graph {
	b := newGraph(3, 17, 15, 4)
	b.add(arch.Op{Kind: arch.KindConv, KH: 3, KW: 3, Stride: 1, Out: 6, Bias: true})    // 1
	b.add(arch.Op{Kind: arch.KindConv, KH: 1, KW: 1, Stride: 1, Out: 6, Bias: true})    // 2: 1x1 with bias
	b.add(dwOp(3, 2))                                                                   // 3: depthwise s2 -> 9x8
	b.add(poolOp(arch.KindMaxPool, 3, 2, 1), 2)                                         // 4: 9x8
	b.add(poolOp(arch.KindAvgPool, 3, 2, 1), 2)                                         // 5: 9x8
	b.add(poolOp(arch.KindAvgPool, 5, 1, 2), 2)                                         // 6: 17x15 (any path)
	b.add(poolOp(arch.KindMaxPool, 5, 1, 2), 2)                                         // 7: 17x15 (any path)
	b.add(arch.Op{Kind: arch.KindConv, KH: 1, KW: 1, Stride: 2, Out: 6, Bias: true}, 6) // 8: 1x1 s2 bias 9x8
	b.add(dwOp(5, 1), 7)                                                                // 9: 17x15
	b.add(arch.Op{Kind: arch.KindAdd}, 3, 4, 5, 8)                                      // 10: 9x8
	b.add(arch.Op{Kind: arch.KindConcat}, 10, 9, 3)                                     // 11: 18x17x15
	b.add(bnOp)                                                                         // 12
	b.add(reluOp)                                                                       // 13
	b.add(arch.Op{Kind: arch.KindFlatten})                                              // 14
	b.add(denseOp(7))                                                                   // 15
	b.add(reluOp)
	b.add(denseOp(4))
	return b.g
}

// nasTestGraph is a 4-layer nas network (concat with padding), seed (1, 2).
func nasTestGraph(t testing.TB) *arch.Graph {
	t.Helper()
	s, err := arch.New("nas", arch.Options{Layers: 4})
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.Lower(s.Sample(rand.New(rand.NewPCG(1, 2))))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

package train

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"nasd/arch"
	"nasd/train/dataset"
)

// graphBuilder assembles arch graphs in tests.
type graphBuilder struct{ g *arch.Graph }

func newGraph(c, h, w, classes int) *graphBuilder {
	return &graphBuilder{g: &arch.Graph{Input: arch.Shape{C: c, H: h, W: w}, Classes: classes,
		Nodes: []arch.Node{{Op: arch.Op{Kind: arch.KindInput}, Layer: "input"}}}}
}

// add appends op on the given inputs (default: the previous node) and returns its index.
func (b *graphBuilder) add(op arch.Op, inputs ...int) int {
	if len(inputs) == 0 {
		inputs = []int{len(b.g.Nodes) - 1}
	}
	b.g.Nodes = append(b.g.Nodes, arch.Node{Op: op, Inputs: inputs, Layer: "test"})
	return len(b.g.Nodes) - 1
}

func (b *graphBuilder) last() int { return len(b.g.Nodes) - 1 }

func convOp(k, out, stride int) arch.Op {
	return arch.Op{Kind: arch.KindConv, KH: k, KW: k, Stride: stride, Out: out}
}

func dwOp(k, stride int) arch.Op {
	return arch.Op{Kind: arch.KindDepthwiseConv, KH: k, KW: k, Stride: stride}
}

var (
	bnOp   = arch.Op{Kind: arch.KindBatchNorm}
	reluOp = arch.Op{Kind: arch.KindReLU}
	gapOp  = arch.Op{Kind: arch.KindGlobalAvgPool}
)

func poolOp(kind arch.Kind, k, stride, pad int) arch.Op {
	return arch.Op{Kind: kind, KH: k, KW: k, Stride: stride, Pad: pad}
}

func denseOp(out int) arch.Op { return arch.Op{Kind: arch.KindDense, Out: out} }

// convBNReLU appends conv → BN → ReLU and returns the ReLU's index.
func (b *graphBuilder) convBNReLU(k, out, stride int, in ...int) int {
	b.add(convOp(k, out, stride), in...)
	b.add(bnOp)
	return b.add(reluOp)
}

// sepConv appends depthwise k×k → pointwise 1×1 → BN → ReLU.
func (b *graphBuilder) sepConv(k, out int, in ...int) int {
	b.add(dwOp(k, 1), in...)
	b.add(convOp(1, out, 1))
	b.add(bnOp)
	return b.add(reluOp)
}

// enasLike is a small network in the style of an ENAS macro child (Pham et
// al. 2018, §2.3): a conv stem, one 2×2 reduction, conv / separable conv /
// pooling layers, one skip connection summed in, global average pooling and a
// dense classifier. ch channels before the reduction, 2·ch after.
func enasLike(c, h, w, classes, ch int) *arch.Graph {
	b := newGraph(c, h, w, classes)
	b.convBNReLU(3, ch, 1) // stem
	b.convBNReLU(3, ch, 1)
	b.add(poolOp(arch.KindMaxPool, 2, 2, 0))
	l2 := b.convBNReLU(3, 2*ch, 1)
	b.sepConv(5, 2*ch)
	l4 := b.add(poolOp(arch.KindMaxPool, 3, 1, 1))
	b.add(arch.Op{Kind: arch.KindAdd}, l4, l2)
	b.convBNReLU(3, 2*ch, 1)
	b.add(gapOp)
	b.add(denseOp(classes))
	return b.g
}

// syntheticSet is a learnable toy set: class k's images are a fixed random
// pattern for k plus Gaussian noise.
func syntheticSet(n, c, h, w, classes int, noise float64, seed uint64) *dataset.Set {
	r := rand.New(rand.NewPCG(seed, 11))
	size := c * h * w
	pat := rand.New(rand.NewPCG(1234, 5))
	patterns := make([][]float32, classes)
	for k := range patterns {
		patterns[k] = make([]float32, size)
		for i := range patterns[k] {
			patterns[k][i] = float32(pat.NormFloat64())
		}
	}
	s := &dataset.Set{Images: make([]float32, n*size), Labels: make([]int32, n), C: c, H: h, W: w, Classes: classes}
	for i := range n {
		k := r.IntN(classes)
		s.Labels[i] = int32(k)
		for j, v := range patterns[k] {
			s.Images[i*size+j] = v + float32(noise*r.NormFloat64())
		}
	}
	return s
}

func syntheticSplits(train, val, test, c, h, w, classes int, noise float64) *dataset.Splits {
	return &dataset.Splits{
		Train: syntheticSet(train, c, h, w, classes, noise, 1),
		Val:   syntheticSet(val, c, h, w, classes, noise, 2),
		Test:  syntheticSet(test, c, h, w, classes, noise, 3),
	}
}

// parRun runs f(0..p-1) on p goroutines and waits; the first panic is
// re-raised (a panic on a goroutine of a parallel loop, in tests).
func parRun(p int, f func(w int)) {
	var wg sync.WaitGroup
	var once sync.Once
	var perr any
	for w := range p {
		wg.Go(func() {
			defer func() {
				if r := recover(); r != nil {
					once.Do(func() { perr = r })
				}
			}()
			f(w)
		})
	}
	wg.Wait()
	if perr != nil {
		panic(perr)
	}
}

// sameBits reports whether a and b hold the same float32 bit patterns.
func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// microGraph lowers the first sampled enas-micro architecture (options opt,
// seed) that holds a shift, so tests exercise the factorized reduction.
func microGraph(t testing.TB, opt arch.Options, seed uint64) *arch.Graph {
	t.Helper()
	s, err := arch.New("enas-micro", opt)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 3))
	for range 100 {
		g, err := s.Lower(s.Sample(r))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range g.Nodes {
			if n.Op.Kind == arch.KindShift {
				return g
			}
		}
	}
	t.Fatalf("enas-micro %+v: no sample of 100 holds a shift", opt)
	return nil
}

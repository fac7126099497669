package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
)

// Batch norm's float32 path (C in the cgo builds, c_bn.c) against the Go
// loops and a float64 reference.
//
// Tolerances:
//   - normalise and dx kernels against Go, given the same coefficients: none
//     (the same float32 expressions, unfused);
//   - sums against Go: 1e-6 of Σ|terms| (both sum each plane in float32,
//     C in 16 lanes, Go in 4 or 2, with ≤ n/2+2 roundings of ε = 6e-8 per
//     lane, then the planes in float64);
//   - the op against float64: 1e-5 of the magnitude of each result's terms
//     (within; float32 inputs, statistics in float64).

type bnKernelSet struct {
	sum    func(x []float32, b, st, n int) float64
	sqDev  func(x []float32, b, st, n int, m float32) float64
	norm   func(x, y, xh []float32, b, st, n int, a, bb, is, nm float32)
	sumDot func(dy, xh []float32, b, st, n int) (float64, float64)
	dx     func(dy, xh, dx []float32, b, st, n int, a, b0, b1 float32)
}

var (
	bnGoSet   = bnKernelSet{bnSumGo[float32], bnSqDevGo[float32], bnNormGo[float32], bnSumDotGo[float32], bnDXGo[float32]}
	bnFastSet = bnKernelSet{bnSum[float32], bnSqDev[float32], bnNorm[float32], bnSumDot[float32], bnDX[float32]}
)

var bnShapes = [][4]int{
	{1, 5, 1, 1}, {1, 3, 1, 2}, {3, 5, 2, 1}, {3, 5, 7, 7}, {1, 5, 13, 17}, {3, 3, 28, 28}, {2, 7, 14, 14}, {3, 5, 4, 4},
}

func bnRandInput(r *rand.Rand, v []float32, mean, sd float64) {
	for i := range v {
		v[i] = float32(mean + sd*r.NormFloat64())
	}
}

func TestBatchNormKernelsMatchGo(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 8))
	for _, sh := range bnShapes {
		b, c, n := sh[0], sh[1], sh[2]*sh[3]
		x, dy, xh := make([]float32, b*c*n), make([]float32, b*c*n), make([]float32, b*c*n)
		bnRandInput(r, x, 0.5, 2)
		bnRandInput(r, dy, 0, 1)
		bnRandInput(r, xh, 0, 1)
		st := c * n
		for ch := range c {
			off := ch * n
			var abs, sq, gabs, dabs float64
			for i := range b {
				for j := range n {
					k := off + i*st + j
					abs += math.Abs(float64(x[k]))
					sq += sqr(float64(x[k]) - 0.5)
					gabs += math.Abs(float64(dy[k]))
					dabs += math.Abs(float64(dy[k] * xh[k]))
				}
			}
			name := fmt.Sprintf("shape %v channel %d", sh, ch)
			if g, f := bnGoSet.sum(x[off:], b, st, n), bnFastSet.sum(x[off:], b, st, n); math.Abs(g-f) > 1e-6*abs {
				t.Errorf("%s: Σx: Go %v, fast %v", name, g, f)
			}
			if g, f := bnGoSet.sqDev(x[off:], b, st, n, 0.5), bnFastSet.sqDev(x[off:], b, st, n, 0.5); math.Abs(g-f) > 1e-6*sq {
				t.Errorf("%s: Σ(x-m)²: Go %v, fast %v", name, g, f)
			}
			g0, g1 := bnGoSet.sumDot(dy[off:], xh[off:], b, st, n)
			f0, f1 := bnFastSet.sumDot(dy[off:], xh[off:], b, st, n)
			if math.Abs(g0-f0) > 1e-6*gabs || math.Abs(g1-f1) > 1e-6*dabs {
				t.Errorf("%s: Σdy, Σdy·x̂: Go %v %v, fast %v %v", name, g0, g1, f0, f1)
			}
			for _, train := range []bool{true, false} {
				yg, yf := make([]float32, b*c*n), make([]float32, b*c*n)
				var hg, hf []float32
				if train {
					hg, hf = make([]float32, b*c*n), make([]float32, b*c*n)
				}
				sub := func(v []float32) []float32 {
					if v == nil {
						return nil
					}
					return v[off:]
				}
				bnGoSet.norm(x[off:], yg[off:], sub(hg), b, st, n, 1.3, -0.2, 0.7, -0.35)
				bnFastSet.norm(x[off:], yf[off:], sub(hf), b, st, n, 1.3, -0.2, 0.7, -0.35)
				if !sameBits(yg, yf) || !sameBits(hg, hf) {
					t.Errorf("%s train=%v: normalise: Go and fast differ", name, train)
				}
			}
			dg, df := make([]float32, b*c*n), make([]float32, b*c*n)
			bnGoSet.dx(dy[off:], xh[off:], dg[off:], b, st, n, 0.9, -0.01, 0.03)
			bnFastSet.dx(dy[off:], xh[off:], df[off:], b, st, n, 0.9, -0.01, 0.03)
			if !sameBits(dg, df) {
				t.Errorf("%s: dx: Go and fast differ", name)
			}
		}
	}
}

func sqr(v float64) float64 { return v * v }

// bnRun runs the op on x in training (forward, sums, dx) or evaluation mode.
func bnRun(t *testing.T, sh [4]int, x, dy, gamma, beta, rm, rv []float32, train bool) (y, sums, dx []float32) {
	t.Helper()
	b, c, h, w := sh[0], sh[1], sh[2], sh[3]
	k := newBatchNorm(nil, b, c, h, w, rm, rv, train)
	xt, dyt, gt, bt := newTensor[float32](nil, b, c, h, w), newTensor[float32](nil, b, c, h, w), newTensor[float32](nil, c), newTensor[float32](nil, c)
	copy(raw[float32](xt), x)
	copy(raw[float32](dyt), dy)
	copy(raw[float32](gt), gamma)
	copy(raw[float32](bt), beta)
	yv, err := k.forward([]G.Value{xt, gt, bt})
	if err != nil {
		t.Fatal(err)
	}
	if !train {
		return slices.Clone(raw[float32](yv)), nil, nil
	}
	sv, err := k.gradSums([]G.Value{dyt})
	if err != nil {
		t.Fatal(err)
	}
	dxv, err := k.gradX([]G.Value{sv, dyt, gt})
	if err != nil {
		t.Fatal(err)
	}
	return slices.Clone(raw[float32](yv)), slices.Clone(raw[float32](sv)), slices.Clone(raw[float32](dxv))
}

func TestBatchNormFloat32Reference(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 4))
	for _, sh := range bnShapes {
		b, c, n := sh[0], sh[1], sh[2]*sh[3]
		x, dy := make([]float32, b*c*n), make([]float32, b*c*n)
		bnRandInput(r, x, 0.5, 2)
		bnRandInput(r, dy, 0, 1)
		gamma, beta, rm, rv := make([]float32, c), make([]float32, c), make([]float32, c), make([]float32, c)
		bnRandInput(r, gamma, 1, 0.3)
		bnRandInput(r, beta, 0, 0.3)
		bnRandInput(r, rm, 0.2, 0.1)
		for i := range rv {
			rv[i] = 0.5 + r.Float32()
		}
		rm0, rv0 := slices.Clone(rm), slices.Clone(rv)
		for _, train := range []bool{true, false} {
			copy(rm, rm0)
			copy(rv, rv0)
			y, sums, dx := bnRun(t, sh, x, dy, gamma, beta, rm, rv, train)
			ref := refBN64(sh, f64s(x), f64s(dy), f64s(gamma), f64s(beta), f64s(rm0), f64s(rv0), train)
			name := fmt.Sprintf("shape %v train=%v", sh, train)
			within(t, name+": y", y, ref.y, ref.yScale)
			if !train {
				continue
			}
			within(t, name+": running mean", rm, ref.rm, nil)
			within(t, name+": running var", rv, ref.rv, nil)
			within(t, name+": Σdy", sums[:c], ref.s0, ref.s0Scale)
			within(t, name+": Σdy·x̂", sums[c:], ref.s1, ref.s1Scale)
			within(t, name+": dx", dx, ref.dx, ref.dxScale)
		}
	}
}

// within checks |got−want| ≤ 1e-5·max(1, scale) element-wise, where scale
// is the sum of the magnitudes of the terms that make want (nil: |want|):
// float32 a·x + b cancels when |mean·invStd| is large (e.g. N = 1).
func within(t *testing.T, name string, got []float32, want, scale []float64) {
	t.Helper()
	for i := range want {
		s := math.Abs(want[i])
		if scale != nil {
			s = scale[i]
		}
		tol := 1e-5 * max(1, s)
		if d := math.Abs(float64(got[i]) - want[i]); d > tol || math.IsNaN(d) {
			t.Errorf("%s[%d] = %v, want %v (|Δ| %.2g > %.2g)", name, i, got[i], want[i], d, tol)
			return
		}
	}
}

type bnRef struct {
	y, dx, s0, s1, rm, rv             []float64
	yScale, dxScale, s0Scale, s1Scale []float64
}

// refBN64 is batch norm in float64 from the definition (ops_bn.go), with the
// magnitudes of each result's terms.
func refBN64(sh [4]int, x, dy, gamma, beta, rm, rv []float64, train bool) *bnRef {
	b, c, n := sh[0], sh[1], sh[2]*sh[3]
	f := func(k int) []float64 { return make([]float64, k) }
	r := &bnRef{y: f(len(x)), dx: f(len(x)), s0: f(c), s1: f(c), rm: f(c), rv: f(c),
		yScale: f(len(x)), dxScale: f(len(x)), s0Scale: f(c), s1Scale: f(c)}
	idx := func(i, ch, j int) int { return (i*c+ch)*n + j }
	N := float64(b * n)
	for ch := range c {
		mean, variance := rm[ch], rv[ch]
		if train {
			mean = 0
			for i := range b {
				for j := range n {
					mean += x[idx(i, ch, j)]
				}
			}
			mean /= N
			variance = 0
			for i := range b {
				for j := range n {
					variance += sqr(x[idx(i, ch, j)] - mean)
				}
			}
			unbiased := variance / N
			if N > 1 {
				unbiased = variance / (N - 1)
			}
			variance /= N
			r.rm[ch] = (1-bnMomentum)*rm[ch] + bnMomentum*mean
			r.rv[ch] = (1-bnMomentum)*rv[ch] + bnMomentum*unbiased
		}
		is := 1 / math.Sqrt(variance+bnEpsilon)
		gi := math.Abs(gamma[ch] * is)
		for i := range b {
			for j := range n {
				k := idx(i, ch, j)
				xh := (x[k] - mean) * is
				r.y[k] = gamma[ch]*xh + beta[ch]
				r.yScale[k] = gi*(math.Abs(x[k])+math.Abs(mean)) + math.Abs(beta[ch])
				r.s0[ch] += dy[k]
				r.s1[ch] += dy[k] * xh
				r.s0Scale[ch] += math.Abs(dy[k])
				r.s1Scale[ch] += math.Abs(dy[k]) * (math.Abs(x[k]) + math.Abs(mean)) * is
			}
		}
		for i := range b {
			for j := range n {
				k := idx(i, ch, j)
				xh := (x[k] - mean) * is
				r.dx[k] = gamma[ch] * is / N * (N*dy[k] - r.s0[ch] - xh*r.s1[ch])
				r.dxScale[k] = gi / N * (N*math.Abs(dy[k]) + r.s0Scale[ch] + (math.Abs(x[k])+math.Abs(mean))*is*r.s1Scale[ch])
			}
		}
	}
	return r
}

// TestBatchNormThreadsBitIdentical: the op with GOMAXPROCS 1 and 2 gives
// identical bits (each channel is one range's, summed in a fixed order).
func TestBatchNormThreadsBitIdentical(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	sh := [4]int{8, 6, 14, 14}
	b, c, n := sh[0], sh[1], sh[2]*sh[3]
	r := rand.New(rand.NewPCG(2, 2))
	x, dy := make([]float32, b*c*n), make([]float32, b*c*n)
	bnRandInput(r, x, 0.5, 2)
	bnRandInput(r, dy, 0, 1)
	gamma, beta := make([]float32, c), make([]float32, c)
	bnRandInput(r, gamma, 1, 0.3)
	bnRandInput(r, beta, 0, 0.3)
	var outs [2][][]float32
	for i, procs := range []int{1, 2} {
		runtime.GOMAXPROCS(procs)
		if p := parts(c, 2*b*n); p != procs {
			t.Fatalf("%d parts, want %d", p, procs)
		}
		rm, rv := make([]float32, c), make([]float32, c)
		y, sums, dx := bnRun(t, sh, x, dy, gamma, beta, rm, rv, true)
		ye, _, _ := bnRun(t, sh, x, dy, gamma, beta, rm, rv, false)
		outs[i] = [][]float32{y, sums, dx, rm, rv, ye}
	}
	for j := range outs[0] {
		if !sameBits(outs[0][j], outs[1][j]) {
			t.Errorf("output %d differs between GOMAXPROCS 1 and 2", j)
		}
	}
}

// BenchmarkBatchNormKernels: training forward (Σx, Σ(x−m)², normalise) and
// backward (Σdy, Σdy·x̂, dx) of B=64, C=24 on one thread, through the Go
// loops (impl=go) and the float32 path (impl=c: C in the cgo builds).
func BenchmarkBatchNormKernels(b *testing.B) {
	impls := []string{"go"}
	if poolBNInC {
		impls = append(impls, "c")
	}
	for _, hw := range []int{28, 14, 7} {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("hw=%d/impl=%s", hw, impl), func(b *testing.B) {
				const bs, c = 64, 24
				n, st := hw*hw, c*hw*hw
				ks := bnGoSet
				if impl == "c" {
					ks = bnFastSet
				}
				r := rand.New(rand.NewPCG(1, 2))
				x, dy := make([]float32, bs*st), make([]float32, bs*st)
				y, xh, dx := make([]float32, bs*st), make([]float32, bs*st), make([]float32, bs*st)
				bnRandInput(r, x, 0.5, 2)
				bnRandInput(r, dy, 0, 1)
				b.SetBytes(int64(4 * 8 * len(x))) // 8 passes over a tensor
				for b.Loop() {
					for ch := range c {
						off := ch * n
						m := ks.sum(x[off:], bs, st, n) / float64(bs*n)
						is := 1 / math.Sqrt(ks.sqDev(x[off:], bs, st, n, float32(m))/float64(bs*n)+bnEpsilon)
						ks.norm(x[off:], y[off:], xh[off:], bs, st, n, float32(is), float32(-m*is), float32(is), float32(-m*is))
						s0, s1 := ks.sumDot(dy[off:], xh[off:], bs, st, n)
						sc := is / float64(bs*n)
						ks.dx(dy[off:], xh[off:], dx[off:], bs, st, n, float32(is), float32(-sc*s0), float32(-sc*s1))
					}
				}
			})
		}
	}
}

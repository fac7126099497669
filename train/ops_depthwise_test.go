package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// f32Tensor returns a float32 tensor of N(0, 1) values and the same values in
// float64 (exactly).
func f32Tensor(r *rand.Rand, shape ...int) (*tensor.Dense, []float64) {
	t := newTensor[float32](nil, shape...)
	v := make([]float64, len(raw[float32](t)))
	for i := range v {
		x := float32(r.NormFloat64())
		raw[float32](t)[i], v[i] = x, float64(x)
	}
	return t, v
}

// refDepthwiseGrads returns dL/dx and dL/dw of the depthwise convolution
// (refConv) for upstream gradient g, and for each element the sum of the
// magnitudes of its terms (the scale of its rounding error).
func refDepthwiseGrads(x *tensor4, w []float64, g *tensor4, kh, kw, s int) (dx, dxAbs, dw, dwAbs []float64) {
	ph, pw := (kh-1)/2, (kw-1)/2
	dx, dxAbs = make([]float64, len(x.v)), make([]float64, len(x.v))
	dw, dwAbs = make([]float64, len(w)), make([]float64, len(w))
	for b := range x.b {
		for c := range x.c {
			for oy := range g.h {
				for ox := range g.w {
					gv := g.at(b, c, oy, ox)
					for ky := range kh {
						for kx := range kw {
							iy, ix := oy*s-ph+ky, ox*s-pw+kx
							if iy < 0 || iy >= x.h || ix < 0 || ix >= x.w {
								continue
							}
							wi, xi := (c*kh+ky)*kw+kx, ((b*x.c+c)*x.h+iy)*x.w+ix
							dx[xi] += w[wi] * gv
							dxAbs[xi] += math.Abs(w[wi] * gv)
							dw[wi] += gv * x.v[xi]
							dwAbs[wi] += math.Abs(gv * x.v[xi])
						}
					}
				}
			}
		}
	}
	return dx, dxAbs, dw, dwAbs
}

// TestDepthwiseFloat32 checks the float32 depthwise kernels (C in cgo
// builds) against float64 loops written from the definition, on random
// shapes: odd and even planes, planes smaller than the kernel, kernels 1–7
// (square and not), strides 1 and 2, batch 1 and 3, channel counts that are
// not multiples of 8.
//
// Tolerance: |got − ref| ≤ 1e-5 · max(1, Σ|terms|), Σ|terms| the sum of the
// magnitudes of the products an element adds up. The inputs are exact in
// float32, so the only error is float32 rounding of the sum, bounded by
// (n−1)·u·Σ|terms| with u = 2⁻²⁴ ≈ 6e-8 (Higham, Accuracy and Stability of
// Numerical Algorithms, 2nd ed., §4.2) and in practice ≈ √n·u·Σ|terms|: the
// bound holds with a margin for the up to ~600 terms here, and a wrong tap or
// a missed border is off by a whole term.
func TestDepthwiseFloat32(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 3))
	kernels := [][2]int{{1, 1}, {3, 3}, {5, 5}, {7, 7}, {5, 3}, {1, 7}}
	for n := range 48 {
		kk := kernels[n%len(kernels)]
		kh, kw := kk[0], kk[1]
		b, c, s := 1+2*(n/2%2), []int{1, 5, 11, 3}[n/4%4], 1+n/3%2
		h, w := 1+r.IntN(15), 1+r.IntN(15)
		name := fmt.Sprintf("b%d c%d %d×%d k%d×%d s%d", b, c, h, w, kh, kw, s)
		k := newDepthwise[float32](nil, tensor.Shape{b, c, h, w}, kh, kw, s, true)
		xt, xv := f32Tensor(r, b, c, h, w)
		wt, wv := f32Tensor(r, c, 1, kh, kw)
		gt, gv := f32Tensor(r, b, c, k.wd.Ho, k.wd.Wo)
		y, err := k.forward([]G.Value{xt, wt})
		if err != nil {
			t.Fatal(err)
		}
		dx, err := k.gradX([]G.Value{gt, wt})
		if err != nil {
			t.Fatal(err)
		}
		dw, err := k.gradW([]G.Value{xt, gt})
		if err != nil {
			t.Fatal(err)
		}
		x4, g4 := t4(xv, []int{b, c, h, w}), t4(gv, []int{b, c, k.wd.Ho, k.wd.Wo})
		refY := refConv(x4, wv, 0, kh, kw, s, nil, true)
		yAbs := refConv(&tensor4{b, c, h, w, abs(xv)}, abs(wv), 0, kh, kw, s, nil, true)
		refDX, dxAbs, refDW, dwAbs := refDepthwiseGrads(x4, wv, g4, kh, kw, s)
		for _, cmp := range []struct {
			what        string
			got         []float32
			want, scale []float64
		}{
			{"y", raw[float32](y), refY.v, yAbs.v},
			{"dx", raw[float32](dx), refDX, dxAbs},
			{"dw", raw[float32](dw), refDW, dwAbs},
		} {
			if len(cmp.got) != len(cmp.want) {
				t.Fatalf("%s: %s has %d elements, want %d", name, cmp.what, len(cmp.got), len(cmp.want))
			}
			for i, g := range cmp.got {
				if d := math.Abs(float64(g) - cmp.want[i]); d > 1e-5*max(1, cmp.scale[i]) {
					t.Fatalf("%s: %s[%d] = %v, want %v (scale %v)", name, cmp.what, i, g, cmp.want[i], cmp.scale[i])
				}
			}
		}
	}
}

func abs(v []float64) []float64 {
	a := make([]float64, len(v))
	for i, x := range v {
		a[i] = math.Abs(x)
	}
	return a
}

// TestDepthwiseCMatchesGo: the C forward and dX kernels add the same terms
// in the same order as the Go loops, so they give the same bits; dW sums in
// another order (checked against the reference above).
func TestDepthwiseCMatchesGo(t *testing.T) {
	if !CKernels {
		t.Skip("pure-Go build: no C kernels")
	}
	r := rand.New(rand.NewPCG(8, 1))
	for _, s := range []int{1, 2} {
		for _, kk := range [][2]int{{3, 3}, {5, 5}, {7, 3}} {
			b, c, h, w := 3, 5, 13, 10
			wd := newWindow(h, w, kk[0], kk[1], s, (kk[0]-1)/2, (kk[1]-1)/2)
			xt, _ := f32Tensor(r, b, c, h, w)
			wt, _ := f32Tensor(r, c, 1, kk[0], kk[1])
			gt, _ := f32Tensor(r, b, c, wd.Ho, wd.Wo)
			x, wv, g := raw[float32](xt), raw[float32](wt), raw[float32](gt)
			yC, yGo := make([]float32, b*c*wd.Ho*wd.Wo), make([]float32, b*c*wd.Ho*wd.Wo)
			dxC, dxGo := make([]float32, len(x)), make([]float32, len(x))
			scr := make([]float32, depthwiseScratch[float32](wd))
			depthwiseForward(x, wv, yC, c, wd, 0, b*c, scr)
			depthwiseForwardGo(x, wv, yGo, c, wd, 0, b*c)
			depthwiseGradX(g, wv, dxC, c, wd, 0, b*c, scr)
			depthwiseGradXGo(g, wv, dxGo, c, wd, 0, b*c)
			if !sameBits(yC, yGo) || !sameBits(dxC, dxGo) {
				t.Errorf("k%d×%d s%d: C and Go kernels differ (y same %v, dx same %v)", kk[0], kk[1], s,
					sameBits(yC, yGo), sameBits(dxC, dxGo))
			}
		}
	}
}

// convStep runs forward and every gradient of a depthwise and a standard
// convolution (with bias, and 1×1) and a dense layer in float32 and returns
// copies of all results.
func convStep(t *testing.T) [][]float32 {
	r := rand.New(rand.NewPCG(9, 9))
	var out [][]float32
	keep := func(v G.Value, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]float32(nil), raw[float32](v)...))
	}
	for _, s := range []int{1, 2} {
		dw := newDepthwise[float32](nil, tensor.Shape{4, 10, 16, 15}, 5, 5, s, true)
		x, _ := f32Tensor(r, 4, 10, 16, 15)
		w, _ := f32Tensor(r, 10, 1, 5, 5)
		g, _ := f32Tensor(r, 4, 10, dw.wd.Ho, dw.wd.Wo)
		keep(dw.forward([]G.Value{x, w}))
		keep(dw.gradX([]G.Value{g, w}))
		keep(dw.gradW([]G.Value{x, g}))
	}
	for _, kk := range []int{3, 1} {
		cv := newConv2d[float32](nil, tensor.Shape{5, 6, 12, 12}, tensor.Shape{7, 6, kk, kk}, true, 1, true, false)
		x, _ := f32Tensor(r, 5, 6, 12, 12)
		w, _ := f32Tensor(r, 7, 6, kk, kk)
		b, _ := f32Tensor(r, 7)
		g, _ := f32Tensor(r, 5, 7, 12, 12)
		keep(cv.forward([]G.Value{x, w, b}))
		keep(cv.gradX([]G.Value{g, w}))
		keep(cv.gradW([]G.Value{x, g}))
		keep(cv.gradB([]G.Value{g}))
	}
	dn := newDenseKernel[float32](nil, tensor.Shape{9, 300, 1, 1}, tensor.Shape{20, 300}, true)
	x, _ := f32Tensor(r, 9, 300, 1, 1)
	w, _ := f32Tensor(r, 20, 300)
	b, _ := f32Tensor(r, 20)
	g, _ := f32Tensor(r, 9, 20, 1, 1)
	keep(dn.forward([]G.Value{x, w, b}))
	keep(dn.gradX([]G.Value{g, w}))
	keep(dn.gradW([]G.Value{x, g}))
	keep(dn.gradB([]G.Value{g}))
	return out
}

// TestConvThreadsSameBits: depthwise, standard convolution and dense give
// identical bits on 1 and 2 threads (and on repeated 2-thread runs).
func TestConvThreadsSameBits(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	one := convStep(t)
	for range 3 {
		runtime.GOMAXPROCS(2)
		two := convStep(t)
		for i := range one {
			if !sameBits(one[i], two[i]) {
				t.Fatalf("result %d differs between GOMAXPROCS 1 and 2", i)
			}
		}
	}
}

// TestOpsAllocFree: after a warm-up call, forward and backward of the
// depthwise, convolution and dense ops allocate nothing, on 2 threads (the
// persistent workers) as on one. gonum's Sgemm allocates on every call, so
// in the pure-Go build only the depthwise op and the bias gradients are
// held to it.
func TestOpsAllocFree(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	r := rand.New(rand.NewPCG(1, 2))
	type call struct {
		name string
		gemm bool // calls gemm
		f    func([]G.Value) (G.Value, error)
		in   []G.Value
	}
	var calls []call
	dw := newDepthwise[float32](nil, tensor.Shape{8, 12, 14, 14}, 3, 3, 1, true)
	{
		x, _ := f32Tensor(r, 8, 12, 14, 14)
		w, _ := f32Tensor(r, 12, 1, 3, 3)
		g, _ := f32Tensor(r, 8, 12, 14, 14)
		calls = append(calls, call{"depthwise", false, dw.forward, []G.Value{x, w}},
			call{"depthwise_dx", false, dw.gradX, []G.Value{g, w}},
			call{"depthwise_dw", false, dw.gradW, []G.Value{x, g}})
	}
	for _, kk := range []int{3, 1} {
		// 10 filters of 16×16: large enough for a parallel bias gradient.
		cv := newConv2d[float32](nil, tensor.Shape{8, 6, 16, 16}, tensor.Shape{10, 6, kk, kk}, true, 1, true, false)
		x, _ := f32Tensor(r, 8, 6, 16, 16)
		w, _ := f32Tensor(r, 10, 6, kk, kk)
		b, _ := f32Tensor(r, 10)
		g, _ := f32Tensor(r, 8, 10, 16, 16)
		name := fmt.Sprintf("conv%d×%d", kk, kk)
		calls = append(calls, call{name, true, cv.forward, []G.Value{x, w, b}},
			call{name + "_dx", true, cv.gradX, []G.Value{g, w}},
			call{name + "_dw", true, cv.gradW, []G.Value{x, g}},
			call{name + "_db", false, cv.gradB, []G.Value{g}})
	}
	dn := newDenseKernel[float32](nil, tensor.Shape{16, 600, 1, 1}, tensor.Shape{40, 600}, true)
	{
		x, _ := f32Tensor(r, 16, 600, 1, 1)
		w, _ := f32Tensor(r, 40, 600)
		b, _ := f32Tensor(r, 40)
		g, _ := f32Tensor(r, 16, 40, 1, 1)
		calls = append(calls, call{"dense", true, dn.forward, []G.Value{x, w, b}},
			call{"dense_dx", true, dn.gradX, []G.Value{g, w}},
			call{"dense_dw", true, dn.gradW, []G.Value{x, g}},
			call{"dense_db", false, dn.gradB, []G.Value{g}})
	}
	for _, p := range []int{1, 2} {
		runtime.GOMAXPROCS(p)
		for _, c := range calls {
			if c.gemm && GemmBackend == "gonum" {
				continue
			}
			run := func() {
				if _, err := c.f(c.in); err != nil {
					t.Fatal(err)
				}
			}
			run() // warm-up: starts the workers, makes per-part scratch
			if a := testing.AllocsPerRun(20, run); a != 0 {
				t.Errorf("GOMAXPROCS %d: %s: %v allocations per call, want 0", p, c.name, a)
			}
		}
	}
}

// BenchmarkDepthwise measures forward + dX + dW of the depthwise convolution
// on the enas-macro child's shapes, on the calling goroutine: "C" is the
// build's float32 path (the C kernels in cgo builds), "Go" the Go loops.
func BenchmarkDepthwise(b *testing.B) {
	const batch, ch = 64, 24
	for _, hw := range []int{28, 14, 7} {
		for _, kk := range []int{3, 5} {
			wd := newWindow(hw, hw, kk, kk, 1, (kk-1)/2, (kk-1)/2)
			r := rand.New(rand.NewPCG(uint64(hw), uint64(kk)))
			xt, _ := f32Tensor(r, batch, ch, hw, hw)
			wt, _ := f32Tensor(r, ch, 1, kk, kk)
			gt, _ := f32Tensor(r, batch, ch, wd.Ho, wd.Wo)
			x, w, g := raw[float32](xt), raw[float32](wt), raw[float32](gt)
			y, dx, dw := make([]float32, len(g)), make([]float32, len(x)), make([]float32, len(w))
			scr := make([]float32, depthwiseScratch[float32](wd))
			for _, impl := range []string{"C", "Go"} {
				b.Run(fmt.Sprintf("%dx%d/k=%d/%s", hw, hw, kk, impl), func(b *testing.B) {
					if impl == "C" && !CKernels {
						b.Skip("pure-Go build: no C kernels")
					}
					for b.Loop() {
						if impl == "C" {
							depthwiseForward(x, w, y, ch, wd, 0, batch*ch, scr)
							depthwiseGradX(g, w, dx, ch, wd, 0, batch*ch, scr)
							depthwiseGradW(x, g, dw, batch, ch, wd, 0, ch, scr)
						} else {
							depthwiseForwardGo(x, w, y, ch, wd, 0, batch*ch)
							depthwiseGradXGo(g, w, dx, ch, wd, 0, batch*ch)
							depthwiseGradWGo(x, g, dw, batch, ch, wd, 0, ch)
						}
					}
					macs := 3 * float64(batch*ch*wd.Ho*wd.Wo*kk*kk)
					b.ReportMetric(macs*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
				})
			}
		}
	}
}

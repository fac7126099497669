package train

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The C kernels on edge shapes (planes of 1 or 2, kernels larger than the
// image, strides 2 and 3, odd sizes), against the Go loops, with NaN guards
// around every buffer: the C code must give the Go loops' bits (weight
// gradients within 1e-4 relative: their sum order differs by design) and
// touch nothing outside its slices.

const guard = 64

// guarded returns n random elements inside a slice with NaN guards on both
// sides.
func guarded(r *rand.Rand, n int) (full, s []float32) {
	full = make([]float32, n+2*guard)
	for i := range full {
		full[i] = float32(math.NaN())
	}
	s = full[guard : guard+n : guard+n]
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return
}

func guardsIntact(full []float32, n int) bool {
	for i := range guard {
		if !math.IsNaN(float64(full[i])) || !math.IsNaN(float64(full[guard+n+i])) {
			return false
		}
	}
	return true
}

func TestDepthwiseEdgesCMatchesGo(t *testing.T) {
	if !CKernels {
		t.Skip("pure-Go build: no C kernels")
	}
	r := rand.New(rand.NewPCG(3, 4))
	fails := 0
	for _, h := range []int{1, 2, 3, 4, 5, 7} {
		for _, w := range []int{1, 2, 3, 5, 8} {
			for _, kh := range []int{1, 3, 5, 7, 9} {
				for _, kw := range []int{1, 3, 5, 7} {
					for _, s := range []int{1, 2, 3} {
						wd := newWindow(h, w, kh, kw, s, (kh-1)/2, (kw-1)/2)
						if wd.Ho < 1 || wd.Wo < 1 {
							continue
						}
						b, c := 2, 3
						xf, x := guarded(r, b*c*h*w)
						wf, wv := guarded(r, c*kh*kw)
						gf, g := guarded(r, b*c*wd.Ho*wd.Wo)
						yf, y := guarded(r, b*c*wd.Ho*wd.Wo)
						dxf, dx := guarded(r, b*c*h*w)
						dwf, dw := guarded(r, c*kh*kw)
						sf, scr := guarded(r, depthwiseScratch[float32](wd))
						yGo, dxGo, dwGo := make([]float32, len(y)), make([]float32, len(dx)), make([]float32, len(dw))
						depthwiseForward(x, wv, y, c, wd, 0, b*c, scr)
						depthwiseGradX(g, wv, dx, c, wd, 0, b*c, scr)
						depthwiseGradW(x, g, dw, b, c, wd, 0, c, scr)
						depthwiseForwardGo(x, wv, yGo, c, wd, 0, b*c)
						depthwiseGradXGo(g, wv, dxGo, c, wd, 0, b*c)
						depthwiseGradWGo(x, g, dwGo, b, c, wd, 0, c)
						ok := sameBits(y, yGo) && sameBits(dx, dxGo)
						for i := range dw {
							if math.Abs(float64(dw[i]-dwGo[i])) > 1e-4*(1+math.Abs(float64(dwGo[i]))) {
								ok = false
							}
						}
						intact := guardsIntact(xf, len(x)) && guardsIntact(wf, len(wv)) && guardsIntact(gf, len(g)) &&
							guardsIntact(yf, len(y)) && guardsIntact(dxf, len(dx)) && guardsIntact(dwf, len(dw)) && guardsIntact(sf, len(scr))
						if !ok || !intact {
							fails++
							if fails < 20 {
								t.Errorf("h%d w%d k%dx%d s%d: match %v guards %v", h, w, kh, kw, s, ok, intact)
							}
						}
					}
				}
			}
		}
	}
}

func TestPoolEdgesCMatchesGo(t *testing.T) {
	if !CKernels {
		t.Skip("pure-Go build: no C kernels")
	}
	r := rand.New(rand.NewPCG(5, 6))
	fails := 0
	for _, isMax := range []bool{true, false} {
		for _, h := range []int{1, 2, 3, 4, 5, 9, 12} {
			for _, w := range []int{1, 2, 3, 5, 8, 9, 11, 20} {
				for _, kh := range []int{1, 2, 3, 4, 5} {
					for _, kw := range []int{1, 2, 3, 5, 7} {
						for _, s := range []int{1, 2, 3} {
							for _, p := range []int{0, 1, 2} {
								if 2*p >= kh || 2*p >= kw || h+2*p < kh || w+2*p < kw {
									continue
								}
								b, c := 2, 2
								k := newPool2d[float32](nil, b, c, h, w, kh, kw, s, p, isMax)
								kg := newPool2d[float32](nil, b, c, h, w, kh, kw, s, p, isMax)
								wd := k.wd
								n, no := b*c*h*w, b*c*wd.Ho*wd.Wo
								xf, x := guarded(r, n)
								// Quantised values: ties, which max pooling must break as Go does.
								for i := range x {
									x[i] = float32(math.Round(float64(x[i]) * 2))
								}
								yf, y := guarded(r, no)
								gf, g := guarded(r, no)
								dxf, dx := guarded(r, n)
								k.x, k.yv = x, y
								if isMax {
									k.arg = make([]int32, no)
								}
								k.scratch()
								for i := range k.scr {
									_, k.scr[i] = guarded(r, 2*h*w)
								}
								poolForward(k, 0, 0, b*c)
								k.dy, k.dxv = g, dx
								poolBackward(k, 0, 0, b*c)
								yG, dxG := make([]float32, no), make([]float32, n)
								kg.x, kg.yv = x, yG
								kg.scratch()
								kg.forwardGo(0, 0, b*c)
								kg.dy, kg.dxv = g, dxG
								kg.backwardGo(0, 0, b*c)
								ok := sameBits(y, yG) && sameBits(dx, dxG)
								intact := guardsIntact(xf, n) && guardsIntact(yf, no) && guardsIntact(gf, no) && guardsIntact(dxf, n)
								if !ok || !intact {
									fails++
									if fails < 20 {
										t.Errorf("max%v h%d w%d k%dx%d s%d p%d: match %v guards %v", isMax, h, w, kh, kw, s, p, ok, intact)
									}
								}
							}
						}
					}
				}
			}
		}
	}
}

func TestIm2colEdgesCMatchesGo(t *testing.T) {
	if !CKernels {
		t.Skip("pure-Go build: no C kernels")
	}
	r := rand.New(rand.NewPCG(7, 8))
	for _, h := range []int{1, 2, 3, 4, 5, 7} {
		for _, w := range []int{2, 3, 5, 8} {
			for _, kh := range []int{1, 3, 5, 7, 9} {
				for _, kw := range []int{1, 3, 5} {
					for _, s := range []int{1, 2, 3} {
						wd := newWindow(h, w, kh, kw, s, (kh-1)/2, (kw-1)/2)
						c := 2
						xf, x := guarded(r, c*h*w)
						cf, col := guarded(r, c*kh*kw*wd.Ho*wd.Wo)
						colG := make([]float32, len(col))
						im2col(x, c, wd, col)
						im2colGo(x, c, wd, colG)
						dxf, dx := guarded(r, c*h*w)
						clear(dx)
						dxG := make([]float32, len(dx))
						col2im(col, c, wd, dx)
						col2imGo(colG, c, wd, dxG)
						if !sameBits(col, colG) || !sameBits(dx, dxG) || !guardsIntact(xf, len(x)) || !guardsIntact(cf, len(col)) || !guardsIntact(dxf, len(dx)) {
							t.Errorf("h%d w%d k%dx%d s%d", h, w, kh, kw, s)
						}
					}
				}
			}
		}
	}
}

//go:build cgo && (openblas || dnnl) && !nockernels

package train

/*
#cgo CFLAGS: -O3
#include "c_bn.h"
*/
import "C"

// Batch-norm kernels of one channel (see bnSumGo...): float32 goes to C
// (c_bn.c), other types to the Go loops. The C sums use 16 lanes per plane,
// so their last bits differ from the Go loops' (4 lanes); the element-wise
// kernels give the Go loops' bits. Slices are borrowed for the call; the
// index expressions assert their bounds.

func bnSum[T Float](x []T, b, st, n int) float64 {
	if xf, ok := any(x).([]float32); ok && b > 0 && n > 0 {
		_ = xf[(b-1)*st+n-1]
		return float64(C.nasd_bn_sum_f32(f32p(xf), C.long(b), C.long(st), C.long(n)))
	}
	return bnSumGo(x, b, st, n)
}

func bnSqDev[T Float](x []T, b, st, n int, m T) float64 {
	if xf, ok := any(x).([]float32); ok && b > 0 && n > 0 {
		_ = xf[(b-1)*st+n-1]
		return float64(C.nasd_bn_sqdev_f32(f32p(xf), C.long(b), C.long(st), C.long(n), C.float(m)))
	}
	return bnSqDevGo(x, b, st, n, m)
}

func bnNorm[T Float](x, y, xh []T, b, st, n int, a, bb, is, nm T) {
	if xf, ok := any(x).([]float32); ok && b > 0 && n > 0 {
		yf, xhf := any(y).([]float32), any(xh).([]float32)
		last := (b-1)*st + n - 1
		_, _ = xf[last], yf[last]
		if xhf != nil {
			_ = xhf[last]
		}
		C.nasd_bn_norm_f32(f32p(xf), f32p(yf), f32p(xhf), C.long(b), C.long(st), C.long(n),
			C.float(a), C.float(bb), C.float(is), C.float(nm))
		return
	}
	bnNormGo(x, y, xh, b, st, n, a, bb, is, nm)
}

func bnSumDot[T Float](dy, xh []T, b, st, n int) (float64, float64) {
	if gf, ok := any(dy).([]float32); ok && b > 0 && n > 0 {
		hf := any(xh).([]float32)
		last := (b-1)*st + n - 1
		_, _ = gf[last], hf[last]
		r := C.nasd_bn_sumdot_f32(f32p(gf), f32p(hf), C.long(b), C.long(st), C.long(n))
		return float64(r.s0), float64(r.s1)
	}
	return bnSumDotGo(dy, xh, b, st, n)
}

func bnDX[T Float](dy, xh, dx []T, b, st, n int, a, b0, b1 T) {
	if gf, ok := any(dy).([]float32); ok && b > 0 && n > 0 {
		hf, df := any(xh).([]float32), any(dx).([]float32)
		last := (b-1)*st + n - 1
		_, _, _ = gf[last], hf[last], df[last]
		C.nasd_bn_gradx_f32(f32p(gf), f32p(hf), f32p(df), C.long(b), C.long(st), C.long(n),
			C.float(a), C.float(b0), C.float(b1))
		return
	}
	bnDXGo(dy, xh, dx, b, st, n, a, b0, b1)
}

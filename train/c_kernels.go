//go:build cgo && (openblas || dnnl) && !nockernels

package train

/*
#cgo CFLAGS: -O3
#include "c_kernels.h"
*/
import "C"

// CKernels reports whether this build runs the C kernels (train/c_*.c:
// im2col, depthwise convolution, pooling, batch norm, element-wise); builds
// without cgo or with -tags nockernels run the Go loops.
const CKernels = true

// im2col: see im2colGo. float32 goes to C; the slices are borrowed for the call.
func im2col[T Float](x []T, c int, wd window, col []T) {
	if xf, ok := any(x).([]float32); ok && len(col) > 0 {
		colf := any(col).([]float32)
		_ = colf[c*wd.KH*wd.KW*wd.Ho*wd.Wo-1]
		_ = xf[c*wd.H*wd.W-1]
		C.nasd_im2col_f32(f32p(xf), C.long(c), C.long(wd.H), C.long(wd.W), C.long(wd.KH), C.long(wd.KW),
			C.long(wd.S), C.long(wd.PH), C.long(wd.PW), C.long(wd.Ho), C.long(wd.Wo), f32p(colf))
		return
	}
	im2colGo(x, c, wd, col)
}

// col2im: see col2imGo.
func col2im[T Float](col []T, c int, wd window, dx []T) {
	if colf, ok := any(col).([]float32); ok && len(col) > 0 {
		dxf := any(dx).([]float32)
		_ = colf[c*wd.KH*wd.KW*wd.Ho*wd.Wo-1]
		_ = dxf[c*wd.H*wd.W-1]
		C.nasd_col2im_f32(f32p(colf), C.long(c), C.long(wd.H), C.long(wd.W), C.long(wd.KH), C.long(wd.KW),
			C.long(wd.S), C.long(wd.PH), C.long(wd.PW), C.long(wd.Ho), C.long(wd.Wo), f32p(dxf))
		return
	}
	col2imGo(col, c, wd, dx)
}

// addBias: see addBiasGo.
func addBias[T Float](y, b []T, n int) {
	if yf, ok := any(y).([]float32); ok && len(b) > 0 && n > 0 {
		_ = yf[len(b)*n-1]
		C.nasd_add_bias_f32(f32p(yf), f32p(any(b).([]float32)), C.long(len(b)), C.long(n))
		return
	}
	addBiasGo(y, b, n)
}

// channelSums: see channelSumsGo. The C kernel sums in eight interleaved
// lanes, so its last bits differ from the Go loop's; each is deterministic.
func channelSums[T Float](v []T, b, c, n, lo, hi int, s []T) {
	if vf, ok := any(v).([]float32); ok && b*n > 0 && lo < hi {
		sf := any(s).([]float32)
		_, _, _ = vf[((b-1)*c+hi)*n-1], sf[hi-1], sf[lo]
		C.nasd_channel_sums_f32(f32p(vf), C.long(b), C.long(c), C.long(n), C.long(lo), C.long(hi), f32p(sf))
		return
	}
	channelSumsGo(v, b, c, n, lo, hi, s)
}

// reluGradSums: see reluGradSumsGo.
func reluGradSums[T Float](y, dy, dz []T, b, c, n, lo, hi int, s []T) {
	if yf, ok := any(y).([]float32); ok && b*n > 0 && lo < hi {
		dyf, dzf := any(dy).([]float32), any(dz).([]float32)
		last := ((b-1)*c+hi)*n - 1
		_, _, _ = yf[last], dyf[last], dzf[last]
		var sp *C.float
		if s != nil {
			sf := any(s).([]float32)
			_, _ = sf[hi-1], sf[lo]
			sp = f32p(sf)
		}
		C.nasd_relu_grad_sums_f32(f32p(yf), f32p(dyf), f32p(dzf), C.long(b), C.long(c), C.long(n), C.long(lo), C.long(hi), sp)
		return
	}
	reluGradSumsGo(y, dy, dz, b, c, n, lo, hi, s)
}

// reluGradSumsBlocked: see reluGradSumsBlockedGo.
func reluGradSumsBlocked[T Float](y, dy, dz []T, b, c, n, blk, lo, hi int, s []T) {
	if yf, ok := any(y).([]float32); ok && b*n > 0 && lo < hi {
		dyf, dzf := any(dy).([]float32), any(dz).([]float32)
		last := b*c*n - 1
		_, _, _ = yf[last], dyf[last], dzf[last]
		var sp *C.float
		if s != nil {
			sf := any(s).([]float32)
			_, _ = sf[hi*blk-1], sf[lo*blk]
			sp = f32p(sf)
		}
		C.nasd_relu_grad_sums_blocked_f32(f32p(yf), f32p(dyf), f32p(dzf), C.long(b), C.long(c), C.long(n), C.long(blk),
			C.long(lo), C.long(hi), sp)
		return
	}
	reluGradSumsBlockedGo(y, dy, dz, b, c, n, blk, lo, hi, s)
}

//go:build cgo && (openblas || dnnl) && !nockernels

package train

/*
#cgo CFLAGS: -O3
#include "c_depthwise.h"
*/
import "C"

// depthwiseScratch is the per-thread scratch (elements) the depthwise
// kernels need for window wd.
func depthwiseScratch[T Float](wd window) int {
	if dtypeOf[T]() != dtypeOf[float32]() {
		return 0
	}
	return int(C.nasd_dw_scratch(C.long(wd.H), C.long(wd.W), C.long(wd.KH), C.long(wd.KW), C.long(wd.S),
		C.long(wd.PH), C.long(wd.PW), C.long(wd.Ho), C.long(wd.Wo)))
}

// depthwiseForward: see depthwiseForwardGo. float32 goes to C (the same bits
// for finite weights); the slices are borrowed for the call.
func depthwiseForward[T Float](x, w, y []T, c int, wd window, lo, hi int, scr []T) {
	if xf, ok := any(x).([]float32); ok && lo < hi && wd.Ho*wd.Wo > 0 {
		wf, yf, sf := any(w).([]float32), any(y).([]float32), any(scr).([]float32)
		_, _, _ = xf[hi*wd.H*wd.W-1], yf[hi*wd.Ho*wd.Wo-1], wf[c*wd.KH*wd.KW-1]
		_, _ = xf[lo*wd.H*wd.W], sf[depthwiseScratch[T](wd)-1]
		C.nasd_dw_forward_f32(f32p(xf), f32p(wf), f32p(yf), C.long(c), C.long(lo), C.long(hi),
			C.long(wd.H), C.long(wd.W), C.long(wd.KH), C.long(wd.KW), C.long(wd.S), C.long(wd.PH), C.long(wd.PW),
			C.long(wd.Ho), C.long(wd.Wo), f32p(sf))
		return
	}
	depthwiseForwardGo(x, w, y, c, wd, lo, hi)
}

// depthwiseGradX: see depthwiseGradXGo (the same bits for finite weights).
// The C kernel assumes padding below the kernel size, as (K−1)/2 is.
func depthwiseGradX[T Float](dy, w, dx []T, c int, wd window, lo, hi int, scr []T) {
	if dyf, ok := any(dy).([]float32); ok && lo < hi && wd.Ho*wd.Wo > 0 && wd.PH < wd.KH && wd.PW < wd.KW {
		wf, dxf, sf := any(w).([]float32), any(dx).([]float32), any(scr).([]float32)
		_, _, _ = dyf[hi*wd.Ho*wd.Wo-1], dxf[hi*wd.H*wd.W-1], wf[c*wd.KH*wd.KW-1]
		_, _ = dxf[lo*wd.H*wd.W], sf[depthwiseScratch[T](wd)-1]
		C.nasd_dw_grad_x_f32(f32p(dyf), f32p(wf), f32p(dxf), C.long(c), C.long(lo), C.long(hi),
			C.long(wd.H), C.long(wd.W), C.long(wd.KH), C.long(wd.KW), C.long(wd.S), C.long(wd.PH), C.long(wd.PW),
			C.long(wd.Ho), C.long(wd.Wo), f32p(sf))
		return
	}
	depthwiseGradXGo(dy, w, dx, c, wd, lo, hi)
}

// depthwiseGradW: see depthwiseGradWGo. The C kernel sums in another fixed
// order (c_depthwise.c), so its last bits differ from the Go loop's; each is
// deterministic.
func depthwiseGradW[T Float](x, dy, dw []T, b, c int, wd window, lo, hi int, scr []T) {
	if xf, ok := any(x).([]float32); ok && lo < hi && b > 0 && wd.Ho*wd.Wo > 0 {
		dyf, dwf, sf := any(dy).([]float32), any(dw).([]float32), any(scr).([]float32)
		_, _, _ = xf[b*c*wd.H*wd.W-1], dyf[b*c*wd.Ho*wd.Wo-1], dwf[hi*wd.KH*wd.KW-1]
		_, _ = dwf[lo*wd.KH*wd.KW], sf[depthwiseScratch[T](wd)-1]
		C.nasd_dw_grad_w_f32(f32p(xf), f32p(dyf), f32p(dwf), C.long(b), C.long(c), C.long(lo), C.long(hi),
			C.long(wd.H), C.long(wd.W), C.long(wd.KH), C.long(wd.KW), C.long(wd.S), C.long(wd.PH), C.long(wd.PW),
			C.long(wd.Ho), C.long(wd.Wo), f32p(sf))
		return
	}
	depthwiseGradWGo(x, dy, dw, b, c, wd, lo, hi)
}

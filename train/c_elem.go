//go:build cgo && (openblas || dnnl) && !nockernels

package train

/*
#cgo CFLAGS: -O3
#include "c_elem.h"
*/
import "C"

// reluForward: see reluForwardGo (the same bits).
func reluForward[T Float](x, y []T) {
	if xf, ok := any(x).([]float32); ok && len(y) > 0 {
		yf := any(y).([]float32)
		_ = xf[len(yf)-1]
		C.nasd_relu_f32(f32p(xf), f32p(yf), C.long(len(yf)))
		return
	}
	reluForwardGo(x, y)
}

// reluBackward: see reluGrad (the same bits).
func reluBackward[T Float](y, dy, dx []T) {
	if yf, ok := any(y).([]float32); ok && len(yf) > 0 {
		dyf, dxf := any(dy).([]float32), any(dx).([]float32)
		_, _ = dyf[len(yf)-1], dxf[len(yf)-1]
		C.nasd_relu_grad_f32(f32p(yf), f32p(dyf), f32p(dxf), C.long(len(yf)))
		return
	}
	reluGrad(y, dy, dx)
}

// addTo: see addToGo (the same bits).
func addTo[T Float](a, b, y []T) {
	if af, ok := any(a).([]float32); ok && len(y) > 0 {
		bf, yf := any(b).([]float32), any(y).([]float32)
		_, _ = af[len(yf)-1], bf[len(yf)-1]
		C.nasd_add_f32(f32p(af), f32p(bf), f32p(yf), C.long(len(yf)))
		return
	}
	addToGo(a, b, y)
}

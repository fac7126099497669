//go:build dnnl && cgo

package train

/*
#include "c_conv_dnnl.h"
void omp_set_num_threads(int);
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// dnnlConvBuilt reports that this build has oneDNN's convolution primitives.
const dnnlConvBuilt = true

// dnnlConv is oneDNN's direct convolution of one batch part of a conv2d
// (c_conv_dnnl.c): forward, backward weights, and backward data when needed.
type dnnlConv struct {
	c       *C.nasd_conv
	impl    string
	scratch int // float32s of scratch each call needs
}

// newDNNLConv builds the primitives for mb images, or says why it cannot;
// with relu the forward pass applies ReLU to its output.
func newDNNLConv(mb, c, h, w, o int, wd window, bias, needDX, relu bool) (*dnnlConv, error) {
	var name [96]C.char
	cv := C.nasd_conv_new(C.int(mb), C.int(c), C.int(h), C.int(w), C.int(o), C.int(wd.KH), C.int(wd.KW), C.int(wd.S),
		C.int(wd.PH), C.int(wd.PW), cBool(bias), cBool(needDX), cBool(relu), &name[0], C.int(len(name)))
	impl := C.GoString(&name[0])
	if cv == nil {
		return nil, fmt.Errorf("train: oneDNN convolution %d×%d×%d×%d, %d filters %d×%d stride %d: %s", mb, c, h, w, o, wd.KH, wd.KW, wd.S, impl)
	}
	d := &dnnlConv{c: cv, impl: impl, scratch: int(C.nasd_conv_scratch(cv)+3) / 4}
	runtime.AddCleanup(d, func(cv *C.nasd_conv) { C.nasd_conv_free(cv) }, cv)
	return d, nil
}

func cBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func f32or(v []float32) *C.float {
	if len(v) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&v[0]))
}

func (d *dnnlConv) check(rc C.int, what string) {
	runtime.KeepAlive(d)
	if rc != 0 {
		panic(fmt.Sprintf("train: oneDNN convolution (%s): %s failed", d.impl, what))
	}
}

// blocked returns the channel block of the layout every pass of d uses for
// its output (out) or input, when the caller can hold that side in it (see
// nasd_conv_blocked), or 0.
func (d *dnnlConv) blocked(out bool) int {
	blk := C.nasd_conv_blocked(d.c, cBool(out))
	runtime.KeepAlive(d)
	return max(int(blk), 0)
}

// setBlocked makes d take that side in its blocked layout.
func (d *dnnlConv) setBlocked(out bool) {
	C.nasd_conv_set_blocked(d.c, cBool(out))
	runtime.KeepAlive(d)
}

// The scratch s holds d.scratch float32s; each call overwrites it.
func (d *dnnlConv) forward(x, w, b, y, s []float32) {
	d.check(C.nasd_conv_fwd(d.c, f32or(x), f32or(w), f32or(b), f32or(y), unsafe.Pointer(f32or(s))), "forward")
}

func (d *dnnlConv) gradW(x, dy, dw, s []float32) {
	d.check(C.nasd_conv_bwd_w(d.c, f32or(x), f32or(dy), f32or(dw), unsafe.Pointer(f32or(s))), "backward weights")
}

func (d *dnnlConv) gradX(dy, w, dx, s []float32) {
	d.check(C.nasd_conv_bwd_x(d.c, f32or(dy), f32or(w), f32or(dx), unsafe.Pointer(f32or(s))), "backward data")
}

// setOMPThreads sets the calling OS thread's OpenMP thread count, as a
// thread that never ran a convolution has it (tests).
func setOMPThreads(n int) { C.omp_set_num_threads(C.int(n)) }

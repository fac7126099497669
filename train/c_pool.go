//go:build cgo && (openblas || dnnl) && !nockernels

package train

/*
#cgo CFLAGS: -O3
#include "c_pool.h"
*/
import "C"

import "unsafe"

func i32p(s []int32) *C.int32_t { return (*C.int32_t)(unsafe.Pointer(unsafe.SliceData(s))) }

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// poolForward runs planes [lo, hi) of k's forward call: float32 in C (the
// Go loops' bits, c_pool.c), else forwardGo. The slices are borrowed for the
// call; slicing and indexing here assert their bounds.
func poolForward[T Float](k *pool2d[T], part, lo, hi int) {
	xf, ok := any(k.x).([]float32)
	if !ok || lo >= hi {
		k.forwardGo(part, lo, hi)
		return
	}
	wd := k.wd
	hw, howo := wd.H*wd.W, wd.Ho*wd.Wo
	x, y := xf[lo*hw:hi*hw], any(k.yv).([]float32)[lo*howo:hi*howo]
	var arg, sarg []int32
	var scr []float32
	if k.max {
		arg = k.arg[lo*howo : hi*howo]
	}
	if wd.box3() {
		scr = any(k.scr[part]).([]float32)
		_ = scr[hw-1]
		if k.max {
			sarg = k.sarg[part]
			_ = sarg[hw-1]
		}
	}
	C.nasd_pool_fwd_f32(f32p(x), f32p(y), i32p(arg), C.long(hi-lo), C.long(wd.H), C.long(wd.W),
		C.long(wd.KH), C.long(wd.KW), C.long(wd.S), C.long(wd.PH), C.long(wd.PW), C.long(wd.Ho), C.long(wd.Wo),
		cbool(k.max), f32p(scr), i32p(sarg))
}

// poolBackward runs planes [lo, hi) of k's backward call, as poolForward.
func poolBackward[T Float](k *pool2d[T], part, lo, hi int) {
	gf, ok := any(k.dy).([]float32)
	if !ok || lo >= hi {
		k.backwardGo(part, lo, hi)
		return
	}
	wd := k.wd
	hw, howo := wd.H*wd.W, wd.Ho*wd.Wo
	dy, dx := gf[lo*howo:hi*howo], any(k.dxv).([]float32)[lo*hw:hi*hw]
	var arg []int32
	var scr []float32
	if k.max {
		arg = k.arg[lo*howo : hi*howo]
	} else if wd.box3() {
		scr = any(k.scr[part]).([]float32)
		_ = scr[2*hw-1]
	}
	C.nasd_pool_bwd_f32(f32p(dy), f32p(dx), i32p(arg), C.long(hi-lo), C.long(wd.H), C.long(wd.W),
		C.long(wd.KH), C.long(wd.KW), C.long(wd.S), C.long(wd.PH), C.long(wd.PW), C.long(wd.Ho), C.long(wd.Wo),
		cbool(k.max), f32p(scr))
}

// maxHalf2Blocked: see maxHalf2BlockedGo (the same bits).
func maxHalf2Blocked[T Float](x, y []T, arg []int32, lo, hi int, wd window, blk, c int) {
	xf, ok := any(x).([]float32)
	if !ok || lo >= hi {
		maxHalf2BlockedGo(x, y, arg, lo, hi, wd, blk, c)
		return
	}
	yf := any(y).([]float32)
	_, _, _ = xf[hi*wd.H*wd.W*blk-1], yf[len(arg)-1], arg[hi*wd.Ho*wd.Wo*blk-1]
	C.nasd_maxpool_half2_blocked_f32(f32p(xf), f32p(yf), i32p(arg), C.long(lo), C.long(hi), C.long(wd.H), C.long(wd.W),
		C.long(wd.Ho), C.long(wd.Wo), C.long(blk), C.long(c))
}

// maxHalf2BlockedBackward: see maxHalf2BlockedBackwardGo (the same bits).
func maxHalf2BlockedBackward[T Float](dy, dx []T, arg []int32, lo, hi int, wd window, blk, c int) {
	gf, ok := any(dy).([]float32)
	if !ok || lo >= hi {
		maxHalf2BlockedBackwardGo(dy, dx, arg, lo, hi, wd, blk, c)
		return
	}
	dxf := any(dx).([]float32)
	_, _, _ = dxf[hi*wd.H*wd.W*blk-1], gf[len(arg)-1], arg[len(arg)-1]
	C.nasd_maxpool_half2_blocked_bwd_f32(f32p(gf), f32p(dxf), i32p(arg), C.long(lo), C.long(hi), C.long(wd.H), C.long(wd.W),
		C.long(wd.Ho), C.long(wd.Wo), C.long(blk), C.long(c))
}

// poolBNInC reports whether pooling and batch norm run float32 in C.
const poolBNInC = true

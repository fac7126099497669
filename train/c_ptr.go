//go:build cgo && (openblas || dnnl)

package train

import "C"

import "unsafe"

// f32p passes a float32 slice to C; the slice is borrowed for the call only.
func f32p(s []float32) *C.float { return (*C.float)(unsafe.Pointer(unsafe.SliceData(s))) }

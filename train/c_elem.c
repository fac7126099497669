//go:build cgo && (openblas || dnnl) && !nockernels

// Element-wise kernels: ReLU forward and backward, the sum of two tensors.
// Exact operations, so every clone and the Go loops give the same bits.
#include <stdint.h>
#include "c_common.h"
#include "c_elem.h"

// y = max(x, 0), NaN kept (as Go's max): a diverging net must still show a
// NaN loss. y may be x (a convolution's fused ReLU); no restrict, as in
// nasd_add_f32.
NASD_CLONES
void nasd_relu_f32(const float *x, float *y, long n) {
	for (long i = 0; i < n; i++) {
		const float v = x[i];
		y[i] = (v > 0 || v != v) ? v : 0.0f;
	}
}

// dx = dy where y > 0, else 0, by the Go loop's bit trick (reluGrad), so that
// even a NaN y gives the same bits: the sign bit of -bits(y) is set exactly
// when y > 0 (or y is a positive NaN).
NASD_CLONES
void nasd_relu_grad_f32(const float *restrict y, const float *restrict dy, float *restrict dx, long n) {
	typedef uint32_t __attribute__((may_alias)) bits; // float storage read as bits
	const bits *restrict yb = (const bits *)y, *restrict gb = (const bits *)dy;
	bits *restrict db = (bits *)dx;
	for (long i = 0; i < n; i++) db[i] = gb[i] & (uint32_t)((int32_t)(0u - yb[i]) >> 31);
}

// y = a + b; y may be a (no restrict: GCC checks the overlap and still
// vectorises).
NASD_CLONES
void nasd_add_f32(const float *a, const float *b, float *y, long n) {
	for (long i = 0; i < n; i++) y[i] = a[i] + b[i];
}

//go:build cgo && (openblas || dnnl) && !nockernels

// Element-wise kernels: ReLU forward and backward, the sum of two tensors.
// Exact operations, so every clone and the Go loops give the same bits.
#include "c_common.h"
#include "c_elem.h"

// y = max(x, 0), NaN kept (as Go's max): a diverging net must still show a
// NaN loss.
NASD_CLONES
void nasd_relu_f32(const float *restrict x, float *restrict y, long n) {
	for (long i = 0; i < n; i++) {
		const float v = x[i];
		y[i] = (v > 0 || v != v) ? v : 0.0f;
	}
}

// dx = dy where y > 0, else 0.
NASD_CLONES
void nasd_relu_grad_f32(const float *restrict y, const float *restrict dy, float *restrict dx, long n) {
	for (long i = 0; i < n; i++) dx[i] = y[i] > 0 ? dy[i] : 0.0f;
}

// y = a + b; y may be a (no restrict: GCC checks the overlap and still
// vectorises).
NASD_CLONES
void nasd_add_f32(const float *a, const float *b, float *y, long n) {
	for (long i = 0; i < n; i++) y[i] = a[i] + b[i];
}

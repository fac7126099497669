//go:build cgo && (openblas || dnnl) && !nockernels

// Batch-norm loops of batchNorm (ops_bn.go) in C so that they vectorise.
// Each plane is summed in float32 in 16 interleaved lanes (lane j mod 16)
// combined in a fixed order, and the planes' sums are added in float64 in
// plane order, as the Go loops do with 4 lanes: the sums differ from Go's in
// their last bits, but not between clones or thread counts. The element-wise
// loops are the Go expressions, unfused: identical bits.

#include <string.h>
#include "c_common.h" // NASD_CLONES; no FMA contraction (pragma)
#include "c_bn.h"

#define INLINE static inline __attribute__((always_inline))

// Sixteen lanes as two 8-float vectors (GCC vector extensions: one AVX
// register each, or two SSE registers in the baseline clone; the lanes are
// the same either way). The auto-vectoriser turned the same sums written as
// float acc[16] into permute-heavy code.
typedef float v8 __attribute__((vector_size(32)));
#define LOAD(v, p) memcpy(&(v), (p), sizeof(v))

// fold16 adds lanes 0..15 of (a, b) in a fixed tree.
INLINE float fold16(const v8 *a, const v8 *b) {
	float x[16];
	memcpy(x, a, 32);
	memcpy(x + 8, b, 32);
	return (((x[0] + x[1]) + (x[2] + x[3])) + ((x[4] + x[5]) + (x[6] + x[7]))) +
	       (((x[8] + x[9]) + (x[10] + x[11])) + ((x[12] + x[13]) + (x[14] + x[15])));
}

// sum16: Σ p[j] in lanes j mod 16; the tail (n mod 16) summed in order and
// added last.
INLINE float sum16(const float *restrict p, long n) {
	v8 a0 = {0}, a1 = {0}, u0, u1;
	const long nv = n - n % 16;
	for (long j = 0; j < nv; j += 16) {
		LOAD(u0, p + j), LOAD(u1, p + j + 8);
		a0 += u0, a1 += u1;
	}
	float tail = 0;
	for (long j = nv; j < n; j++) tail += p[j];
	return fold16(&a0, &a1) + tail;
}

// sqdev16: Σ (p[j] − m)², as sum16.
INLINE float sqdev16(const float *restrict p, long n, float m) {
	v8 a0 = {0}, a1 = {0}, u0, u1;
	const long nv = n - n % 16;
	for (long j = 0; j < nv; j += 16) {
		LOAD(u0, p + j), LOAD(u1, p + j + 8);
		u0 -= m, u1 -= m;
		a0 += u0 * u0, a1 += u1 * u1;
	}
	float tail = 0;
	for (long j = nv; j < n; j++) {
		const float d = p[j] - m;
		tail += d * d;
	}
	return fold16(&a0, &a1) + tail;
}

NASD_CLONES
double nasd_bn_sum_f32(const float *x, long b, long stride, long n) {
	double s = 0;
	for (long i = 0; i < b; i++) s += (double)sum16(x + i * stride, n);
	return s;
}

NASD_CLONES
double nasd_bn_sqdev_f32(const float *x, long b, long stride, long n, float m) {
	double s = 0;
	for (long i = 0; i < b; i++) s += (double)sqdev16(x + i * stride, n, m);
	return s;
}

// y = x·a + bb; in training also x̂ = x·is + nm (forwardChannel).
NASD_CLONES
void nasd_bn_norm_f32(const float *x, float *y, float *xhat, long b, long stride, long n, float a,
                      float bb, float is, float nm) {
	for (long i = 0; i < b; i++) {
		const float *restrict xs = x + i * stride;
		float *restrict ys = y + i * stride;
		if (xhat) {
			float *restrict xh = xhat + i * stride;
			for (long j = 0; j < n; j++) {
				xh[j] = xs[j] * is + nm;
				ys[j] = xs[j] * a + bb;
			}
		} else {
			for (long j = 0; j < n; j++) ys[j] = xs[j] * a + bb;
		}
	}
}

// Σ dy and Σ dy·x̂ (gradSums), as sum16.
NASD_CLONES
nasd_bn_pair nasd_bn_sumdot_f32(const float *dy, const float *xh, long b, long stride, long n) {
	nasd_bn_pair r = {0, 0};
	const long nv = n - n % 16;
	for (long i = 0; i < b; i++) {
		const float *restrict g = dy + i * stride, *restrict h = xh + i * stride;
		v8 a0 = {0}, a1 = {0}, d0 = {0}, d1 = {0}, g0, g1, h0, h1;
		for (long j = 0; j < nv; j += 16) {
			LOAD(g0, g + j), LOAD(g1, g + j + 8), LOAD(h0, h + j), LOAD(h1, h + j + 8);
			a0 += g0, a1 += g1;
			d0 += g0 * h0, d1 += g1 * h1;
		}
		float ta = 0, td = 0;
		for (long j = nv; j < n; j++) {
			ta += g[j];
			td += g[j] * h[j];
		}
		r.s0 += (double)(fold16(&a0, &a1) + ta);
		r.s1 += (double)(fold16(&d0, &d1) + td);
	}
	return r;
}

// dx = a·dy + b0 + b1·x̂ (gradX).
NASD_CLONES
void nasd_bn_gradx_f32(const float *dy, const float *xh, float *dx, long b, long stride, long n,
                       float a, float b0, float b1) {
	for (long i = 0; i < b; i++) {
		const float *restrict g = dy + i * stride, *restrict h = xh + i * stride;
		float *restrict d = dx + i * stride;
		for (long j = 0; j < n; j++) d[j] = a * g[j] + b0 + b1 * h[j];
	}
}

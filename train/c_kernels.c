//go:build cgo && (openblas || dnnl) && !nockernels

// Data-movement and reduction loops of the convolution and dense ops, in C so
// that the compiler vectorises them (Go's compiler does not); built once per
// ISA (NASD_CLONES in c_common.h), every clone giving the same bits.
#include <string.h>
#include "c_common.h"
#include "c_kernels.h"

NASD_CLONES
void nasd_im2col_f32(const float *x, long c, long h, long w, long kh, long kw, long s,
                     long ph, long pw, long ho, long wo, float *col) {
	const long hw = h * w, howo = ho * wo;
	float *row = col;
	for (long ci = 0; ci < c; ci++) {
		const float *xc = x + ci * hw;
		for (long ky = 0; ky < kh; ky++) {
			long ylo, yhi;
			span(h, ho, s, ph, ky, &ylo, &yhi);
			for (long kx = 0; kx < kw; kx++, row += howo) {
				long xlo, xhi;
				span(w, wo, s, pw, kx, &xlo, &xhi);
				memset(row, 0, sizeof(float) * ylo * wo);
				memset(row + yhi * wo, 0, sizeof(float) * (ho - yhi) * wo);
				for (long oy = ylo; oy < yhi; oy++) {
					float *restrict dst = row + oy * wo;
					const float *restrict src = xc + (oy * s - ph + ky) * w - pw + kx;
					for (long ox = 0; ox < xlo; ox++) dst[ox] = 0;
					if (s == 1) {
						for (long ox = xlo; ox < xhi; ox++) dst[ox] = src[ox];
					} else {
						for (long ox = xlo; ox < xhi; ox++) dst[ox] = src[ox * s];
					}
					for (long ox = xhi; ox < wo; ox++) dst[ox] = 0;
				}
			}
		}
	}
}

NASD_CLONES
void nasd_col2im_f32(const float *col, long c, long h, long w, long kh, long kw, long s,
                     long ph, long pw, long ho, long wo, float *dx) {
	const long hw = h * w, howo = ho * wo;
	const float *row = col;
	for (long ci = 0; ci < c; ci++) {
		float *xc = dx + ci * hw;
		for (long ky = 0; ky < kh; ky++) {
			long ylo, yhi;
			span(h, ho, s, ph, ky, &ylo, &yhi);
			for (long kx = 0; kx < kw; kx++, row += howo) {
				long xlo, xhi;
				span(w, wo, s, pw, kx, &xlo, &xhi);
				for (long oy = ylo; oy < yhi; oy++) {
					const float *restrict src = row + oy * wo;
					float *restrict dst = xc + (oy * s - ph + ky) * w - pw + kx;
					if (s == 1) {
						for (long ox = xlo; ox < xhi; ox++) dst[ox] += src[ox];
					} else {
						for (long ox = xlo; ox < xhi; ox++) dst[ox * s] += src[ox];
					}
				}
			}
		}
	}
}

NASD_CLONES
void nasd_add_bias_f32(float *y, const float *b, long rows, long n) {
	for (long r = 0; r < rows; r++) {
		float *restrict yr = y + r * n;
		const float br = b[r];
		for (long j = 0; j < n; j++) yr[j] += br;
	}
}

// s[ci] = sum over images i and positions j of v[i, ci, j], for ci in
// [clo, chi). Eight interleaved partial sums (lane j mod 8), combined in a
// fixed order: the result does not depend on the CPU or the thread count.
NASD_CLONES
void nasd_channel_sums_f32(const float *v, long b, long c, long n, long clo, long chi, float *s) {
	for (long ci = clo; ci < chi; ci++) {
		float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
		float tail = 0;
		const long n8 = n & ~7L;
		for (long i = 0; i < b; i++) {
			const float *p = v + (i * c + ci) * n;
			for (long j = 0; j < n8; j += 8)
				for (int l = 0; l < 8; l++) acc[l] += p[j + l];
			for (long j = n8; j < n; j++) tail += p[j];
		}
		s[ci] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;
	}
}

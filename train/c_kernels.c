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

// ReLU's gradient and the bias gradient of the convolution it follows, in one
// pass over channels [clo, chi) of [b, c, n] tensors: dz = dy where y > 0,
// else 0, and, when s is not NULL, s[ci] = Σ_b Σ_j dz[b, ci, j], summed as
// nasd_channel_sums_f32 sums. A comparison, not the sign-bit test of
// nasd_relu_grad_f32: oneDNN's fused ReLU writes −0 for negative inputs.
NASD_CLONES
void nasd_relu_grad_sums_f32(const float *restrict y, const float *restrict dy, float *restrict dz, long b, long c,
                             long n, long clo, long chi, float *restrict s) {
	const long n8 = n & ~7L;
	for (long ci = clo; ci < chi; ci++) {
		float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
		float tail = 0;
		for (long i = 0; i < b; i++) {
			const long o = (i * c + ci) * n;
			const float *yp = y + o, *gp = dy + o;
			float *zp = dz + o;
			for (long j = 0; j < n8; j += 8)
				for (int l = 0; l < 8; l++) {
					const float v = yp[j + l] > 0 ? gp[j + l] : 0.0f;
					zp[j + l] = v;
					acc[l] += v;
				}
			for (long j = n8; j < n; j++) {
				const float v = yp[j] > 0 ? gp[j] : 0.0f;
				zp[j] = v;
				tail += v;
			}
		}
		if (s) s[ci] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;
	}
}

// nasd_relu_grad_sums_f32 for tensors in a channel-blocked layout
// [b][c/blk][n][blk] (blk 8 or 16, c a multiple of it): channel blocks
// [cblo, cbhi). Each channel is summed in one accumulator, in order.
NASD_CLONES
void nasd_relu_grad_sums_blocked_f32(const float *restrict y, const float *restrict dy, float *restrict dz, long b,
                                     long c, long n, long blk, long cblo, long cbhi, float *restrict s) {
	const long cb = c / blk;
	for (long k = cblo; k < cbhi; k++) {
		float acc[16] = {0};
		for (long i = 0; i < b; i++) {
			const long o = (i * cb + k) * n * blk;
			const float *yp = y + o, *gp = dy + o;
			float *zp = dz + o;
			if (blk == 16) {
				for (long j = 0; j < n * 16; j += 16)
					for (int l = 0; l < 16; l++) {
						const float v = yp[j + l] > 0 ? gp[j + l] : 0.0f;
						zp[j + l] = v;
						acc[l] += v;
					}
			} else {
				for (long j = 0; j < n * blk; j += blk)
					for (int l = 0; l < blk; l++) {
						const float v = yp[j + l] > 0 ? gp[j + l] : 0.0f;
						zp[j + l] = v;
						acc[l] += v;
					}
			}
		}
		if (s)
			for (int l = 0; l < blk; l++) s[k * blk + l] = acc[l];
	}
}

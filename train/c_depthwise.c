//go:build cgo && (openblas || dnnl) && !nockernels

// Depthwise convolution in C, so that GCC vectorises it.
//
// Stride 1 copies each plane into a zero-bordered buffer and works on whole
// planes as flat vectors in the padded row width: every tap is then one long
// unit-stride loop, with no border cases and no short rows (a 7×7 plane
// would otherwise leave 7-element loops). Outputs and dX add their taps in
// (ky, kx) order from +0, as the Go loops do; the border taps they add in
// addition are ±0, which leave such a sum unchanged (it is never −0), so
// they give the Go loops' bits for finite weights. dW sums each tap's
// products in DW_LANES interleaved lanes over all images, then the lanes
// pairwise: a fixed order, independent of the ISA and the thread count.
// Other strides (not in the search spaces) use row loops: output and dX in
// the Go loops' order, dW per tap and column, then over columns.
#include <string.h>
#include "c_common.h"
#include "c_depthwise.h"

#define DW_LANES 16

static inline long round_lanes(long n) { return (n + DW_LANES - 1) / DW_LANES * DW_LANES; }

// Stride-1 buffer sizes (floats). Forward and dW: x padded to width wp = w +
// 2pw (nx: rows, plus the reads past the last output), outputs and dY in
// width wp (ny). dX: dY padded to width wq = wd + kw - 1 (ng; wide enough
// that no tap wraps into the next row even where wo < wd), dX in width wq
// (ndx).
typedef struct {
	long wp, nx, ny, wq, ng, ndx;
} dw_geom;

static dw_geom geom(long h, long wd, long kh, long kw, long pw, long ho) {
	dw_geom g;
	g.wp = wd + 2 * pw;
	g.ny = round_lanes(ho * g.wp);
	g.nx = g.ny + (kh - 1) * g.wp + kw - 1;
	g.wq = wd + kw - 1;
	g.ndx = round_lanes(h * g.wq);
	g.ng = g.ndx + (kh - 1) * g.wq + kw - 1;
	return g;
}

long nasd_dw_scratch(long h, long wd, long kh, long kw, long s, long ph, long pw, long ho, long wo) {
	(void)ph;
	if (s != 1) return kh * kw * wo;
	const dw_geom g = geom(h, wd, kh, kw, pw, ho);
	long n = g.nx + g.ny + kh * kw * DW_LANES;
	if (g.ng + g.ndx > n) n = g.ng + g.ndx;
	return n;
}

// pad writes the h×w plane src into dst (tot floats, row width ld) at row
// r0, column c0, and zeros the rest.
static void pad(const float *src, long h, long w, float *dst, long ld, long r0, long c0, long tot) {
	long at = r0 * ld + c0;
	memset(dst, 0, sizeof(float) * at);
	for (long r = 0; r < h; r++, at += ld) {
		memcpy(dst + at, src + r * w, sizeof(float) * w);
		const long next = r + 1 < h ? at + ld : tot;
		memset(dst + at + w, 0, sizeof(float) * (next - at - w));
	}
}

// taps adds, in order, wt[t] * src[off[t] + j] to y[j] for j < n, taps t
// in [0, kk); four taps per pass, so y is loaded and stored once per four.
static inline __attribute__((always_inline)) void taps(float *restrict y, const float *src, const long *off, const float *wt, long kk, long n) {
	long t = 0;
	for (; t + 4 <= kk; t += 4) {
		const float *restrict s0 = src + off[t], *restrict s1 = src + off[t + 1];
		const float *restrict s2 = src + off[t + 2], *restrict s3 = src + off[t + 3];
		const float w0 = wt[t], w1 = wt[t + 1], w2 = wt[t + 2], w3 = wt[t + 3];
		for (long j = 0; j < n; j++) y[j] = (((y[j] + w0 * s0[j]) + w1 * s1[j]) + w2 * s2[j]) + w3 * s3[j];
	}
	for (; t < kk; t++) {
		const float *restrict s0 = src + off[t];
		const float w0 = wt[t];
		for (long j = 0; j < n; j++) y[j] += w0 * s0[j];
	}
}

// dots adds g[j] * src[off[t] + j] over j < n (a multiple of DW_LANES) to
// acc[t*DW_LANES + j%DW_LANES], for taps t in [0, kk); four taps per pass,
// sharing the loads of g.
static inline __attribute__((always_inline)) void dots(const float *restrict g, const float *src, const long *off, float *restrict acc, long kk, long n) {
	long t = 0;
	for (; t + 4 <= kk; t += 4) {
		const float *restrict s0 = src + off[t], *restrict s1 = src + off[t + 1];
		const float *restrict s2 = src + off[t + 2], *restrict s3 = src + off[t + 3];
		float a0[DW_LANES], a1[DW_LANES], a2[DW_LANES], a3[DW_LANES];
		float *at = acc + t * DW_LANES;
		for (int l = 0; l < DW_LANES; l++) {
			a0[l] = at[l];
			a1[l] = at[DW_LANES + l];
			a2[l] = at[2 * DW_LANES + l];
			a3[l] = at[3 * DW_LANES + l];
		}
		for (long j = 0; j < n; j += DW_LANES)
			for (int l = 0; l < DW_LANES; l++) {
				const float gv = g[j + l];
				a0[l] += gv * s0[j + l];
				a1[l] += gv * s1[j + l];
				a2[l] += gv * s2[j + l];
				a3[l] += gv * s3[j + l];
			}
		for (int l = 0; l < DW_LANES; l++) {
			at[l] = a0[l];
			at[DW_LANES + l] = a1[l];
			at[2 * DW_LANES + l] = a2[l];
			at[3 * DW_LANES + l] = a3[l];
		}
	}
	for (; t < kk; t++) {
		const float *restrict s0 = src + off[t];
		float a0[DW_LANES];
		float *at = acc + t * DW_LANES;
		for (int l = 0; l < DW_LANES; l++) a0[l] = at[l];
		for (long j = 0; j < n; j += DW_LANES)
			for (int l = 0; l < DW_LANES; l++) a0[l] += g[j + l] * s0[j + l];
		for (int l = 0; l < DW_LANES; l++) at[l] = a0[l];
	}
}

// y planes [plo, phi): y[oy, ox] = sum over taps of w[ky, kx] * x[oy*s-ph+ky, ox*s-pw+kx].
NASD_CLONES
void nasd_dw_forward_f32(const float *x, const float *w, float *y, long c, long plo, long phi,
                         long h, long wd, long kh, long kw, long s, long ph, long pw, long ho, long wo,
                         float *scr) {
	const long hw = h * wd, howo = ho * wo, kk = kh * kw;
	if (s == 1) {
		const dw_geom g = geom(h, wd, kh, kw, pw, ho);
		float *restrict xq = scr, *restrict yq = scr + g.nx;
		long off[kk];
		for (long t = 0; t < kk; t++) off[t] = (t / kw) * g.wp + t % kw;
		for (long p = plo; p < phi; p++) {
			pad(x + p * hw, h, wd, xq, g.wp, ph, pw, g.nx);
			for (long j = 0; j < g.ny; j++) yq[j] = 0;
			taps(yq, xq, off, w + (p % c) * kk, kk, g.ny);
			for (long oy = 0; oy < ho; oy++) memcpy(y + p * howo + oy * wo, yq + oy * g.wp, sizeof(float) * wo);
		}
		return;
	}
	long xlo[kw], xhi[kw];
	for (long kx = 0; kx < kw; kx++) span(wd, wo, s, pw, kx, &xlo[kx], &xhi[kx]);
	for (long p = plo; p < phi; p++) {
		const float *xp = x + p * hw, *wc = w + (p % c) * kk;
		for (long oy = 0; oy < ho; oy++) {
			float *restrict dst = y + p * howo + oy * wo;
			for (long ox = 0; ox < wo; ox++) dst[ox] = 0;
			for (long ky = 0; ky < kh; ky++) {
				const long iy = oy * s - ph + ky;
				if (iy < 0 || iy >= h) continue;
				for (long kx = 0; kx < kw; kx++) {
					const float wv = wc[ky * kw + kx];
					const float *restrict src = xp + iy * wd - pw + kx;
					for (long ox = xlo[kx]; ox < xhi[kx]; ox++) dst[ox] += wv * src[ox * s];
				}
			}
		}
	}
}

// dx planes [plo, phi): dx[iy, ix] = sum over taps of w[ky, kx] * dy[oy, ox]
// where oy*s-ph+ky = iy and ox*s-pw+kx = ix.
NASD_CLONES
void nasd_dw_grad_x_f32(const float *dy, const float *w, float *dx, long c, long plo, long phi,
                        long h, long wd, long kh, long kw, long s, long ph, long pw, long ho, long wo,
                        float *scr) {
	const long hw = h * wd, howo = ho * wo, kk = kh * kw;
	if (s == 1) {
		// dY sits at (kh-1-ph, kw-1-pw) in its padded buffer, so tap (ky, kx)
		// of dx row iy reads padded row iy + kh-1-ky.
		const dw_geom g = geom(h, wd, kh, kw, pw, ho);
		float *restrict gq = scr, *restrict dq = scr + g.ng;
		long off[kk];
		for (long t = 0; t < kk; t++) off[t] = (kh - 1 - t / kw) * g.wq + kw - 1 - t % kw;
		for (long p = plo; p < phi; p++) {
			pad(dy + p * howo, ho, wo, gq, g.wq, kh - 1 - ph, kw - 1 - pw, g.ng);
			for (long j = 0; j < g.ndx; j++) dq[j] = 0;
			taps(dq, gq, off, w + (p % c) * kk, kk, g.ndx);
			for (long iy = 0; iy < h; iy++) memcpy(dx + p * hw + iy * wd, dq + iy * g.wq, sizeof(float) * wd);
		}
		return;
	}
	long xlo[kw], xhi[kw];
	for (long kx = 0; kx < kw; kx++) span(wd, wo, s, pw, kx, &xlo[kx], &xhi[kx]);
	for (long p = plo; p < phi; p++) {
		const float *gp = dy + p * howo, *wc = w + (p % c) * kk;
		for (long iy = 0; iy < h; iy++) {
			float *xr = dx + p * hw + iy * wd;
			for (long ix = 0; ix < wd; ix++) xr[ix] = 0;
			for (long ky = 0; ky < kh; ky++) {
				const long t = iy + ph - ky; // = oy * s
				if (t < 0 || t % s != 0 || t / s >= ho) continue;
				const float *restrict g = gp + (t / s) * wo;
				for (long kx = 0; kx < kw; kx++) {
					const float wv = wc[ky * kw + kx];
					float *restrict dst = xr - pw + kx;
					for (long ox = xlo[kx]; ox < xhi[kx]; ox++) dst[ox * s] += wv * g[ox];
				}
			}
		}
	}
}

// dw for channels [clo, chi): dw[ci, ky, kx] = sum over images and outputs of
// dy * x.
NASD_CLONES
void nasd_dw_grad_w_f32(const float *x, const float *dy, float *dw, long b, long c, long clo, long chi,
                        long h, long wd, long kh, long kw, long s, long ph, long pw, long ho, long wo,
                        float *scr) {
	const long hw = h * wd, howo = ho * wo, kk = kh * kw;
	if (s == 1) {
		const dw_geom g = geom(h, wd, kh, kw, pw, ho);
		float *restrict xq = scr, *restrict gq = scr + g.nx, *restrict acc = gq + g.ny;
		long off[kk];
		for (long t = 0; t < kk; t++) off[t] = (t / kw) * g.wp + t % kw;
		for (long ci = clo; ci < chi; ci++) {
			for (long j = 0; j < kk * DW_LANES; j++) acc[j] = 0;
			for (long i = 0; i < b; i++) {
				pad(x + (i * c + ci) * hw, h, wd, xq, g.wp, ph, pw, g.nx);
				pad(dy + (i * c + ci) * howo, ho, wo, gq, g.wp, 0, 0, g.ny);
				dots(gq, xq, off, acc, kk, g.ny);
			}
			for (long t = 0; t < kk; t++) {
				float *a = acc + t * DW_LANES;
				for (int n = DW_LANES / 2; n > 0; n /= 2)
					for (int l = 0; l < n; l++) a[l] += a[l + n];
				dw[ci * kk + t] = a[0];
			}
		}
		return;
	}
	// Other strides: per tap and output column over images and rows, then
	// over columns, in scr (kh*kw*wo floats).
	long xlo[kw], xhi[kw];
	for (long kx = 0; kx < kw; kx++) span(wd, wo, s, pw, kx, &xlo[kx], &xhi[kx]);
	for (long ci = clo; ci < chi; ci++) {
		for (long j = 0; j < kk * wo; j++) scr[j] = 0;
		for (long i = 0; i < b; i++) {
			const float *xp = x + (i * c + ci) * hw, *gp = dy + (i * c + ci) * howo;
			for (long oy = 0; oy < ho; oy++) {
				const float *restrict g = gp + oy * wo;
				for (long ky = 0; ky < kh; ky++) {
					const long iy = oy * s - ph + ky;
					if (iy < 0 || iy >= h) continue;
					for (long kx = 0; kx < kw; kx++) {
						float *restrict a = scr + (ky * kw + kx) * wo;
						const float *restrict src = xp + iy * wd - pw + kx;
						for (long ox = xlo[kx]; ox < xhi[kx]; ox++) a[ox] += g[ox] * src[ox * s];
					}
				}
			}
		}
		for (long t = 0; t < kk; t++) {
			float sum = 0;
			for (long ox = 0; ox < wo; ox++) sum += scr[t * wo + ox];
			dw[ci * kk + t] = sum;
		}
	}
}

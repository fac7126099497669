//go:build cgo && (openblas || dnnl) && !nockernels

// Pooling loops of pool2d (ops_pool.go) in C so that they vectorise. Each
// mirrors its Go loop operation for operation: the same sums in the same
// order per output element, the same strict > comparisons (so the same
// argmax on ties), no FMA contraction. The results are therefore
// bit-identical to the Go loops', in every clone.
#include <stdint.h>
#include <string.h>
#include "c_common.h" // NASD_CLONES; no FMA contraction (pragma)
#include "c_pool.h"

// Short zeroing loops stay loops: a memset call per plane costs more than a
// 7×7 plane's pooling.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#endif

#define INLINE static inline __attribute__((always_inline))

INLINE long lmax(long a, long b) { return a > b ? a : b; }
INLINE long lmin(long a, long b) { return a < b ? a : b; }

// No branch on the data (on ReLU outputs it mispredicts more often than
// not): index selects are bit masks (isel, fsel), value selects the max
// pattern m = v > m ? v : m, which is exactly an SSE max.
INLINE uint32_t fbits(float f) {
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}
INLINE float fsel(int c, float a, float b) {
	const uint32_t m = -(uint32_t)c, u = (fbits(a) & m) | (fbits(b) & ~m);
	float f;
	memcpy(&f, &u, 4);
	return f;
}
INLINE int32_t isel(int c, int32_t a, int32_t b) {
	const int32_t m = -(int32_t)c;
	return (a & m) | (b & ~m);
}

// ---- 3×3 stride 1 pad 1 (maxBox3, avgBox3, avgBox3Backward, boxRow3)
//
// Each pass runs over the whole H·W plane as one flat loop (long enough to
// vectorise on 7×7 planes) with the interior formula, then rewrites the
// elements whose window is clipped (first and last column or row) with the
// Go loop's expression for them: the same bits as the row-by-row Go loops.

// box_rows3: boxRow3 of every row: dst[i] = sum of src[i-1..i+1] within the
// row (w >= 2).
INLINE void box_rows3(const float *restrict src, float *restrict dst, long h, long w) {
	for (long i = 1; i < h * w - 1; i++) dst[i] = src[i - 1] + src[i] + src[i + 1];
	for (long r = 0; r < h * w; r += w) {
		dst[r] = src[r] + src[r + 1];
		dst[r + w - 1] = src[r + w - 2] + src[r + w - 1];
	}
}

// col_sums3: dst row oy = the sum of src rows oy-1..oy+1 within the plane,
// added in row order (h >= 2).
INLINE void col_sums3(const float *restrict src, float *restrict dst, long h, long w) {
	for (long i = w; i < (h - 1) * w; i++) dst[i] = src[i - w] + src[i] + src[i + w];
	const long b = (h - 1) * w;
	for (long i = 0; i < w; i++) {
		dst[i] = src[i] + src[i + w];
		dst[b + i] = src[b + i - w] + src[b + i];
	}
}

// max_box3: maxBox3, each compare against the current winner's value.
INLINE void max_box3(const float *restrict xp, float *restrict yp, int32_t *restrict arg, long h,
                     long w, float *restrict hm, int32_t *restrict ha) {
	const int32_t n = (int32_t)(h * w), w32 = (int32_t)w;
	for (int32_t i = 1; i < n - 1; i++) {
		const float u = xp[i], t = xp[i + 1];
		float v = xp[i - 1];
		int32_t j = i - 1;
		int gt = u > v;
		v = (gt ? u : v), j = isel(gt, i, j);
		gt = t > v;
		v = (gt ? t : v), j = isel(gt, i + 1, j);
		hm[i] = v, ha[i] = j;
	}
	for (int32_t r = 0; r < n; r += w32) {
		int gt = xp[r + 1] > xp[r];
		hm[r] = (gt ? xp[r + 1] : xp[r]), ha[r] = isel(gt, r + 1, r);
		const int32_t e = r + w32 - 1;
		gt = xp[e] > xp[e - 1];
		hm[e] = (gt ? xp[e] : xp[e - 1]), ha[e] = isel(gt, e, e - 1);
	}
	for (int32_t i = w32; i < n - w32; i++) {
		float v = hm[i - w32];
		int32_t j = ha[i - w32];
		int gt = hm[i] > v;
		v = (gt ? hm[i] : v), j = isel(gt, ha[i], j);
		gt = hm[i + w32] > v;
		v = (gt ? hm[i + w32] : v), j = isel(gt, ha[i + w32], j);
		yp[i] = v, arg[i] = j;
	}
	const int32_t b = n - w32;
	for (int32_t i = 0; i < w32; i++) {
		int gt = hm[i + w32] > hm[i];
		yp[i] = (gt ? hm[i + w32] : hm[i]), arg[i] = isel(gt, ha[i + w32], ha[i]);
		gt = hm[b + i] > hm[b + i - w32];
		yp[b + i] = (gt ? hm[b + i] : hm[b + i - w32]), arg[b + i] = isel(gt, ha[b + i], ha[b + i - w32]);
	}
}

// avg_box3: avgBox3 (padding not counted): y = column sum of row sums,
// times 1/(rows·3), or divided by rows·2 in the first and last column.
// hs: H·W scratch.
INLINE void avg_box3(const float *restrict xp, float *restrict yp, long h, long w, float *restrict hs) {
	box_rows3(xp, hs, h, w);
	col_sums3(hs, yp, h, w);
	const float r3 = 3, r2 = 2, i9 = 1 / (r3 * 3), i6 = 1 / (r2 * 3);
	const long b = (h - 1) * w;
	for (long i = w; i < b; i++) yp[i] *= i9;
	for (long i = 0; i < w; i++) yp[i] *= i6, yp[b + i] *= i6;
	// First and last column: the unscaled sums again, divided.
	for (long oy = 0; oy < h; oy++) {
		const long y0 = lmax(oy - 1, 0), y1 = lmin(oy + 2, h);
		const float rc = (float)(y1 - y0);
		for (long c = 0; c < w; c += w - 1) {
			float s = hs[y0 * w + c];
			for (long iy = y0 + 1; iy < y1; iy++) s += hs[iy * w + c];
			yp[oy * w + c] = s / (rc * 2);
		}
	}
}

// avg_box3_bwd: avgBox3Backward: dy scaled as avg_box3 scales, then row
// sums, then column sums. scr: 2·H·W scratch.
INLINE void avg_box3_bwd(const float *restrict gp, float *restrict dxp, long h, long w, float *restrict scr) {
	float *restrict g = scr, *restrict hs = scr + h * w;
	const float r3 = 3, r2 = 2, i9 = 1 / (r3 * 3), i6 = 1 / (r2 * 3);
	const long b = (h - 1) * w;
	for (long i = w; i < b; i++) g[i] = gp[i] * i9;
	for (long i = 0; i < w; i++) g[i] = gp[i] * i6, g[b + i] = gp[b + i] * i6;
	for (long oy = 0; oy < h; oy++) {
		const float rc = (float)(lmin(oy + 2, h) - lmax(oy - 1, 0));
		g[oy * w] = gp[oy * w] / (rc * 2);
		g[oy * w + w - 1] = gp[oy * w + w - 1] / (rc * 2);
	}
	box_rows3(g, hs, h, w);
	col_sums3(hs, dxp, h, w);
}

// ---- 2×2 stride 2 pad 0

// max_half2: maxHalf2. Indices in int32 lanes, as the values.
INLINE void max_half2(const float *restrict xp, float *restrict yp, int32_t *restrict arg, long w,
                      long ho, long wo) {
	for (long oy = 0; oy < ho; oy++) {
		const float *restrict r0 = xp + 2 * oy * w, *restrict r1 = r0 + w;
		float *restrict yr = yp + oy * wo;
		int32_t *restrict ar = arg + oy * wo;
		const int32_t b0 = (int32_t)(2 * oy * w), b1 = b0 + (int32_t)w;
		for (int32_t ox = 0; ox < (int32_t)wo; ox++) {
			const int32_t i = 2 * ox;
			const float v1 = r0[i + 1], v2 = r1[i], v3 = r1[i + 1];
			float m = r0[i];
			int32_t a = b0 + i;
			int gt = v1 > m;
			m = (gt ? v1 : m), a = isel(gt, b0 + i + 1, a);
			gt = v2 > m;
			m = (gt ? v2 : m), a = isel(gt, b1 + i, a);
			gt = v3 > m;
			m = (gt ? v3 : m), a = isel(gt, b1 + i + 1, a);
			yr[ox] = m, ar[ox] = a;
		}
	}
}

// max_half2_bwd: the max backward for non-overlapping windows: 0 + dy at
// each window's winner, +0 elsewhere (odd H or W: the last row or column).
INLINE void max_half2_bwd(const float *restrict gp, float *restrict dxp, const int32_t *restrict arg, long h,
                          long w, long ho, long wo) {
	for (long oy = 0; oy < ho; oy++) {
		const float *restrict gr = gp + oy * wo;
		const int32_t *restrict ar = arg + oy * wo;
		float *restrict d0 = dxp + 2 * oy * w, *restrict d1 = d0 + w;
		const int32_t b0 = (int32_t)(2 * oy * w), b1 = b0 + (int32_t)w;
		for (int32_t ox = 0; ox < (int32_t)wo; ox++) {
			const int32_t i = 2 * ox, a = ar[ox];
			const float g = 0 + gr[ox];
			d0[i] = fsel(a == b0 + i, g, 0), d0[i + 1] = fsel(a == b0 + i + 1, g, 0);
			d1[i] = fsel(a == b1 + i, g, 0), d1[i + 1] = fsel(a == b1 + i + 1, g, 0);
		}
		for (long ix = 2 * wo; ix < w; ix++) d0[ix] = 0, d1[ix] = 0;
	}
	for (long i = 2 * ho * w; i < h * w; i++) dxp[i] = 0;
}

// avg_half2: forwardPlane's sum (from 0, row-major) and division by the count
// 4 (a 2×2 stride-2 unpadded window never leaves the image).
INLINE void avg_half2(const float *restrict xp, float *restrict yp, long w, long ho, long wo) {
	for (long oy = 0; oy < ho; oy++) {
		const float *restrict r0 = xp + 2 * oy * w, *restrict r1 = r0 + w;
		float *restrict yr = yp + oy * wo;
		for (long ox = 0; ox < wo; ox++) {
			float s = 0;
			s += r0[2 * ox];
			s += r0[2 * ox + 1];
			s += r1[2 * ox];
			s += r1[2 * ox + 1];
			yr[ox] = s / 4;
		}
	}
}

// avg_half2_bwd: avgBackward's 0 + dy/4 into the four inputs of each output
// (the windows do not overlap); inputs outside every window (odd H or W) 0.
INLINE void avg_half2_bwd(const float *restrict gp, float *restrict dxp, long h, long w, long ho, long wo) {
	for (long oy = 0; oy < ho; oy++) {
		const float *restrict gr = gp + oy * wo;
		float *restrict d0 = dxp + 2 * oy * w, *restrict d1 = d0 + w;
		for (long ox = 0; ox < wo; ox++) {
			const float g = 0 + gr[ox] / 4;
			d0[2 * ox] = g, d0[2 * ox + 1] = g;
			d1[2 * ox] = g, d1[2 * ox + 1] = g;
		}
		for (long ix = 2 * wo; ix < w; ix++) d0[ix] = 0, d1[ix] = 0;
	}
	for (long i = 2 * ho * w; i < h * w; i++) dxp[i] = 0;
}

// ---- any window

// pool_fwd_any: forwardPlane, one output row at a time with the taps outside
// and the output columns inside (vectorised): each output still takes its
// in-image taps in row-major order, so the sums, the compares and the
// tie-breaking are forwardPlane's. [xlo[kx], xhi[kx]): span of tap column kx.
INLINE void pool_fwd_any(const float *restrict xp, float *restrict yp, int32_t *restrict arg, long h,
                         long w, long kh, long kw, long s, long ph, long pw, long ho, long wo, int ismax,
                         const long *xlo, const long *xhi) {
	for (long oy = 0; oy < ho; oy++) {
		const long y0 = lmax(oy * s - ph, 0), y1 = lmin(oy * s - ph + kh, h);
		float *restrict yr = yp + oy * wo;
		int32_t *restrict ar = ismax ? arg + oy * wo : 0;
		if (ismax) {
			for (long ox = 0; ox < wo; ox++) {
				const long i = y0 * w + lmax(ox * s - pw, 0);
				yr[ox] = xp[i], ar[ox] = (int32_t)i;
			}
		} else {
			for (long ox = 0; ox < wo; ox++) yr[ox] = 0;
		}
		for (long iy = y0; iy < y1; iy++) {
			for (long kx = 0; kx < kw; kx++) {
				const long lo = xlo[kx], hi = xhi[kx], off = iy * w - pw + kx;
				const float *restrict src = xp + off;
				if (!ismax) {
					if (s == 1)
						for (long ox = lo; ox < hi; ox++) yr[ox] += src[ox];
					else
						for (long ox = lo; ox < hi; ox++) yr[ox] += src[ox * s];
					continue;
				}
				const int32_t o32 = (int32_t)off, s32 = (int32_t)s;
				for (int32_t ox = (int32_t)lo; ox < (int32_t)hi; ox++) {
					const float v = src[ox * s32], m = yr[ox];
					const int gt = v > m;
					yr[ox] = (gt ? v : m), ar[ox] = isel(gt, o32 + ox * s32, ar[ox]);
				}
			}
		}
		if (!ismax) {
			const int rows = (int)(y1 - y0);
			for (long ox = 0; ox < wo; ox++) {
				const long x0 = lmax(ox * s - pw, 0), x1 = lmin(ox * s - pw + kw, w);
				yr[ox] /= (float)(rows * (int)(x1 - x0));
			}
		}
	}
}

// pool_fwd_direct: forwardPlane as written, for windows whose output rows
// are too short or too strided for pool_fwd_any's vector loops.
INLINE void pool_fwd_direct(const float *restrict xp, float *restrict yp, int32_t *restrict arg, long h,
                            long w, long kh, long kw, long s, long ph, long pw, long ho, long wo, int ismax) {
	for (long oy = 0; oy < ho; oy++) {
		const long y0 = lmax(oy * s - ph, 0), y1 = lmin(oy * s - ph + kh, h);
		for (long ox = 0; ox < wo; ox++) {
			const long x0 = lmax(ox * s - pw, 0), x1 = lmin(ox * s - pw + kw, w), o = oy * wo + ox;
			if (ismax) {
				int32_t best = (int32_t)(y0 * w + x0);
				float m = xp[best];
				for (long iy = y0; iy < y1; iy++)
					for (long ix = x0; ix < x1; ix++) {
						const float v = xp[iy * w + ix];
						const int gt = v > m;
						m = (gt ? v : m), best = isel(gt, (int32_t)(iy * w + ix), best);
					}
				yp[o] = m, arg[o] = best;
				continue;
			}
			float sum = 0;
			for (long iy = y0; iy < y1; iy++)
				for (long ix = x0; ix < x1; ix++) sum += xp[iy * w + ix];
			yp[o] = sum / (float)((int)(y1 - y0) * (int)(x1 - x0));
		}
	}
}

// avg_bwd_direct: avgBackward as written (see pool_fwd_direct); dxp zeroed.
INLINE void avg_bwd_direct(const float *restrict gp, float *restrict dxp, long h, long w, long kh, long kw,
                           long s, long ph, long pw, long ho, long wo) {
	for (long oy = 0; oy < ho; oy++) {
		const long y0 = lmax(oy * s - ph, 0), y1 = lmin(oy * s - ph + kh, h);
		for (long ox = 0; ox < wo; ox++) {
			const long x0 = lmax(ox * s - pw, 0), x1 = lmin(ox * s - pw + kw, w);
			const float g = gp[oy * wo + ox] / (float)((int)(y1 - y0) * (int)(x1 - x0));
			for (long iy = y0; iy < y1; iy++)
				for (long ix = x0; ix < x1; ix++) dxp[iy * w + ix] += g;
		}
	}
}

// avg_bwd_any: avgBackward. Go adds each output's dy/count into its window in
// output order; here, per output row and chunk of columns, the taps run
// with kx descending, so each input still receives its terms in output
// order (a larger kx reaches the same input from a smaller output column).
// dxp zeroed.
INLINE void avg_bwd_any(const float *restrict gp, float *restrict dxp, long h, long w, long kh, long kw,
                        long s, long ph, long pw, long ho, long wo, const long *xlo, const long *xhi) {
	enum { chunk = 256 };
	float g[chunk];
	for (long oy = 0; oy < ho; oy++) {
		const long y0 = lmax(oy * s - ph, 0), y1 = lmin(oy * s - ph + kh, h);
		const int rows = (int)(y1 - y0);
		for (long c0 = 0; c0 < wo; c0 += chunk) {
			const long c1 = lmin(c0 + chunk, wo);
			for (long ox = c0; ox < c1; ox++) {
				const long x0 = lmax(ox * s - pw, 0), x1 = lmin(ox * s - pw + kw, w);
				g[ox - c0] = gp[oy * wo + ox] / (float)(rows * (int)(x1 - x0));
			}
			for (long iy = y0; iy < y1; iy++) {
				for (long kx = kw - 1; kx >= 0; kx--) {
					const long lo = lmax(xlo[kx], c0), hi = lmin(xhi[kx], c1);
					float *restrict dst = dxp + iy * w - pw + kx;
					const float *restrict gc = g - c0;
					if (s == 1)
						for (long ox = lo; ox < hi; ox++) dst[ox] += gc[ox];
					else
						for (long ox = lo; ox < hi; ox++) dst[ox * s] += gc[ox];
				}
			}
		}
	}
}

// ---- entry points: forwardGo's and backwardGo's per-plane switches

enum { maxk = 64 }; // widest window of the vector paths (their span tables)

INLINE int box3(long h, long w, long kh, long kw, long s, long ph, long pw) {
	return kh == 3 && kw == 3 && s == 1 && ph == 1 && pw == 1 && h >= 2 && w >= 2;
}

INLINE int half2(long h, long w, long kh, long kw, long s, long ph, long pw) {
	return kh == 2 && kw == 2 && s == 2 && ph == 0 && pw == 0 && h >= 2 && w >= 2;
}

NASD_CLONES
void nasd_pool_fwd_f32(const float *x, float *y, int32_t *arg, long planes, long h, long w,
                       long kh, long kw, long s, long ph, long pw, long ho, long wo, int ismax,
                       float *scr, int32_t *sarg) {
	const long hw = h * w, howo = ho * wo;
	const int b3 = box3(h, w, kh, kw, s, ph, pw), h2 = half2(h, w, kh, kw, s, ph, pw);
	const int vec = !b3 && !h2 && s == 1 && wo >= 8 && kw <= maxk;
	long xlo[maxk], xhi[maxk];
	for (long kx = 0; vec && kx < kw; kx++) span(w, wo, s, pw, kx, &xlo[kx], &xhi[kx]);
	for (long pl = 0; pl < planes; pl++) {
		const float *xp = x + pl * hw;
		float *yp = y + pl * howo;
		int32_t *ap = ismax ? arg + pl * howo : 0;
		if (ismax && b3)
			max_box3(xp, yp, ap, h, w, scr, sarg);
		else if (b3)
			avg_box3(xp, yp, h, w, scr);
		else if (ismax && h2)
			max_half2(xp, yp, ap, w, ho, wo);
		else if (h2)
			avg_half2(xp, yp, w, ho, wo);
		else if (vec)
			pool_fwd_any(xp, yp, ap, h, w, kh, kw, s, ph, pw, ho, wo, ismax, xlo, xhi);
		else
			pool_fwd_direct(xp, yp, ap, h, w, kh, kw, s, ph, pw, ho, wo, ismax);
	}
}

NASD_CLONES
void nasd_pool_bwd_f32(const float *dy, float *dx, const int32_t *arg, long planes, long h, long w,
                       long kh, long kw, long s, long ph, long pw, long ho, long wo, int ismax,
                       float *scr) {
	const long hw = h * w, howo = ho * wo;
	const int b3 = box3(h, w, kh, kw, s, ph, pw), h2 = half2(h, w, kh, kw, s, ph, pw);
	const int vec = !b3 && !h2 && s == 1 && wo >= 8 && kw <= maxk;
	long xlo[maxk], xhi[maxk];
	for (long kx = 0; vec && kx < kw; kx++) span(w, wo, s, pw, kx, &xlo[kx], &xhi[kx]);
	// The accumulating paths start from zero: one memset for all planes.
	if (ismax ? !h2 : !b3 && !h2) memset(dx, 0, sizeof(float) * planes * hw);
	for (long pl = 0; pl < planes; pl++) {
		const float *gp = dy + pl * howo;
		float *dxp = dx + pl * hw;
		if (ismax && h2) {
			max_half2_bwd(gp, dxp, arg + pl * howo, h, w, ho, wo);
		} else if (ismax) {
			// backwardGo's scatter, in output order.
			const int32_t *ap = arg + pl * howo;
			for (long o = 0; o < howo; o++) dxp[ap[o]] += gp[o];
		} else if (b3) {
			avg_box3_bwd(gp, dxp, h, w, scr);
		} else if (h2) {
			avg_half2_bwd(gp, dxp, h, w, ho, wo);
		} else if (vec) {
			avg_bwd_any(gp, dxp, h, w, kh, kw, s, ph, pw, ho, wo, xlo, xhi);
		} else {
			avg_bwd_direct(gp, dxp, h, w, kh, kw, s, ph, pw, ho, wo);
		}
	}
}

// ---- 2×2 stride 2 max pooling on oneDNN's channel-blocked layout

// The output index of (group g, output position o, lane l): blocked, or NCHW
// when c > 0 (channel (g mod c/blk)·blk + l of image g / (c/blk)).
INLINE long blocked_out(long g, long o, long l, long howo, long blk, long c) {
	if (c <= 0) return (g * howo + o) * blk + l;
	const long cb = c / blk;
	return ((g / cb) * c + (g % cb) * blk + l) * howo + o;
}

// max_half2_group: max_half2 on one group xg ([H][W][blk]) into yg, whose
// output o, lane l is at o·so + l·sl (blocked: blk, 1; NCHW: 1, Ho·Wo).
// Inlined with constant blk and strides, so that the lane loop vectorises.
INLINE void max_half2_group(const float *restrict xg, float *restrict yg, int32_t *restrict ag, long w, long ho,
                            long wo, const long blk, const long so, const long sl) {
	for (long oy = 0; oy < ho; oy++)
		for (long ox = 0; ox < wo; ox++) {
			const int32_t p0 = (int32_t)(((2 * oy) * w + 2 * ox) * blk), p1 = p0 + (int32_t)blk,
			              p2 = p0 + (int32_t)(w * blk), p3 = p2 + (int32_t)blk;
			float *restrict yo = yg + (oy * wo + ox) * so;
			int32_t *restrict ao = ag + (oy * wo + ox) * so;
			for (long l = 0; l < blk; l++) {
				const float v1 = xg[p1 + l], v2 = xg[p2 + l], v3 = xg[p3 + l];
				float m = xg[p0 + l];
				int32_t a = p0 + (int32_t)l;
				int gt = v1 > m;
				m = (gt ? v1 : m), a = isel(gt, p1 + (int32_t)l, a);
				gt = v2 > m;
				m = (gt ? v2 : m), a = isel(gt, p2 + (int32_t)l, a);
				gt = v3 > m;
				m = (gt ? v3 : m), a = isel(gt, p3 + (int32_t)l, a);
				yo[l * sl] = m, ao[l * sl] = a;
			}
		}
}

// nasd_maxpool_half2_blocked_f32: max_half2 on groups [glo, ghi) of x in
// [groups][H][W][blk] (group = image·C/blk + channel block); arg holds each
// winner's index within its group, at its output's index.
NASD_CLONES
void nasd_maxpool_half2_blocked_f32(const float *x, float *y, int32_t *arg, long glo, long ghi, long h, long w,
                                    long ho, long wo, long blk, long c) {
	const long howo = ho * wo;
	for (long g = glo; g < ghi; g++) {
		const float *xg = x + g * h * w * blk;
		const long base = blocked_out(g, 0, 0, howo, blk, c);
		if (c <= 0 && blk == 16)
			max_half2_group(xg, y + base, arg + base, w, ho, wo, 16, 16, 1);
		else if (c <= 0)
			max_half2_group(xg, y + base, arg + base, w, ho, wo, 8, 8, 1);
		else if (blk == 16)
			max_half2_group(xg, y + base, arg + base, w, ho, wo, 16, 1, howo);
		else
			max_half2_group(xg, y + base, arg + base, w, ho, wo, 8, 1, howo);
	}
}

// nasd_maxpool_half2_blocked_bwd_f32: its backward, max_half2_bwd's bits
// (0 + dy at each winner, +0 elsewhere) in dX's blocked groups [glo, ghi).
NASD_CLONES
void nasd_maxpool_half2_blocked_bwd_f32(const float *dy, float *dx, const int32_t *arg, long glo, long ghi, long h,
                                        long w, long ho, long wo, long blk, long c) {
	const long howo = ho * wo, so = c <= 0 ? blk : 1, sl = c <= 0 ? 1 : howo;
	for (long g = glo; g < ghi; g++) {
		float *restrict dg = dx + g * h * w * blk;
		const long base = blocked_out(g, 0, 0, howo, blk, c);
		const float *restrict gy = dy + base;
		const int32_t *restrict ga = arg + base;
		memset(dg, 0, (size_t)(h * w * blk) * sizeof *dg);
		for (long o = 0; o < howo; o++)
			for (long l = 0; l < blk; l++) dg[ga[o * so + l * sl]] = 0 + gy[o * so + l * sl];
	}
}

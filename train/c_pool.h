// Pooling kernels of pool2d (ops_pool.go) for the cgo builds (see c_pool.go).
// Every pointer is borrowed for one call only, as cgo's pointer rules require.
#ifndef NASD_C_POOL_H
#define NASD_C_POOL_H

#include <stdint.h>

// Planes [0, planes) of x (H×W each) into y (Ho×Wo each); arg (max only):
// index within the input plane of each output's winner. scr, sarg: the
// part's scratch of the 3×3 stride-1 pad-1 case (2·H·W and H·W), else NULL.
void nasd_pool_fwd_f32(const float *x, float *y, int32_t *arg, long planes, long h, long w,
                       long kh, long kw, long s, long ph, long pw, long ho, long wo, int ismax,
                       float *scr, int32_t *sarg);
// dx from dy (and arg for max), plane by plane; every element of dx written.
void nasd_pool_bwd_f32(const float *dy, float *dx, const int32_t *arg, long planes, long h, long w,
                       long kh, long kw, long s, long ph, long pw, long ho, long wo, int ismax,
                       float *scr);

// 2×2 stride-2 max pooling of groups [glo, ghi) of x in oneDNN's channel-
// blocked layout [B·C/blk][H][W][blk] into y, blocked too or (c > 0) NCHW
// with c channels; arg at y's indices: each winner's index within its group.
void nasd_maxpool_half2_blocked_f32(const float *x, float *y, int32_t *arg, long glo, long ghi, long h, long w,
                                    long ho, long wo, long blk, long c);
// Its backward: dx (blocked, groups [glo, ghi), every element written) from
// dy (in y's layout) and arg.
void nasd_maxpool_half2_blocked_bwd_f32(const float *dy, float *dx, const int32_t *arg, long glo, long ghi, long h,
                                        long w, long ho, long wo, long blk, long c);

#endif

#ifndef NASD_C_CONV_DNNL_H
#define NASD_C_CONV_DNNL_H

#include <stddef.h>

// A convolution of a fixed number of NCHW images through oneDNN's direct
// convolution primitives (forward, backward data, backward weights), with the
// reorders between nasd's plain layouts and the blocked ones the primitives
// choose. One object per batch part: it owns its stream and scratch, so parts
// run concurrently on different threads. Every call runs on one OpenMP thread;
// the blocked copies live in scratch the caller passes (nasd's Buffers).
typedef struct nasd_conv nasd_conv;

// nasd_conv_new returns NULL when oneDNN cannot build the primitives; impl
// receives the forward implementation's name or the failing step. With relu
// the forward pass writes max(conv, 0) (a post-op); the backward passes are
// the convolution's alone (the caller applies ReLU's gradient first).
nasd_conv *nasd_conv_new(int mb, int c, int h, int w, int o, int kh, int kw, int stride, int ph, int pw, int bias,
                         int need_dx, int relu, char *impl, int impl_len);
// nasd_conv_scratch is the bytes of scratch each call needs (the blocked
// copies of its tensors), 64-byte aligned by the caller.
size_t nasd_conv_scratch(const nasd_conv *cv);
// nasd_conv_blocked says whether every pass of cv works on the same
// channel-blocked layout, without padding, for its input (x, dX; side 0) or
// its output (y, dY; side 1): the block (16 or 8: [N][C/blk][H][W][blk]),
// else -1. nasd_conv_set_blocked then makes the caller's tensors of that
// side be in that layout: cv no longer reorders them.
int nasd_conv_blocked(nasd_conv *cv, int side);
void nasd_conv_set_blocked(nasd_conv *cv, int side);
int nasd_conv_fwd(nasd_conv *cv, const float *x, const float *wt, const float *b, float *y, void *scratch);
int nasd_conv_bwd_w(nasd_conv *cv, const float *x, const float *dy, float *dw, void *scratch);
int nasd_conv_bwd_x(nasd_conv *cv, const float *dy, const float *wt, float *dx, void *scratch);
void nasd_conv_free(nasd_conv *cv);

#endif

// C kernels for the cgo builds (see c_kernels.go). Every pointer is borrowed
// for one call only, as cgo's pointer rules require.
#ifndef NASD_C_KERNELS_H
#define NASD_C_KERNELS_H

void nasd_im2col_f32(const float *x, long c, long h, long w, long kh, long kw, long s,
                     long ph, long pw, long ho, long wo, float *col);
void nasd_col2im_f32(const float *col, long c, long h, long w, long kh, long kw, long s,
                     long ph, long pw, long ho, long wo, float *dx);
void nasd_add_bias_f32(float *y, const float *b, long rows, long n);
void nasd_channel_sums_f32(const float *v, long b, long c, long n, long clo, long chi, float *s);
void nasd_relu_grad_sums_f32(const float *y, const float *dy, float *dz, long b, long c, long n, long clo, long chi,
                             float *s);
void nasd_relu_grad_sums_blocked_f32(const float *y, const float *dy, float *dz, long b, long c, long n, long blk,
                                     long cblo, long cbhi, float *s);

#endif

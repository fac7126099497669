// Depthwise convolution kernels for the cgo builds (see c_depthwise.go).
// Planes are NCHW images' channels, plane p of channel p % c; the window
// arguments are window's fields; scr is per-thread scratch of
// nasd_dw_scratch(...) floats. Every pointer is borrowed for one call only.
#ifndef NASD_C_DEPTHWISE_H
#define NASD_C_DEPTHWISE_H

long nasd_dw_scratch(long h, long wd, long kh, long kw, long s, long ph, long pw, long ho, long wo);
void nasd_dw_forward_f32(const float *x, const float *w, float *y, long c, long plo, long phi,
                         long h, long wd, long kh, long kw, long s, long ph, long pw, long ho, long wo,
                         float *scr);
void nasd_dw_grad_x_f32(const float *dy, const float *w, float *dx, long c, long plo, long phi,
                        long h, long wd, long kh, long kw, long s, long ph, long pw, long ho, long wo,
                        float *scr);
void nasd_dw_grad_w_f32(const float *x, const float *dy, float *dw, long b, long c, long clo, long chi,
                        long h, long wd, long kh, long kw, long s, long ph, long pw, long ho, long wo,
                        float *scr);

#endif

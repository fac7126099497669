// Element-wise C kernels (c_elem.go). Pointers are borrowed for one call.
#ifndef NASD_C_ELEM_H
#define NASD_C_ELEM_H

void nasd_relu_f32(const float *x, float *y, long n);
void nasd_relu_grad_f32(const float *y, const float *dy, float *dx, long n);
void nasd_add_f32(const float *a, const float *b, float *y, long n);

#endif

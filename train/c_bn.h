// Batch-norm kernels of batchNorm (ops_bn.go) for the cgo builds (see
// c_bn.go). Each works on one channel: planes x + i·stride, i in [0, b), of
// n elements. Every pointer is borrowed for one call only.
#ifndef NASD_C_BN_H
#define NASD_C_BN_H

typedef struct {
	double s0, s1;
} nasd_bn_pair;

double nasd_bn_sum_f32(const float *x, long b, long stride, long n);
double nasd_bn_sqdev_f32(const float *x, long b, long stride, long n, float m);
void nasd_bn_norm_f32(const float *x, float *y, float *xhat, long b, long stride, long n, float a,
                      float bb, float is, float nm);
nasd_bn_pair nasd_bn_sumdot_f32(const float *dy, const float *xh, long b, long stride, long n);
void nasd_bn_gradx_f32(const float *dy, const float *xh, float *dx, long b, long stride, long n,
                       float a, float b0, float b1);

#endif

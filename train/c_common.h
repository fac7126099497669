// Shared by the C kernels (c_kernels.c, c_depthwise.c).
#ifndef NASD_C_COMMON_H
#define NASD_C_COMMON_H

// On x86-64 Linux with GCC each kernel is built twice, for AVX2 and for the
// baseline ISA, and the loader picks the one the CPU supports, so the binary
// runs on any x86-64. Kernels neither contract a*b+c into an FMA nor reorder
// a sum, so every clone gives the same bits.
// cgo does not accept -ffp-contract=off as a flag; the pragma says it
// instead (no clone may fuse a*b+c, even one built for a CPU with FMA).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define NASD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NASD_CLONES
#endif

// span: output range [lo, hi) along one axis whose input index o*s - p + k
// lies in [0, n) (span in kernels.go).
static inline void span(long n, long outN, long s, long p, long k, long *lo, long *hi) {
	long l = 0, h = outN, t = n - 1 + p - k;
	if (p - k > 0) l = (p - k + s - 1) / s;
	if (t < 0) h = 0;
	else if (t / s + 1 < h) h = t / s + 1;
	if (h < l) h = l;
	*lo = l;
	*hi = h;
}

#endif

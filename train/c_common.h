// Shared by the C kernels (train/c_*.c).
#ifndef NASD_C_COMMON_H
#define NASD_C_COMMON_H

#include <limits.h> // defines __GLIBC__ on glibc, whose IFUNCs target_clones needs

// No kernel may contract a*b+c into an FMA (its bits would differ from the
// other clone's and from the Go loops'). cgo does not accept
// -ffp-contract=off as a flag, so the pragmas say it, even for a build whose
// CFLAGS target a CPU with FMA.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

// On x86-64 glibc with GCC each kernel is built three times, for AVX-512,
// AVX2 and the baseline ISA, and the loader picks the best the CPU supports,
// so the binary runs on any x86-64. Kernels neither fuse nor reorder a sum differently
// between clones, so every clone gives the same bits.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__)
#define NASD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
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
	if (l > outN) l = outN; // a kernel wider than the image: empty, within [0, outN]
	if (h < l) h = l;
	*lo = l;
	*hi = h;
}

#endif

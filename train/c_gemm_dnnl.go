//go:build dnnl && cgo

package train

/*
#cgo LDFLAGS: -ldnnl -lgomp
#include <dnnl.h>

void omp_set_num_threads(int);

// One-threaded sgemm: ops split the batch across goroutines themselves, and
// OpenMP threads on top would oversubscribe the cores. The OpenMP thread
// count is per OS thread, and a cgo call may land on any, so it is set on
// every call (a store into thread-local state).
static int nasd_dnnl_sgemm(char ta, char tb, long m, long n, long k, float alpha, const float *a, long lda,
                           const float *b, long ldb, float beta, float *c, long ldc) {
	omp_set_num_threads(1);
	return (int)dnnl_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
*/
import "C"

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// GemmBackend names the matrix-multiply library this build uses (nasd version prints it).
const GemmBackend = "dnnl"

var blasImpl gonum.Implementation

func transChar(t bool) C.char {
	if t {
		return 'T'
	}
	return 'N'
}

// gemm computes C = alpha·op(A)·op(B) + beta·C, row-major: float32 with
// oneDNN's dnnl_sgemm (the GEMM PyTorch's CPU convolutions use), float64 with
// gonum (oneDNN has no dgemm; only tests train in float64). The slices are
// only borrowed for the call, as cgo's pointer rules require.
func gemm[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	switch a := any(a).(type) {
	case []float32:
		b, c := any(b).([]float32), any(c).([]float32)
		if k == 0 {
			// BLAS still scales C by beta; keep that meaning without touching A or B.
			for i := 0; i < m; i++ {
				row := c[i*ldc : i*ldc+n]
				for j := range row {
					row[j] *= float32(beta)
				}
			}
			return
		}
		if st := C.nasd_dnnl_sgemm(transChar(transA), transChar(transB), C.long(m), C.long(n), C.long(k), C.float(alpha),
			f32p(a), C.long(lda), f32p(b), C.long(ldb), C.float(beta), f32p(c), C.long(ldc)); st != 0 {
			panic(fmt.Sprintf("train: dnnl_sgemm(%d×%d×%d) failed with status %d", m, n, k, st))
		}
	case []float64:
		ta, tb := blas.NoTrans, blas.NoTrans
		if transA {
			ta = blas.Trans
		}
		if transB {
			tb = blas.Trans
		}
		blasImpl.Dgemm(ta, tb, m, n, k, float64(alpha), a, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}

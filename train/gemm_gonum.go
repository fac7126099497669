//go:build !cgo || !(openblas || dnnl)

package train

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// GemmBackend names the matrix-multiply library this build uses (nasd version prints it).
const GemmBackend = "gonum"

var blasImpl gonum.Implementation

// gemm computes C = alpha·op(A)·op(B) + beta·C, row-major, with gonum's pure-Go BLAS
// (the default build; -tags openblas uses OpenBLAS, -tags dnnl oneDNN).
func gemm[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	ta, tb := blas.NoTrans, blas.NoTrans
	if transA {
		ta = blas.Trans
	}
	if transB {
		tb = blas.Trans
	}
	switch a := any(a).(type) {
	case []float32:
		blasImpl.Sgemm(ta, tb, m, n, k, float32(alpha), a, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		blasImpl.Dgemm(ta, tb, m, n, k, float64(alpha), a, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}

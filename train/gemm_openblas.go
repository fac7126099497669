//go:build openblas && cgo && !dnnl

package train

/*
#cgo pkg-config: openblas
#include <cblas.h>
*/
import "C"

import "unsafe"

// GemmBackend names the matrix-multiply library this build uses (nasd version prints it).
const GemmBackend = "openblas"

func init() {
	// Ops split work across goroutines by image; OpenBLAS threads on top of
	// that oversubscribe the cores (the fastops prototype measured 272 vs 779
	// img/s on 2 threads), so OpenBLAS runs single-threaded.
	C.openblas_set_num_threads(1)
}

func trans(t bool) C.enum_CBLAS_TRANSPOSE {
	if t {
		return C.CblasTrans
	}
	return C.CblasNoTrans
}

// gemm computes C = alpha·op(A)·op(B) + beta·C, row-major, with OpenBLAS.
// The slices are only borrowed for the call, as cgo's pointer rules require.
func gemm[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		// BLAS still scales C by beta; keep that meaning without touching A or B.
		for i := 0; i < m; i++ {
			row := c[i*ldc : i*ldc+n]
			for j := range row {
				row[j] *= beta
			}
		}
		return
	}
	ta, tb := trans(transA), trans(transB)
	switch a := any(a).(type) {
	case []float32:
		b, c := any(b).([]float32), any(c).([]float32)
		C.cblas_sgemm(C.CblasRowMajor, ta, tb, C.blasint(m), C.blasint(n), C.blasint(k), C.float(alpha),
			(*C.float)(unsafe.Pointer(&a[0])), C.blasint(lda), (*C.float)(unsafe.Pointer(&b[0])), C.blasint(ldb),
			C.float(beta), (*C.float)(unsafe.Pointer(&c[0])), C.blasint(ldc))
	case []float64:
		b, c := any(b).([]float64), any(c).([]float64)
		C.cblas_dgemm(C.CblasRowMajor, ta, tb, C.blasint(m), C.blasint(n), C.blasint(k), C.double(alpha),
			(*C.double)(unsafe.Pointer(&a[0])), C.blasint(lda), (*C.double)(unsafe.Pointer(&b[0])), C.blasint(ldb),
			C.double(beta), (*C.double)(unsafe.Pointer(&c[0])), C.blasint(ldc))
	}
}

package train

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Every backend's gemm agrees with the definition for both transposes and
// betas 0 and 1, in float32, at the odd sizes the language model uses.
func TestGemmPatterns(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vec := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.Float64()*2 - 1)
		}
		return v
	}
	for _, sz := range [][3]int{{7, 5, 3}, {20, 64, 128}, {700, 50, 64}, {3, 2000, 17}} {
		m, n, k := sz[0], sz[1], sz[2]
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				for _, beta := range []float32{0, 1} {
					a, b, c := vec(m*k), vec(k*n), vec(m*n)
					lda, ldb := k, n
					if ta {
						lda = m
					}
					if tb {
						ldb = k
					}
					want := make([]float64, m*n)
					for i := range m {
						for j := range n {
							s := 0.0
							for p := range k {
								var av, bv float32
								if ta {
									av = a[p*lda+i]
								} else {
									av = a[i*lda+p]
								}
								if tb {
									bv = b[j*ldb+p]
								} else {
									bv = b[p*ldb+j]
								}
								s += float64(av) * float64(bv)
							}
							want[i*n+j] = s + float64(beta)*float64(c[i*n+j])
						}
					}
					gemm(ta, tb, m, n, k, 1, a, lda, b, ldb, beta, c, n)
					for i, w := range want {
						if math.Abs(float64(c[i])-w) > 1e-4*(1+math.Abs(w))*float64(k) {
							t.Fatalf("m %d n %d k %d transA %v transB %v beta %v: c[%d] = %v, want %v", m, n, k, ta, tb, beta, i, c[i], w)
						}
					}
				}
			}
		}
	}
}

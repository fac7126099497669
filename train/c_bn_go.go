//go:build !cgo || !(openblas || dnnl) || nockernels

package train

func bnSum[T Float](x []T, b, st, n int) float64        { return bnSumGo(x, b, st, n) }
func bnSqDev[T Float](x []T, b, st, n int, m T) float64 { return bnSqDevGo(x, b, st, n, m) }
func bnSumDot[T Float](dy, xh []T, b, st, n int) (float64, float64) {
	return bnSumDotGo(dy, xh, b, st, n)
}

func bnNorm[T Float](x, y, xh []T, b, st, n int, a, bb, is, nm T) {
	bnNormGo(x, y, xh, b, st, n, a, bb, is, nm)
}

func bnDX[T Float](dy, xh, dx []T, b, st, n int, a, b0, b1 T) {
	bnDXGo(dy, xh, dx, b, st, n, a, b0, b1)
}

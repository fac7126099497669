//go:build !cgo || !(openblas || dnnl) || nockernels

package train

func depthwiseScratch[T Float](window) int { return 0 }

func depthwiseForward[T Float](x, w, y []T, c int, wd window, lo, hi int, _ []T) {
	depthwiseForwardGo(x, w, y, c, wd, lo, hi)
}

func depthwiseGradX[T Float](dy, w, dx []T, c int, wd window, lo, hi int, _ []T) {
	depthwiseGradXGo(dy, w, dx, c, wd, lo, hi)
}

func depthwiseGradW[T Float](x, dy, dw []T, b, c int, wd window, lo, hi int, _ []T) {
	depthwiseGradWGo(x, dy, dw, b, c, wd, lo, hi)
}

//go:build !cgo || !(openblas || dnnl) || nockernels

package train

// CKernels reports whether this build runs the C kernels (train/c_*.c); this
// build runs the Go loops.
const CKernels = false

func im2col[T Float](x []T, c int, wd window, col []T)  { im2colGo(x, c, wd, col) }
func col2im[T Float](col []T, c int, wd window, dx []T) { col2imGo(col, c, wd, dx) }
func addBias[T Float](y, b []T, n int)                  { addBiasGo(y, b, n) }
func channelSums[T Float](v []T, b, c, n, lo, hi int, s []T) {
	channelSumsGo(v, b, c, n, lo, hi, s)
}
func reluGradSums[T Float](y, dy, dz []T, b, c, n, lo, hi int, s []T) {
	reluGradSumsGo(y, dy, dz, b, c, n, lo, hi, s)
}
func reluGradSumsBlocked[T Float](y, dy, dz []T, b, c, n, blk, lo, hi int, s []T) {
	reluGradSumsBlockedGo(y, dy, dz, b, c, n, blk, lo, hi, s)
}

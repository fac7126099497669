//go:build !cgo || !(openblas || dnnl)

package train

// CKernels reports whether this build runs the C data-movement kernels
// (c_kernels.c); this one, the pure-Go build, uses the loops in kernels.go.
const CKernels = false

func im2col[T Float](x []T, c int, wd window, col []T)  { im2colGo(x, c, wd, col) }
func col2im[T Float](col []T, c int, wd window, dx []T) { col2imGo(col, c, wd, dx) }
func addBias[T Float](y, b []T, n int)                  { addBiasGo(y, b, n) }
func channelSums[T Float](v []T, b, c, n int, s []T)    { channelSumsGo(v, b, c, n, s) }

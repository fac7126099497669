//go:build !cgo || !(openblas || dnnl) || nockernels

package train

func poolForward[T Float](k *pool2d[T], part, lo, hi int)  { k.forwardGo(part, lo, hi) }
func poolBackward[T Float](k *pool2d[T], part, lo, hi int) { k.backwardGo(part, lo, hi) }

func maxHalf2Blocked[T Float](x, y []T, arg []int32, lo, hi int, wd window, blk, c int) {
	maxHalf2BlockedGo(x, y, arg, lo, hi, wd, blk, c)
}

func maxHalf2BlockedBackward[T Float](dy, dx []T, arg []int32, lo, hi int, wd window, blk, c int) {
	maxHalf2BlockedBackwardGo(dy, dx, arg, lo, hi, wd, blk, c)
}

// poolBNInC reports whether pooling and batch norm run float32 in C.
const poolBNInC = false

//go:build !cgo || !(openblas || dnnl) || nockernels

package train

func poolForward[T Float](k *pool2d[T], part, lo, hi int)  { k.forwardGo(part, lo, hi) }
func poolBackward[T Float](k *pool2d[T], part, lo, hi int) { k.backwardGo(part, lo, hi) }

// poolBNInC reports whether pooling and batch norm run float32 in C.
const poolBNInC = false

//go:build !cgo || !(openblas || dnnl) || nockernels

package train

func reluForward[T Float](x, y []T)       { reluForwardGo(x, y) }
func reluBackward[T Float](y, dy, dx []T) { reluGrad(y, dy, dx) }
func addTo[T Float](a, b, y []T)          { addToGo(a, b, y) }

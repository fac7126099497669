package train

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// shift is arch.KindShift: y[n,c,i,j] = x[n,c,i+1,j+1], zero in the last row
// and column; its gradient is the transpose, dx[n,c,i+1,j+1] = dy[n,c,i,j],
// zero in row and column 0.
//
// Pure Go, no C twin: per row it is one copy (the runtime's memmove, already
// vectorised) and one zero, no arithmetic for GCC to vectorise, so a cgo call
// would add its overhead and gain nothing; concat and flatten are Go too.
type shift[T Float] struct {
	h, w  int
	y, dx *tensor.Dense
	par   parDone
	bwd   bool
	src   []T // forward: X; backward: dY
	dst   []T // forward: Y; backward: dX
}

func buildShift[T Float](a *Buffers, x *G.Node) (*G.Node, error) {
	xs := x.Shape()
	if xs.Dims() != 4 {
		return nil, fmt.Errorf("train: shift: input %v, want [B, C, H, W]", xs)
	}
	k := &shift[T]{h: xs[2], w: xs[3], y: newOutput[T](a, xs...), dx: newOutput[T](a, xs...)}
	fwd := newOp("shift", xs, []int{4}, k.forward).returns(k.y)
	fwd.wrt = []bool{true}
	fwd.diff = func(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
		// No state passes from forward to backward, so dY alone orders it.
		dx, err := G.ApplyOp(newOp("shift_dx", xs, []int{4}, k.backward).returns(k.dx), grad)
		return G.Nodes{dx}, err
	}
	return G.ApplyOp(fwd, x)
}

func (k *shift[T]) forward(in []G.Value) (G.Value, error) {
	k.src, k.dst, k.bwd = raw[T](in[0]), raw[T](k.y), false
	parRange(len(k.dst)/(k.h*k.w), k.h*k.w, k, &k.par)
	return k.y, nil
}

// backward: input dY.
func (k *shift[T]) backward(in []G.Value) (G.Value, error) {
	k.src, k.dst, k.bwd = raw[T](in[0]), raw[T](k.dx), true
	parRange(len(k.dst)/(k.h*k.w), k.h*k.w, k, &k.par)
	return k.dx, nil
}

// runRange shifts planes [lo, hi), writing every element of each.
func (k *shift[T]) runRange(_, lo, hi int) {
	h, w := k.h, k.w
	for pl := lo; pl < hi; pl++ {
		src, dst := k.src[pl*h*w:(pl+1)*h*w], k.dst[pl*h*w:(pl+1)*h*w]
		if h == 1 || w == 1 {
			clear(dst) // nothing lies one pixel down and right
			continue
		}
		if !k.bwd {
			// Row i, columns 0..w-2, from row i+1, columns 1..w-1.
			for i := range h - 1 {
				copy(dst[i*w:i*w+w-1], src[(i+1)*w+1:(i+2)*w])
				dst[i*w+w-1] = 0
			}
			clear(dst[(h-1)*w:])
			continue
		}
		// Row i+1, columns 1..w-1, from row i, columns 0..w-2; dY's last row
		// and column read nothing, so they get no gradient.
		clear(dst[:w])
		for i := range h - 1 {
			dst[(i+1)*w] = 0
			copy(dst[(i+1)*w+1:(i+2)*w], src[i*w:i*w+w-1])
		}
	}
}

package train

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// pool2d is max or average pooling over NCHW with a KH×KW window, stride and
// padding per side. Max pooling never picks padding; average pooling divides
// by the number of in-image positions in the window (PyTorch's
// count_include_pad=False). The window always overlaps the image because
// arch requires 2·pad < window.
//
// Stock Gorgonia has MaxPool2D (same values, TestMatchesStockGorgonia, but it
// allocates its output and gradient every step and runs on one thread) and no
// average pooling that excludes padding.
type pool2d[T Float] struct {
	b, c int
	wd   window
	max  bool
	arg  []int32 // max: index within the input plane of each output's winner
	y    *tensor.Dense
	dx   *tensor.Dense
}

func buildPool[T Float](x *G.Node, kh, kw, stride, pad int, isMax bool) (*G.Node, error) {
	xs := x.Shape()
	if xs.Dims() != 4 || kh < 1 || kw < 1 || stride < 1 || pad < 0 || 2*pad >= kh || 2*pad >= kw {
		return nil, fmt.Errorf("train: pool: input %v, window %d×%d, stride %d, pad %d", xs, kh, kw, stride, pad)
	}
	k := &pool2d[T]{b: xs[0], c: xs[1], max: isMax, wd: newWindow(xs[2], xs[3], kh, kw, stride, pad, pad)}
	k.y = newDense[T](k.b, k.c, k.wd.Ho, k.wd.Wo)
	k.dx = newDense[T](xs...)
	name := "avgpool"
	if isMax {
		name = "maxpool"
		k.arg = make([]int32, k.y.Shape().TotalSize())
	}
	fwd := newOp(name, k.y.Shape(), []int{4}, k.forward)
	fwd.wrt = []bool{true}
	fwd.diff = func(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
		// output is an input of the backward op only to order it after the
		// forward op, whose argmax it reads.
		dx, err := G.ApplyOp(newOp(name+"_dx", k.dx.Shape(), []int{4, 4}, k.backward), output, grad)
		return G.Nodes{dx}, err
	}
	return G.ApplyOp(fwd, x)
}

// rows returns the input row range of output row o, clipped to the image.
func (wd window) rows(o int) (lo, hi int) {
	lo = o*wd.S - wd.PH
	return max(lo, 0), min(lo+wd.KH, wd.H)
}

func (wd window) cols(o int) (lo, hi int) {
	lo = o*wd.S - wd.PW
	return max(lo, 0), min(lo+wd.KW, wd.W)
}

func (k *pool2d[T]) forward(in []G.Value) (G.Value, error) {
	x, y := raw[T](in[0]), raw[T](k.y)
	wd := k.wd
	hw, howo := wd.H*wd.W, wd.Ho*wd.Wo
	parFor(k.b*k.c, howo*wd.KH*wd.KW, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			xp, yp := x[pl*hw:(pl+1)*hw], y[pl*howo:(pl+1)*howo]
			for oy := range wd.Ho {
				y0, y1 := wd.rows(oy)
				for ox := range wd.Wo {
					x0, x1 := wd.cols(ox)
					o := oy*wd.Wo + ox
					if k.max {
						best := y0*wd.W + x0
						m := xp[best]
						for iy := y0; iy < y1; iy++ {
							for ix := x0; ix < x1; ix++ {
								if v := xp[iy*wd.W+ix]; v > m {
									m, best = v, iy*wd.W+ix
								}
							}
						}
						yp[o] = m
						k.arg[pl*howo+o] = int32(best)
						continue
					}
					var s T
					for iy := y0; iy < y1; iy++ {
						for _, v := range xp[iy*wd.W+x0 : iy*wd.W+x1] {
							s += v
						}
					}
					yp[o] = s / T((y1-y0)*(x1-x0))
				}
			}
		}
	})
	return k.y, nil
}

// backward: inputs Y (for ordering), dY.
func (k *pool2d[T]) backward(in []G.Value) (G.Value, error) {
	dy, dx := raw[T](in[1]), raw[T](k.dx)
	wd := k.wd
	hw, howo := wd.H*wd.W, wd.Ho*wd.Wo
	parFor(k.b*k.c, howo*wd.KH*wd.KW, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			dxp, gp := dx[pl*hw:(pl+1)*hw], dy[pl*howo:(pl+1)*howo]
			clear(dxp)
			if k.max {
				for o, j := range k.arg[pl*howo : (pl+1)*howo] {
					dxp[j] += gp[o]
				}
				continue
			}
			for oy := range wd.Ho {
				y0, y1 := wd.rows(oy)
				for ox := range wd.Wo {
					x0, x1 := wd.cols(ox)
					g := gp[oy*wd.Wo+ox] / T((y1-y0)*(x1-x0))
					for iy := y0; iy < y1; iy++ {
						row := dxp[iy*wd.W+x0 : iy*wd.W+x1]
						for i := range row {
							row[i] += g
						}
					}
				}
			}
		}
	})
	return k.dx, nil
}

// globalAvgPool maps [B, C, H, W] to [B, C, 1, 1], the mean of each plane.
type globalAvgPool[T Float] struct {
	b, c, hw int
	y, dx    *tensor.Dense
}

func buildGlobalAvgPool[T Float](x *G.Node) (*G.Node, error) {
	xs := x.Shape()
	if xs.Dims() != 4 {
		return nil, fmt.Errorf("train: gap: input %v", xs)
	}
	k := &globalAvgPool[T]{b: xs[0], c: xs[1], hw: xs[2] * xs[3]}
	k.y = newDense[T](k.b, k.c, 1, 1)
	k.dx = newDense[T](xs...)
	fwd := newOp("gap", k.y.Shape(), []int{4}, k.forward)
	fwd.wrt = []bool{true}
	fwd.diff = func(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
		dx, err := G.ApplyOp(newOp("gap_dx", k.dx.Shape(), []int{4}, k.backward), grad)
		return G.Nodes{dx}, err
	}
	return G.ApplyOp(fwd, x)
}

func (k *globalAvgPool[T]) forward(in []G.Value) (G.Value, error) {
	x, y := raw[T](in[0]), raw[T](k.y)
	parFor(k.b*k.c, k.hw, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			var s T
			for _, v := range x[pl*k.hw : (pl+1)*k.hw] {
				s += v
			}
			y[pl] = s / T(k.hw)
		}
	})
	return k.y, nil
}

func (k *globalAvgPool[T]) backward(in []G.Value) (G.Value, error) {
	dy, dx := raw[T](in[0]), raw[T](k.dx)
	parFor(k.b*k.c, k.hw, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			g := dy[pl] / T(k.hw)
			row := dx[pl*k.hw : (pl+1)*k.hw]
			for i := range row {
				row[i] = g
			}
		}
	})
	return k.dx, nil
}

package train

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// convParts is the fixed number of batch slices a convolution is split into;
// each slice owns its im2col scratch and its partial weight gradient, so the
// summation order, and the result, do not depend on the thread count.
const convParts = 8

// conv2d is a KH×KW convolution over NCHW input with stride S and padding
// (K−1)/2 per side, weights [O, C, KH, KW] (PyTorch's layout), optional bias [O].
// Forward: per image, im2col then one GEMM; backward: dW by the same im2col
// and a GEMM with dY, dX by a GEMM with Wᵀ and col2im.
//
// Stock Gorgonia's Conv2d gives the same values (TestMatchesStockGorgonia) but
// builds im2col, a matmul, a reshape and a transpose as four nodes that
// allocate every step (DESIGN.md: 283 MB per step, 0.2× PyTorch), and a bias
// takes another broadcast-add node.
type conv2d[T Float] struct {
	b, c, o int
	wd      window
	bias    bool
	needDX  bool
	y       *tensor.Dense
	dw, db  *tensor.Dense
	dx      *tensor.Dense
	col     [][]T // per part, CKK × HoWo
	dwPart  [][]T // per part, O × CKK
}

func (k *conv2d[T]) ckk() int     { return k.c * k.wd.KH * k.wd.KW }
func (k *conv2d[T]) direct() bool { return k.wd.KH == 1 && k.wd.KW == 1 && k.wd.S == 1 }

func buildConv[T Float](x, w, b *G.Node, kh, kw, stride int, needDX bool) (*G.Node, error) {
	xs, ws := x.Shape(), w.Shape()
	if xs.Dims() != 4 || ws.Dims() != 4 || ws[1] != xs[1] || ws[2] != kh || ws[3] != kw {
		return nil, fmt.Errorf("train: conv: input %v, weights %v, kernel %d×%d", xs, ws, kh, kw)
	}
	k := &conv2d[T]{b: xs[0], c: xs[1], o: ws[0], bias: b != nil, needDX: needDX,
		wd: newWindow(xs[2], xs[3], kh, kw, stride, (kh-1)/2, (kw-1)/2)}
	if k.bias && (b.Shape().Dims() != 1 || b.Shape()[0] != k.o) {
		return nil, fmt.Errorf("train: conv: bias %v for %d filters", b.Shape(), k.o)
	}
	parts := min(convParts, k.b)
	k.y = newDense[T](k.b, k.o, k.wd.Ho, k.wd.Wo)
	k.dw = newDense[T](ws...)
	k.col = make([][]T, parts)
	k.dwPart = make([][]T, parts)
	for p := range parts {
		if !k.direct() {
			k.col[p] = make([]T, k.ckk()*k.wd.Ho*k.wd.Wo)
		}
		k.dwPart[p] = make([]T, k.o*k.ckk())
	}
	if k.bias {
		k.db = newDense[T](k.o)
	}
	if needDX {
		k.dx = newDense[T](xs...)
	}
	in := []int{4, 4}
	children := G.Nodes{x, w}
	if k.bias {
		in = append(in, 1)
		children = append(children, b)
	}
	fwd := newOp("conv", k.y.Shape(), in, k.forward)
	fwd.wrt = []bool{needDX, true, true}[:len(in)]
	fwd.diff = func(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
		out := make(G.Nodes, len(inputs))
		var err error
		if out[1], err = G.ApplyOp(newOp("conv_dw", k.dw.Shape(), []int{4, 4}, k.gradW), inputs[0], grad); err != nil {
			return nil, err
		}
		if k.bias {
			if out[2], err = G.ApplyOp(newOp("conv_db", k.db.Shape(), []int{4}, k.gradB), grad); err != nil {
				return nil, err
			}
		}
		if needDX {
			if out[0], err = G.ApplyOp(newOp("conv_dx", k.dx.Shape(), []int{4, 4}, k.gradX), grad, inputs[1]); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return G.ApplyOp(fwd, children...)
}

func (k *conv2d[T]) forward(in []G.Value) (G.Value, error) {
	x, w, y := raw[T](in[0]), raw[T](in[1]), raw[T](k.y)
	var bias []T
	if k.bias {
		bias = raw[T](in[2])
	}
	chw, howo, ckk := k.c*k.wd.H*k.wd.W, k.wd.Ho*k.wd.Wo, k.ckk()
	parParts(k.b, len(k.col), func(p, lo, hi int) {
		for i := lo; i < hi; i++ {
			xi, yi := x[i*chw:(i+1)*chw], y[i*k.o*howo:(i+1)*k.o*howo]
			col := xi
			if !k.direct() {
				col = k.col[p]
				im2col(xi, k.c, k.wd, col)
			}
			gemm(false, false, k.o, howo, ckk, 1, w, ckk, col, howo, 0, yi, howo)
			addBias(yi, bias, howo)
		}
	})
	return k.y, nil
}

// gradW: inputs x, dY.
func (k *conv2d[T]) gradW(in []G.Value) (G.Value, error) {
	x, dy := raw[T](in[0]), raw[T](in[1])
	chw, howo, ckk := k.c*k.wd.H*k.wd.W, k.wd.Ho*k.wd.Wo, k.ckk()
	parParts(k.b, len(k.dwPart), func(p, lo, hi int) {
		acc := k.dwPart[p]
		clear(acc)
		for i := lo; i < hi; i++ {
			xi := x[i*chw : (i+1)*chw]
			col := xi
			if !k.direct() {
				col = k.col[p]
				im2col(xi, k.c, k.wd, col)
			}
			gemm(false, true, k.o, ckk, howo, 1, dy[i*k.o*howo:(i+1)*k.o*howo], howo, col, howo, 1, acc, ckk)
		}
	})
	dw := raw[T](k.dw)
	copy(dw, k.dwPart[0])
	for _, part := range k.dwPart[1:] {
		for j, v := range part {
			dw[j] += v
		}
	}
	return k.dw, nil
}

// gradB: input dY; dB[o] = Σ over batch and positions.
func (k *conv2d[T]) gradB(in []G.Value) (G.Value, error) {
	channelSums(raw[T](in[0]), k.b, k.o, k.wd.Ho*k.wd.Wo, raw[T](k.db))
	return k.db, nil
}

// gradX: inputs dY, W.
func (k *conv2d[T]) gradX(in []G.Value) (G.Value, error) {
	dy, w, dx := raw[T](in[0]), raw[T](in[1]), raw[T](k.dx)
	chw, howo, ckk := k.c*k.wd.H*k.wd.W, k.wd.Ho*k.wd.Wo, k.ckk()
	parParts(k.b, len(k.col), func(p, lo, hi int) {
		for i := lo; i < hi; i++ {
			dyi, dxi := dy[i*k.o*howo:(i+1)*k.o*howo], dx[i*chw:(i+1)*chw]
			if k.direct() {
				gemm(true, false, ckk, howo, k.o, 1, w, ckk, dyi, howo, 0, dxi, howo)
				continue
			}
			col := k.col[p]
			gemm(true, false, ckk, howo, k.o, 1, w, ckk, dyi, howo, 0, col, howo)
			clear(dxi)
			col2im(col, k.c, k.wd, dxi)
		}
	})
	return k.dx, nil
}

// channelSumsGo writes s[c] = Σ_b Σ_j v[b, c, j] for v of shape [B, C, n].
func channelSumsGo[T Float](v []T, b, c, n int, s []T) {
	parFor(c, b*n, func(lo, hi int) {
		for ci := lo; ci < hi; ci++ {
			var acc T
			for i := range b {
				for _, x := range v[(i*c+ci)*n : (i*c+ci+1)*n] {
					acc += x
				}
			}
			s[ci] = acc
		}
	})
}

// depthwise is a KH×KW convolution with one filter per channel (multiplier 1,
// no bias), weights [C, 1, KH, KW]. Gorgonia has no grouped convolution.
type depthwise[T Float] struct {
	b, c   int
	wd     window
	needDX bool
	y      *tensor.Dense
	dw, dx *tensor.Dense
}

func buildDepthwise[T Float](x, w *G.Node, kh, kw, stride int, needDX bool) (*G.Node, error) {
	xs, ws := x.Shape(), w.Shape()
	if xs.Dims() != 4 || !ws.Eq(tensor.Shape{xs[1], 1, kh, kw}) {
		return nil, fmt.Errorf("train: depthwise conv: input %v, weights %v, kernel %d×%d", xs, ws, kh, kw)
	}
	k := &depthwise[T]{b: xs[0], c: xs[1], needDX: needDX,
		wd: newWindow(xs[2], xs[3], kh, kw, stride, (kh-1)/2, (kw-1)/2)}
	k.y = newDense[T](k.b, k.c, k.wd.Ho, k.wd.Wo)
	k.dw = newDense[T](ws...)
	if needDX {
		k.dx = newDense[T](xs...)
	}
	fwd := newOp("depthwise", k.y.Shape(), []int{4, 4}, k.forward)
	fwd.wrt = []bool{needDX, true}
	fwd.diff = func(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
		out := make(G.Nodes, 2)
		var err error
		if out[1], err = G.ApplyOp(newOp("depthwise_dw", k.dw.Shape(), []int{4, 4}, k.gradW), inputs[0], grad); err != nil {
			return nil, err
		}
		if needDX {
			if out[0], err = G.ApplyOp(newOp("depthwise_dx", k.dx.Shape(), []int{4, 4}, k.gradX), grad, inputs[1]); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return G.ApplyOp(fwd, x, w)
}

// eachTap calls f for every kernel tap (ky, kx) with the output row range and
// column range that read inside the image.
func (wd window) eachTap(f func(ky, kx, ylo, yhi, xlo, xhi int)) {
	for ky := range wd.KH {
		ylo, yhi := span(wd.H, wd.Ho, wd.S, wd.PH, ky)
		for kx := range wd.KW {
			xlo, xhi := span(wd.W, wd.Wo, wd.S, wd.PW, kx)
			f(ky, kx, ylo, yhi, xlo, xhi)
		}
	}
}

func (k *depthwise[T]) forward(in []G.Value) (G.Value, error) {
	x, w, y := raw[T](in[0]), raw[T](in[1]), raw[T](k.y)
	wd := k.wd
	hw, howo, kk := wd.H*wd.W, wd.Ho*wd.Wo, wd.KH*wd.KW
	parFor(k.b*k.c, howo*kk, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			xp, yp, wc := x[pl*hw:(pl+1)*hw], y[pl*howo:(pl+1)*howo], w[(pl%k.c)*kk:(pl%k.c+1)*kk]
			clear(yp)
			wd.eachTap(func(ky, kx, ylo, yhi, xlo, xhi int) {
				wv := wc[ky*wd.KW+kx]
				for oy := ylo; oy < yhi; oy++ {
					src := xp[(oy*wd.S-wd.PH+ky)*wd.W:]
					dst := yp[oy*wd.Wo : (oy+1)*wd.Wo]
					for ox := xlo; ox < xhi; ox++ {
						dst[ox] += wv * src[ox*wd.S-wd.PW+kx]
					}
				}
			})
		}
	})
	return k.y, nil
}

// gradW: inputs x, dY; per channel, summed over the batch in order.
func (k *depthwise[T]) gradW(in []G.Value) (G.Value, error) {
	x, dy, dw := raw[T](in[0]), raw[T](in[1]), raw[T](k.dw)
	wd := k.wd
	hw, howo, kk := wd.H*wd.W, wd.Ho*wd.Wo, wd.KH*wd.KW
	parFor(k.c, k.b*howo*kk, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			wc := dw[c*kk : (c+1)*kk]
			clear(wc)
			for i := range k.b {
				pl := i*k.c + c
				xp, gp := x[pl*hw:(pl+1)*hw], dy[pl*howo:(pl+1)*howo]
				wd.eachTap(func(ky, kx, ylo, yhi, xlo, xhi int) {
					var acc T
					for oy := ylo; oy < yhi; oy++ {
						src := xp[(oy*wd.S-wd.PH+ky)*wd.W:]
						g := gp[oy*wd.Wo : (oy+1)*wd.Wo]
						for ox := xlo; ox < xhi; ox++ {
							acc += g[ox] * src[ox*wd.S-wd.PW+kx]
						}
					}
					wc[ky*wd.KW+kx] += acc
				})
			}
		}
	})
	return k.dw, nil
}

// gradX: inputs dY, W.
func (k *depthwise[T]) gradX(in []G.Value) (G.Value, error) {
	dy, w, dx := raw[T](in[0]), raw[T](in[1]), raw[T](k.dx)
	wd := k.wd
	hw, howo, kk := wd.H*wd.W, wd.Ho*wd.Wo, wd.KH*wd.KW
	parFor(k.b*k.c, howo*kk, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			dxp, gp, wc := dx[pl*hw:(pl+1)*hw], dy[pl*howo:(pl+1)*howo], w[(pl%k.c)*kk:(pl%k.c+1)*kk]
			clear(dxp)
			wd.eachTap(func(ky, kx, ylo, yhi, xlo, xhi int) {
				wv := wc[ky*wd.KW+kx]
				for oy := ylo; oy < yhi; oy++ {
					dst := dxp[(oy*wd.S-wd.PH+ky)*wd.W:]
					g := gp[oy*wd.Wo : (oy+1)*wd.Wo]
					for ox := xlo; ox < xhi; ox++ {
						dst[ox*wd.S-wd.PW+kx] += wv * g[ox]
					}
				}
			})
		}
	})
	return k.dx, nil
}

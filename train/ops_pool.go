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

	// per call (parRange arguments)
	par     parDone
	bwd     bool
	x, yv   []T
	dy, dxv []T
	scr     [][]T     // per part: 2·H·W scratch (3×3 s1 p1 windows)
	sarg    [][]int32 // per part: H·W argmax scratch (3×3 s1 p1 max)

	// inBlk > 0 (2×2 stride-2 max only): the input and dX are in oneDNN's
	// channel-blocked layout [B·C/blk][H][W][blk], linked to the conv + ReLU
	// before (linkBlocked); the output and dY too when outBlk is set (linked
	// to the convolution after), else NCHW.
	inBlk, outBlk int
}

func buildPool[T Float](a *Buffers, x *G.Node, kh, kw, stride, pad int, isMax bool) (*G.Node, error) {
	xs := x.Shape()
	if xs.Dims() != 4 || kh < 1 || kw < 1 || stride < 1 || pad < 0 || 2*pad >= kh || 2*pad >= kw {
		return nil, fmt.Errorf("train: pool: input %v, window %d×%d, stride %d, pad %d", xs, kh, kw, stride, pad)
	}
	k := newPool2d[T](a, xs[0], xs[1], xs[2], xs[3], kh, kw, stride, pad, isMax)
	name := "avgpool"
	if isMax {
		name = "maxpool"
	}
	fwd := newOp(name, k.y.Shape(), []int{4}, k.forward).returns(k.y)
	fwd.kernel = k
	fwd.wrt = []bool{true}
	fwd.diff = func(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
		// dY is computed from the output (through the loss), which orders
		// the backward op after the forward op, whose argmax it reads.
		dx, err := G.ApplyOp(newOp(name+"_dx", k.dx.Shape(), []int{4}, k.backward).returns(k.dx), grad)
		return G.Nodes{dx}, err
	}
	return G.ApplyOp(fwd, x)
}

func newPool2d[T Float](a *Buffers, b, c, h, w, kh, kw, stride, pad int, isMax bool) *pool2d[T] {
	k := &pool2d[T]{b: b, c: c, max: isMax, wd: newWindow(h, w, kh, kw, stride, pad, pad)}
	k.y = newOutput[T](a, b, c, k.wd.Ho, k.wd.Wo)
	k.dx = newOutput[T](a, b, c, h, w)
	if isMax {
		k.arg = newInt32s(a, k.y.Shape().TotalSize())
	}
	return k
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
	k.x, k.yv, k.bwd = raw[T](in[0]), raw[T](k.y), false
	k.run()
	return k.y, nil
}

// backward: input dY.
func (k *pool2d[T]) backward(in []G.Value) (G.Value, error) {
	k.dy, k.dxv, k.bwd = raw[T](in[0]), raw[T](k.dx), true
	k.run()
	return k.dx, nil
}

// run runs the current pass over planes, or over channel groups when the
// input is blocked.
func (k *pool2d[T]) run() {
	if k.inBlk > 0 {
		parRange(k.b*k.c/k.inBlk, k.wd.H*k.wd.W*k.inBlk, k, &k.par)
		return
	}
	parRangeIn(k.b*k.c, k.scratch(), k, &k.par)
}

// scratch returns the number of parts to run and makes the per-part scratch
// of the 3×3 stride-1 paths for as many (once per thread count: no
// steady-state allocation), before the parts start.
func (k *pool2d[T]) scratch() int {
	wd := k.wd
	p := parts(k.b*k.c, wd.Ho*wd.Wo*wd.KH*wd.KW)
	if !wd.box3() {
		return p
	}
	for len(k.scr) < p {
		k.scr = append(k.scr, make([]T, 2*wd.H*wd.W))
		if k.max {
			k.sarg = append(k.sarg, make([]int32, wd.H*wd.W))
		} else {
			k.sarg = append(k.sarg, nil)
		}
	}
	return p
}

// box3 reports a 3×3 stride-1 pad-1 window on a plane of at least 2×2.
func (wd window) box3() bool {
	return wd.KH == 3 && wd.KW == 3 && wd.S == 1 && wd.PH == 1 && wd.PW == 1 && wd.H >= 2 && wd.W >= 2
}

// half2 reports a 2×2 stride-2 unpadded window on a plane of at least 2×2.
func (wd window) half2() bool {
	return wd.KH == 2 && wd.KW == 2 && wd.S == 2 && wd.PH == 0 && wd.PW == 0 && wd.H >= 2 && wd.W >= 2
}

func (k *pool2d[T]) runRange(part, lo, hi int) {
	if k.inBlk > 0 {
		c := k.c // NCHW output
		if k.outBlk > 0 {
			c = 0
		}
		if k.bwd {
			maxHalf2BlockedBackward(k.dy, k.dxv, k.arg, lo, hi, k.wd, k.inBlk, c)
		} else {
			maxHalf2Blocked(k.x, k.yv, k.arg, lo, hi, k.wd, k.inBlk, c)
		}
		return
	}
	if k.bwd {
		poolBackward(k, part, lo, hi)
	} else {
		poolForward(k, part, lo, hi)
	}
}

// backwardGo is the backward pass over planes [lo, hi) in Go; poolBackward
// runs float32 in C in the cgo builds, with the same bits.
func (k *pool2d[T]) backwardGo(part, lo, hi int) {
	wd := k.wd
	hw, howo := wd.H*wd.W, wd.Ho*wd.Wo
	for pl := lo; pl < hi; pl++ {
		dxp, gp := k.dxv[pl*hw:(pl+1)*hw], k.dy[pl*howo:(pl+1)*howo]
		switch {
		case k.max:
			clear(dxp)
			for o, j := range k.arg[pl*howo : (pl+1)*howo] {
				dxp[j] += gp[o]
			}
		case wd.box3():
			avgBox3Backward(wd, gp, dxp, k.scr[part])
		default:
			k.avgBackward(gp, dxp)
		}
	}
}

// forwardGo is the forward pass over planes [lo, hi) in Go; poolForward runs
// float32 in C in the cgo builds, with the same bits.
func (k *pool2d[T]) forwardGo(part, lo, hi int) {
	wd := k.wd
	hw, howo := wd.H*wd.W, wd.Ho*wd.Wo
	for pl := lo; pl < hi; pl++ {
		xp, yp := k.x[pl*hw:(pl+1)*hw], k.yv[pl*howo:(pl+1)*howo]
		switch {
		case k.max && wd.box3():
			maxBox3(wd, xp, yp, k.arg[pl*howo:(pl+1)*howo], k.scr[part][:hw], k.sarg[part])
		case !k.max && wd.box3():
			avgBox3(wd, xp, yp, k.scr[part][:hw])
		case k.max && wd.half2():
			maxHalf2(wd, xp, yp, k.arg[pl*howo:(pl+1)*howo])
		default:
			k.forwardPlane(xp, yp, pl)
		}
	}
}

// forwardPlane is the general window loop.
func (k *pool2d[T]) forwardPlane(xp, yp []T, pl int) {
	wd := k.wd
	howo := wd.Ho * wd.Wo
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

func (k *pool2d[T]) avgBackward(gp, dxp []T) {
	wd := k.wd
	clear(dxp)
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

// maxBox3 is 3×3 stride-1 pad-1 max pooling of one plane, separably: the
// row maximum over columns ox−1..ox+1 (first maximal column on ties), then
// the maximum of three row maxima (first maximal row on ties). That picks
// the first maximum in row-major window order, as the general loop does.
// hm, ha: H·W scratch.
func maxBox3[T Float](wd window, xp, yp []T, arg []int32, hm []T, ha []int32) {
	h, w := wd.H, wd.W
	for iy := range h {
		r, m, a := xp[iy*w:(iy+1)*w], hm[iy*w:(iy+1)*w], ha[iy*w:(iy+1)*w]
		base := int32(iy * w)
		// ox = 0: columns 0, 1
		if r[1] > r[0] {
			m[0], a[0] = r[1], base+1
		} else {
			m[0], a[0] = r[0], base
		}
		// Index selects (CMOV), then the value reloaded: no branch to
		// mispredict on random data.
		for ox := 1; ox < w-1; ox++ {
			j := ox - 1
			if r[ox] > r[j] {
				j = ox
			}
			if r[ox+1] > r[j] {
				j = ox + 1
			}
			m[ox], a[ox] = r[j], base+int32(j)
		}
		if r[w-1] > r[w-2] {
			m[w-1], a[w-1] = r[w-1], base+int32(w-1)
		} else {
			m[w-1], a[w-1] = r[w-2], base+int32(w-2)
		}
	}
	for oy := range h {
		y0, y1 := max(oy-1, 0), min(oy+2, h)
		yr, ar := yp[oy*w:(oy+1)*w], arg[oy*w:(oy+1)*w]
		m0, a0 := hm[y0*w:(y0+1)*w], ha[y0*w:(y0+1)*w]
		switch y1 - y0 {
		case 2:
			m1, a1 := hm[(y0+1)*w:(y0+2)*w], ha[(y0+1)*w:(y0+2)*w]
			for ox := range w {
				vs, as := [2]T{m0[ox], m1[ox]}, [2]int32{a0[ox], a1[ox]}
				k := 0
				if vs[1] > vs[0] {
					k = 1
				}
				yr[ox], ar[ox] = vs[k], as[k]
			}
		case 3:
			m1, a1 := hm[(y0+1)*w:(y0+2)*w], ha[(y0+1)*w:(y0+2)*w]
			m2, a2 := hm[(y0+2)*w:(y0+3)*w], ha[(y0+2)*w:(y0+3)*w]
			for ox := range w {
				vs, as := [3]T{m0[ox], m1[ox], m2[ox]}, [3]int32{a0[ox], a1[ox], a2[ox]}
				k := 0
				if vs[1] > vs[0] {
					k = 1
				}
				if vs[2] > vs[k] {
					k = 2
				}
				yr[ox], ar[ox] = vs[k], as[k]
			}
		default:
			copy(yr, m0)
			copy(ar, a0)
		}
	}
}

// avgBox3 is 3×3 stride-1 pad-1 average pooling of one plane (padding not
// counted), separably. hs: H·W scratch.
func avgBox3[T Float](wd window, xp, yp, hs []T) {
	h, w := wd.H, wd.W
	for iy := range h {
		boxRow3(xp[iy*w:(iy+1)*w], hs[iy*w:(iy+1)*w])
	}
	for oy := range h {
		y0, y1 := max(oy-1, 0), min(oy+2, h)
		yr := yp[oy*w : (oy+1)*w]
		copy(yr, hs[y0*w:(y0+1)*w])
		for iy := y0 + 1; iy < y1; iy++ {
			for ox, v := range hs[iy*w : (iy+1)*w] {
				yr[ox] += v
			}
		}
		rc := T(y1 - y0)
		yr[0] /= rc * 2
		yr[w-1] /= rc * 2
		inv := 1 / (rc * 3)
		for ox := 1; ox < w-1; ox++ {
			yr[ox] *= inv
		}
	}
}

// boxRow3 writes dst[i] = Σ src[i−1..i+1] clipped to the row (len ≥ 2).
func boxRow3[T Float](src, dst []T) {
	w := len(src)
	dst[0] = src[0] + src[1]
	for i := 1; i < w-1; i++ {
		dst[i] = src[i-1] + src[i] + src[i+1]
	}
	dst[w-1] = src[w-2] + src[w-1]
}

// avgBox3Backward: dX[i] = Σ over the outputs o whose window holds i of
// dY[o]/count(o); for a 3×3 stride-1 pad-1 window these are the o within
// one row and column of i. scr: 2·H·W scratch.
func avgBox3Backward[T Float](wd window, gp, dxp, scr []T) {
	h, w := wd.H, wd.W
	g, hs := scr[:h*w], scr[h*w:2*h*w]
	for oy := range h {
		rc := T(min(oy+2, h) - max(oy-1, 0))
		gr, src := g[oy*w:(oy+1)*w], gp[oy*w:(oy+1)*w]
		gr[0] = src[0] / (rc * 2)
		gr[w-1] = src[w-1] / (rc * 2)
		inv := 1 / (rc * 3)
		for ox := 1; ox < w-1; ox++ {
			gr[ox] = src[ox] * inv
		}
		boxRow3(gr, hs[oy*w:(oy+1)*w])
	}
	for iy := range h {
		y0, y1 := max(iy-1, 0), min(iy+2, h)
		dr := dxp[iy*w : (iy+1)*w]
		copy(dr, hs[y0*w:(y0+1)*w])
		for oy := y0 + 1; oy < y1; oy++ {
			for i, v := range hs[oy*w : (oy+1)*w] {
				dr[i] += v
			}
		}
	}
}

// maxHalf2 is 2×2 stride-2 max pooling of one plane.
func maxHalf2[T Float](wd window, xp, yp []T, arg []int32) {
	w := wd.W
	for oy := range wd.Ho {
		r0 := xp[2*oy*w : 2*oy*w+w]
		r1 := xp[(2*oy+1)*w : (2*oy+1)*w+w]
		yr, ar := yp[oy*wd.Wo:(oy+1)*wd.Wo], arg[oy*wd.Wo:(oy+1)*wd.Wo]
		b0 := int32(2 * oy * w)
		for ox := range yr {
			i := 2 * ox
			m, a := r0[i], b0+int32(i)
			if r0[i+1] > m {
				m, a = r0[i+1], b0+int32(i+1)
			}
			if r1[i] > m {
				m, a = r1[i], b0+int32(w+i)
			}
			if r1[i+1] > m {
				m, a = r1[i+1], b0+int32(w+i+1)
			}
			yr[ox], ar[ox] = m, a
		}
	}
}

// blockedOut is the output index of (group g, output position o, lane l):
// blocked, or NCHW when c > 0 (see nasd_maxpool_half2_blocked_f32).
func blockedOut(g, o, l, howo, blk, c int) int {
	if c <= 0 {
		return (g*howo+o)*blk + l
	}
	cb := c / blk
	return ((g/cb)*c+(g%cb)*blk+l)*howo + o
}

// maxHalf2BlockedGo is maxHalf2 over groups [lo, hi) of a channel-blocked x
// ([groups][H][W][blk]); arg holds each winner's index within its group.
func maxHalf2BlockedGo[T Float](x, y []T, arg []int32, lo, hi int, wd window, blk, c int) {
	for g := lo; g < hi; g++ {
		xg := x[g*wd.H*wd.W*blk : (g+1)*wd.H*wd.W*blk]
		for oy := range wd.Ho {
			for ox := range wd.Wo {
				p0 := (2*oy*wd.W + 2*ox) * blk
				for l := range blk {
					m, a := xg[p0+l], p0+l
					for _, p := range [3]int{p0 + blk + l, p0 + wd.W*blk + l, p0 + (wd.W+1)*blk + l} {
						if xg[p] > m {
							m, a = xg[p], p
						}
					}
					yi := blockedOut(g, oy*wd.Wo+ox, l, wd.Ho*wd.Wo, blk, c)
					y[yi], arg[yi] = m, int32(a)
				}
			}
		}
	}
}

// maxHalf2BlockedBackwardGo is its backward: dX's groups [lo, hi), 0 + dY at
// each winner, +0 elsewhere.
func maxHalf2BlockedBackwardGo[T Float](dy, dx []T, arg []int32, lo, hi int, wd window, blk, c int) {
	for g := lo; g < hi; g++ {
		dg := dx[g*wd.H*wd.W*blk : (g+1)*wd.H*wd.W*blk]
		clear(dg)
		for o := range wd.Ho * wd.Wo {
			for l := range blk {
				yi := blockedOut(g, o, l, wd.Ho*wd.Wo, blk, c)
				dg[arg[yi]] = 0 + dy[yi]
			}
		}
	}
}

// globalAvgPool maps [B, C, H, W] to [B, C, 1, 1], the mean of each plane.
type globalAvgPool[T Float] struct {
	b, c, hw int
	y, dx    *tensor.Dense
	par      parDone
	bwd      bool
	in, out  []T
}

func buildGlobalAvgPool[T Float](a *Buffers, x *G.Node) (*G.Node, error) {
	xs := x.Shape()
	if xs.Dims() != 4 {
		return nil, fmt.Errorf("train: gap: input %v", xs)
	}
	k := &globalAvgPool[T]{b: xs[0], c: xs[1], hw: xs[2] * xs[3]}
	k.y = newOutput[T](a, k.b, k.c, 1, 1)
	k.dx = newOutput[T](a, xs...)
	fwd := newOp("gap", k.y.Shape(), []int{4}, k.forward).returns(k.y)
	fwd.wrt = []bool{true}
	fwd.diff = func(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
		dx, err := G.ApplyOp(newOp("gap_dx", k.dx.Shape(), []int{4}, k.backward).returns(k.dx), grad)
		return G.Nodes{dx}, err
	}
	return G.ApplyOp(fwd, x)
}

func (k *globalAvgPool[T]) forward(in []G.Value) (G.Value, error) {
	k.in, k.out, k.bwd = raw[T](in[0]), raw[T](k.y), false
	parRange(k.b*k.c, k.hw, k, &k.par)
	return k.y, nil
}

func (k *globalAvgPool[T]) backward(in []G.Value) (G.Value, error) {
	k.in, k.out, k.bwd = raw[T](in[0]), raw[T](k.dx), true
	parRange(k.b*k.c, k.hw, k, &k.par)
	return k.dx, nil
}

func (k *globalAvgPool[T]) runRange(_, lo, hi int) {
	for pl := lo; pl < hi; pl++ {
		if k.bwd {
			g := k.in[pl] / T(k.hw)
			row := k.out[pl*k.hw : (pl+1)*k.hw]
			for i := range row {
				row[i] = g
			}
			continue
		}
		var s T
		for _, v := range k.in[pl*k.hw : (pl+1)*k.hw] {
			s += v
		}
		k.out[pl] = s / T(k.hw)
	}
}

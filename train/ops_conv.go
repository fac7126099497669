package train

import (
	"fmt"
	"os"

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
	col     [][]T       // per part, CKK × HoWo (im2col path only)
	dwPart  [][]T       // per part, O × CKK
	dn      []*dnnlConv // per part: oneDNN's primitives, when they run this conv
	sums    channelSummer[T]

	// relu: the op is conv + ReLU, fused. Forward writes max(conv, 0) (on
	// oneDNN as a post-op of the primitive, so the activation is written
	// once); backward takes dZ = dY where Y > 0 (dz) and, in the same pass,
	// the bias gradient (dbSum, copied out by the conv_db op that reads dZ).
	relu  bool
	dz    *tensor.Dense
	dbSum []T

	// outBlk: the output (and dY) is in oneDNN's channel-blocked layout
	// [B][C/blk][H][W][blk], shared with the op that reads it (linkBlocked);
	// 0: NCHW. (A blocked input only changes what the primitives do.)
	outBlk int

	// per call (parPartsRange arguments)
	par             parDone
	phase           convPhase
	xv, wv, bv, dyv []T
	out             []T // y or dX
}

// convPhase selects what a parallel part of conv2d or dense computes.
type convPhase int

const (
	phaseForward convPhase = iota
	phaseGradW
	phaseGradX
)

func (k *conv2d[T]) ckk() int     { return k.c * k.wd.KH * k.wd.KW }
func (k *conv2d[T]) direct() bool { return k.wd.KH == 1 && k.wd.KW == 1 && k.wd.S == 1 }

// newConv2d returns the kernel of a convolution of input xs with weights ws,
// followed by a ReLU when relu is set.
func newConv2d[T Float](a *Buffers, xs, ws tensor.Shape, bias bool, stride int, needDX, relu bool) *conv2d[T] {
	kh, kw := ws[2], ws[3]
	k := &conv2d[T]{b: xs[0], c: xs[1], o: ws[0], bias: bias, needDX: needDX, relu: relu,
		wd: newWindow(xs[2], xs[3], kh, kw, stride, (kh-1)/2, (kw-1)/2)}
	parts := min(convParts, k.b)
	k.y = newOutput[T](a, k.b, k.o, k.wd.Ho, k.wd.Wo)
	k.dw = newOutput[T](a, ws...)
	k.dn = newConvParts[T](k, parts)
	// Scratch: col per part, then dwPart per part. col is im2col's columns
	// (none for a direct 1×1 conv) or, on oneDNN, the blocked copies its
	// primitives work on; both live only within one call.
	cols := k.ckk() * k.wd.Ho * k.wd.Wo
	if k.direct() {
		cols = 0
	}
	sizes := make([]int, 2*parts)
	for p := range parts {
		sizes[p], sizes[parts+p] = cols, k.o*k.ckk()
		if k.dn != nil {
			sizes[p] = k.dn[p].scratch
		}
	}
	scr := newScratch[T](a, sizes...)
	k.col, k.dwPart = scr[:parts:parts], scr[parts:]
	if k.bias {
		k.db = newOutput[T](a, k.o)
	}
	if relu {
		k.dz = newOutput[T](a, k.y.Shape()...)
		if k.bias {
			k.dbSum = make([]T, k.o)
		}
	}
	if needDX {
		k.dx = newOutput[T](a, xs...)
	}
	return k
}

// buildConv makes a convolution node, or with relu a convolution and the
// ReLU after it as one node (the builder fuses them when nothing else reads
// the convolution's output).
func buildConv[T Float](a *Buffers, x, w, b *G.Node, kh, kw, stride int, needDX, relu bool) (*G.Node, error) {
	xs, ws := x.Shape(), w.Shape()
	if xs.Dims() != 4 || ws.Dims() != 4 || ws[1] != xs[1] || ws[2] != kh || ws[3] != kw {
		return nil, fmt.Errorf("train: conv: input %v, weights %v, kernel %d×%d", xs, ws, kh, kw)
	}
	if b != nil && (b.Shape().Dims() != 1 || b.Shape()[0] != ws[0]) {
		return nil, fmt.Errorf("train: conv: bias %v for %d filters", b.Shape(), ws[0])
	}
	k := newConv2d[T](a, xs, ws, b != nil, stride, needDX, relu)
	in := []int{4, 4}
	children := G.Nodes{x, w}
	if k.bias {
		in = append(in, 1)
		children = append(children, b)
	}
	name := "conv"
	if relu {
		name = "conv_relu"
	}
	fwd := newOp(name, k.y.Shape(), in, k.forward).returns(k.y)
	fwd.kernel = k
	fwd.wrt = []bool{needDX, true, true}[:len(in)]
	fwd.diff = func(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
		out := make(G.Nodes, len(inputs))
		var err error
		gb := k.gradB
		if relu { // the gradient at the convolution's output
			if grad, err = G.ApplyOp(newOp("conv_relu_dz", k.dz.Shape(), []int{4, 4}, k.gradZ).returns(k.dz), output, grad); err != nil {
				return nil, err
			}
			gb = k.copyDB
		}
		if out[1], err = G.ApplyOp(newOp("conv_dw", k.dw.Shape(), []int{4, 4}, k.gradW).returns(k.dw), inputs[0], grad); err != nil {
			return nil, err
		}
		if k.bias {
			if out[2], err = G.ApplyOp(newOp("conv_db", k.db.Shape(), []int{4}, gb).returns(k.db), grad); err != nil {
				return nil, err
			}
		}
		if needDX {
			if out[0], err = G.ApplyOp(newOp("conv_dx", k.dx.Shape(), []int{4, 4}, k.gradX).returns(k.dx), grad, inputs[1]); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return G.ApplyOp(fwd, children...)
}

func (k *conv2d[T]) forward(in []G.Value) (G.Value, error) {
	k.phase, k.xv, k.wv, k.out, k.bv = phaseForward, raw[T](in[0]), raw[T](in[1]), raw[T](k.y), nil
	if k.bias {
		k.bv = raw[T](in[2])
	}
	parPartsRange(k.b, len(k.col), k, &k.par)
	return k.y, nil
}

// gradW: inputs x, dY.
func (k *conv2d[T]) gradW(in []G.Value) (G.Value, error) {
	k.phase, k.xv, k.dyv = phaseGradW, raw[T](in[0]), raw[T](in[1])
	parPartsRange(k.b, len(k.dwPart), k, &k.par)
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
	k.sums.run(raw[T](in[0]), k.b, k.o, k.wd.Ho*k.wd.Wo, raw[T](k.db))
	return k.db, nil
}

// gradZ (conv + ReLU): inputs Y, dY; dZ = dY where Y > 0, and the bias
// gradient, Σ of dZ per channel, into dbSum.
func (k *conv2d[T]) gradZ(in []G.Value) (G.Value, error) {
	k.sums.runReLU(raw[T](in[0]), raw[T](in[1]), raw[T](k.dz), k.b, k.o, k.wd.Ho*k.wd.Wo, k.outBlk, k.dbSum)
	return k.dz, nil
}

// blocked returns the channel block of oneDNN's layout for k's output (out)
// or input on every batch part, when k can take that side in it, or 0.
func (k *conv2d[T]) blocked(out bool) int {
	if k.dn == nil {
		return 0
	}
	blk := k.dn[0].blocked(out)
	for _, d := range k.dn[1:] {
		if d.blocked(out) != blk {
			return 0
		}
	}
	return blk
}

// setBlocked makes k take its output (out) or input in that layout.
func (k *conv2d[T]) setBlocked(out bool, blk int) {
	for _, d := range k.dn {
		d.setBlocked(out)
	}
	if out {
		k.outBlk = blk
	}
}

// linkBlocked keeps the tensor from node a to node b, and its gradient, in
// oneDNN's channel-blocked layout when both ops can hold it there, so that
// no convolution reorders it. The caller guarantees that b is the tensor's
// only reader. Links: conv + ReLU → convolution; conv + ReLU → 2×2 stride-2
// max pooling; such a linked pooling → convolution (the pooling then writes
// its output blocked; otherwise NCHW). Only a conv + ReLU writes a blocked
// output, since its dZ pass and that pooling are all that read one. Any
// other pair, or a layout either side cannot share, changes nothing.
func linkBlocked[T Float](a, b *G.Node) {
	if kp, ok := kernelOf[*pool2d[T]](a); ok { // pooling → convolution
		kb, ok := kernelOf[*conv2d[T]](b)
		if ok && kp.inBlk > 0 && kb.blocked(false) == kp.inBlk {
			kb.setBlocked(false, kp.inBlk)
			kp.outBlk = kp.inBlk
		}
		return
	}
	ka, ok := kernelOf[*conv2d[T]](a)
	if !ok || !ka.relu {
		return
	}
	blk := ka.blocked(true)
	if blk == 0 {
		return
	}
	if kb, ok := kernelOf[*conv2d[T]](b); ok && kb.blocked(false) == blk {
		ka.setBlocked(true, blk)
		kb.setBlocked(false, blk)
	} else if kp, ok := kernelOf[*pool2d[T]](b); ok && kp.max && kp.wd.half2() {
		ka.setBlocked(true, blk)
		kp.inBlk = blk
	}
}

// copyDB (conv + ReLU): input dZ, which gradZ wrote with dbSum.
func (k *conv2d[T]) copyDB(_ []G.Value) (G.Value, error) {
	copy(raw[T](k.db), k.dbSum)
	return k.db, nil
}

// gradX: inputs dY, W.
func (k *conv2d[T]) gradX(in []G.Value) (G.Value, error) {
	k.phase, k.dyv, k.wv, k.out = phaseGradX, raw[T](in[0]), raw[T](in[1]), raw[T](k.dx)
	parPartsRange(k.b, len(k.col), k, &k.par)
	return k.dx, nil
}

// useDNNLConv: float32 convolutions run on oneDNN's direct convolution
// primitives where the build has them (AVX-512 JIT kernels on blocked
// layouts: 1.2–1.5× the speed of im2col + GEMM on the reference CNN,
// docs/performance.md). NASD_CONV=gemm keeps them on im2col + GEMM.
var useDNNLConv = dnnlConvBuilt && os.Getenv("NASD_CONV") != "gemm"

// newConvParts returns oneDNN primitives for each batch part of k (parts as
// parPartsRange splits the batch), or nil: float64, no oneDNN, or a shape
// oneDNN refuses (then im2col + GEMM run it).
func newConvParts[T Float](k *conv2d[T], parts int) []*dnnlConv {
	if !useDNNLConv || dtypeOf[T]() != tensor.Float32 {
		return nil
	}
	dn := make([]*dnnlConv, parts)
	for p := range parts {
		mb := (p+1)*k.b/parts - p*k.b/parts
		d, err := newDNNLConv(mb, k.c, k.wd.H, k.wd.W, k.o, k.wd, k.bias, k.needDX, k.relu)
		if err != nil {
			return nil
		}
		dn[p] = d
	}
	return dn
}

// runRange does images [lo, hi) of the current phase as part p.
func (k *conv2d[T]) runRange(p, lo, hi int) {
	chw, howo, ckk, ohw := k.c*k.wd.H*k.wd.W, k.wd.Ho*k.wd.Wo, k.ckk(), k.o*k.wd.Ho*k.wd.Wo
	if k.dn != nil {
		k.runDNNL(k.dn[p], p, lo, hi, chw, ohw)
		return
	}
	switch k.phase {
	case phaseForward:
		for i := lo; i < hi; i++ {
			xi, yi := k.xv[i*chw:(i+1)*chw], k.out[i*ohw:(i+1)*ohw]
			col := xi
			if !k.direct() {
				col = k.col[p]
				im2col(xi, k.c, k.wd, col)
			}
			gemm(false, false, k.o, howo, ckk, 1, k.wv, ckk, col, howo, 0, yi, howo)
			addBias(yi, k.bv, howo)
			if k.relu {
				reluForward(yi, yi)
			}
		}
	case phaseGradW:
		acc := k.dwPart[p]
		clear(acc)
		for i := lo; i < hi; i++ {
			xi := k.xv[i*chw : (i+1)*chw]
			col := xi
			if !k.direct() {
				col = k.col[p]
				im2col(xi, k.c, k.wd, col)
			}
			gemm(false, true, k.o, ckk, howo, 1, k.dyv[i*ohw:(i+1)*ohw], howo, col, howo, 1, acc, ckk)
		}
	case phaseGradX:
		for i := lo; i < hi; i++ {
			dyi, dxi := k.dyv[i*ohw:(i+1)*ohw], k.out[i*chw:(i+1)*chw]
			if k.direct() {
				gemm(true, false, ckk, howo, k.o, 1, k.wv, ckk, dyi, howo, 0, dxi, howo)
				continue
			}
			col := k.col[p]
			gemm(true, false, ckk, howo, k.o, 1, k.wv, ckk, dyi, howo, 0, col, howo)
			clear(dxi)
			col2im(col, k.c, k.wd, dxi)
		}
	}
}

// runDNNL does images [lo, hi) of the current phase as part p on oneDNN.
func (k *conv2d[T]) runDNNL(d *dnnlConv, p, lo, hi, chw, ohw int) {
	f := func(v []T) []float32 { return any(v).([]float32) }
	s := f(k.col[p])
	switch k.phase {
	case phaseForward:
		d.forward(f(k.xv[lo*chw:hi*chw]), f(k.wv), f(k.bv), f(k.out[lo*ohw:hi*ohw]), s)
	case phaseGradW:
		d.gradW(f(k.xv[lo*chw:hi*chw]), f(k.dyv[lo*ohw:hi*ohw]), f(k.dwPart[p]), s)
	case phaseGradX:
		d.gradX(f(k.dyv[lo*ohw:hi*ohw]), f(k.wv), f(k.out[lo*chw:hi*chw]), s)
	}
}

// channelSummer computes channelSums (or reluGradSums) on the parallel
// workers; an op owns one.
type channelSummer[T Float] struct {
	v, s    []T
	y, dz   []T // reluGradSums: y, and dz written from v (dY)
	b, c, n int
	blk     int // runReLU: the channel block of a blocked layout, or 0
	par     parDone
}

// run writes s[c] = Σ_b Σ_j v[b, c, j] for v of shape [B, C, n], each channel
// summed by one range.
func (cs *channelSummer[T]) run(v []T, b, c, n int, s []T) {
	cs.v, cs.s, cs.y, cs.dz, cs.b, cs.c, cs.n = v, s, nil, nil, b, c, n
	parRange(c, b*n, cs, &cs.par)
}

// runReLU writes dz = dy where y > 0, else 0, and (s not nil) s[c] its sums,
// as run sums; with blk > 0 the tensors are [B][C/blk][n][blk] and each
// range is of channel blocks.
func (cs *channelSummer[T]) runReLU(y, dy, dz []T, b, c, n, blk int, s []T) {
	cs.v, cs.s, cs.y, cs.dz, cs.b, cs.c, cs.n, cs.blk = dy, s, y, dz, b, c, n, blk
	if blk > 0 {
		parRange(c/blk, 2*b*n*blk, cs, &cs.par)
		return
	}
	parRange(c, 2*b*n, cs, &cs.par)
}

func (cs *channelSummer[T]) runRange(_, lo, hi int) {
	if cs.y != nil && cs.blk > 0 {
		reluGradSumsBlocked(cs.y, cs.v, cs.dz, cs.b, cs.c, cs.n, cs.blk, lo, hi, cs.s)
		return
	}
	if cs.y != nil {
		reluGradSums(cs.y, cs.v, cs.dz, cs.b, cs.c, cs.n, lo, hi, cs.s)
		return
	}
	channelSums(cs.v, cs.b, cs.c, cs.n, lo, hi, cs.s)
}

// channelSumsGo writes s[ci] = Σ_b Σ_j v[b, ci, j] for ci in [lo, hi).
func channelSumsGo[T Float](v []T, b, c, n, lo, hi int, s []T) {
	for ci := lo; ci < hi; ci++ {
		var acc T
		for i := range b {
			for _, x := range v[(i*c+ci)*n : (i*c+ci+1)*n] {
				acc += x
			}
		}
		s[ci] = acc
	}
}

// reluGradSumsGo writes dz = dy where y > 0, else 0, for channels [lo, hi)
// of [b, c, n] tensors and, when s is not nil, s[ci] = Σ_b Σ_j dz[b, ci, j].
func reluGradSumsGo[T Float](y, dy, dz []T, b, c, n, lo, hi int, s []T) {
	for ci := lo; ci < hi; ci++ {
		var acc T
		for i := range b {
			o := (i*c + ci) * n
			for j, v := range y[o : o+n] {
				g := dy[o+j]
				if !(v > 0) {
					g = 0
				}
				dz[o+j] = g
				acc += g
			}
		}
		if s != nil {
			s[ci] = acc
		}
	}
}

// reluGradSumsBlockedGo is reluGradSumsGo for [b][c/blk][n][blk] tensors,
// over channel blocks [lo, hi); each channel summed in order.
func reluGradSumsBlockedGo[T Float](y, dy, dz []T, b, c, n, blk, lo, hi int, s []T) {
	cb := c / blk
	var acc [16]T // blk ≤ 16
	for k := lo; k < hi; k++ {
		clear(acc[:])
		for i := range b {
			o := (i*cb + k) * n * blk
			for j := range n * blk {
				g := dy[o+j]
				if !(y[o+j] > 0) {
					g = 0
				}
				dz[o+j] = g
				acc[j%blk] += g
			}
		}
		if s != nil {
			copy(s[k*blk:(k+1)*blk], acc[:blk])
		}
	}
}

// depthwise is a KH×KW convolution with one filter per channel (multiplier 1,
// no bias), weights [C, 1, KH, KW]. Gorgonia has no grouped convolution.
type depthwise[T Float] struct {
	b, c   int
	wd     window
	needDX bool
	y      *tensor.Dense
	dw, dx *tensor.Dense

	// per call (parRange arguments)
	par      parDone
	phase    convPhase
	in0, in1 []T // forward: x, W; gradX: dY, W; gradW: x, dY
	out      []T
	scr      [][]T // per part, depthwiseScratch elements
}

// newDepthwise returns the kernel of a depthwise convolution over input xs.
func newDepthwise[T Float](a *Buffers, xs tensor.Shape, kh, kw, stride int, needDX bool) *depthwise[T] {
	k := &depthwise[T]{b: xs[0], c: xs[1], needDX: needDX,
		wd: newWindow(xs[2], xs[3], kh, kw, stride, (kh-1)/2, (kw-1)/2)}
	k.y = newOutput[T](a, k.b, k.c, k.wd.Ho, k.wd.Wo)
	k.dw = newOutput[T](a, k.c, 1, kh, kw)
	if needDX {
		k.dx = newOutput[T](a, xs...)
	}
	return k
}

func buildDepthwise[T Float](a *Buffers, x, w *G.Node, kh, kw, stride int, needDX bool) (*G.Node, error) {
	xs, ws := x.Shape(), w.Shape()
	if xs.Dims() != 4 || !ws.Eq(tensor.Shape{xs[1], 1, kh, kw}) {
		return nil, fmt.Errorf("train: depthwise conv: input %v, weights %v, kernel %d×%d", xs, ws, kh, kw)
	}
	k := newDepthwise[T](a, xs, kh, kw, stride, needDX)
	fwd := newOp("depthwise", k.y.Shape(), []int{4, 4}, k.forward).returns(k.y)
	fwd.wrt = []bool{needDX, true}
	fwd.diff = func(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
		out := make(G.Nodes, 2)
		var err error
		if out[1], err = G.ApplyOp(newOp("depthwise_dw", k.dw.Shape(), []int{4, 4}, k.gradW).returns(k.dw), inputs[0], grad); err != nil {
			return nil, err
		}
		if needDX {
			if out[0], err = G.ApplyOp(newOp("depthwise_dx", k.dx.Shape(), []int{4, 4}, k.gradX).returns(k.dx), grad, inputs[1]); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return G.ApplyOp(fwd, x, w)
}

func (k *depthwise[T]) forward(in []G.Value) (G.Value, error) {
	k.phase, k.in0, k.in1, k.out = phaseForward, raw[T](in[0]), raw[T](in[1]), raw[T](k.y)
	k.run(k.b*k.c, k.wd.Ho*k.wd.Wo*k.wd.KH*k.wd.KW)
	return k.y, nil
}

// gradW: inputs x, dY; per channel, summed over the batch in order.
func (k *depthwise[T]) gradW(in []G.Value) (G.Value, error) {
	k.phase, k.in0, k.in1, k.out = phaseGradW, raw[T](in[0]), raw[T](in[1]), raw[T](k.dw)
	k.run(k.c, k.b*k.wd.Ho*k.wd.Wo*k.wd.KH*k.wd.KW)
	return k.dw, nil
}

// gradX: inputs dY, W.
func (k *depthwise[T]) gradX(in []G.Value) (G.Value, error) {
	k.phase, k.in0, k.in1, k.out = phaseGradX, raw[T](in[0]), raw[T](in[1]), raw[T](k.dx)
	k.run(k.b*k.c, k.wd.Ho*k.wd.Wo*k.wd.KH*k.wd.KW)
	return k.dx, nil
}

// run makes scratch for as many parts as it runs, before they start
// (allocated once per thread count), and runs the current phase.
func (k *depthwise[T]) run(n, cost int) {
	p := parts(n, cost)
	for len(k.scr) < p {
		k.scr = append(k.scr, make([]T, depthwiseScratch[T](k.wd)))
	}
	parRangeIn(n, p, k, &k.par)
}

// runRange does planes (forward, gradX) or channels (gradW) [lo, hi).
func (k *depthwise[T]) runRange(part, lo, hi int) {
	switch k.phase {
	case phaseForward:
		depthwiseForward(k.in0, k.in1, k.out, k.c, k.wd, lo, hi, k.scr[part])
	case phaseGradX:
		depthwiseGradX(k.in0, k.in1, k.out, k.c, k.wd, lo, hi, k.scr[part])
	case phaseGradW:
		depthwiseGradW(k.in0, k.in1, k.out, k.b, k.c, k.wd, lo, hi, k.scr[part])
	}
}

// depthwiseForwardGo writes the output planes [lo, hi) (plane = image·C +
// channel) of the depthwise convolution of x with w; each output adds its
// taps in (ky, kx) order.
func depthwiseForwardGo[T Float](x, w, y []T, c int, wd window, lo, hi int) {
	hw, howo, kk := wd.H*wd.W, wd.Ho*wd.Wo, wd.KH*wd.KW
	for pl := lo; pl < hi; pl++ {
		xp, yp, wc := x[pl*hw:(pl+1)*hw], y[pl*howo:(pl+1)*howo], w[(pl%c)*kk:(pl%c+1)*kk]
		clear(yp)
		for ky := range wd.KH {
			ylo, yhi := span(wd.H, wd.Ho, wd.S, wd.PH, ky)
			for kx := range wd.KW {
				xlo, xhi := span(wd.W, wd.Wo, wd.S, wd.PW, kx)
				wv := wc[ky*wd.KW+kx]
				for oy := ylo; oy < yhi; oy++ {
					src := xp[(oy*wd.S-wd.PH+ky)*wd.W:]
					dst := yp[oy*wd.Wo : (oy+1)*wd.Wo]
					for ox := xlo; ox < xhi; ox++ {
						dst[ox] += T(wv * src[ox*wd.S-wd.PW+kx]) // T(): never an FMA, as in C
					}
				}
			}
		}
	}
}

// depthwiseGradWGo writes dw for channels [lo, hi): per channel, per image in
// order, per tap, the sum over outputs of dY·x.
func depthwiseGradWGo[T Float](x, dy, dw []T, b, c int, wd window, lo, hi int) {
	hw, howo, kk := wd.H*wd.W, wd.Ho*wd.Wo, wd.KH*wd.KW
	for ci := lo; ci < hi; ci++ {
		wc := dw[ci*kk : (ci+1)*kk]
		clear(wc)
		for i := range b {
			pl := i*c + ci
			xp, gp := x[pl*hw:(pl+1)*hw], dy[pl*howo:(pl+1)*howo]
			for ky := range wd.KH {
				ylo, yhi := span(wd.H, wd.Ho, wd.S, wd.PH, ky)
				for kx := range wd.KW {
					xlo, xhi := span(wd.W, wd.Wo, wd.S, wd.PW, kx)
					var acc T
					for oy := ylo; oy < yhi; oy++ {
						src := xp[(oy*wd.S-wd.PH+ky)*wd.W:]
						g := gp[oy*wd.Wo : (oy+1)*wd.Wo]
						for ox := xlo; ox < xhi; ox++ {
							acc += g[ox] * src[ox*wd.S-wd.PW+kx]
						}
					}
					wc[ky*wd.KW+kx] += acc
				}
			}
		}
	}
}

// depthwiseGradXGo writes the dX planes [lo, hi); each element adds its taps
// in (ky, kx) order.
func depthwiseGradXGo[T Float](dy, w, dx []T, c int, wd window, lo, hi int) {
	hw, howo, kk := wd.H*wd.W, wd.Ho*wd.Wo, wd.KH*wd.KW
	for pl := lo; pl < hi; pl++ {
		dxp, gp, wc := dx[pl*hw:(pl+1)*hw], dy[pl*howo:(pl+1)*howo], w[(pl%c)*kk:(pl%c+1)*kk]
		clear(dxp)
		for ky := range wd.KH {
			ylo, yhi := span(wd.H, wd.Ho, wd.S, wd.PH, ky)
			for kx := range wd.KW {
				xlo, xhi := span(wd.W, wd.Wo, wd.S, wd.PW, kx)
				wv := wc[ky*wd.KW+kx]
				for oy := ylo; oy < yhi; oy++ {
					dst := dxp[(oy*wd.S-wd.PH+ky)*wd.W:]
					g := gp[oy*wd.Wo : (oy+1)*wd.Wo]
					for ox := xlo; ox < xhi; ox++ {
						dst[ox*wd.S-wd.PW+kx] += T(wv * g[ox])
					}
				}
			}
		}
	}
}

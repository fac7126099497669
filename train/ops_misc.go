package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"unsafe"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// relu is max(x, 0); its gradient passes where the output is positive. Stock
// Rectify builds x ⊙ (x ≥ 0) as two nodes, each allocating every step.
type relu[T Float] struct {
	y, dx *tensor.Dense
	par   parDone
	bwd   bool
	x, yv []T // forward: X, Y; backward: Y, dY
	dxv   []T
}

func buildReLU[T Float](a *Buffers, x *G.Node) (*G.Node, error) {
	xs := x.Shape()
	k := &relu[T]{y: newOutput[T](a, xs...), dx: newOutput[T](a, xs...)}
	fwd := newOp("relu", xs, []int{xs.Dims()}, k.forward).returns(k.y)
	fwd.wrt = []bool{true}
	fwd.diff = func(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
		dx, err := G.ApplyOp(newOp("relu_dx", xs, []int{xs.Dims(), xs.Dims()}, k.backward).returns(k.dx), output, grad)
		return G.Nodes{dx}, err
	}
	return G.ApplyOp(fwd, x)
}

func (k *relu[T]) forward(in []G.Value) (G.Value, error) {
	k.x, k.yv, k.bwd = raw[T](in[0]), raw[T](k.y), false
	parRange(len(k.yv), 1, k, &k.par)
	return k.y, nil
}

// backward: inputs Y, dY.
func (k *relu[T]) backward(in []G.Value) (G.Value, error) {
	k.x, k.yv, k.dxv, k.bwd = raw[T](in[0]), raw[T](in[1]), raw[T](k.dx), true
	parRange(len(k.dxv), 1, k, &k.par)
	return k.dx, nil
}

func (k *relu[T]) runRange(_, lo, hi int) {
	if !k.bwd {
		reluForward(k.x[lo:hi], k.yv[lo:hi])
		return
	}
	reluBackward(k.x[lo:hi], k.yv[lo:hi], k.dxv[lo:hi])
}

// reluGrad writes dx = dy where y > 0, else 0, for y = max(x, 0) ≥ +0,
// without branches: the sign bit of −bits(y) is set exactly when y > 0.
func reluGrad[T Float](y, dy, dx []T) {
	n := len(y)
	if n == 0 {
		return
	}
	dy, dx = dy[:n], dx[:n]
	var z T
	if unsafe.Sizeof(z) == 4 {
		yb := unsafe.Slice((*uint32)(unsafe.Pointer(&y[0])), n)
		gb := unsafe.Slice((*uint32)(unsafe.Pointer(&dy[0])), n)
		db := unsafe.Slice((*uint32)(unsafe.Pointer(&dx[0])), n)
		for i, v := range yb {
			db[i] = gb[i] & uint32(-int32(v)>>31)
		}
		return
	}
	yb := unsafe.Slice((*uint64)(unsafe.Pointer(&y[0])), n)
	gb := unsafe.Slice((*uint64)(unsafe.Pointer(&dy[0])), n)
	db := unsafe.Slice((*uint64)(unsafe.Pointer(&dx[0])), n)
	for i, v := range yb {
		db[i] = gb[i] & uint64(-int64(v)>>63)
	}
}

// add sums any number of same-shaped inputs; each input's gradient is the
// output's. Stock Add is binary, so n inputs would take n−1 allocating nodes.
type add[T Float] struct {
	y   *tensor.Dense
	par parDone
	xs  [][]T
	yv  []T
}

func buildAdd[T Float](a *Buffers, xs []*G.Node) (*G.Node, error) {
	s := xs[0].Shape()
	dims := make([]int, len(xs))
	for i, x := range xs {
		if !x.Shape().Eq(s) {
			return nil, fmt.Errorf("train: add: input shapes %v and %v", s, x.Shape())
		}
		dims[i] = s.Dims()
	}
	k := &add[T]{y: newOutput[T](a, s...)}
	fwd := newOp("add", s, dims, k.forward).returns(k.y)
	fwd.wrt = make([]bool, len(xs))
	for i := range fwd.wrt {
		fwd.wrt[i] = true
	}
	fwd.diff = func(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
		out := make(G.Nodes, len(inputs))
		for i := range out {
			out[i] = grad
		}
		return out, nil
	}
	return G.ApplyOp(fwd, xs...)
}

func (k *add[T]) forward(in []G.Value) (G.Value, error) {
	k.yv = raw[T](k.y)
	if len(k.xs) != len(in) {
		k.xs = make([][]T, len(in))
	}
	for i, v := range in {
		k.xs[i] = raw[T](v)
	}
	parRange(len(k.yv), len(in), k, &k.par)
	return k.y, nil
}

func (k *add[T]) runRange(_, lo, hi int) {
	y := k.yv[lo:hi]
	addTo(k.xs[0][lo:hi], k.xs[1][lo:hi], y)
	for _, x := range k.xs[2:] {
		addTo(y, x[lo:hi], y)
	}
}

// concat stacks inputs along channels; an input smaller than the largest
// height or width is zero-padded at the bottom and right (arch.KindConcat).
// Stock Concat needs equal spatial sizes.
type concat[T Float] struct {
	b, h, w int
	cs      []int // channels per input
	ins     []tensor.Shape
	y       *tensor.Dense
	par     parDone
	xs      [][]T
	yv      []T
}

func buildConcat[T Float](a *Buffers, xs []*G.Node) (*G.Node, error) {
	k := &concat[T]{}
	var c int
	for _, x := range xs {
		s := x.Shape()
		if s.Dims() != 4 || s[0] != xs[0].Shape()[0] {
			return nil, fmt.Errorf("train: concat: input shapes %v and %v", xs[0].Shape(), s)
		}
		k.ins = append(k.ins, s.Clone())
		k.cs = append(k.cs, s[1])
		c += s[1]
		k.h, k.w = max(k.h, s[2]), max(k.w, s[3])
	}
	k.b = xs[0].Shape()[0]
	k.y = newOutput[T](a, k.b, c, k.h, k.w)
	dims := make([]int, len(xs))
	for i := range dims {
		dims[i] = 4
	}
	fwd := newOp("concat", k.y.Shape(), dims, k.forward).returns(k.y)
	fwd.wrt = make([]bool, len(xs))
	for i := range fwd.wrt {
		fwd.wrt[i] = true
	}
	fwd.diff = func(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
		out := make(G.Nodes, len(inputs))
		off := 0
		for i := range inputs {
			dx := newOutput[T](a, k.ins[i]...)
			var err error
			if out[i], err = G.ApplyOp(newOp("concat_dx", dx.Shape(), []int{4}, k.slice(off, dx)).returns(dx), grad); err != nil {
				return nil, err
			}
			off += k.cs[i]
		}
		return out, nil
	}
	return G.ApplyOp(fwd, xs...)
}

func (k *concat[T]) forward(in []G.Value) (G.Value, error) {
	k.yv = raw[T](k.y)
	if len(k.xs) != len(in) {
		k.xs = make([][]T, len(in))
	}
	for i, v := range in {
		k.xs[i] = raw[T](v)
	}
	parRange(k.b*k.y.Shape()[1], k.h*k.w, k, &k.par)
	return k.y, nil
}

func (k *concat[T]) runRange(_, lo, hi int) {
	y, xs := k.yv, k.xs
	c := k.y.Shape()[1]
	hw := k.h * k.w
	for pl := lo; pl < hi; pl++ {
		b, ch := pl/c, pl%c
		i := 0
		for ch >= k.cs[i] {
			ch -= k.cs[i]
			i++
		}
		s := k.ins[i]
		src := xs[i][(b*s[1]+ch)*s[2]*s[3]:]
		dst := y[pl*hw : (pl+1)*hw]
		if s[2] == k.h && s[3] == k.w {
			copy(dst, src[:hw])
			continue
		}
		for r := range k.h {
			row := dst[r*k.w : (r+1)*k.w]
			if r >= s[2] {
				clear(row)
				continue
			}
			copy(row, src[r*s[3]:(r+1)*s[3]])
			clear(row[s[3]:])
		}
	}
}

// concatSlice copies input i's region (channels off.., its own H×W) of dY
// into dx.
type concatSlice[T Float] struct {
	k       *concat[T]
	off     int
	s       tensor.Shape
	dxT     *tensor.Dense
	par     parDone
	dy, dxv []T
}

func (k *concat[T]) slice(off int, dxT *tensor.Dense) func([]G.Value) (G.Value, error) {
	cs := &concatSlice[T]{k: k, off: off, s: dxT.Shape().Clone(), dxT: dxT}
	return func(in []G.Value) (G.Value, error) {
		cs.dy, cs.dxv = raw[T](in[0]), raw[T](cs.dxT)
		parRange(k.b*cs.s[1], cs.s[2]*cs.s[3], cs, &cs.par)
		return cs.dxT, nil
	}
}

func (cs *concatSlice[T]) runRange(_, lo, hi int) {
	k, s := cs.k, cs.s
	c := k.y.Shape()[1]
	hw := k.h * k.w
	for pl := lo; pl < hi; pl++ {
		b, ch := pl/s[1], pl%s[1]
		src := cs.dy[(b*c+cs.off+ch)*hw:]
		dst := cs.dxv[pl*s[2]*s[3] : (pl+1)*s[2]*s[3]]
		if s[2] == k.h && s[3] == k.w {
			copy(dst, src[:hw])
			continue
		}
		for r := range s[2] {
			copy(dst[r*s[3]:(r+1)*s[3]], src[r*k.w:r*k.w+s[3]])
		}
	}
}

// reshape copies its input into a buffer of another shape with the same
// elements (flatten: [B, C, H, W] → [B, C·H·W, 1, 1]). Stock Reshape's
// UnsafeDo reshapes its input tensor in place, which would change the shape of
// a buffer the producing op owns and reuses.
type reshape[T Float] struct {
	y, dx *tensor.Dense
}

func buildReshape[T Float](a *Buffers, x *G.Node, to tensor.Shape) (*G.Node, error) {
	xs := x.Shape()
	if xs.TotalSize() != to.TotalSize() {
		return nil, fmt.Errorf("train: reshape %v to %v", xs, to)
	}
	k := &reshape[T]{y: newOutput[T](a, to...), dx: newOutput[T](a, xs...)}
	fwd := newOp("flatten", to, []int{xs.Dims()}, func(in []G.Value) (G.Value, error) {
		copy(raw[T](k.y), raw[T](in[0]))
		return k.y, nil
	}).returns(k.y)
	fwd.wrt = []bool{true}
	fwd.diff = func(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
		dx, err := G.ApplyOp(newOp("flatten_dx", xs, []int{to.Dims()}, func(in []G.Value) (G.Value, error) {
			copy(raw[T](k.dx), raw[T](in[0]))
			return k.dx, nil
		}).returns(k.dx), grad)
		return G.Nodes{dx}, err
	}
	return G.ApplyOp(fwd, x)
}

// denseParts is the fixed number of slices each dense GEMM is split into
// (batch rows for y and dX, input columns for dW): every slice is one GEMM
// whose result does not depend on which goroutine runs it, so the thread
// count does not change the result.
const denseParts = 4

// dense is y = x·Wᵀ + b on x [B, In, 1, 1] (or any [B, ...] with In elements
// per example), W [Out, In] (PyTorch's layout), b [Out]; y is [B, Out, 1, 1].
type dense[T Float] struct {
	b, in, out int
	needDX     bool
	y          *tensor.Dense
	dw, db, dx *tensor.Dense
	sums       channelSummer[T]

	// per call (parPartsRange arguments)
	par         parDone
	phase       convPhase
	xv, wv, dyv []T
	bv, res     []T // res: y, dW or dX
}

// newDenseKernel returns the kernel of a dense layer on input xs, weights ws.
func newDenseKernel[T Float](a *Buffers, xs, ws tensor.Shape, needDX bool) *dense[T] {
	k := &dense[T]{b: xs[0], in: ws[1], out: ws[0], needDX: needDX}
	k.y = newOutput[T](a, k.b, k.out, 1, 1)
	k.dw = newOutput[T](a, ws...)
	k.db = newOutput[T](a, k.out)
	if needDX {
		k.dx = newOutput[T](a, xs...)
	}
	return k
}

func buildDense[T Float](a *Buffers, x, w, b *G.Node, needDX bool) (*G.Node, error) {
	xs, ws := x.Shape(), w.Shape()
	if ws.Dims() != 2 || xs.TotalSize() != xs[0]*ws[1] || !b.Shape().Eq(tensor.Shape{ws[0]}) {
		return nil, fmt.Errorf("train: dense: input %v, weights %v, bias %v", xs, ws, b.Shape())
	}
	k := newDenseKernel[T](a, xs, ws, needDX)
	fwd := newOp("dense", k.y.Shape(), []int{xs.Dims(), 2, 1}, k.forward).returns(k.y)
	fwd.wrt = []bool{needDX, true, true}
	fwd.diff = func(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
		out := make(G.Nodes, 3)
		var err error
		if out[1], err = G.ApplyOp(newOp("dense_dw", ws, []int{xs.Dims(), 4}, k.gradW).returns(k.dw), inputs[0], grad); err != nil {
			return nil, err
		}
		if out[2], err = G.ApplyOp(newOp("dense_db", k.db.Shape(), []int{4}, k.gradB).returns(k.db), grad); err != nil {
			return nil, err
		}
		if needDX {
			if out[0], err = G.ApplyOp(newOp("dense_dx", xs, []int{4, 2}, k.gradX).returns(k.dx), grad, inputs[1]); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return G.ApplyOp(fwd, x, w, b)
}

func (k *dense[T]) forward(in []G.Value) (G.Value, error) {
	k.phase, k.xv, k.wv, k.bv, k.res = phaseForward, raw[T](in[0]), raw[T](in[1]), raw[T](in[2]), raw[T](k.y)
	parPartsRange(k.b, denseParts, k, &k.par)
	return k.y, nil
}

// gradW: inputs x, dY; dW = dYᵀ·x.
func (k *dense[T]) gradW(in []G.Value) (G.Value, error) {
	k.phase, k.xv, k.dyv, k.res = phaseGradW, raw[T](in[0]), raw[T](in[1]), raw[T](k.dw)
	parPartsRange(k.in, denseParts, k, &k.par)
	return k.dw, nil
}

func (k *dense[T]) gradB(in []G.Value) (G.Value, error) {
	k.sums.run(raw[T](in[0]), k.b, k.out, 1, raw[T](k.db))
	return k.db, nil
}

// gradX: inputs dY, W; dX = dY·W.
func (k *dense[T]) gradX(in []G.Value) (G.Value, error) {
	k.phase, k.dyv, k.wv, k.res = phaseGradX, raw[T](in[0]), raw[T](in[1]), raw[T](k.dx)
	parPartsRange(k.b, denseParts, k, &k.par)
	return k.dx, nil
}

// runRange does batch rows (forward, gradX) or input columns (gradW) [lo, hi).
func (k *dense[T]) runRange(_, lo, hi int) {
	switch k.phase {
	case phaseForward:
		for i := lo; i < hi; i++ {
			copy(k.res[i*k.out:(i+1)*k.out], k.bv)
		}
		gemm(false, true, hi-lo, k.out, k.in, 1, k.xv[lo*k.in:], k.in, k.wv, k.in, 1, k.res[lo*k.out:], k.out)
	case phaseGradW:
		gemm(true, false, k.out, hi-lo, k.b, 1, k.dyv, k.out, k.xv[lo:], k.in, 0, k.res[lo:], k.in)
	case phaseGradX:
		gemm(false, false, hi-lo, k.in, k.out, 1, k.dyv[lo*k.out:], k.out, k.wv, k.in, 0, k.res[lo*k.in:], k.in)
	}
}

// softmaxCE is the mean softmax cross-entropy of logits [B, K, 1, 1] against
// integer labels, over the first valid rows of the batch (the rest is padding
// of a short evaluation batch). It also counts correct argmax predictions.
// Labels are not a graph input: Set stores them before each run.
type softmaxCE[T Float] struct {
	b, k    int
	labels  []int32
	valid   int
	p       []float64 // softmax, private
	lossSum float64   // Σ over valid rows
	correct int
	out     *scalar[T]
	dz      *tensor.Dense
}

func buildSoftmaxCE[T Float](a *Buffers, z *G.Node) (*G.Node, *softmaxCE[T], error) {
	zs := z.Shape()
	if zs.Dims() != 4 || zs[2] != 1 || zs[3] != 1 {
		return nil, nil, fmt.Errorf("train: softmax cross-entropy: logits %v, want [B, K, 1, 1]", zs)
	}
	k := &softmaxCE[T]{b: zs[0], k: zs[1], labels: make([]int32, zs[0]), valid: zs[0],
		p: make([]float64, zs[0]*zs[1]), out: newScalar[T](), dz: newOutput[T](a, zs...)}
	fwd := newOp("softmax_ce", tensor.ScalarShape(), []int{4}, k.forward)
	fwd.wrt = []bool{true}
	fwd.diff = func(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
		dz, err := G.ApplyOp(newOp("softmax_ce_dz", zs, []int{0, 0}, k.backward).returns(k.dz), output, grad)
		return G.Nodes{dz}, err
	}
	n, err := G.ApplyOp(fwd, z)
	return n, k, err
}

// Set stores the labels of the next run; rows ≥ len(labels) are padding.
func (k *softmaxCE[T]) Set(labels []int32) {
	k.valid = copy(k.labels, labels)
}

func (k *softmaxCE[T]) forward(in []G.Value) (G.Value, error) {
	z := raw[T](in[0])
	k.lossSum, k.correct = 0, 0
	for i := range k.valid {
		zr, pr := z[i*k.k:(i+1)*k.k], k.p[i*k.k:(i+1)*k.k]
		y := int(k.labels[i])
		if y < 0 || y >= k.k {
			return nil, fmt.Errorf("train: label %d outside [0, %d)", y, k.k)
		}
		m, arg := float64(zr[0]), 0
		for j, v := range zr {
			if float64(v) > m {
				m, arg = float64(v), j
			}
		}
		var s float64
		for j, v := range zr {
			e := math.Exp(float64(v) - m)
			pr[j] = e
			s += e
		}
		for j := range pr {
			pr[j] /= s
		}
		k.lossSum += math.Log(s) + m - float64(zr[y])
		if arg == y {
			k.correct++
		}
	}
	return k.out.set(k.lossSum / float64(max(k.valid, 1))), nil
}

// backward: inputs loss (for ordering), dLoss; dz = dLoss·(p − onehot)/valid.
func (k *softmaxCE[T]) backward(in []G.Value) (G.Value, error) {
	g := float64(scalarOf[T](in[1])) / float64(max(k.valid, 1))
	dz := raw[T](k.dz)
	clear(dz[k.valid*k.k:])
	for i := range k.valid {
		for j := range k.k {
			d := k.p[i*k.k+j]
			if j == int(k.labels[i]) {
				d--
			}
			dz[i*k.k+j] = T(g * d)
		}
	}
	return k.dz, nil
}

// dropout is inverted dropout: y = x ⊙ m, m_i = 0 with probability rate, else
// 1/(1−rate), so evaluation needs no rescaling. The mask is drawn serially
// from one stream (cheap next to the layers around it: it sits on the
// classifier's input) and kept for the backward pass, dx = dy ⊙ m.
type dropout[T Float] struct {
	rate  float64
	scale T
	rng   *rand.PCG
	mask  []T
	y, dx *tensor.Dense
}

func buildDropout[T Float](a *Buffers, x *G.Node, rate float64, rng *rand.PCG) (*G.Node, error) {
	if !(rate >= 0 && rate < 1) || rng == nil {
		return nil, fmt.Errorf("dropout rate %g: want [0, 1) and a random stream", rate)
	}
	xs := x.Shape()
	k := &dropout[T]{rate: rate, scale: T(1 / (1 - rate)), rng: rng, mask: make([]T, xs.TotalSize()),
		y: newOutput[T](a, xs...), dx: newOutput[T](a, xs...)}
	fwd := newOp("dropout", xs, []int{xs.Dims()}, k.forward).returns(k.y)
	fwd.wrt = []bool{true}
	fwd.diff = func(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
		dx, err := G.ApplyOp(newOp("dropout_dx", xs, []int{xs.Dims()}, k.backward).returns(k.dx), grad)
		return G.Nodes{dx}, err
	}
	return G.ApplyOp(fwd, x)
}

func (k *dropout[T]) forward(in []G.Value) (G.Value, error) {
	x, y := raw[T](in[0]), raw[T](k.y)
	// A draw below rate·2⁵³ drops: exact for every rate a float64 holds.
	cut := uint64(k.rate * (1 << 53))
	for i := range k.mask {
		m := k.scale
		if k.rng.Uint64()>>11 < cut {
			m = 0
		}
		k.mask[i] = m
		y[i] = x[i] * m
	}
	return k.y, nil
}

func (k *dropout[T]) backward(in []G.Value) (G.Value, error) {
	dy, dx := raw[T](in[0]), raw[T](k.dx)
	for i, m := range k.mask {
		dx[i] = dy[i] * m
	}
	return k.dx, nil
}

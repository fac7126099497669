package train

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// relu is max(x, 0); its gradient passes where the output is positive. Stock
// Rectify builds x ⊙ (x ≥ 0) as two nodes, each allocating every step.
type relu[T Float] struct {
	y, dx *tensor.Dense
}

func buildReLU[T Float](x *G.Node) (*G.Node, error) {
	xs := x.Shape()
	k := &relu[T]{y: newDense[T](xs...), dx: newDense[T](xs...)}
	fwd := newOp("relu", xs, []int{xs.Dims()}, k.forward)
	fwd.wrt = []bool{true}
	fwd.diff = func(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
		dx, err := G.ApplyOp(newOp("relu_dx", xs, []int{xs.Dims(), xs.Dims()}, k.backward), output, grad)
		return G.Nodes{dx}, err
	}
	return G.ApplyOp(fwd, x)
}

func (k *relu[T]) forward(in []G.Value) (G.Value, error) {
	x, y := raw[T](in[0]), raw[T](k.y)
	parFor(len(y), 1, func(lo, hi int) {
		for i, v := range x[lo:hi] {
			y[lo+i] = max(v, 0)
		}
	})
	return k.y, nil
}

// backward: inputs Y, dY.
func (k *relu[T]) backward(in []G.Value) (G.Value, error) {
	y, dy, dx := raw[T](in[0]), raw[T](in[1]), raw[T](k.dx)
	parFor(len(dx), 1, func(lo, hi int) {
		for i, v := range y[lo:hi] {
			if v > 0 {
				dx[lo+i] = dy[lo+i]
			} else {
				dx[lo+i] = 0
			}
		}
	})
	return k.dx, nil
}

// add sums any number of same-shaped inputs; each input's gradient is the
// output's. Stock Add is binary, so n inputs would take n−1 allocating nodes.
type add[T Float] struct {
	y *tensor.Dense
}

func buildAdd[T Float](xs []*G.Node) (*G.Node, error) {
	s := xs[0].Shape()
	dims := make([]int, len(xs))
	for i, x := range xs {
		if !x.Shape().Eq(s) {
			return nil, fmt.Errorf("train: add: input shapes %v and %v", s, x.Shape())
		}
		dims[i] = s.Dims()
	}
	k := &add[T]{y: newDense[T](s...)}
	fwd := newOp("add", s, dims, k.forward)
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
	y := raw[T](k.y)
	xs := make([][]T, len(in))
	for i, v := range in {
		xs[i] = raw[T](v)
	}
	parFor(len(y), len(in), func(lo, hi int) {
		copy(y[lo:hi], xs[0][lo:hi])
		for _, x := range xs[1:] {
			for i, v := range x[lo:hi] {
				y[lo+i] += v
			}
		}
	})
	return k.y, nil
}

// concat stacks inputs along channels; an input smaller than the largest
// height or width is zero-padded at the bottom and right (arch.KindConcat).
// Stock Concat needs equal spatial sizes.
type concat[T Float] struct {
	b, h, w int
	cs      []int // channels per input
	ins     []tensor.Shape
	y       *tensor.Dense
}

func buildConcat[T Float](xs []*G.Node) (*G.Node, error) {
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
	k.y = newDense[T](k.b, c, k.h, k.w)
	dims := make([]int, len(xs))
	for i := range dims {
		dims[i] = 4
	}
	fwd := newOp("concat", k.y.Shape(), dims, k.forward)
	fwd.wrt = make([]bool, len(xs))
	for i := range fwd.wrt {
		fwd.wrt[i] = true
	}
	fwd.diff = func(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
		out := make(G.Nodes, len(inputs))
		off := 0
		for i := range inputs {
			dx := newDense[T](k.ins[i]...)
			var err error
			if out[i], err = G.ApplyOp(newOp("concat_dx", dx.Shape(), []int{4}, k.slice(off, dx)), grad); err != nil {
				return nil, err
			}
			off += k.cs[i]
		}
		return out, nil
	}
	return G.ApplyOp(fwd, xs...)
}

func (k *concat[T]) forward(in []G.Value) (G.Value, error) {
	y := raw[T](k.y)
	xs := make([][]T, len(in))
	for i, v := range in {
		xs[i] = raw[T](v)
	}
	c := k.y.Shape()[1]
	hw := k.h * k.w
	parFor(k.b*c, hw, func(lo, hi int) {
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
	})
	return k.y, nil
}

// slice returns a Do that copies input i's region (channels off.., its own
// H×W) of dY into dx.
func (k *concat[T]) slice(off int, dxT *tensor.Dense) func([]G.Value) (G.Value, error) {
	s := dxT.Shape()
	return func(in []G.Value) (G.Value, error) {
		dy, dx := raw[T](in[0]), raw[T](dxT)
		c := k.y.Shape()[1]
		hw := k.h * k.w
		parFor(k.b*s[1], s[2]*s[3], func(lo, hi int) {
			for pl := lo; pl < hi; pl++ {
				b, ch := pl/s[1], pl%s[1]
				src := dy[(b*c+off+ch)*hw:]
				dst := dx[pl*s[2]*s[3] : (pl+1)*s[2]*s[3]]
				for r := range s[2] {
					copy(dst[r*s[3]:(r+1)*s[3]], src[r*k.w:r*k.w+s[3]])
				}
			}
		})
		return dxT, nil
	}
}

// reshape copies its input into a buffer of another shape with the same
// elements (flatten: [B, C, H, W] → [B, C·H·W, 1, 1]). Stock Reshape's
// UnsafeDo reshapes its input tensor in place, which would change the shape of
// a buffer the producing op owns and reuses.
type reshape[T Float] struct {
	y, dx *tensor.Dense
}

func buildReshape[T Float](x *G.Node, to tensor.Shape) (*G.Node, error) {
	xs := x.Shape()
	if xs.TotalSize() != to.TotalSize() {
		return nil, fmt.Errorf("train: reshape %v to %v", xs, to)
	}
	k := &reshape[T]{y: newDense[T](to...), dx: newDense[T](xs...)}
	fwd := newOp("flatten", to, []int{xs.Dims()}, func(in []G.Value) (G.Value, error) {
		copy(raw[T](k.y), raw[T](in[0]))
		return k.y, nil
	})
	fwd.wrt = []bool{true}
	fwd.diff = func(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
		dx, err := G.ApplyOp(newOp("flatten_dx", xs, []int{to.Dims()}, func(in []G.Value) (G.Value, error) {
			copy(raw[T](k.dx), raw[T](in[0]))
			return k.dx, nil
		}), grad)
		return G.Nodes{dx}, err
	}
	return G.ApplyOp(fwd, x)
}

// dense is y = x·Wᵀ + b on x [B, In, 1, 1] (or any [B, ...] with In elements
// per example), W [Out, In] (PyTorch's layout), b [Out]; y is [B, Out, 1, 1].
type dense[T Float] struct {
	b, in, out int
	needDX     bool
	y          *tensor.Dense
	dw, db, dx *tensor.Dense
}

func buildDense[T Float](x, w, b *G.Node, needDX bool) (*G.Node, error) {
	xs, ws := x.Shape(), w.Shape()
	if ws.Dims() != 2 || xs.TotalSize() != xs[0]*ws[1] || !b.Shape().Eq(tensor.Shape{ws[0]}) {
		return nil, fmt.Errorf("train: dense: input %v, weights %v, bias %v", xs, ws, b.Shape())
	}
	k := &dense[T]{b: xs[0], in: ws[1], out: ws[0], needDX: needDX}
	k.y = newDense[T](k.b, k.out, 1, 1)
	k.dw = newDense[T](ws...)
	k.db = newDense[T](k.out)
	if needDX {
		k.dx = newDense[T](xs...)
	}
	fwd := newOp("dense", k.y.Shape(), []int{xs.Dims(), 2, 1}, k.forward)
	fwd.wrt = []bool{needDX, true, true}
	fwd.diff = func(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
		out := make(G.Nodes, 3)
		var err error
		if out[1], err = G.ApplyOp(newOp("dense_dw", ws, []int{xs.Dims(), 4}, k.gradW), inputs[0], grad); err != nil {
			return nil, err
		}
		if out[2], err = G.ApplyOp(newOp("dense_db", k.db.Shape(), []int{4}, k.gradB), grad); err != nil {
			return nil, err
		}
		if needDX {
			if out[0], err = G.ApplyOp(newOp("dense_dx", xs, []int{4, 2}, k.gradX), grad, inputs[1]); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return G.ApplyOp(fwd, x, w, b)
}

func (k *dense[T]) forward(in []G.Value) (G.Value, error) {
	x, w, bias, y := raw[T](in[0]), raw[T](in[1]), raw[T](in[2]), raw[T](k.y)
	for i := range k.b {
		copy(y[i*k.out:(i+1)*k.out], bias)
	}
	gemm(false, true, k.b, k.out, k.in, 1, x, k.in, w, k.in, 1, y, k.out)
	return k.y, nil
}

// gradW: inputs x, dY; dW = dYᵀ·x.
func (k *dense[T]) gradW(in []G.Value) (G.Value, error) {
	x, dy := raw[T](in[0]), raw[T](in[1])
	gemm(true, false, k.out, k.in, k.b, 1, dy, k.out, x, k.in, 0, raw[T](k.dw), k.in)
	return k.dw, nil
}

func (k *dense[T]) gradB(in []G.Value) (G.Value, error) {
	channelSums(raw[T](in[0]), k.b, k.out, 1, raw[T](k.db))
	return k.db, nil
}

// gradX: inputs dY, W; dX = dY·W.
func (k *dense[T]) gradX(in []G.Value) (G.Value, error) {
	dy, w := raw[T](in[0]), raw[T](in[1])
	gemm(false, false, k.b, k.in, k.out, 1, dy, k.out, w, k.in, 0, raw[T](k.dx), k.in)
	return k.dx, nil
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

func buildSoftmaxCE[T Float](z *G.Node) (*G.Node, *softmaxCE[T], error) {
	zs := z.Shape()
	if zs.Dims() != 4 || zs[2] != 1 || zs[3] != 1 {
		return nil, nil, fmt.Errorf("train: softmax cross-entropy: logits %v, want [B, K, 1, 1]", zs)
	}
	k := &softmaxCE[T]{b: zs[0], k: zs[1], labels: make([]int32, zs[0]), valid: zs[0],
		p: make([]float64, zs[0]*zs[1]), out: newScalar[T](), dz: newDense[T](zs...)}
	fwd := newOp("softmax_ce", tensor.ScalarShape(), []int{4}, k.forward)
	fwd.wrt = []bool{true}
	fwd.diff = func(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
		dz, err := G.ApplyOp(newOp("softmax_ce_dz", zs, []int{0, 0}, k.backward), output, grad)
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

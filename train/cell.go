package train

import (
	"fmt"
	"math"
)

// A recurrent cell searched by nas-rnn or enas-rnn is a small graph of vector
// primitives evaluated once per time step with the same weights. cellExec
// runs one for a batch of streams, forward step by step and backward through
// the steps in reverse (truncated BPTT), straight on flat buffers: at a few
// hundred units a step is a handful of small GEMMs, and a Gorgonia graph per
// unrolled window would cost more in bookkeeping than the arithmetic.

// cellKind is a cell primitive.
type cellKind uint8

const (
	cellX        cellKind = iota // x_t
	cellH                        // h_{t−1}
	cellC                        // c_{t−1}
	cellLinear                   // x·W (+ b)
	cellAdd                      // Σ inputs
	cellMul                      // Π inputs
	cellMean                     // mean of inputs
	cellTanh                     // tanh
	cellSigmoid                  // σ
	cellReLU                     // max(x, 0)
	cellIdentity                 // a copy
	cellHighway                  // (c, f, s) ↦ s + c⊙(f − s)
	cellConcat                   // [a, b, …] per stream
)

// cellNode is one primitive. Linear nodes own W (in×size, row-major) at
// params[w:] and, when b ≥ 0, a bias at params[b:].
type cellNode struct {
	kind cellKind
	in   []int
	size int
	w, b int
}

// cellSpec is a cell: its nodes in topological order, the node whose output
// is h_t (out) and the one that is c_t (mem, −1 for none), and the number of
// parameters the nodes' offsets index.
type cellSpec struct {
	nodes   []cellNode
	out     int
	mem     int
	nparams int
}

// cellExec runs a cellSpec for batch streams over up to maxT steps.
type cellExec[T Float] struct {
	spec   cellSpec
	batch  int
	params []T
	grads  []T
	act    [][][]T // act[t][i]: node i's output at step t, batch×size
	d      [][]T   // d[i]: gradient of node i's output at the step being differentiated
}

func newCellExec[T Float](spec cellSpec, batch, maxT int, params, grads []T) (*cellExec[T], error) {
	if len(params) != spec.nparams || len(grads) != spec.nparams {
		return nil, fmt.Errorf("train: cell: %d parameters and %d gradients for a cell of %d", len(params), len(grads), spec.nparams)
	}
	e := &cellExec[T]{spec: spec, batch: batch, params: params, grads: grads, act: make([][][]T, maxT), d: make([][]T, len(spec.nodes))}
	for t := range e.act {
		e.act[t] = make([][]T, len(spec.nodes))
		for i, n := range spec.nodes {
			if n.kind > cellC {
				e.act[t][i] = make([]T, batch*n.size)
			}
		}
	}
	for i, n := range spec.nodes {
		e.d[i] = make([]T, batch*n.size)
	}
	return e, nil
}

// forward computes step t from x (batch×E), h and c (batch×H; c nil for a
// cell without memory) and returns h_t and c_t, which stay valid until step t
// is computed again. The inputs must stay unchanged until backward of step t.
func (e *cellExec[T]) forward(t int, x, h, c []T) (hOut, cOut []T) {
	a := e.act[t]
	for i, n := range e.spec.nodes {
		y := a[i]
		switch n.kind {
		case cellX:
			a[i] = x
		case cellH:
			a[i] = h
		case cellC:
			a[i] = c
		case cellLinear:
			in := e.spec.nodes[n.in[0]].size
			w := e.params[n.w : n.w+in*n.size]
			gemm(false, false, e.batch, n.size, in, 1, a[n.in[0]], in, w, n.size, 0, y, n.size)
			if n.b >= 0 {
				bias := e.params[n.b : n.b+n.size]
				for r := range e.batch {
					row := y[r*n.size : (r+1)*n.size]
					for j := range row {
						row[j] += bias[j]
					}
				}
			}
		case cellAdd, cellMean:
			copy(y, a[n.in[0]])
			for _, j := range n.in[1:] {
				for k, v := range a[j] {
					y[k] += v
				}
			}
			if n.kind == cellMean {
				s := 1 / T(len(n.in))
				for k := range y {
					y[k] *= s
				}
			}
		case cellMul:
			copy(y, a[n.in[0]])
			for _, j := range n.in[1:] {
				for k, v := range a[j] {
					y[k] *= v
				}
			}
		case cellTanh:
			for k, v := range a[n.in[0]] {
				y[k] = T(math.Tanh(float64(v)))
			}
		case cellSigmoid:
			for k, v := range a[n.in[0]] {
				y[k] = T(1 / (1 + math.Exp(-float64(v))))
			}
		case cellReLU:
			for k, v := range a[n.in[0]] {
				y[k] = max(v, 0)
			}
		case cellIdentity:
			copy(y, a[n.in[0]])
		case cellHighway:
			g, f, s := a[n.in[0]], a[n.in[1]], a[n.in[2]]
			for k := range y {
				y[k] = s[k] + g[k]*(f[k]-s[k])
			}
		case cellConcat:
			at := 0
			for _, j := range n.in {
				w := e.spec.nodes[j].size
				for r := range e.batch {
					copy(y[r*n.size+at:r*n.size+at+w], a[j][r*w:(r+1)*w])
				}
				at += w
			}
		}
	}
	if e.spec.mem >= 0 {
		cOut = a[e.spec.mem]
	}
	return a[e.spec.out], cOut
}

// backward differentiates step t given dh and dc, the gradients of the loss
// with respect to h_t and c_t (dc nil: none), adds the weights' gradients to
// grads and writes the gradients with respect to x, h_{t−1} and c_{t−1} into
// dx, dhPrev and dcPrev (each may be nil when not needed).
func (e *cellExec[T]) backward(t int, dh, dc, dx, dhPrev, dcPrev []T) {
	a := e.act[t]
	for i := range e.d {
		clear(e.d[i])
	}
	addInto(e.d[e.spec.out], dh)
	if e.spec.mem >= 0 && dc != nil {
		addInto(e.d[e.spec.mem], dc)
	}
	for i := len(e.spec.nodes) - 1; i >= 0; i-- {
		n, dy, y := e.spec.nodes[i], e.d[i], a[i]
		switch n.kind {
		case cellX:
			if dx != nil {
				copy(dx, dy)
			}
		case cellH:
			if dhPrev != nil {
				copy(dhPrev, dy)
			}
		case cellC:
			if dcPrev != nil {
				copy(dcPrev, dy)
			}
		case cellLinear:
			j := n.in[0]
			in := e.spec.nodes[j].size
			w, gw := e.params[n.w:n.w+in*n.size], e.grads[n.w:n.w+in*n.size]
			gemm(true, false, in, n.size, e.batch, 1, a[j], in, dy, n.size, 1, gw, n.size)
			gemm(false, true, e.batch, in, n.size, 1, dy, n.size, w, n.size, 1, e.d[j], in)
			if n.b >= 0 {
				gb := e.grads[n.b : n.b+n.size]
				for r := range e.batch {
					for k, v := range dy[r*n.size : (r+1)*n.size] {
						gb[k] += v
					}
				}
			}
		case cellAdd, cellMean:
			s := T(1)
			if n.kind == cellMean {
				s = 1 / T(len(n.in))
			}
			for _, j := range n.in {
				dj := e.d[j]
				for k, v := range dy {
					dj[k] += s * v
				}
			}
		case cellMul:
			// d/dx_j Π x = Π_{m≠j} x_m, recomputed: cells multiply two or three.
			for p, j := range n.in {
				dj := e.d[j]
				for k, v := range dy {
					for q, m := range n.in {
						if q != p {
							v *= a[m][k]
						}
					}
					dj[k] += v
				}
			}
		case cellTanh:
			dj := e.d[n.in[0]]
			for k, v := range dy {
				dj[k] += v * (1 - y[k]*y[k])
			}
		case cellSigmoid:
			dj := e.d[n.in[0]]
			for k, v := range dy {
				dj[k] += v * y[k] * (1 - y[k])
			}
		case cellReLU:
			dj := e.d[n.in[0]]
			for k, v := range dy {
				if y[k] > 0 {
					dj[k] += v
				}
			}
		case cellIdentity:
			addInto(e.d[n.in[0]], dy)
		case cellHighway:
			g, f, s := a[n.in[0]], a[n.in[1]], a[n.in[2]]
			dg, df, ds := e.d[n.in[0]], e.d[n.in[1]], e.d[n.in[2]]
			for k, v := range dy {
				dg[k] += v * (f[k] - s[k])
				df[k] += v * g[k]
				ds[k] += v * (1 - g[k])
			}
		case cellConcat:
			at := 0
			for _, j := range n.in {
				w := e.spec.nodes[j].size
				for r := range e.batch {
					addInto(e.d[j][r*w:(r+1)*w], dy[r*n.size+at:r*n.size+at+w])
				}
				at += w
			}
		}
	}
}

// addInto adds src into dst element-wise.
func addInto[T Float](dst, src []T) {
	for k, v := range src {
		dst[k] += v
	}
}

// respec switches the executor to another cell of the same batch and
// steps, keeping its buffers when every node has the size and the
// input-or-computed role it had (the children of one supernet do).
func (e *cellExec[T]) respec(spec cellSpec) {
	same := len(spec.nodes) == len(e.spec.nodes) && spec.nparams == e.spec.nparams
	for i := 0; same && i < len(spec.nodes); i++ {
		a, b := spec.nodes[i], e.spec.nodes[i]
		same = a.size == b.size && (a.kind <= cellC) == (b.kind <= cellC)
	}
	if same {
		e.spec = spec
		return
	}
	f, err := newCellExec(spec, e.batch, len(e.act), e.params, e.grads)
	if err != nil {
		panic("train: cell: respec: " + err.Error()) // the caller's spec indexes the same parameters
	}
	*e = *f
}

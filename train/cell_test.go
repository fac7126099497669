package train

import (
	"math"
	"math/rand/v2"
	"testing"
)

// cellBuilder assembles cellSpecs by hand for tests.
type cellBuilder struct{ spec cellSpec }

func (b *cellBuilder) node(kind cellKind, size int, in ...int) int {
	b.spec.nodes = append(b.spec.nodes, cellNode{kind: kind, in: in, size: size, w: -1, b: -1})
	return len(b.spec.nodes) - 1
}

func (b *cellBuilder) linear(size int, bias bool, in int) int {
	i := b.node(cellLinear, size, in)
	n := &b.spec.nodes[i]
	n.w = b.spec.nparams
	b.spec.nparams += b.spec.nodes[in].size * size
	if bias {
		n.b = b.spec.nparams
		b.spec.nparams += size
	}
	return i
}

// lstmCell is an LSTM written with the primitives (gates i, f, o, u).
func lstmCell(E, H int) cellSpec {
	b := &cellBuilder{}
	x, h, c := b.node(cellX, E), b.node(cellH, H), b.node(cellC, H)
	gate := func(act cellKind) int {
		return b.node(act, H, b.node(cellAdd, H, b.linear(H, true, x), b.linear(H, false, h)))
	}
	i, f, o, u := gate(cellSigmoid), gate(cellSigmoid), gate(cellSigmoid), gate(cellTanh)
	ct := b.node(cellAdd, H, b.node(cellMul, H, f, c), b.node(cellMul, H, i, u))
	b.spec.mem = ct
	b.spec.out = b.node(cellMul, H, o, b.node(cellTanh, H, ct))
	return b.spec
}

// everyKindCell uses every primitive, ENAS's highway node included.
func everyKindCell(E, H int) cellSpec {
	b := &cellBuilder{}
	x, h := b.node(cellX, E), b.node(cellH, H)
	xh := b.node(cellConcat, E+H, x, h)
	g := b.node(cellSigmoid, H, b.node(cellAdd, H, b.linear(H, true, xh), b.linear(H, false, h)))
	f := b.node(cellReLU, H, b.linear(H, false, h))
	s1 := b.node(cellHighway, H, g, f, h)
	s2 := b.node(cellTanh, H, b.node(cellIdentity, H, b.linear(H, true, s1)))
	b.spec.out = b.node(cellMul, H, b.node(cellMean, H, s1, s2), g)
	b.spec.mem = -1
	return b.spec
}

// cellLoss runs T steps from h0, c0 and returns Σ_t ⟨r_t, h_t⟩ + ⟨q_t, c_t⟩.
func cellLoss(e *cellExec[float64], xs, rs, qs [][]float64, h0, c0 []float64) float64 {
	h, c := h0, c0
	loss := 0.0
	for t := range xs {
		h, c = e.forward(t, xs[t], h, c)
		for k := range h {
			loss += rs[t][k] * h[k]
			if c != nil {
				loss += qs[t][k] * c[k]
			}
		}
	}
	return loss
}

func TestCellGradients(t *testing.T) {
	const E, H, B, T = 3, 4, 2, 3
	for name, spec := range map[string]cellSpec{"lstm": lstmCell(E, H), "every kind": everyKindCell(E, H)} {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			vec := func(n int) []float64 {
				v := make([]float64, n)
				for i := range v {
					v[i] = r.Float64()*2 - 1
				}
				return v
			}
			params, grads := vec(spec.nparams), make([]float64, spec.nparams)
			e, err := newCellExec(spec, B, T, params, grads)
			if err != nil {
				t.Fatal(err)
			}
			var xs, rs, qs [][]float64
			for range T {
				xs, rs, qs = append(xs, vec(B*E)), append(rs, vec(B*H)), append(qs, vec(B*H))
			}
			h0, c0 := vec(B*H), vec(B*H)
			if spec.mem < 0 {
				c0 = nil
			}
			cellLoss(e, xs, rs, qs, h0, c0)
			// Backward through time: dh_t = r_t + the gradient from step t+1.
			dh, dc := make([]float64, B*H), make([]float64, B*H)
			dxs := make([][]float64, T)
			dhPrev, dcPrev := make([]float64, B*H), make([]float64, B*H)
			for s := T - 1; s >= 0; s-- {
				for k := range dh {
					dh[k] += rs[s][k]
					dc[k] += qs[s][k]
				}
				dxs[s] = make([]float64, B*E)
				var dcIn, dcOut []float64
				if spec.mem >= 0 {
					dcIn, dcOut = dc, dcPrev
				}
				e.backward(s, dh, dcIn, dxs[s], dhPrev, dcOut)
				copy(dh, dhPrev)
				copy(dc, dcPrev)
			}
			numeric := func(v []float64, k int) float64 {
				const eps = 1e-6
				old := v[k]
				v[k] = old + eps
				up := cellLoss(e, xs, rs, qs, h0, c0)
				v[k] = old - eps
				down := cellLoss(e, xs, rs, qs, h0, c0)
				v[k] = old
				return (up - down) / (2 * eps)
			}
			check := func(what string, v, analytic []float64) {
				for k := range v {
					if n := numeric(v, k); math.Abs(n-analytic[k]) > 1e-6*(1+math.Abs(n)) {
						t.Errorf("%s[%d]: analytic %.9g, numeric %.9g", what, k, analytic[k], n)
					}
				}
			}
			check("params", params, grads)
			check("x_0", xs[0], dxs[0])
			check("x_2", xs[2], dxs[2])
			check("h_0", h0, dh)
			if c0 != nil {
				check("c_0", c0, dc)
			}
		})
	}
}

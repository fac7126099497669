package train

import "math"

// optimizer updates a Weights store's tensors in place from a training net's
// gradients. Its state is keyed by parameter name, so it can serve several
// nets sharing one store (ENAS) and a parameter a net does not use is left
// alone. Gorgonia's solvers are not used: their learning rate is fixed at
// construction (no schedules), and 0.9.18 has no Nesterov momentum.
type optimizer struct {
	kind     string
	momentum float64
	nesterov bool
	decay    float64
	state    map[string]*optState
}

// Adam's constants, Kingma & Ba 2015, Algorithm 1.
const (
	adamBeta1 = 0.9
	adamBeta2 = 0.999
	adamEps   = 1e-8
)

type optState struct {
	m, v []float64 // sgd: velocity in m; adam: first and second moments
	t    int       // updates applied (adam's bias correction)
}

func newOptimizer(c Config) *optimizer {
	return &optimizer{kind: c.Optimizer, momentum: c.Momentum, nesterov: c.Nesterov, decay: c.WeightDecay,
		state: map[string]*optState{}}
}

// update applies one step of learning rate lr with the gradients of n's last run.
func (o *optimizer) update(n *Net, lr float64) {
	for i, p := range n.params {
		st := o.state[p.Name]
		if st == nil {
			size := p.Value.Shape().TotalSize()
			st = &optState{m: make([]float64, size)}
			if o.kind == "adam" {
				st.v = make([]float64, size)
			}
			o.state[p.Name] = st
		}
		switch g := n.gradOf(i).(type) {
		case []float32:
			o.apply32(p.Value.Float32s(), g, st, lr)
		case []float64:
			o.apply64(p.Value.Float64s(), g, st, lr)
		}
	}
}

func (o *optimizer) apply32(w, g []float32, st *optState, lr float64) {
	c1, c2 := st.begin()
	for i := range w {
		w[i] = float32(o.delta(float64(w[i]), float64(g[i]), st, i, lr, c1, c2))
	}
}

func (o *optimizer) apply64(w, g []float64, st *optState, lr float64) {
	c1, c2 := st.begin()
	for i := range w {
		w[i] = o.delta(w[i], g[i], st, i, lr, c1, c2)
	}
}

// begin counts an update and returns Adam's bias corrections 1 − β^t.
func (st *optState) begin() (c1, c2 float64) {
	st.t++
	return 1 - math.Pow(adamBeta1, float64(st.t)), 1 - math.Pow(adamBeta2, float64(st.t))
}

// delta returns the updated value of weight w with gradient g, element i of
// st. Weight decay is L2: decay·w is added to the gradient.
func (o *optimizer) delta(w, g float64, st *optState, i int, lr, c1, c2 float64) float64 {
	g += o.decay * w
	if o.kind == "adam" {
		m := adamBeta1*st.m[i] + (1-adamBeta1)*g
		v := adamBeta2*st.v[i] + (1-adamBeta2)*g*g
		st.m[i], st.v[i] = m, v
		return w - lr*(m/c1)/(math.Sqrt(v/c2)+adamEps)
	}
	// PyTorch's SGD: v = μv + g; step = g + μv (Nesterov) or v.
	v := o.momentum*st.m[i] + g
	st.m[i] = v
	if o.nesterov {
		return w - lr*(g+o.momentum*v)
	}
	return w - lr*v
}

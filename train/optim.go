package train

import (
	"math"

	"gorgonia.org/tensor"
)

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
	// the update's parallel loop, one per element type (allocation-free)
	loop32 optLoop[float32]
	loop64 optLoop[float64]
}

// optLoop applies one update to a range of a tensor's elements; each element
// is independent of the others, so how the tensor is split changes nothing.
type optLoop[T Float] struct {
	o          *optimizer
	w, g       []T
	m, v       []float64
	lr, c1, c2 float64
	par        parDone
}

func (l *optLoop[T]) runRange(_, lo, hi int) {
	var v []float64
	if l.v != nil {
		v = l.v[lo:hi]
	}
	applyOptRange(l.o, l.w[lo:hi], l.g[lo:hi], l.m[lo:hi], v, l.lr, l.c1, l.c2)
}

// loopOf returns o's loop for T.
func loopOf[T Float](o *optimizer) *optLoop[T] {
	var zero T
	if _, ok := any(zero).(float32); ok {
		return any(&o.loop32).(*optLoop[T])
	}
	return any(&o.loop64).(*optLoop[T])
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
		// The gradient's dense tensor, read directly: gradOf's any would box
		// a slice header every step.
		g, ok := n.prog.value(n.grads[i]).(*tensor.Dense)
		if !ok {
			continue
		}
		if g.Dtype() == tensor.Float32 {
			applyOpt(o, p.Value.Float32s(), g.Float32s(), st, lr)
		} else {
			applyOpt(o, p.Value.Float64s(), g.Float64s(), st, lr)
		}
	}
}

// applyOpt updates w in place, one tight loop per rule. Weight decay is L2:
// decay·w is added to the gradient. Every element is independent, so the
// result does not depend on anything but the element's own state. Every
// product is rounded (float64(…)) before it is added, so no build fuses it
// into an FMA, whatever GOAMD64 or the inlining.
//
// The elements are split across threads (parRange): a serial update was
// 2.7 % of the reference CNN's 2-thread step (0.47 of 17.4 ms), and a
// growing share with more threads.
func applyOpt[T Float](o *optimizer, w, g []T, st *optState, lr float64) {
	c1, c2 := st.begin()
	n := len(w)
	l := loopOf[T](o)
	l.o, l.w, l.g, l.m, l.v, l.lr, l.c1, l.c2 = o, w, g[:n], st.m[:n], nil, lr, c1, c2
	if o.kind == "adam" {
		l.v = st.v[:n]
	}
	parRange(n, 1, l, &l.par)
	l.w, l.g, l.m, l.v = nil, nil, nil, nil
}

// applyOptRange applies the update to w with its gradients g and state m
// (and Adam's v), element by element.
func applyOptRange[T Float](o *optimizer, w, g []T, m, v []float64, lr, c1, c2 float64) {
	n := len(w)
	g, m = g[:n], m[:n]
	decay, mu := o.decay, o.momentum
	switch {
	case o.kind == "adam":
		v := v[:n]
		for i, wi := range w {
			wf := float64(wi)
			gi := float64(g[i]) + float64(decay*wf)
			mi := float64(adamBeta1*m[i]) + float64((1-adamBeta1)*gi)
			vi := float64(adamBeta2*v[i]) + float64((1-adamBeta2)*gi*gi)
			m[i], v[i] = mi, vi
			w[i] = T(wf - lr*(mi/c1)/(math.Sqrt(vi/c2)+adamEps))
		}
	case o.nesterov:
		// PyTorch's SGD: v = μv + g; step = g + μv (Nesterov) or v.
		for i, wi := range w {
			wf := float64(wi)
			gi := float64(g[i]) + float64(decay*wf)
			vi := float64(mu*m[i]) + gi
			m[i] = vi
			w[i] = T(wf - float64(lr*(gi+float64(mu*vi))))
		}
	default:
		for i, wi := range w {
			wf := float64(wi)
			gi := float64(g[i]) + float64(decay*wf)
			vi := float64(mu*m[i]) + gi
			m[i] = vi
			w[i] = T(wf - float64(lr*vi))
		}
	}
}

// begin counts an update and returns Adam's bias corrections 1 − β^t.
func (st *optState) begin() (c1, c2 float64) {
	st.t++
	return 1 - math.Pow(adamBeta1, float64(st.t)), 1 - math.Pow(adamBeta2, float64(st.t))
}

// delta is the rule applyOpt applies, for one element i of st (tests).
func (o *optimizer) delta(w, g float64, st *optState, i int, lr, c1, c2 float64) float64 {
	g += float64(o.decay * w)
	if o.kind == "adam" {
		m := float64(adamBeta1*st.m[i]) + float64((1-adamBeta1)*g)
		v := float64(adamBeta2*st.v[i]) + float64((1-adamBeta2)*g*g)
		st.m[i], st.v[i] = m, v
		return w - lr*(m/c1)/(math.Sqrt(v/c2)+adamEps)
	}
	v := float64(o.momentum*st.m[i]) + g
	st.m[i] = v
	if o.nesterov {
		return w - float64(lr*(g+float64(o.momentum*v)))
	}
	return w - float64(lr*v)
}

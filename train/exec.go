package train

import (
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	G "gorgonia.org/gorgonia"
)

// program runs a built graph. Gorgonia builds the graph and its gradient
// (G.Grad); program executes it, because the TapeMachine allocates an
// argument slice per instruction and per step (~10 KB per step on a child
// network). program sorts the nodes once, gives each step a preallocated
// argument slice and output, and so runs a training step without allocating.
//
// Every op in the graph is one of this package's (*op), a constant, an input,
// or the element-wise "+" with which G.Grad sums the gradient contributions of
// a node read by several consumers; program runs that one itself. Any other
// stock op is run through its own Do and may allocate (a test pins the
// allocation of a child's training step to zero).
type program[T Float] struct {
	steps  []execStep
	vals   []G.Value // per graph node, in execution order
	inputs []int     // nodes whose value is bound outside the graph
	nodes  G.Nodes   // execution order
	index  map[*G.Node]int
	spent  []time.Duration // per step, while profiling (nil: off)
	mem    *memPlan[T]     // nil without Buffers
	ran    bool            // mem checked after the first run
}

type execStep struct {
	out  int
	args []int     // indices into vals
	in   []G.Value // argument slice, reused every run
	op   *op       // this package's op, or nil
	add  []int     // stock element-wise "+" of two same-shape tensors: vals[add[0]] + vals[add[1]]
	sum  G.Value   // its preallocated output
	doer G.Op      // any other stock op
	node *G.Node   // for error messages
}

// newProgram sorts g and, with buf set, plans the memory of the outputs the
// build took from buf (plan.go); pins are the nodes read after a run.
func newProgram[T Float](g *G.ExprGraph, buf *Buffers, pins G.Nodes) (*program[T], error) {
	sorted, err := G.Sort(g)
	if err != nil {
		return nil, fmt.Errorf("train: sorting the graph: %w", err)
	}
	p := &program[T]{nodes: make(G.Nodes, len(sorted)), vals: make([]G.Value, len(sorted)), index: make(map[*G.Node]int, len(sorted))}
	// G.Sort puts the root first; execution runs leaves first.
	for i, nd := range sorted {
		p.nodes[len(sorted)-1-i] = nd
	}
	for i, nd := range p.nodes {
		p.index[nd] = i
	}
	for i, nd := range p.nodes {
		children := g.From(nd.ID())
		if nd.Op() == nil || children.Len() == 0 {
			if v := nd.Value(); v == nil {
				return nil, fmt.Errorf("train: graph input %v has no value", nd)
			}
			p.inputs = append(p.inputs, i)
			continue
		}
		st := execStep{out: i, node: nd}
		for children.Next() {
			c := children.Node().(*G.Node)
			j, ok := p.index[c]
			if !ok || j >= i {
				return nil, fmt.Errorf("train: graph node %v reads %v out of order", nd, c)
			}
			st.args = append(st.args, j)
		}
		st.in = make([]G.Value, len(st.args))
		switch o := nd.Op().(type) {
		case *op:
			st.op = o
		default:
			if isSameShapeAdd(nd, p.nodes, st.args) {
				st.add = st.args
				st.sum = newOutput[T](buf, nd.Shape()...)
			} else {
				st.doer = o
			}
		}
		p.steps = append(p.steps, st)
	}
	if buf != nil {
		var pin []int
		for _, nd := range pins {
			if i, ok := p.index[nd]; ok {
				pin = append(pin, i)
			}
		}
		sinkSteps(p)
		p.mem = planMemory(p, planOf[T](buf), pin)
	}
	return p, nil
}

// isSameShapeAdd reports whether nd is Gorgonia's element-wise addition of
// two tensors of nd's shape (how G.Grad sums gradient contributions).
func isSameShapeAdd(nd *G.Node, nodes G.Nodes, args []int) bool {
	o, ok := nd.Op().(interface{ String() string })
	if !ok || len(args) != 2 || nd.IsScalar() {
		return false
	}
	if s := o.String(); len(s) < 2 || s[:2] != "+ " {
		return false
	}
	return nodes[args[0]].Shape().Eq(nd.Shape()) && nodes[args[1]].Shape().Eq(nd.Shape())
}

// run executes every step once. A panic in an op is returned as an error.
func (p *program[T]) run() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("train: graph run panicked: %v\n%s", r, debug.Stack())
		}
	}()
	p.mem.bind()
	for _, i := range p.inputs {
		p.vals[i] = p.nodes[i].Value()
	}
	for k := range p.steps {
		st := &p.steps[k]
		for j, a := range st.args {
			st.in[j] = p.vals[a]
		}
		var t0 time.Time
		if p.spent != nil {
			t0 = time.Now()
		}
		var v G.Value
		switch {
		case st.op != nil:
			v, err = st.op.Do(st.in...)
		case st.add != nil:
			addTo(raw[T](st.in[0]), raw[T](st.in[1]), raw[T](st.sum))
			v = st.sum
		default:
			v, err = st.doer.Do(st.in...)
		}
		if err != nil {
			return fmt.Errorf("train: running %v: %w", st.node, err)
		}
		if p.spent != nil {
			p.spent[k] += time.Since(t0)
		}
		p.vals[st.out] = v
		if p.mem != nil && p.mem.poison {
			p.mem.afterStep(k)
		}
	}
	if !p.ran && p.mem != nil {
		if err := p.mem.check(p); err != nil {
			return err
		}
	}
	p.ran = true
	return nil
}

// value returns nd's value after the last run (nil for a node not in the
// graph). With Buffers, only a pinned node's value (newProgram) is kept to
// the end of the run: others share memory once dead.
func (p *program[T]) value(nd *G.Node) G.Value {
	i, ok := p.index[nd]
	if !ok {
		return nil
	}
	return p.vals[i]
}

// OpTime is the wall time a net's runs spent in one kind of op on one output
// shape, over the runs since profiling began (Net.ProfileOps).
type OpTime struct {
	Op    string // the op's name: conv, conv_dw, bn_dx, …
	Shape string // its output's shape
	Steps int    // how many steps of the program run it per run
	Time  time.Duration
}

// profile starts timing every step (on) or stops and forgets (off).
func (p *program[T]) profile(on bool) {
	p.spent = nil
	if on {
		p.spent = make([]time.Duration, len(p.steps))
	}
}

// opTimes sums the time spent per op kind and output shape.
func (p *program[T]) opTimes() []OpTime {
	byKey := map[[2]string]int{}
	var out []OpTime
	for k, d := range p.spent {
		st := &p.steps[k]
		name := "+"
		if st.op != nil {
			name = st.op.name
		} else if st.doer != nil {
			name, _, _ = strings.Cut(fmt.Sprint(st.doer), " ")
		}
		key := [2]string{name, fmt.Sprint(st.node.Shape())}
		i, ok := byKey[key]
		if !ok {
			i = len(out)
			byKey[key] = i
			out = append(out, OpTime{Op: key[0], Shape: key[1]})
		}
		out[i].Steps++
		out[i].Time += d
	}
	return out
}

// runner is a program of either element type.
type runner interface {
	run() error
	value(nd *G.Node) G.Value
	profile(on bool)
	opTimes() []OpTime
}

package train

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"unsafe"
	"weak"

	"gorgonia.org/tensor"
)

// memPlan places a program's op outputs in its Buffers' slab by liveness:
// an output lives from the step that writes it to the last step that reads
// it (a graph input of that step), so outputs whose lives do not overlap
// share memory. An output read after the run (loss, logits, the weights'
// gradients: the pins), read by no step, or not returned by any step stays
// live for the whole run. Everything that lives from one op's call to
// another without being a graph input (batch-norm x̂, max-pool argmax,
// dropout masks, the softmax) is not an output and is never planned, so the
// op contract (op.go) makes this sound. Per-call scratch overlaps in the
// scratch region. TestPlanPoisonsDead poisons every region once dead and
// checks the results are unchanged.
type memPlan[T Float] struct {
	a       *planArena[T]
	outs    []placed
	scratch []scratchUse[T]
	size    int // slab elements needed
	scrSize int
	slab    *T // the slab and scratch region the tensors point into
	scr     *T
	dead    [][]int // per step: outs whose last reader it is (poisoning in tests)
	poison  bool    // tests: fill dead outputs and all scratch with NaN after each step
}

type placed struct {
	d           *tensor.Dense
	shape       tensor.Shape
	off, n      int
	first, last int // steps; last = len(steps) for an output live to the end
}

// planMemory plans the outputs and scratch the build registered in a. It
// returns nil when there is nothing to plan.
func planMemory[T Float](p *program[T], a *planArena[T], pins []int) *memPlan[T] {
	if len(a.outs) == 0 && len(a.scratch) == 0 {
		return nil
	}
	end := len(p.steps)
	// lastRead[node]: the last step reading it; end for a pinned node or one
	// no step reads.
	lastRead := make([]int, len(p.nodes))
	for i := range lastRead {
		lastRead[i] = end
	}
	read := make([]bool, len(p.nodes))
	for k, st := range p.steps {
		for _, a := range st.args {
			lastRead[a], read[a] = k, true
		}
	}
	for i := range read {
		if !read[i] {
			lastRead[i] = end
		}
	}
	for _, i := range pins {
		lastRead[i] = end
	}
	m := &memPlan[T]{a: a, scratch: a.scratch, dead: make([][]int, end)}
	idx := make(map[*tensor.Dense]int, len(a.outs))
	for i, d := range a.outs {
		idx[d] = i
		m.outs = append(m.outs, placed{d: d, shape: d.Shape().Clone(), n: d.Shape().TotalSize(), first: math.MaxInt, last: -1})
	}
	for k, st := range p.steps {
		i, ok := idx[stepOutput(&st)]
		if !ok {
			continue
		}
		o := &m.outs[i]
		o.first, o.last = min(o.first, k), max(o.last, lastRead[st.out])
	}
	for i := range m.outs {
		if o := &m.outs[i]; o.last < 0 {
			// Returned by no step (a gradient this net does not compute):
			// never written nor read, so it conflicts with nothing.
			o.first, o.last = end+1, -1
		}
	}
	m.size = placeAll(m.outs)
	for i, o := range m.outs {
		if o.last >= 0 && o.last < end {
			m.dead[o.last] = append(m.dead[o.last], i)
		}
	}
	for _, u := range m.scratch {
		m.scrSize = max(m.scrSize, u.total())
	}
	a.slab, a.scr = grow(a.slab, m.size), grow(a.scr, m.scrSize)
	live := a.plans[:0]
	for _, w := range a.plans {
		if q := w.Value(); q != nil {
			q.bind() // a no-op unless the slab or scratch grew
			live = append(live, w)
		}
	}
	a.plans = append(live, weak.Make(m))
	m.bind()
	return m
}

// sinkSteps moves each step whose output is larger than its inputs to just
// before its first reader, so that its output is live for less time while
// its (smaller) inputs live longer: the backward ops that upsample (pooling,
// strided convolution, global pooling) would otherwise hold full-resolution
// gradients from when their input is ready until the sum that reads them,
// many steps later in a network with skip connections. Only the order of
// independent steps changes, so every value is the same.
func sinkSteps[T Float](p *program[T]) {
	size := func(i int) int { return max(p.nodes[i].Shape().TotalSize(), 1) }
	steps := p.steps
	for k := len(steps) - 2; k >= 0; k-- {
		st := steps[k]
		in := 0
		for _, a := range st.args {
			in += size(a)
		}
		if size(st.out) <= in {
			continue
		}
		r := k + 1
		for ; r < len(steps) && !slices.Contains(steps[r].args, st.out); r++ {
		}
		if r == len(steps) || r == k+1 {
			continue
		}
		copy(steps[k:r-1], steps[k+1:r])
		steps[r-1] = st
	}
}

// stepOutput returns the tensor st returns every run, if known.
func stepOutput(st *execStep) *tensor.Dense {
	switch {
	case st.op != nil:
		return st.op.out
	case st.add != nil:
		d, _ := st.sum.(*tensor.Dense)
		return d
	}
	return nil
}

// placeAll gives every output an offset (greedy by size, best fit among the
// gaps left by outputs live at the same time: Pisarchyk & Lee 2020,
// "Efficient memory management for deep neural net inference", §4) and
// returns the elements needed.
func placeAll(outs []placed) int {
	order := make([]int, len(outs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int { return cmp.Compare(outs[j].n, outs[i].n) })
	var done, live []int
	size := 0
	for _, i := range order {
		o := &outs[i]
		live = live[:0]
		for _, j := range done {
			if q := outs[j]; q.first <= o.last && o.first <= q.last {
				live = append(live, j)
			}
		}
		slices.SortFunc(live, func(i, j int) int { return cmp.Compare(outs[i].off, outs[j].off) })
		n, at, best, prev := alignUp(o.n), -1, math.MaxInt, 0
		for _, j := range live {
			if gap := outs[j].off - prev; gap >= n && gap < best {
				at, best = prev, gap
			}
			prev = max(prev, outs[j].off+alignUp(outs[j].n))
		}
		if at < 0 {
			at = prev
		}
		o.off = at
		size = max(size, at+n)
		done = append(done, i)
	}
	return size
}

// bind points the planned tensors and scratch into the arena's current slab
// and scratch region, when they are not there already (a later, larger net
// grew them). Ops read their outputs' backing at every call, and the tensor
// is updated in place, so they see it. planMemory rebinds every live plan
// when it grows the memory; run binds too, which costs two comparisons.
func (m *memPlan[T]) bind() {
	if m == nil {
		return
	}
	if s := unsafe.SliceData(m.a.slab); s != m.slab {
		for _, o := range m.outs {
			*o.d = *tensor.New(tensor.WithShape(o.shape...), tensor.WithBacking(m.a.slab[o.off:o.off+o.n:o.off+o.n]))
		}
		m.slab = s
	}
	if s := unsafe.SliceData(m.a.scr); s != m.scr {
		for _, u := range m.scratch {
			u.bind(m.a.scr)
		}
		m.scr = s
	}
}

// check verifies, once after the first run, that every planned tensor a step
// returned is the one the plan took for its output: an op returning a
// planned tensor it did not declare (op.returns) would otherwise share
// memory that is live.
func (m *memPlan[T]) check(p *program[T]) error {
	planned := make(map[*tensor.Dense]bool, len(m.outs))
	for _, o := range m.outs {
		planned[o.d] = true
	}
	for _, st := range p.steps {
		v, _ := p.vals[st.out].(*tensor.Dense)
		if want := stepOutput(&st); (planned[v] || want != nil) && v != want {
			return fmt.Errorf("train: %v returned a tensor other than its planned output", st.node)
		}
	}
	return nil
}

// afterStep poisons, in tests, what step k leaves dead: the outputs it was
// the last reader of, and all scratch.
func (m *memPlan[T]) afterStep(k int) {
	nan := T(math.NaN())
	for _, i := range m.dead[k] {
		fill(raw[T](m.outs[i].d), nan)
	}
	fill(m.a.scr[:m.scrSize], nan)
}

func fill[T any](s []T, v T) {
	for i := range s {
		s[i] = v
	}
}

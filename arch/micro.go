package arch

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Space "enas-micro": Pham et al. 2018, "Efficient Neural Architecture Search
// via Parameter Sharing", §2.4 (designing convolutional cells, the micro
// search space). Where the paper is silent the network follows the authors'
// released child (melodyguan/enas, micro search); where that code departs
// from the paper (it reduces before a reduction cell and runs the cell at
// stride 1) this space follows the paper: ops on a reduction cell's inputs
// use stride 2.

var microDefaultOps = []string{"sep3x3", "sep5x5", "avg3x3", "max3x3", "identity"}

// microCells are the two searched cells, in decision order.
var microCells = [2]string{"normal", "reduce"}

const (
	maxNodes  = 32
	maxCells  = 32
	maxStages = 16
)

func microDefaults() Options {
	return Options{
		Input:    Shape{1, 28, 28},
		Classes:  10,
		Channels: 20,
		Ops:      append([]string(nil), microDefaultOps...),
		Nodes:    5,
		Cells:    2,
		Stages:   3,
	}
}

// microOp is a parsed op name: kind is sep, avg, max or identity.
type microOp struct {
	kind string
	k    int
}

var microOpRE = regexp.MustCompile(`^(sep|avg|max)([1-9][0-9]?)x([1-9][0-9]?)$`)

func parseMicroOp(s string) (microOp, string) {
	if s == "identity" {
		return microOp{kind: "identity"}, ""
	}
	m := microOpRE.FindStringSubmatch(s)
	if m == nil || m[2] != m[3] {
		return microOp{}, "unknown op (want sepKxK, avgKxK or maxKxK with the same odd K twice, or identity, e.g. " +
			strings.Join(microDefaultOps, ", ") + ")"
	}
	k, _ := strconv.Atoi(m[2])
	if k%2 == 0 {
		return microOp{}, "kernel size must be odd"
	}
	return microOp{kind: m[1], k: k}, ""
}

type microSpace struct {
	base
	ops []microOp
}

func newMicro(opt Options, p *problems) builtin {
	unused(p, "enas-micro", opt, "layers", "filter_sizes", "filter_counts", "strides", "reduce_after", "final_network", "hidden", "embed", "base", "output")
	opt.Layers, opt.FilterSizes, opt.FilterCounts, opt.Strides, opt.ReduceAfter = 0, nil, nil, nil, nil
	opt = opt.withDefaults(microDefaults())
	checkInput(p, opt.Input)
	checkPositive(p, "classes", opt.Classes)
	checkPositive(p, "channels", opt.Channels)
	for _, f := range []struct {
		name   string
		v, max int
	}{{"nodes", opt.Nodes, maxNodes}, {"cells", opt.Cells, maxCells}, {"stages", opt.Stages, maxStages}} {
		if f.v < 1 || f.v > f.max {
			p.option([]string{f.name}, "options.%s = %d: must be in 1..%d", f.name, f.v, f.max)
		}
	}

	if len(opt.Ops) == 0 {
		p.option([]string{"ops"}, "options.ops = []: must list at least one op")
	}
	var ops []microOp
	seen := map[string]bool{}
	for i, name := range opt.Ops {
		op, msg := parseMicroOp(name)
		switch {
		case msg != "":
			p.option([]string{"ops"}, "options.ops[%d] = %q: %s", i, name, msg)
		case seen[name]:
			p.option([]string{"ops"}, "options.ops[%d] = %q: duplicate", i, name)
		}
		seen[name] = true
		ops = append(ops, op)
	}
	if !p.ok() {
		return nil
	}

	s := &microSpace{base: base{name: "enas-micro", opt: opt.clone()}, ops: ops}
	for _, cell := range microCells {
		inputs := []string{"prev-prev", "prev"}
		for b := range opt.Nodes {
			n := cell + " node " + strconv.Itoa(b)
			s.decisions = append(s.decisions,
				Decision{n + " input 1", append([]string(nil), inputs...)},
				Decision{n + " op 1", opt.Ops},
				Decision{n + " input 2", append([]string(nil), inputs...)},
				Decision{n + " op 2", opt.Ops},
			)
			inputs = append(inputs, "node "+strconv.Itoa(b))
		}
	}
	return s
}

func (s *microSpace) Lower(a Arch) (*Graph, error) { return lower(s, a) }

// opHint accepts "A + B" with A and B ops of this space: a node's two ops.
func (s *microSpace) opHint(op string) string {
	a, b, ok := strings.Cut(op, " + ")
	if ok && contains(s.opt.Ops, a) && contains(s.opt.Ops, b) {
		return ""
	}
	return fmt.Sprintf(`unknown op (want "A + B" with A and B among %s)`, strings.Join(s.opt.Ops, ", "))
}

// off is the index of the first decision of node b of cell type t.
func (s *microSpace) off(t, b int) int { return (t*s.opt.Nodes + b) * 4 }

// microTensor is a cell input or node output while building: its graph node,
// channels, reductions so far and the table layer that made it.
type microTensor struct {
	node, c, level int
	layer          string
}

// build lowers the derived network (ENAS's child, in the paper's stride
// convention):
//
//	stem: conv 3×3 to 3C (no bias) → batchnorm, as ENAS's stem for CIFAR.
//	stages × (cells normal cells), a reduction cell between two stages; the
//	  reduction cell doubles the channels (ENAS: out_filters *= 2).
//	head: relu → gap → dense.
//
// A cell reads the outputs of the two cells before it (the stem stands in for
// missing ones). Its inputs are first brought to its width c at the later
// input's size: prev-prev one reduction behind → relu → factorized reduce;
// otherwise a width other than c → relu → conv 1×1 → batchnorm. A node sums
// two branches; a branch applies its op to its input, with stride 2 when a
// reduction cell's op reads a cell input:
//
//	sepK:     (relu → depthwise K×K → conv 1×1 → batchnorm) twice, as in
//	          ENAS's code (the paper does not say); the stride is the first's
//	avgK/maxK: K×K window, pad (K-1)/2
//	identity: the input itself; at stride 2, relu → factorized reduce
//
// The cell's output concatenates the nodes no node of the cell reads, then
// relu → conv 1×1 back to c → batchnorm, as ENAS's final_conv. Cell inputs
// that no node reads are dropped (ENAS's code would concatenate them too,
// which the paper's stride-2 reduction cell cannot: they are twice the size).
// Nodes the logits do not depend on are then pruned (see prune).
func (s *microSpace) build(d []int) (*Graph, []layerDesc) {
	o := s.opt
	g := newGraph(o.Input, o.Classes)
	descs := []layerDesc{{name: "image", index: -1, op: "input"}}

	// The searched nodes, for the JSON's "layers": no graph layer carries
	// these names, so the table shows the per-cell rows below instead.
	for t, cell := range microCells {
		choices := []string{"prev-prev", "prev"}
		for b := range o.Nodes {
			k := s.off(t, b)
			descs = append(descs, layerDesc{
				name: cell + " node " + strconv.Itoa(b), index: b, cell: cell,
				op:     o.Ops[d[k+1]] + " + " + o.Ops[d[k+3]],
				inputs: []string{choices[d[k]], choices[d[k+2]]},
			})
			choices = append(choices, "node "+strconv.Itoa(b))
		}
	}

	stemC := 3 * o.Channels
	x := g.add(Op{Kind: KindConv, KH: 3, KW: 3, Stride: 1, Out: stemC}, "stem", 0)
	x = g.add(Op{Kind: KindBatchNorm}, "stem", x)
	descs = append(descs, layerDesc{name: "stem", index: -1, op: fmt.Sprintf("conv 3×3, %d filters → batchnorm", stemC), inputs: []string{"image"}})

	prev2 := microTensor{node: x, c: stemC, layer: "stem"}
	prev1 := prev2
	c, n := o.Channels, 0
	for stage := range o.Stages {
		if stage > 0 {
			c *= 2
			out := s.cell(g, &descs, d, n, true, prev2, prev1, c)
			prev2, prev1, n = prev1, out, n+1
		}
		for range o.Cells {
			out := s.cell(g, &descs, d, n, false, prev2, prev1, c)
			prev2, prev1, n = prev1, out, n+1
		}
	}
	x = g.add(Op{Kind: KindReLU}, "head", prev1.node)
	x = g.add(Op{Kind: KindGlobalAvgPool}, "head", x)
	g.add(Op{Kind: KindDense, Out: o.Classes}, "head", x)
	descs = append(descs, layerDesc{name: "head", index: -1, op: fmt.Sprintf("relu → gap → dense %d", o.Classes), inputs: []string{prev1.layer}})
	g.prune()
	return g, descs
}

// prune drops the nodes the logits do not depend on. Cells read only what
// their nodes choose, so a cell whose successors read only prev-prev is
// dead, as is the calibration of an input no node reads; their parameters
// would never get a gradient and their costs are not the network's.
func (g *Graph) prune() {
	live := make([]bool, len(g.Nodes))
	live[0], live[len(g.Nodes)-1] = true, true
	for i := len(g.Nodes) - 1; i > 0; i-- {
		if live[i] {
			for _, j := range g.Nodes[i].Inputs {
				live[j] = true
			}
		}
	}
	at := make([]int, len(g.Nodes))
	var kept []Node
	for i, n := range g.Nodes {
		if !live[i] {
			continue
		}
		at[i] = len(kept)
		ins := make([]int, len(n.Inputs))
		for k, j := range n.Inputs {
			ins[k] = at[j]
		}
		n.Inputs = ins
		kept = append(kept, n)
	}
	g.Nodes = kept
}

// cell adds cell n (a reduction cell if reduce) reading h0 (prev-prev) and
// h1 (prev), c channels wide, and returns its output.
func (s *microSpace) cell(g *Graph, descs *[]layerDesc, d []int, n int, reduce bool, h0, h1 microTensor, c int) microTensor {
	t := 0
	if reduce {
		t = 1
	}
	l := fmt.Sprintf("cell %d", n)
	calibrate := func(h microTensor, i int) microTensor {
		name := fmt.Sprintf("%s input %d", l, i)
		var op string
		switch {
		case h.level < h1.level:
			h.node = factorizedReduce(g, name, h.node, c)
			h.level++
			op = fmt.Sprintf("relu → factorized reduce to %d", c)
		case h.c != c:
			x := g.add(Op{Kind: KindReLU}, name, h.node)
			x = g.add(Op{Kind: KindConv, KH: 1, KW: 1, Stride: 1, Out: c}, name, x)
			h.node = g.add(Op{Kind: KindBatchNorm}, name, x)
			op = fmt.Sprintf("relu → conv 1×1, %d filters → batchnorm", c)
		default:
			return h
		}
		*descs = append(*descs, layerDesc{name: name, index: -1, op: op, inputs: []string{h.layer}})
		h.c, h.layer = c, name
		return h
	}
	h0, h1 = calibrate(h0, 0), calibrate(h1, 1)

	level := h1.level
	if reduce {
		level++
	}
	states := []microTensor{h0, h1}
	used := make([]bool, 2+s.opt.Nodes)
	for b := range s.opt.Nodes {
		k := s.off(t, b)
		name := fmt.Sprintf("%s node %d", l, b)
		var br [2]int
		var ops, ins []string
		for j := range 2 {
			src, op := d[k+2*j], s.ops[d[k+2*j+1]]
			stride := 1
			if reduce && src < 2 {
				stride = 2
			}
			var text string
			br[j], text = s.branch(g, name, states[src].node, op, s.opt.Ops[d[k+2*j+1]], stride, c)
			ops, ins = append(ops, text), append(ins, states[src].layer)
			used[src] = true
		}
		y := g.add(Op{Kind: KindAdd}, name, br[0], br[1])
		states = append(states, microTensor{node: y, c: c, level: level, layer: name})
		*descs = append(*descs, layerDesc{name: name, index: -1, op: strings.Join(ops, " + "), inputs: ins})
	}

	name := l + " output"
	var loose []int
	var names []string
	for b := range s.opt.Nodes {
		if !used[2+b] {
			loose = append(loose, states[2+b].node)
			names = append(names, states[2+b].layer)
		}
	}
	x := loose[0] // the last node is never read
	op := ""
	if len(loose) > 1 {
		x = g.add(Op{Kind: KindConcat}, name, loose...)
		op = "concat → "
	}
	x = g.add(Op{Kind: KindReLU}, name, x)
	x = g.add(Op{Kind: KindConv, KH: 1, KW: 1, Stride: 1, Out: c}, name, x)
	x = g.add(Op{Kind: KindBatchNorm}, name, x)
	kind := "normal"
	if reduce {
		kind = "reduction"
	}
	op += fmt.Sprintf("relu → conv 1×1, %d filters → batchnorm (%s cell)", c, kind)
	*descs = append(*descs, layerDesc{name: name, index: -1, op: op, inputs: names})
	return microTensor{node: x, c: c, level: level, layer: name}
}

// branch adds op applied to node x at stride and returns the branch's output
// node and how the table names it.
func (s *microSpace) branch(g *Graph, layer string, x int, op microOp, opName string, stride, c int) (int, string) {
	text := opName
	if stride > 1 {
		text += " stride " + strconv.Itoa(stride)
	}
	switch op.kind {
	case "sep":
		for i := range 2 {
			st := 1
			if i == 0 {
				st = stride
			}
			x = g.add(Op{Kind: KindReLU}, layer, x)
			x = g.add(Op{Kind: KindDepthwiseConv, KH: op.k, KW: op.k, Stride: st}, layer, x)
			x = g.add(Op{Kind: KindConv, KH: 1, KW: 1, Stride: 1, Out: c}, layer, x)
			x = g.add(Op{Kind: KindBatchNorm}, layer, x)
		}
	case "avg", "max":
		kind := KindMaxPool
		if op.kind == "avg" {
			kind = KindAvgPool
		}
		x = g.add(Op{Kind: kind, KH: op.k, KW: op.k, Stride: stride, Pad: (op.k - 1) / 2}, layer, x)
	case "identity":
		if stride > 1 {
			x = factorizedReduce(g, layer, x, c)
			text = "identity → factorized reduce"
		}
	default:
		panic("arch: enas-micro: unparsed op " + op.kind) // newMicro parsed every op
	}
	return x, text
}

// factorizedReduce halves the size of x without dropping every other pixel
// (ENAS's _factorized_reduction, after a relu as where ENAS calls it): two
// 1×1 stride-2 convs to c/2 each, one reading x and one x shifted up and left
// by a pixel, concatenated and batch-normalised. c is even: it is the width
// after a reduction cell doubled it.
func factorizedReduce(g *Graph, layer string, x, c int) int {
	x = g.add(Op{Kind: KindReLU}, layer, x)
	a := g.add(Op{Kind: KindConv, KH: 1, KW: 1, Stride: 2, Out: c / 2}, layer, x)
	b := g.add(Op{Kind: KindShift}, layer, x)
	b = g.add(Op{Kind: KindConv, KH: 1, KW: 1, Stride: 2, Out: c - c/2}, layer, b)
	y := g.add(Op{Kind: KindConcat}, layer, a, b)
	return g.add(Op{Kind: KindBatchNorm}, layer, y)
}

package arch

import (
	"fmt"
	"strconv"
	"strings"
)

// The recurrent cell spaces, "enas-rnn" and "nas-rnn" (docs/rnn-spaces.md).
// Both lower to a cell graph (Graph.Hidden > 0) that a language model
// evaluates once per token; none of their linear maps has a bias, as in both
// papers' formulas.

// Names of the cell's inputs and outputs, as layers of the lowered graph.
const (
	layerX     = "x_t"
	layerH     = "h_{t-1}"
	layerC     = "c_{t-1}"
	layerHOut  = "h_t"
	layerCOut  = "c_t"
	layerMerge = "cell inject"
)

// rnnAct is an activation choice: its name and the primitive that applies it.
type rnnAct struct {
	name string
	kind Kind
}

// enasRNNActs is ENAS's order (Pham et al. 2018, §2.2; the authors' code).
var enasRNNActs = []rnnAct{{"tanh", KindTanh}, {"relu", KindReLU}, {"identity", KindIdentity}, {"sigmoid", KindSigmoid}}

// nasRNNActs is the NAS paper's order (Zoph & Le 2017, §4.2).
var nasRNNActs = []rnnAct{{"identity", KindIdentity}, {"tanh", KindTanh}, {"sigmoid", KindSigmoid}, {"relu", KindReLU}}

// nasRNNCombs are the NAS paper's combination methods (add, elem_mult).
var nasRNNCombs = []struct {
	name string
	kind Kind
}{{"add", KindAdd}, {"mul", KindMul}}

const (
	enasRNNOutputLoose = "loose_ends"
	enasRNNOutputAll   = "all"
	maxBase            = 64
)

func actNames(acts []rnnAct) []string {
	out := make([]string, len(acts))
	for i, a := range acts {
		out[i] = a.name
	}
	return out
}

// rnnOptions checks what both recurrent spaces share: the options they do
// not read (all but hidden, embed and those in own), hidden and embed.
func rnnOptions(p *problems, name string, opt Options, def Options, own ...string) Options {
	fields := []string{"input", "classes", "layers", "filter_sizes", "filter_counts", "strides", "channels", "ops",
		"reduce_after", "nodes", "cells", "stages", "final_network", "base", "output"}
	var notOwn []string
	for _, f := range fields {
		if !contains(own, f) {
			notOwn = append(notOwn, f)
		}
	}
	unused(p, name, opt, notOwn...)
	keep := Options{Hidden: opt.Hidden, Embed: opt.Embed}
	if contains(own, "nodes") {
		keep.Nodes = opt.Nodes
	}
	if contains(own, "output") {
		keep.Output = opt.Output
	}
	if contains(own, "base") {
		keep.Base = opt.Base
	}
	opt = keep
	if opt.Hidden == 0 {
		opt.Hidden = def.Hidden
	}
	if opt.Embed == 0 {
		opt.Embed = opt.Hidden // tied, as ENAS ties its embedding to the hidden size
	}
	opt = opt.withDefaults(def)
	checkPositive(p, "hidden", opt.Hidden)
	checkPositive(p, "embed", opt.Embed)
	return opt
}

// cellGraph starts a cell graph with x_t and h_{t−1} (and c_{t−1} if memory).
func cellGraph(o Options, memory bool) *Graph {
	g := &Graph{Input: Shape{o.Embed, 1, 1}, Hidden: o.Hidden}
	g.add(Op{Kind: KindCellInput, Signal: SignalX}, layerX)
	g.add(Op{Kind: KindCellInput, Signal: SignalH}, layerH)
	if memory {
		g.add(Op{Kind: KindCellInput, Signal: SignalC}, layerC)
	}
	return g
}

func cellInputDescs(o Options, memory bool) []layerDesc {
	d := []layerDesc{
		{name: layerX, index: -1, op: fmt.Sprintf("cell input: token embedding, %d", o.Embed)},
		{name: layerH, index: -1, op: fmt.Sprintf("cell input: previous output, %d", o.Hidden)},
	}
	if memory {
		d = append(d, layerDesc{name: layerC, index: -1, op: fmt.Sprintf("cell input: previous memory, %d", o.Hidden)})
	}
	return d
}

// Space "enas-rnn": Pham et al. 2018, "Efficient Neural Architecture Search
// via Parameter Sharing", §2.2 (designing recurrent cells), with N nodes as
// in the authors' corrected code. Decisions, in controller order:
//
//	node 1 activation
//	node ℓ input (node 1 .. node ℓ−1), node ℓ activation   for ℓ = 2..N
//
// Node 1 reads x_t and h_{t−1}:
//
//	c_1 = σ([x_t, h_{t−1}]·W_c),  s_1 = c_1⊙f_1([x_t, h_{t−1}]·W_h) + (1−c_1)⊙h_{t−1}
//
// ([x, h]·W is x·W_x + h·W_h); node ℓ reads its chosen node j:
//
//	c_ℓ = σ(s_j·W_c^(ℓ,j)),  s_ℓ = c_ℓ⊙f_ℓ(s_j·W_h^(ℓ,j)) + (1−c_ℓ)⊙s_j
//
// h_t is the mean of the loose ends (nodes no node reads), or of all nodes
// with Output "all". The weights of node ℓ depend on (ℓ, j), so node ℓ's
// layer is named "node ℓ from node j": a supernet keying its parameters by
// layer shares them exactly as ENAS does.
type enasRNNSpace struct{ base }

func enasRNNDefaults() Options {
	return Options{Nodes: 8, Hidden: 200, Embed: 200, Output: enasRNNOutputLoose}
}

func newENASRNN(opt Options, p *problems) builtin {
	opt = rnnOptions(p, "enas-rnn", opt, enasRNNDefaults(), "nodes", "output")
	if opt.Nodes < 1 || opt.Nodes > maxNodes {
		p.option([]string{"nodes"}, "options.nodes = %d: must be in 1..%d", opt.Nodes, maxNodes)
	}
	if opt.Output != enasRNNOutputLoose && opt.Output != enasRNNOutputAll {
		p.option([]string{"output"}, "options.output = %q: must be %q or %q", opt.Output, enasRNNOutputLoose, enasRNNOutputAll)
	}
	if !p.ok() {
		return nil
	}
	s := &enasRNNSpace{base{name: "enas-rnn", opt: opt}}
	acts := actNames(enasRNNActs)
	s.decisions = append(s.decisions, Decision{"node 1 activation", acts})
	var earlier []string
	for l := 2; l <= opt.Nodes; l++ {
		earlier = append(earlier, rnnNode(l-1))
		s.decisions = append(s.decisions,
			Decision{rnnNode(l) + " input", append([]string(nil), earlier...)},
			Decision{rnnNode(l) + " activation", acts})
	}
	return s
}

func rnnNode(l int) string { return "node " + strconv.Itoa(l) }

func (s *enasRNNSpace) Lower(a Arch) (*Graph, error) { return lower(s, a) }

// opHint accepts "highway, A" for an activation A of the space.
func (s *enasRNNSpace) opHint(op string) string {
	if act, ok := strings.CutPrefix(op, "highway, "); ok && contains(actNames(enasRNNActs), act) {
		return ""
	}
	return fmt.Sprintf(`unknown op (want "highway, A" with A among %s)`, strings.Join(actNames(enasRNNActs), ", "))
}

// build lowers the cell. Each node is, in its layer: linear (gate) →
// sigmoid, linear (candidate) → activation, highway(gate, candidate, input);
// node 1 first concatenates x_t and h_{t−1} and carries h_{t−1}. Within a
// layer the gate's linear comes first.
func (s *enasRNNSpace) build(d []int) (*Graph, []layerDesc) {
	o := s.opt
	g := cellGraph(o, false)
	descs := cellInputDescs(o, false)
	H := o.Hidden
	out := make([]int, o.Nodes+1)      // s_ℓ's graph node, by ℓ
	layer := make([]string, o.Nodes+1) // node ℓ's layer
	read := make([]bool, o.Nodes+1)
	node := func(l int, name string, in, carry int, act rnnAct, inputs []string) {
		gate := g.add(Op{Kind: KindLinear, Out: H}, name, in)
		gate = g.add(Op{Kind: KindSigmoid}, name, gate)
		cand := g.add(Op{Kind: KindLinear, Out: H}, name, in)
		cand = g.add(Op{Kind: act.kind}, name, cand)
		out[l] = g.add(Op{Kind: KindHighway}, name, gate, cand, carry)
		layer[l] = name
		descs = append(descs, layerDesc{name: name, index: l, op: "highway, " + act.name, inputs: inputs})
	}
	xh := g.add(Op{Kind: KindConcat}, rnnNode(1), 0, 1)
	node(1, rnnNode(1), xh, 1, enasRNNActs[d[0]], []string{layerX, layerH})
	for l := 2; l <= o.Nodes; l++ {
		j := d[2*l-3] + 1
		read[j] = true
		node(l, fmt.Sprintf("node %d from node %d", l, j), out[j], out[j], enasRNNActs[d[2*l-2]], []string{layer[j]})
	}
	var ends []int
	var names []string
	for l := 1; l <= o.Nodes; l++ {
		if o.Output == enasRNNOutputAll || !read[l] {
			ends = append(ends, out[l])
			names = append(names, layer[l])
		}
	}
	op := fmt.Sprintf("mean of %d nodes", len(ends))
	if len(ends) == 1 { // the last node is never read
		g.add(Op{Kind: KindIdentity}, layerHOut, ends[0])
		op = "identity"
	} else {
		g.add(Op{Kind: KindMean}, layerHOut, ends...)
	}
	descs = append(descs, layerDesc{name: layerHOut, index: -1, op: op, inputs: names})
	return g, descs
}

// Space "nas-rnn": Zoph & Le 2017, "Neural Architecture Search with
// Reinforcement Learning", §3.4 and Figure 5 (generating recurrent cells),
// with §4.2's choices. A binary tree of 2B−1 nodes: leaves 0..B−1, then each
// level's nodes left to right, node B+i combining nodes 2i and 2i+1, the
// root last (for B = 8, nodes 8–11 combine leaf pairs, 12–13 their pairs,
// 14 is the root). Decisions, in controller order (Figure 5):
//
//	tree node k combination (add, mul), tree node k activation
//	    (identity, tanh, sigmoid, relu)                    for k = 0..2B−2
//	cell inject combination (add, mul), cell inject activation
//	c_t from tree node (0..2B−2)       Figure 5's first "cell index"
//	c_{t-1} into tree node (0..2B−2)   Figure 5's second "cell index"
//
// Leaf k combines W_k·x_t and U_k·h_{t−1}; an inner node combines its two
// children's outputs; either then applies its activation: a_k = f_k(z_k).
// The node that receives c_{t−1} passes on f_inj(comb_inj(a_k, c_{t−1}))
// instead of a_k; c_t is z_k of its node, the value before the activation
// (and before any inject); h_t is the root's output. The paper's base-8
// space has 8^15 · 8 · 15 · 15 ≈ 6·10^16 cells, as it says.
type nasRNNSpace struct{ base }

func nasRNNDefaults() Options {
	return Options{Hidden: 200, Embed: 200, Base: 8}
}

func newNASRNN(opt Options, p *problems) builtin {
	opt = rnnOptions(p, "nas-rnn", opt, nasRNNDefaults(), "base")
	if opt.Base < 2 || opt.Base > maxBase || opt.Base&(opt.Base-1) != 0 {
		p.option([]string{"base"}, "options.base = %d: must be a power of 2 in 2..%d", opt.Base, maxBase)
	}
	if !p.ok() {
		return nil
	}
	s := &nasRNNSpace{base{name: "nas-rnn", opt: opt}}
	combs := []string{nasRNNCombs[0].name, nasRNNCombs[1].name}
	acts := actNames(nasRNNActs)
	m := 2*opt.Base - 1
	var nodes []string
	for k := range m {
		t := treeNode(k)
		nodes = append(nodes, t)
		s.decisions = append(s.decisions, Decision{t + " combination", combs}, Decision{t + " activation", acts})
	}
	s.decisions = append(s.decisions,
		Decision{"cell inject combination", combs},
		Decision{"cell inject activation", acts},
		Decision{"c_t from tree node", nodes},
		Decision{"c_{t-1} into tree node", append([]string(nil), nodes...)},
	)
	return s
}

func treeNode(k int) string { return "tree node " + strconv.Itoa(k) }

func (s *nasRNNSpace) Lower(a Arch) (*Graph, error) { return lower(s, a) }

// nasRNNCOp is the op of the c_t row.
const nasRNNCOp = "value before the activation"

// opHint accepts "C, A" with a combination C and an activation A, and c_t's op.
func (s *nasRNNSpace) opHint(op string) string {
	c, a, ok := strings.Cut(op, ", ")
	if op == nasRNNCOp || ok && (c == "add" || c == "mul") && contains(actNames(nasRNNActs), a) {
		return ""
	}
	return fmt.Sprintf(`unknown op (want "C, A" with C add or mul and A among %s, or %q)`,
		strings.Join(actNames(nasRNNActs), ", "), nasRNNCOp)
}

// build lowers the tree. Tree node k's layer holds a leaf's two linears (W_k
// on x_t, then U_k on h_{t−1}), the combination and the activation; the
// inject is its own layer, "cell inject"; identity nodes "c_t" and "h_t" (the
// last node) name the outputs. Graph.Memory is the c_t node.
func (s *nasRNNSpace) build(d []int) (*Graph, []layerDesc) {
	o := s.opt
	g := cellGraph(o, true)
	descs := cellInputDescs(o, true)
	m := 2*o.Base - 1
	inj := 2 * m
	ctFrom, cInto := d[inj+2], d[inj+3]
	out := make([]int, m)      // a_k, or the inject's output at cInto
	pre := make([]int, m)      // z_k
	layer := make([]string, m) // what reads a_k reads this layer
	for k := range m {
		name := treeNode(k)
		comb, act := nasRNNCombs[d[2*k]], nasRNNActs[d[2*k+1]]
		var u, v int
		var inputs []string
		if k < o.Base {
			u = g.add(Op{Kind: KindLinear, Out: o.Hidden}, name, 0)
			v = g.add(Op{Kind: KindLinear, Out: o.Hidden}, name, 1)
			inputs = []string{layerX, layerH}
		} else {
			i := k - o.Base // node B+i combines nodes 2i and 2i+1
			u, v = out[2*i], out[2*i+1]
			inputs = []string{layer[2*i], layer[2*i+1]}
		}
		pre[k] = g.add(Op{Kind: comb.kind}, name, u, v)
		out[k] = g.add(Op{Kind: act.kind}, name, pre[k])
		layer[k] = name
		descs = append(descs, layerDesc{name: name, index: k, op: comb.name + ", " + act.name, inputs: inputs})
		if k == cInto {
			comb, act := nasRNNCombs[d[inj]], nasRNNActs[d[inj+1]]
			x := g.add(Op{Kind: comb.kind}, layerMerge, out[k], 2)
			out[k] = g.add(Op{Kind: act.kind}, layerMerge, x)
			layer[k] = layerMerge
			descs = append(descs, layerDesc{name: layerMerge, index: m, op: comb.name + ", " + act.name, inputs: []string{name, layerC}})
		}
	}
	g.Memory = g.add(Op{Kind: KindIdentity}, layerCOut, pre[ctFrom])
	descs = append(descs, layerDesc{name: layerCOut, index: m + 1, op: nasRNNCOp, inputs: []string{treeNode(ctFrom)}})
	g.add(Op{Kind: KindIdentity}, layerHOut, out[m-1])
	descs = append(descs, layerDesc{name: layerHOut, index: -1, op: "identity", inputs: []string{layer[m-1]}})
	return g, descs
}

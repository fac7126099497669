package arch

import (
	"fmt"
	"regexp"
)

// Space "nas": Zoph & Le 2017, "Neural Architecture Search with Reinforcement
// Learning", §3.3 (skip connections via anchor points) and §4.1 (the CNN
// search space without pooling layers).

func nasDefaults() Options {
	return Options{
		Layers:       6,
		Input:        Shape{1, 28, 28},
		Classes:      10,
		FilterSizes:  []int{1, 3, 5, 7},
		FilterCounts: []int{24, 36, 48, 64},
		Strides:      []int{1, 2},
	}
}

type nasSpace struct {
	base
	off []int // index of each layer's first decision
}

// newNAS returns a builtin interface holding nil on failure, never a typed nil.
func newNAS(opt Options, p *problems) builtin {
	def := nasDefaults()
	unused(p, "nas", opt, "channels", "ops", "reduce_after", "nodes", "cells", "stages", "final_network", "hidden", "embed", "base", "output")
	opt.Channels, opt.Ops, opt.ReduceAfter = 0, nil, nil
	opt.Nodes, opt.Cells, opt.Stages = 0, 0, 0
	opt = opt.withDefaults(def)
	checkLayers(p, opt.Layers)
	checkInput(p, opt.Input)
	checkPositive(p, "classes", opt.Classes)
	checkList(p, "filter_sizes", opt.FilterSizes, oddKernel)
	checkList(p, "filter_counts", opt.FilterCounts, inRange(1, maxDim))
	checkList(p, "strides", opt.Strides, inRange(1, 64))
	if !p.ok() {
		return nil
	}

	s := &nasSpace{base: base{name: "nas", opt: opt.clone()}}
	sizes, counts, strides := itoas(opt.FilterSizes), itoas(opt.FilterCounts), itoas(opt.Strides)
	for i := range opt.Layers {
		s.off = append(s.off, len(s.decisions))
		l := layerName(i)
		s.decisions = append(s.decisions,
			Decision{l + " filter height", sizes},
			Decision{l + " filter width", sizes},
			Decision{l + " filters", counts},
			Decision{l + " stride", strides},
		)
		for j := range i {
			s.decisions = append(s.decisions, Decision{l + " skip from " + layerName(j), noYes})
		}
	}
	return s
}

func (s *nasSpace) Lower(a Arch) (*Graph, error) { return lower(s, a) }

func nasOp(kh, kw, filters, stride int) string {
	return fmt.Sprintf("conv %d×%d, %d filters, stride %d", kh, kw, filters, stride)
}

var nasOpRE = regexp.MustCompile(`^conv [0-9]+×[0-9]+, [0-9]+ filters, stride [0-9]+$`)

func (s *nasSpace) opHint(op string) string {
	if nasOpRE.MatchString(op) {
		return ""
	}
	return `unknown op (want "conv H×W, N filters, stride S")`
}

// build lowers layer i to [concat →] conv (no bias) → batchnorm → relu. Its
// input is the depth-concatenation of the earlier layers whose skip decision
// is "yes"; with none it reads the image, not the previous layer — the paper's
// rule ("if one layer does not have any input layer then the image is used as
// the input layer"), which makes a chain only when the controller asks for one.
// Layers no later layer reads are concatenated into the head.
func (s *nasSpace) build(d []int) (*Graph, []layerDesc) {
	o := s.opt
	g := newGraph(o.Input, o.Classes)
	descs := []layerDesc{{name: "image", index: -1, op: "input"}}
	out := make([]int, o.Layers)
	consumed := make([]bool, o.Layers)
	for i := range o.Layers {
		k := s.off[i]
		kh, kw := o.FilterSizes[d[k]], o.FilterSizes[d[k+1]]
		filters, stride := o.FilterCounts[d[k+2]], o.Strides[d[k+3]]
		var src []int
		var names []string
		for j := range i {
			if d[k+4+j] == 1 {
				src = append(src, out[j])
				names = append(names, layerName(j))
				consumed[j] = true
			}
		}
		if len(src) == 0 {
			src, names = []int{0}, []string{"image"}
		}
		l := layerName(i)
		in := src[0]
		if len(src) > 1 {
			in = g.add(Op{Kind: KindConcat}, l, src...)
		}
		x := g.add(Op{Kind: KindConv, KH: kh, KW: kw, Stride: stride, Out: filters}, l, in)
		x = g.add(Op{Kind: KindBatchNorm}, l, x)
		out[i] = g.add(Op{Kind: KindReLU}, l, x)
		descs = append(descs, layerDesc{name: l, index: i, op: nasOp(kh, kw, filters, stride), inputs: names})
	}

	var src []int
	var names []string
	for i := range o.Layers {
		if !consumed[i] {
			src = append(src, out[i])
			names = append(names, layerName(i))
		}
	}
	op := fmt.Sprintf("gap → dense %d", o.Classes)
	in := src[0]
	if len(src) > 1 {
		in = g.add(Op{Kind: KindConcat}, "head", src...)
		op = "concat → " + op
	}
	x := g.add(Op{Kind: KindGlobalAvgPool}, "head", in)
	g.add(Op{Kind: KindDense, Out: o.Classes}, "head", x)
	descs = append(descs, layerDesc{name: "head", index: -1, op: op, inputs: names})
	return g, descs
}

// newGraph starts a graph with its input node.
func newGraph(in Shape, classes int) *Graph {
	return &Graph{Input: in, Classes: classes, Nodes: []Node{{Op: Op{Kind: KindInput}, Layer: "image"}}}
}

// add appends a node and returns its index.
func (g *Graph) add(op Op, layer string, inputs ...int) int {
	g.Nodes = append(g.Nodes, Node{Op: op, Inputs: inputs, Layer: layer})
	return len(g.Nodes) - 1
}

package arch

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Space "enas-macro": Pham et al. 2018, "Efficient Neural Architecture Search
// via Parameter Sharing", §2.3 (designing convolutional networks, the macro
// search space).

var enasDefaultOps = []string{"conv3x3", "conv5x5", "sepconv3x3", "sepconv5x5", "maxpool3x3", "avgpool3x3"}

func enasDefaults() Options {
	return Options{
		Layers:      12,
		Input:       Shape{1, 28, 28},
		Classes:     10,
		Channels:    36,
		Ops:         append([]string(nil), enasDefaultOps...),
		ReduceAfter: enasReduceAfter(12),
	}
}

// enasReduceAfter is ENAS's placement: pool_distance = layers/3, reductions
// after layers pool_distance-1 and 2·pool_distance-1. Fewer than 3 layers get
// none (ENAS's indices would be -1).
func enasReduceAfter(layers int) []int {
	d := layers / 3
	if d == 0 {
		return []int{}
	}
	return []int{d - 1, 2*d - 1}
}

// enasOp is a parsed op name: kind is conv, sepconv, maxpool or avgpool.
type enasOp struct {
	kind string
	k    int
}

var enasOpRE = regexp.MustCompile(`^(conv|sepconv|maxpool|avgpool)([1-9][0-9]?)x([1-9][0-9]?)$`)

const enasOpGrammar = "convKxK, sepconvKxK, maxpoolKxK or avgpoolKxK with the same odd K twice, e.g. " // + the defaults

// parseENASOp parses an op name, or says what is wrong with it.
func parseENASOp(s string) (enasOp, string) {
	m := enasOpRE.FindStringSubmatch(s)
	if m == nil || m[2] != m[3] {
		return enasOp{}, "unknown op (want " + enasOpGrammar + strings.Join(enasDefaultOps, ", ") + ")"
	}
	k, _ := strconv.Atoi(m[2])
	if k%2 == 0 {
		return enasOp{}, "kernel size must be odd"
	}
	return enasOp{kind: m[1], k: k}, ""
}

type enasSpace struct {
	base
	ops    []enasOp
	off    []int // index of each layer's first decision
	reduce []bool
}

func newENAS(opt Options, p *problems) builtin {
	def := enasDefaults()
	unused(p, "enas-macro", opt, "filter_sizes", "filter_counts", "strides", "nodes", "cells", "stages", "hidden", "embed", "base", "output")
	opt.FilterSizes, opt.FilterCounts, opt.Strides = nil, nil, nil
	opt.Nodes, opt.Cells, opt.Stages = 0, 0, 0
	opt = opt.withDefaults(def)
	if opt.ReduceAfter == nil {
		opt.ReduceAfter = enasReduceAfter(opt.Layers)
	}
	checkLayers(p, opt.Layers)
	checkInput(p, opt.Input)
	checkPositive(p, "classes", opt.Classes)
	checkPositive(p, "channels", opt.Channels)

	var ops []enasOp
	if len(opt.Ops) == 0 {
		p.option([]string{"ops"}, "options.ops = []: must list at least one op")
	}
	seen := map[string]bool{}
	for i, name := range opt.Ops {
		op, msg := parseENASOp(name)
		switch {
		case msg != "":
			p.option([]string{"ops"}, "options.ops[%d] = %q: %s", i, name, msg)
		case seen[name]:
			p.option([]string{"ops"}, "options.ops[%d] = %q: duplicate", i, name)
		}
		seen[name] = true
		ops = append(ops, op)
	}

	for i, r := range opt.ReduceAfter {
		if r < 0 || r > opt.Layers-2 {
			p.option([]string{"reduce_after"}, "options.reduce_after[%d] = %d: must be in 0..%d (a reduction feeds the next layer)", i, r, opt.Layers-2)
		} else if i > 0 && r <= opt.ReduceAfter[i-1] {
			p.option([]string{"reduce_after"}, "options.reduce_after[%d] = %d: must be greater than %d (strictly increasing)", i, r, opt.ReduceAfter[i-1])
		}
	}
	if !p.ok() {
		return nil
	}

	s := &enasSpace{base: base{name: "enas-macro", opt: opt.clone()}, ops: ops, reduce: make([]bool, opt.Layers)}
	for _, r := range opt.ReduceAfter {
		s.reduce[r] = true
	}
	for i := range opt.Layers {
		s.off = append(s.off, len(s.decisions))
		l := layerName(i)
		s.decisions = append(s.decisions, Decision{l + " op", opt.Ops})
		for j := range i {
			s.decisions = append(s.decisions, Decision{l + " skip from " + layerName(j), noYes})
		}
	}
	return s
}

func (s *enasSpace) Lower(a Arch) (*Graph, error) { return lower(s, a) }

func (s *enasSpace) opHint(op string) string {
	for _, o := range s.opt.Ops {
		if o == op {
			return ""
		}
	}
	return fmt.Sprintf("unknown op (this space's ops: %s)", strings.Join(s.opt.Ops, ", "))
}

// build lowers the macro network:
//
//	stem: conv 3×3 (no bias) → batchnorm
//	layer i: branch on layer i-1 (the stem for i = 0)
//	    convK:    conv K×K (no bias) → batchnorm → relu
//	    sepconvK: depthwise K×K → conv 1×1 (no bias) → batchnorm → relu
//	    poolK:    K×K, stride 1, pad (K-1)/2
//	  then, for i > 0: add(branch, chosen skips) → batchnorm. The batchnorm
//	  comes even without skips, as in ENAS's released macro child.
//	pool after layer r (r in ReduceAfter): maxpool 2×2 stride 2, which the
//	  next layer's branch reads.
//	head: gap → dense.
//
// With FinalNetwork (the network ENAS retrains from scratch, its
// general_child fixed-arc path): layer i > 0 joins its chosen skips and its
// branch by concat → relu → conv 1×1 → batchnorm instead of add → batchnorm,
// and every reduction doubles the channels of the layers after it (the 1×1
// conv brings a pooling branch's and the skips' channels to the layer's).
//
// A skip reads layer j's own output (before any reduction that follows it);
// if reductions happened since, it is brought down by one parameter-free
// avgpool 2×2 stride 2 per reduction. These nodes belong to the reading
// layer and are not shared, so each layer's row in a table is self-contained.
func (s *enasSpace) build(d []int) (*Graph, []layerDesc) {
	o := s.opt
	g := newGraph(o.Input, o.Classes)
	descs := []layerDesc{{name: "image", index: -1, op: "input"}}

	x := g.add(Op{Kind: KindConv, KH: 3, KW: 3, Stride: 1, Out: o.Channels}, "stem", 0)
	prev := g.add(Op{Kind: KindBatchNorm}, "stem", x)
	prevName := "stem"
	descs = append(descs, layerDesc{name: "stem", index: -1, op: fmt.Sprintf("conv 3×3, %d filters → batchnorm", o.Channels), inputs: []string{"image"}})

	out := make([]int, o.Layers)   // each layer's output node
	level := make([]int, o.Layers) // reductions before each layer's output
	reductions := 0
	for i := range o.Layers {
		k := s.off[i]
		l := layerName(i)
		op := s.ops[d[k]]
		width := o.Channels
		if o.FinalNetwork {
			width <<= reductions
		}
		switch op.kind {
		case "conv":
			x = g.add(Op{Kind: KindConv, KH: op.k, KW: op.k, Stride: 1, Out: width}, l, prev)
			x = g.add(Op{Kind: KindBatchNorm}, l, x)
			x = g.add(Op{Kind: KindReLU}, l, x)
		case "sepconv":
			x = g.add(Op{Kind: KindDepthwiseConv, KH: op.k, KW: op.k, Stride: 1}, l, prev)
			x = g.add(Op{Kind: KindConv, KH: 1, KW: 1, Stride: 1, Out: width}, l, x)
			x = g.add(Op{Kind: KindBatchNorm}, l, x)
			x = g.add(Op{Kind: KindReLU}, l, x)
		case "maxpool", "avgpool":
			kind := KindMaxPool
			if op.kind == "avgpool" {
				kind = KindAvgPool
			}
			x = g.add(Op{Kind: kind, KH: op.k, KW: op.k, Stride: 1, Pad: (op.k - 1) / 2}, l, prev)
		default:
			panic("arch: enas-macro: unparsed op " + op.kind) // newENAS parsed every op
		}
		var skips []int
		var names []string
		for j := range i {
			if d[k+1+j] != 1 {
				continue
			}
			y := out[j]
			for range reductions - level[j] {
				y = g.add(Op{Kind: KindAvgPool, KH: 2, KW: 2, Stride: 2}, l, y)
			}
			skips = append(skips, y)
			names = append(names, layerName(j))
		}
		opName := o.Ops[d[k]]
		switch {
		case o.FinalNetwork && i > 0:
			if len(skips) > 0 {
				x = g.add(Op{Kind: KindConcat}, l, append(skips, x)...)
			}
			x = g.add(Op{Kind: KindReLU}, l, x)
			x = g.add(Op{Kind: KindConv, KH: 1, KW: 1, Stride: 1, Out: width}, l, x)
			opName += fmt.Sprintf(", concat → relu → conv 1×1, %d filters", width)
		case len(skips) > 0:
			x = g.add(Op{Kind: KindAdd}, l, append([]int{x}, skips...)...)
		}
		if i > 0 {
			x = g.add(Op{Kind: KindBatchNorm}, l, x)
		}
		out[i], level[i] = x, reductions
		descs = append(descs, layerDesc{name: l, index: i, op: opName, inputs: []string{prevName}, skips: names})
		prev, prevName = x, l

		if s.reduce[i] {
			pn := "pool after " + l
			prev = g.add(Op{Kind: KindMaxPool, KH: 2, KW: 2, Stride: 2}, pn, x)
			prevName = pn
			reductions++
			descs = append(descs, layerDesc{name: pn, index: -1, op: "maxpool 2×2, stride 2", inputs: []string{l}})
		}
	}
	x = g.add(Op{Kind: KindGlobalAvgPool}, "head", prev)
	g.add(Op{Kind: KindDense, Out: o.Classes}, "head", x)
	descs = append(descs, layerDesc{name: "head", index: -1, op: fmt.Sprintf("gap → dense %d", o.Classes), inputs: []string{prevName}})
	return g, descs
}

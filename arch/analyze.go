package arch

import (
	"fmt"
	"math"
	"strings"
)

// Budget limits a network's size per example; a zero field is unlimited.
type Budget struct {
	MaxParams          int   `json:"max_params,omitzero"`
	MaxFLOPs           int64 `json:"max_flops,omitzero"`
	MaxActivationBytes int64 `json:"max_activation_bytes,omitzero"`
}

// LayerStats is one layer of an Analysis: the graph nodes whose Node.Layer is
// Name, summed.
type LayerStats struct {
	Name   string   // "image", "stem", "layer 3", "pool after layer 3", "head"
	Op     string   // what the layer does, e.g. "conv 5×3, 36 filters, stride 2"
	Inputs []string // layers it reads
	// Skips are layers summed into the output (enas-macro); nil for
	// spaces whose skips are plain inputs.
	Skips           []string
	Output          Shape
	Params          int
	FLOPs           int64
	ActivationBytes int64 // float32 outputs of the layer's nodes, per example
}

// Analysis is the static cost of an architecture, per example.
type Analysis struct {
	Layers          []LayerStats
	Params          int
	FLOPs           int64
	ActivationBytes int64 // float32 outputs of every node, the input included
	Output          Shape
}

// Analyze lowers a and infers every layer's shape and cost. A cost that
// overflows int64 (or, for params, int) is an error that names the quantity
// and the node's layer.
func Analyze(s Space, a Arch) (*Analysis, error) {
	g, err := s.Lower(a)
	if err != nil {
		return nil, err
	}
	st, err := g.Infer()
	if err != nil {
		return nil, err
	}
	return summarize(s, a, g, st), nil
}

// summarize groups node stats by layer, in order of each layer's first node.
// When Infer succeeded every sum fits (it checks the totals); on the partial
// stats of a failed Infer a sum that would pass int64 stays at its maximum,
// so a budget check still sees it as large, never as wrapped.
func summarize(s Space, a Arch, g *Graph, st []Stats) *Analysis {
	an := &Analysis{}
	pos := map[string]int{}
	for i, n := range g.Nodes {
		k, ok := pos[n.Layer]
		if !ok {
			k = len(an.Layers)
			pos[n.Layer] = k
			an.Layers = append(an.Layers, LayerStats{Name: n.Layer})
		}
		l := &an.Layers[k]
		l.Output = st[i].Shape // nodes are topological: a layer's last node is its output
		l.Params = satInt(int64(l.Params), int64(st[i].Params))
		l.FLOPs = sat64(l.FLOPs, st[i].FLOPs)
		b, ok := mul64(4, int64(st[i].Shape.C), int64(st[i].Shape.H), int64(st[i].Shape.W))
		if !ok {
			b = math.MaxInt64
		}
		l.ActivationBytes = sat64(l.ActivationBytes, b)
	}
	for _, l := range an.Layers {
		an.Params = satInt(int64(an.Params), int64(l.Params))
		an.FLOPs = sat64(an.FLOPs, l.FLOPs)
		an.ActivationBytes = sat64(an.ActivationBytes, l.ActivationBytes)
	}
	an.Output = st[len(st)-1].Shape

	if b, ok := s.(builtin); ok {
		_, descs := b.build(a.Decisions)
		for _, d := range descs {
			if k, ok := pos[d.name]; ok {
				l := &an.Layers[k]
				l.Op, l.Inputs, l.Skips = d.op, d.inputs, d.skips
			}
		}
		return an
	}
	// A space from elsewhere: describe each layer by its nodes.
	kinds := make([][]string, len(an.Layers))
	for _, n := range g.Nodes {
		k := pos[n.Layer]
		kinds[k] = append(kinds[k], string(n.Op.Kind))
		for _, j := range n.Inputs {
			if from := g.Nodes[j].Layer; from != n.Layer && !contains(an.Layers[k].Inputs, from) {
				an.Layers[k].Inputs = append(an.Layers[k].Inputs, from)
			}
		}
	}
	for k := range an.Layers {
		an.Layers[k].Op = strings.Join(kinds[k], " → ")
	}
	return an
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// Validate checks that a lowers to a well-formed network within b and reports
// every problem at once: invalid decisions, layers whose spatial size falls
// below 1 (each named), and each budget overrun with the layer that
// contributes most. Costs of a network that fails shape inference are counted
// over the nodes that could be inferred, so an overrun reported then is real.
// A cost that overflows int64 is an error naming the quantity and the layer
// (from Infer), so such an architecture is rejected whatever the budget.
//
// nas convolutions pad (K-1)/2, so their output is ⌈in/stride⌉ and never
// collapses; spatial collapse comes from enas-macro's reductions.
func Validate(s Space, a Arch, b Budget) error {
	p := &problems{prefix: "arch: " + s.Name() + ": "}
	if b.MaxParams < 0 {
		p.add("budget max_params = %d: must be ≥ 0 (0 = unlimited)", b.MaxParams)
	}
	if b.MaxFLOPs < 0 {
		p.add("budget max_flops = %d: must be ≥ 0 (0 = unlimited)", b.MaxFLOPs)
	}
	if b.MaxActivationBytes < 0 {
		p.add("budget max_activation_bytes = %d: must be ≥ 0 (0 = unlimited)", b.MaxActivationBytes)
	}
	g, err := s.Lower(a)
	if err != nil {
		p.errs = append(p.errs, err)
		return p.err()
	}
	st, err := g.Infer()
	if err != nil {
		p.errs = append(p.errs, err)
		if len(st) == 0 || len(st) != len(g.Nodes) { // no input node: nothing to count
			return p.err()
		}
	}
	an := summarize(s, a, g, st)

	largest := func(v func(LayerStats) int64) string {
		best := 0
		for k, l := range an.Layers {
			if v(l) > v(an.Layers[best]) {
				best = k
			}
		}
		return fmt.Sprintf("%s with %s", an.Layers[best].Name, count(v(an.Layers[best]), math.MaxInt64))
	}
	if b.MaxParams > 0 && an.Params > b.MaxParams {
		p.add("params %s over budget %s (largest: %s)", count(int64(an.Params), math.MaxInt), group(int64(b.MaxParams)),
			largest(func(l LayerStats) int64 { return int64(l.Params) }))
	}
	if b.MaxFLOPs > 0 && an.FLOPs > b.MaxFLOPs {
		p.add("FLOPs %s over budget %s (largest: %s)", count(an.FLOPs, math.MaxInt64), group(b.MaxFLOPs),
			largest(func(l LayerStats) int64 { return l.FLOPs }))
	}
	if b.MaxActivationBytes > 0 && an.ActivationBytes > b.MaxActivationBytes {
		p.add("activation bytes %s over budget %s (largest: %s)", count(an.ActivationBytes, math.MaxInt64), group(b.MaxActivationBytes),
			largest(func(l LayerStats) int64 { return l.ActivationBytes }))
	}
	return p.err()
}

// count writes a cost for a message: grouped, or "more than max" when a sum
// saturated at max (summarize).
func count(n, max int64) string {
	if n == max {
		return "more than " + group(max)
	}
	return group(n)
}

// group writes n with thousands separators: 1,234,567.
func group(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

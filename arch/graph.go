package arch

import (
	"errors"
	"fmt"
	"math"
)

// Kind names a primitive operation of a lowered network.
type Kind string

// The primitives every space lowers to. Train builds exactly these, so a new
// space needs no new training code as long as it lowers to them.
const (
	KindInput         Kind = "input"          // the image, shape = Graph.Input
	KindConv          Kind = "conv"           // KH×KW convolution, Out filters, Stride, pad (K-1)/2 per side
	KindDepthwiseConv Kind = "depthwise-conv" // one KH×KW filter per channel, Stride, pad (K-1)/2
	KindMaxPool       Kind = "maxpool"        // KH×KW window, Stride, Pad per side; padding never wins
	KindAvgPool       Kind = "avgpool"        // KH×KW window, Stride, Pad per side; padding not counted
	KindBatchNorm     Kind = "batchnorm"      // per-channel scale and shift
	KindReLU          Kind = "relu"
	KindConcat        Kind = "concat"  // along channels; smaller maps zero-padded at bottom/right to the largest
	KindAdd           Kind = "add"     // element-wise sum of same-shaped inputs
	KindGlobalAvgPool Kind = "gap"     // C×H×W → C×1×1
	KindFlatten       Kind = "flatten" // C×H×W → (C·H·W)×1×1, in C,H,W order
	KindDense         Kind = "dense"   // (N)×1×1 → Out×1×1, with bias
	// KindShift moves a map up and left by one pixel, y[c,i,j] = x[c,i+1,j+1],
	// zero past the bottom and right edges: the second path of ENAS's
	// factorized reduction, which no centred conv or pool can express. A copy:
	// no params and 0 FLOPs, like concat and flatten.
	KindShift Kind = "shift"

	// Recurrent cells (nas-rnn, enas-rnn). A cell graph (Graph.Hidden > 0)
	// is evaluated once per time step with the same weights; every value is
	// a vector, shape N×1×1.
	KindCellInput Kind = "cell-input" // x_t, h_{t−1} or c_{t−1}, as Op.Signal says; no inputs
	KindLinear    Kind = "linear"     // y = x·W (+ b if Bias), Out units; input N×1×1
	KindMul       Kind = "mul"        // element-wise product of same-shaped inputs
	KindTanh      Kind = "tanh"
	KindSigmoid   Kind = "sigmoid"
	KindIdentity  Kind = "identity" // a copy: an activation choice "identity", an output name
	// KindHighway reads (c, f, s), in that order, all of one shape, and gives
	// c⊙f + (1−c)⊙s, computed as s + c⊙(f − s): ENAS's gated node.
	KindHighway Kind = "highway"
	KindMean    Kind = "mean" // element-wise mean of same-shaped inputs
)

// The Op.Signal of a KindCellInput node.
const (
	SignalX = "x" // x_t, the token's embedding: Graph.Input
	SignalH = "h" // h_{t−1}, the previous step's output: Hidden×1×1
	SignalC = "c" // c_{t−1}, the previous memory state (Graph.Memory > 0): Hidden×1×1
)

// Op is one primitive with its hyper-parameters; fields a kind does not use stay zero.
type Op struct {
	Kind   Kind `json:"kind"`
	KH     int  `json:"kh,omitempty"`
	KW     int  `json:"kw,omitempty"`
	Stride int  `json:"stride,omitempty"`
	Pad    int  `json:"pad,omitempty"`  // pooling only; convolutions always pad (K-1)/2
	Out    int  `json:"out,omitempty"`  // filters (conv) or units (dense)
	Bias   bool `json:"bias,omitempty"` // conv and linear; dense always has a bias
	// Signal is what a KindCellInput node reads: SignalX, SignalH or SignalC.
	Signal string `json:"signal,omitempty"`
}

// Shape is the shape of one example's activation: channels, height, width.
type Shape struct {
	C int `json:"c" toml:"c"`
	H int `json:"h" toml:"h"`
	W int `json:"w" toml:"w"`
}

// Elems is the number of values in the activation.
func (s Shape) Elems() int { return s.C * s.H * s.W }

func (s Shape) String() string { return fmt.Sprintf("%d×%d×%d", s.C, s.H, s.W) }

// Node is one primitive applied to the outputs of earlier nodes.
type Node struct {
	Op     Op    `json:"op"`
	Inputs []int `json:"inputs,omitempty"` // indices of earlier nodes
	// Layer names the space-level layer the node implements ("layer 3", "stem", "head"),
	// so errors and tables speak the user's language.
	Layer string `json:"layer"`
}

// Graph is a network lowered to primitives: node 0 is the input, nodes are in
// topological order (inputs always have smaller indices), the last node
// produces the logits.
//
// A recurrent cell (Hidden > 0) is one time step instead: node 0 and only
// KindCellInput nodes read the step's inputs (x_t of shape Input, E×1×1;
// h_{t−1} and c_{t−1} of Hidden×1×1), the last node is h_t and, when Memory
// > 0, node Memory is c_t, both Hidden×1×1. Classes is 0: the embedding and
// the decoder around the cell belong to the language model, not the cell.
// Stats of a cell are per token.
type Graph struct {
	Input   Shape  `json:"input"`
	Classes int    `json:"classes"`
	Nodes   []Node `json:"nodes"`
	Hidden  int    `json:"hidden,omitempty"` // a cell's h_t size; 0 for a network
	Memory  int    `json:"memory,omitempty"` // a cell's c_t node; 0 when the cell has no memory state
}

// Stats is what static analysis knows about one node.
type Stats struct {
	Shape  Shape // output shape per example
	Params int   // learnable parameters
	FLOPs  int64 // forward FLOPs per example, a multiply-add counted as 2
}

// convOut is the output size of a window op of size k, stride s and padding p per side.
// A window that does not fit even once gives 0: Go's division truncates toward
// zero, so (1-2)/2+1 would wrongly report 1 where PyTorch's floor gives 0.
func convOut(in, k, s, p int) int {
	n := in + 2*p - k
	if n < 0 {
		return 0
	}
	return n/s + 1
}

// Infer computes every node's output shape, parameters and FLOPs without
// building the network. It reports every problem it finds, each naming its
// node and layer; a node fed by a broken node is skipped rather than reported,
// so one collapse is one message, not one per downstream node. Its arithmetic
// is checked: a node's params, FLOPs or activation bytes that pass int64 (params:
// int), or a total of them over the nodes, is an error naming the quantity, the
// node and its layer; when Infer succeeds, callers may sum the stats freely.
func (g *Graph) Infer() ([]Stats, error) {
	var errs []error
	failed := make([]bool, len(g.Nodes))
	bad := func(i int, format string, args ...any) {
		failed[i] = true
		errs = append(errs, fmt.Errorf("arch: node %d (%s, %s): %s", i, g.Nodes[i].Op.Kind, g.Nodes[i].Layer, fmt.Sprintf(format, args...)))
	}
	cell := g.Hidden != 0
	switch {
	case g.Hidden < 0:
		return nil, fmt.Errorf("arch: cell graph: hidden = %d: must be ≥ 1 (or 0 for a network)", g.Hidden)
	case cell && (len(g.Nodes) == 0 || g.Nodes[0].Op.Kind != KindCellInput):
		return nil, errors.New("arch: cell graph must start with a cell-input node")
	case !cell && (len(g.Nodes) == 0 || g.Nodes[0].Op.Kind != KindInput):
		return nil, errors.New("arch: graph must start with an input node")
	}
	signals := map[string]int{} // a cell's inputs, each read by one node
	st := make([]Stats, len(g.Nodes))
	for i, n := range g.Nodes {
		ins := make([]Shape, 0, len(n.Inputs))
		inputsOK := true
		for _, j := range n.Inputs {
			if j < 0 || j >= i {
				bad(i, "input %d is not an earlier node", j)
				inputsOK = false
				continue
			}
			if failed[j] {
				failed[i] = true
			}
			ins = append(ins, st[j].Shape)
		}
		if !inputsOK || failed[i] {
			continue
		}
		want := 1
		switch n.Op.Kind {
		case KindInput, KindCellInput:
			want = 0
		case KindConcat, KindAdd, KindMul, KindMean:
			want = -1
		case KindHighway:
			want = 3
		}
		if want >= 0 && len(ins) != want {
			bad(i, "takes %d inputs, has %d", want, len(ins))
			continue
		}
		if want < 0 && len(ins) == 0 {
			bad(i, "needs at least one input")
			continue
		}
		var in Shape
		if len(ins) > 0 {
			in = ins[0]
		}
		s := &st[i]
		op := n.Op
		// Costs are products of sizes that the options allow up to 65536
		// each: every one is checked, and one that passes int64 fails the
		// node, naming the quantity, rather than wrapping to a small or
		// negative count that would pass a budget.
		fits := true
		mul := func(what string, xs ...int64) int64 {
			v, ok := mul64(xs...)
			if !ok {
				bad(i, "%s = %s overflows int64", what, factors(xs))
				fits = false
			}
			return v
		}
		plus := func(what string, a, b int64) int64 {
			v, ok := add64(a, b)
			if !ok {
				bad(i, "%s = %d + %d overflows int64", what, a, b)
				fits = false
			}
			return v
		}
		c, h, w := int64(in.C), int64(in.H), int64(in.W)
		var params int64
		switch op.Kind {
		case KindInput:
			if cell {
				bad(i, "a cell graph reads its inputs through cell-input nodes")
				continue
			}
			if i != 0 {
				bad(i, "only node 0 may be the input")
				continue
			}
			s.Shape = g.Input
		case KindCellInput:
			if !cell {
				bad(i, "only a cell graph (hidden > 0) has cell inputs")
				continue
			}
			if j, dup := signals[op.Signal]; dup {
				bad(i, "signal %q is already read by node %d", op.Signal, j)
				continue
			}
			switch op.Signal {
			case SignalX:
				s.Shape = g.Input
				if g.Input.H != 1 || g.Input.W != 1 || g.Input.C < 1 {
					bad(i, "x_t of shape %v: want E×1×1 with E ≥ 1", g.Input)
					continue
				}
			case SignalH:
				s.Shape = Shape{g.Hidden, 1, 1}
			case SignalC:
				if g.Memory == 0 {
					bad(i, "reads c_{t−1}, but the cell has no memory state (memory = 0)")
					continue
				}
				s.Shape = Shape{g.Hidden, 1, 1}
			default:
				bad(i, "signal %q: want %q (x_t), %q (h_{t−1}) or %q (c_{t−1})", op.Signal, SignalX, SignalH, SignalC)
				continue
			}
			signals[op.Signal] = i
		case KindMul, KindMean, KindHighway:
			s.Shape = in
			for _, x := range ins[1:] {
				if x != in {
					bad(i, "combines inputs of shapes %v and %v", in, x)
				}
			}
			// mul: one product per extra input; mean: the sums and one
			// scale; highway: a subtraction, a product and a sum.
			k := int64(len(ins) - 1)
			switch op.Kind {
			case KindMean:
				k = int64(len(ins))
			case KindHighway:
				k = 3
			}
			s.FLOPs = mul("FLOPs", k, c, h, w)
		case KindTanh, KindSigmoid:
			// One FLOP per value, as relu: transcendentals are not weighted.
			s.Shape = in
			s.FLOPs = mul("FLOPs", c, h, w)
		case KindIdentity:
			s.Shape = in
		case KindConv, KindDepthwiseConv:
			if op.KH < 1 || op.KW < 1 || op.KH%2 == 0 || op.KW%2 == 0 || op.Stride < 1 {
				bad(i, "kernel %d×%d stride %d: kernel sizes must be odd and ≥ 1, stride ≥ 1", op.KH, op.KW, op.Stride)
				continue
			}
			out := op.Out
			if op.Kind == KindDepthwiseConv {
				out = in.C
			} else if out < 1 {
				bad(i, "filters = %d: must be ≥ 1", out)
				continue
			}
			s.Shape = Shape{out, convOut(in.H, op.KH, op.Stride, (op.KH-1)/2), convOut(in.W, op.KW, op.Stride, (op.KW-1)/2)}
			o := s.Shape
			kh, kw := int64(op.KH), int64(op.KW)
			if op.Kind == KindConv {
				params = mul("params", kh, kw, c, int64(out))
				if op.Bias && fits {
					params = plus("params", params, int64(out))
				}
				s.FLOPs = mul("FLOPs", 2, kh, kw, c, int64(o.C), int64(o.H), int64(o.W))
			} else {
				params = mul("params", kh, kw, c)
				s.FLOPs = mul("FLOPs", 2, kh, kw, int64(o.C), int64(o.H), int64(o.W))
			}
		case KindMaxPool, KindAvgPool:
			if op.KH < 1 || op.KW < 1 || op.Stride < 1 || op.Pad < 0 || 2*op.Pad >= op.KH || 2*op.Pad >= op.KW {
				bad(i, "window %d×%d stride %d pad %d: need window ≥ 1, stride ≥ 1, 0 ≤ 2·pad < window", op.KH, op.KW, op.Stride, op.Pad)
				continue
			}
			s.Shape = Shape{in.C, convOut(in.H, op.KH, op.Stride, op.Pad), convOut(in.W, op.KW, op.Stride, op.Pad)}
			s.FLOPs = mul("FLOPs", int64(op.KH), int64(op.KW), int64(s.Shape.C), int64(s.Shape.H), int64(s.Shape.W))
		case KindBatchNorm:
			s.Shape = in
			params = mul("params", 2, c)
			s.FLOPs = mul("FLOPs", 2, c, h, w)
		case KindReLU:
			s.Shape = in
			s.FLOPs = mul("FLOPs", c, h, w)
		case KindShift:
			s.Shape = in
		case KindConcat:
			var ch int64
			for _, x := range ins {
				if ch = plus("channels", ch, int64(x.C)); !fits {
					break
				}
				s.Shape.H = max(s.Shape.H, x.H)
				s.Shape.W = max(s.Shape.W, x.W)
			}
			s.Shape.C = int(ch)
		case KindAdd:
			s.Shape = in
			for _, x := range ins[1:] {
				if x != in {
					bad(i, "adds inputs of shapes %v and %v", in, x)
				}
			}
			s.FLOPs = mul("FLOPs", int64(len(ins)-1), c, h, w)
		case KindGlobalAvgPool:
			s.Shape = Shape{in.C, 1, 1}
			s.FLOPs = mul("FLOPs", c, h, w)
		case KindFlatten:
			s.Shape = Shape{in.Elems(), 1, 1} // in's activation bytes were checked, so its Elems fits
		case KindDense, KindLinear: // dense always has a bias, linear when Bias
			if in.H != 1 || in.W != 1 {
				if op.Kind == KindDense {
					bad(i, "input %v is not flat (add a flatten or gap node)", in)
				} else {
					bad(i, "input %v is not a vector", in)
				}
				continue
			}
			if op.Out < 1 {
				bad(i, "units = %d: must be ≥ 1", op.Out)
				continue
			}
			s.Shape = Shape{op.Out, 1, 1}
			params = mul("params", c, int64(op.Out))
			if (op.Kind == KindDense || op.Bias) && fits {
				params = plus("params", params, int64(op.Out))
			}
			s.FLOPs = mul("FLOPs", 2, c, int64(op.Out))
		default:
			bad(i, "unknown op kind %q", op.Kind)
			continue
		}
		// The activation, in float32 bytes: bounding it bounds Elems too.
		mul("activation bytes", 4, int64(s.Shape.C), int64(s.Shape.H), int64(s.Shape.W))
		if fits && params > math.MaxInt {
			bad(i, "params = %d overflows int", params)
			fits = false
		}
		if !fits {
			s.Params, s.FLOPs = 0, 0
			continue
		}
		s.Params = int(params)
		if s.Shape.C < 1 || s.Shape.H < 1 || s.Shape.W < 1 {
			bad(i, "output shape %v: spatial size shrank below 1", s.Shape)
		}
	}
	// Callers sum the stats over nodes (the FLOPs that the reward penalty
	// reads, the params of a result), so the totals must fit as well; the
	// node where one passes int64 is reported.
	var params, flops, act int64
	overParams, overFLOPs, overAct := false, false, false
	for i := range st {
		s := st[i]
		if v, ok := add64(params, int64(s.Params)); !ok || v > math.MaxInt {
			if !overParams {
				bad(i, "total params up to this node overflow int (%s before it, %s here)", group(params), group(int64(s.Params)))
			}
			overParams = true
		} else {
			params = v
		}
		if v, ok := add64(flops, s.FLOPs); !ok {
			if !overFLOPs {
				bad(i, "total FLOPs up to this node overflow int64 (%s before it, %s here)", group(flops), group(s.FLOPs))
			}
			overFLOPs = true
		} else {
			flops = v
		}
		b, _ := mul64(4, int64(s.Shape.C), int64(s.Shape.H), int64(s.Shape.W)) // checked per node above
		if v, ok := add64(act, b); !ok {
			if !overAct {
				bad(i, "total activation bytes up to this node overflow int64 (%s before it, %s here)", group(act), group(b))
			}
			overAct = true
		} else {
			act = v
		}
	}
	if len(errs) == 0 {
		last := st[len(st)-1].Shape
		switch {
		case cell:
			vec := Shape{g.Hidden, 1, 1}
			if last != vec {
				errs = append(errs, fmt.Errorf("arch: cell graph: last node outputs %v, want h_t of %v", last, vec))
			}
			if g.Memory < 0 || g.Memory >= len(st) {
				errs = append(errs, fmt.Errorf("arch: cell graph: memory = %d: not a node (0 for none, else 1..%d)", g.Memory, len(st)-1))
			} else if g.Memory > 0 && st[g.Memory].Shape != vec {
				errs = append(errs, fmt.Errorf("arch: cell graph: memory node %d (%s) outputs %v, want c_t of %v", g.Memory, g.Nodes[g.Memory].Layer, st[g.Memory].Shape, vec))
			}
		case last != (Shape{g.Classes, 1, 1}):
			errs = append(errs, fmt.Errorf("arch: last node outputs %v, want %d×1×1 logits", last, g.Classes))
		}
	}
	if len(errs) > 0 {
		return st, errors.Join(errs...)
	}
	return st, nil
}

package train

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"nasd/arch"
)

// BuildOptions configures Build.
type BuildOptions struct {
	Batch int  // examples per run, ≥ 1
	Train bool // training mode: batch statistics in batch norm, gradients computed
	// Prefix names node i's parameters (Prefix(i)+"/conv/W", ...). The
	// default, "node<i>", gives each architecture its own weights; a weight-
	// sharing search (ENAS) maps nodes to shared names instead.
	Prefix func(i int, n arch.Node) string
	// Buffers, when set, is memory shared with the other nets built with it
	// (see Buffers); nil gives the net buffers of its own.
	Buffers *Buffers
	// Dropout > 0 puts inverted dropout of that rate on the input of the
	// last node (the classifier) of a training net, its masks drawn from
	// DropoutRNG (required then): one stream per trainer, so a run's masks
	// follow from its seed and its sequence of steps.
	Dropout    float64
	DropoutRNG *rand.PCG
	// BatchStats makes an evaluation net (Train false) normalise with each
	// batch's own statistics, as ENAS evaluates children during the search
	// (running statistics are shared by all children and so fit none). It
	// still updates the store's running statistics; such a net runs only
	// full batches, since padding would change the statistics.
	BatchStats bool
}

// Net is an architecture built as a compiled Gorgonia graph for one batch size
// and mode, reading its parameters from a Weights store. Nets are not safe for
// concurrent use, and nets sharing a store must not run concurrently.
type Net struct {
	arch   *arch.Graph
	batch  int
	train  bool
	full   bool // runs only full batches (training, or batch statistics)
	g      *G.ExprGraph
	prog   runner
	nodes  []*G.Node // per arch node
	loss   *G.Node
	head   lossHead
	params []*Param  // trainable, in graph order
	grads  []*G.Node // per params, training only
	setX   func(x []float32, n int)
	gradOf func(i int) any // []float32 or []float64 of params[i]'s gradient
	logits func() []float32
}

// Build builds and compiles g for opt.Batch examples per run, creating in w
// the parameters it does not hold yet.
func Build(g *arch.Graph, w *Weights, opt BuildOptions) (*Net, error) {
	return buildWith(g, w, opt, nil)
}

// buildWith builds with the given kernels (nil: the pure-Go ones).
func buildWith(g *arch.Graph, w *Weights, opt BuildOptions, k kernels) (*Net, error) {
	if opt.Batch < 1 {
		return nil, fmt.Errorf("train: batch size %d: must be ≥ 1", opt.Batch)
	}
	stats, err := g.Infer()
	if err != nil {
		return nil, err
	}
	if opt.Prefix == nil {
		opt.Prefix = func(i int, _ arch.Node) string { return "node" + strconv.Itoa(i) }
	}
	if opt.Buffers != nil {
		opt.Buffers.begin()
	}
	if w.Dtype() == tensor.Float32 {
		if k == nil {
			k = goKernels[float32]{opt.Buffers}
		}
		return buildT[float32](g, stats, w, opt, k)
	}
	if k == nil {
		k = goKernels[float64]{opt.Buffers}
	}
	return buildT[float64](g, stats, w, opt, k)
}

func buildT[T Float](ag *arch.Graph, stats []arch.Stats, w *Weights, opt BuildOptions, k kernels) (*Net, error) {
	B := opt.Batch
	dt := dtypeOf[T]()
	g := G.NewGraph()
	n := &Net{arch: ag, batch: B, train: opt.Train, full: opt.Train || opt.BatchStats, g: g, nodes: make([]*G.Node, len(ag.Nodes))}
	pnodes := G.Nodes{}
	byName := map[string]*G.Node{}
	// param adds a store tensor to the graph as an input node, once per name
	// (a Prefix may map several nodes to one name). A tensor the store holds
	// as not trainable is a constant (the fixed shift of the supernet's
	// factorized reduction): read, but given no gradient and never updated.
	param := func(name string, shape []int, init initKind, fanIn int) (*G.Node, error) {
		p := w.Get(name)
		constant := p != nil && !p.Trainable && slices.Equal(p.Shape, shape)
		if !constant {
			var err error
			if p, err = w.param(name, shape, init, fanIn, true); err != nil {
				return nil, err
			}
		}
		if nd, ok := byName[name]; ok {
			return nd, nil
		}
		nd := G.NewTensor(g, dt, len(shape), G.WithShape(shape...), G.WithName(name), G.WithValue(p.Value))
		byName[name] = nd
		if !constant {
			n.params = append(n.params, p)
			pnodes = append(pnodes, nd)
		}
		return nd, nil
	}
	// needsGrad[i]: node i depends on a parameter, so its gradient is needed.
	needsGrad := make([]bool, len(ag.Nodes))
	fusedReLU, linked := convFusions(ag)
	in := ag.Input
	xT := newTensor[T](opt.Buffers, B, in.C, in.H, in.W)
	for i, node := range ag.Nodes {
		o := node.Op
		pre := opt.Prefix(i, node)
		var xs []*G.Node
		var x *G.Node
		for _, j := range node.Inputs {
			xs = append(xs, n.nodes[j])
			needsGrad[i] = needsGrad[i] || needsGrad[j]
		}
		var needDX bool
		if len(xs) > 0 {
			x = xs[0]
			needDX = needsGrad[node.Inputs[0]]
		}
		var y *G.Node
		var err error
		switch o.Kind {
		case arch.KindInput:
			y = G.NewTensor(g, dt, 4, G.WithShape(B, in.C, in.H, in.W), G.WithName("x"), G.WithValue(xT))
		case arch.KindConv:
			c := x.Shape()[1]
			var wn, bn *G.Node
			if wn, err = param(pre+"/conv/W", []int{o.Out, c, o.KH, o.KW}, initHe, c*o.KH*o.KW); err != nil {
				return nil, err
			}
			if o.Bias {
				if bn, err = param(pre+"/conv/b", []int{o.Out}, initZeros, 0); err != nil {
					return nil, err
				}
			}
			y, err = k.Conv(x, wn, bn, o.KH, o.KW, o.Stride, needDX, fusedReLU[i+1])
			if err == nil && linked[i] {
				linkBlocked[T](x, y)
			}
			needsGrad[i] = true
		case arch.KindDepthwiseConv:
			c := x.Shape()[1]
			var wn *G.Node
			if wn, err = param(pre+"/dwconv/W", []int{c, 1, o.KH, o.KW}, initHe, o.KH*o.KW); err != nil {
				return nil, err
			}
			y, err = k.DepthwiseConv(x, wn, o.KH, o.KW, o.Stride, needDX)
			needsGrad[i] = true
		case arch.KindMaxPool:
			y, err = k.MaxPool(x, o.KH, o.KW, o.Stride, o.Pad)
			if err == nil && linked[i] {
				linkBlocked[T](x, y)
			}
		case arch.KindAvgPool:
			y, err = k.AvgPool(x, o.KH, o.KW, o.Stride, o.Pad)
		case arch.KindBatchNorm:
			c := x.Shape()[1]
			var gn, bn *G.Node
			if gn, err = param(pre+"/bn/gamma", []int{c}, initOnes, 0); err != nil {
				return nil, err
			}
			if bn, err = param(pre+"/bn/beta", []int{c}, initZeros, 0); err != nil {
				return nil, err
			}
			mean, err := w.param(pre+"/bn/mean", []int{c}, initZeros, 0, false)
			if err != nil {
				return nil, err
			}
			variance, err := w.param(pre+"/bn/var", []int{c}, initOnes, 0, false)
			if err != nil {
				return nil, err
			}
			y, err = k.BatchNorm(x, gn, bn, mean.Value, variance.Value, opt.Train || opt.BatchStats)
			needsGrad[i] = true
		case arch.KindReLU:
			if fusedReLU[i] {
				y = x // the convolution before applied it
			} else {
				y, err = k.ReLU(x)
			}
		case arch.KindConcat:
			if len(xs) == 1 {
				y = x
			} else {
				y, err = k.Concat(xs)
			}
		case arch.KindAdd:
			if len(xs) == 1 {
				y = x
			} else {
				y, err = k.Add(xs)
			}
		case arch.KindGlobalAvgPool:
			y, err = k.GlobalAvgPool(x)
		case arch.KindFlatten:
			y, err = k.Flatten(x)
		case arch.KindDense:
			if opt.Train && opt.Dropout > 0 && i == len(ag.Nodes)-1 {
				if opt.DropoutRNG == nil {
					return nil, fmt.Errorf("train: build: dropout %g without a DropoutRNG", opt.Dropout)
				}
				if x, err = k.Dropout(x, opt.Dropout, opt.DropoutRNG); err != nil {
					return nil, fmt.Errorf("train: build: node %d (%s): %w", i, node.Layer, err)
				}
			}
			in := x.Shape().TotalSize() / B
			var wn, bn *G.Node
			if wn, err = param(pre+"/dense/W", []int{o.Out, in}, initHe, in); err != nil {
				return nil, err
			}
			if bn, err = param(pre+"/dense/b", []int{o.Out}, initZeros, 0); err != nil {
				return nil, err
			}
			y, err = k.Dense(x, wn, bn, needDX)
			needsGrad[i] = true
		case arch.KindShift:
			y, err = k.Shift(x)
		default:
			err = fmt.Errorf("unknown op kind %q", o.Kind)
		}
		if err != nil {
			return nil, fmt.Errorf("train: node %d (%s, %s): %w", i, o.Kind, node.Layer, err)
		}
		st := stats[i].Shape
		if want := (tensor.Shape{B, st.C, st.H, st.W}); !y.Shape().Eq(want) {
			return nil, fmt.Errorf("train: node %d (%s, %s): built shape %v, arch infers %v", i, o.Kind, node.Layer, y.Shape(), want)
		}
		n.nodes[i] = y
	}
	var err error
	if n.loss, n.head, err = k.SoftmaxCE(n.nodes[len(n.nodes)-1]); err != nil {
		return nil, fmt.Errorf("train: loss: %w", err)
	}
	if opt.Train && len(pnodes) > 0 {
		if n.grads, err = G.Grad(n.loss, pnodes...); err != nil {
			return nil, fmt.Errorf("train: gradients: %w", err)
		}
	}
	prog, err := newProgram[T](g, opt.Buffers, append(G.Nodes{n.loss, n.nodes[len(n.nodes)-1]}, n.grads...))
	if err != nil {
		return nil, err
	}
	n.prog = prog
	xs := raw[T](xT)
	size := in.Elems()
	n.setX = func(x []float32, m int) {
		for i, v := range x[:m*size] {
			xs[i] = T(v)
		}
		clear(xs[m*size:])
	}
	n.gradOf = func(i int) any { return raw[T](n.prog.value(n.grads[i])) }
	n.logits = func() []float32 {
		v := raw[T](n.prog.value(n.nodes[len(n.nodes)-1]))
		out := make([]float32, len(v))
		for i, x := range v {
			out[i] = float32(x)
		}
		return out
	}
	return n, nil
}

// Batch returns the number of examples per run.
func (n *Net) Batch() int { return n.batch }

// Params returns the trainable parameters the net reads, in graph order.
func (n *Net) Params() []*Param { return n.params }

// Shapes returns the shape of every arch node's output, batch first.
func (n *Net) Shapes() []tensor.Shape {
	s := make([]tensor.Shape, len(n.nodes))
	for i, x := range n.nodes {
		s[i] = x.Shape().Clone()
	}
	return s
}

// Run runs the graph on len(labels) examples (x holds their C·H·W values
// each): forward, and in training mode backward. An evaluation net pads a
// short batch and ignores the padding; a training or BatchStats net needs a
// full batch, since padding would change the batch-norm statistics. It
// returns the mean loss and the number of correct predictions.
func (n *Net) Run(x []float32, labels []int32) (loss float64, correct int, err error) {
	m := len(labels)
	if m < 1 || m > n.batch || (n.full && m != n.batch) {
		return 0, 0, fmt.Errorf("train: Run: %d examples for a net of batch %d (training %v)", m, n.batch, n.train)
	}
	if len(x) < m*n.arch.Input.Elems() {
		return 0, 0, fmt.Errorf("train: Run: %d input values for %d examples of %v", len(x), m, n.arch.Input)
	}
	n.setX(x, m)
	n.head.Set(labels)
	if err := n.prog.run(); err != nil {
		return 0, 0, err
	}
	return n.head.Loss(), n.head.Correct(), nil
}

// ProfileOps starts (on) or stops timing each op of the net's runs; OpTimes
// reads the sums. Timing costs two clock reads per op.
func (n *Net) ProfileOps(on bool) { n.prog.profile(on) }

// OpTimes returns the time spent per op kind and output shape since
// ProfileOps(true), in execution order of first appearance.
func (n *Net) OpTimes() []OpTime { return n.prog.opTimes() }

// Logits returns a copy of the last node's output after the last Run, batch
// first (Batch·classes values, padding rows included): what an exported
// model is checked against.
func (n *Net) Logits() []float32 { return n.logits() }

// Close releases the net. (Its program holds nothing outside the Go heap;
// Close stays so that a backend with device memory can free it.)
func (n *Net) Close() error { return nil }

// fuseConvReLUs: a convolution whose only reader is a ReLU runs as one op
// with it (conv + ReLU; on oneDNN a post-op, so the activation is written
// once and ReLU's gradient shares a pass with the bias gradient).
// linkConvReLUs: when that ReLU's only reader is another convolution, or a
// 2×2 stride-2 max pooling (and then the pooling's only reader, if that is
// a convolution), the tensors between them stay in oneDNN's blocked layout
// and are never reordered (linkBlocked).
// NASD_FUSE=relu fuses without linking, NASD_FUSE=off does neither, to
// measure what each gains.
var fuseConvReLUs, linkConvReLUs = os.Getenv("NASD_FUSE") != "off", os.Getenv("NASD_FUSE") == ""

// convFusions returns, for each node of g, whether it is a ReLU fused into
// the convolution before it (node i−1, then built with relu set; node i−1's
// output is then max(conv, 0), which only node i reads), and whether it is
// linked to the node before: a convolution or 2×2 stride-2 max pooling whose
// input is such a ReLU read by it alone, or a convolution whose input is
// such a pooling read by it alone.
func convFusions(g *arch.Graph) (fused, linked []bool) {
	fused = make([]bool, len(g.Nodes)+1) // +1: Build looks one node past a trailing conv
	linked = make([]bool, len(g.Nodes))
	if !fuseConvReLUs {
		return fused, linked
	}
	readers := make([]int, len(g.Nodes))
	for _, nd := range g.Nodes {
		for _, j := range nd.Inputs {
			readers[j]++
		}
	}
	for i := 1; i < len(g.Nodes); i++ {
		nd := g.Nodes[i]
		fused[i] = nd.Op.Kind == arch.KindReLU && len(nd.Inputs) == 1 && nd.Inputs[0] == i-1 &&
			g.Nodes[i-1].Op.Kind == arch.KindConv && readers[i-1] == 1
	}
	if !linkConvReLUs {
		return fused, linked
	}
	for i, nd := range g.Nodes {
		if len(nd.Inputs) != 1 || readers[nd.Inputs[0]] != 1 {
			continue
		}
		j := nd.Inputs[0]
		o := nd.Op
		half2 := o.Kind == arch.KindMaxPool && o.KH == 2 && o.KW == 2 && o.Stride == 2 && o.Pad == 0
		linked[i] = (o.Kind == arch.KindConv || half2) && fused[j] ||
			o.Kind == arch.KindConv && g.Nodes[j].Op.Kind == arch.KindMaxPool && linked[j]
	}
	return fused, linked
}

package train

import (
	"container/list"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"gorgonia.org/tensor"

	"nasd/arch"
)

// Supernet is the shared graph of an enas-macro or enas-micro space (Pham
// et al. 2018, §2.3 and §2.4, and the authors' search code): it holds the
// weights of every candidate op of every layer (macro) or of every branch of
// every cell (micro, see supernet_micro.go), and trains one sampled child
// per Step on its own sub-graph.
//
// Each child is lowered to an arch.Graph of this package's primitives and
// built once (an LRU cache keyed by its decisions, batch size and mode; the
// space and options are checked when a child is first built); the
// parameter tensors of the built net alias slices of one flat []float32, so
// a step reads the shared weights in place and costs what the child costs,
// with no copies and no masking of unused ops. Step adds the child's
// gradients into one flat gradient buffer at the same offsets; ApplySGD
// updates the whole flat buffer from it. Gradients add up: after k Steps
// (on one rank or summed over ranks by an Allreduce between Step and
// ApplySGD, which keeps every copy identical) the buffer holds the sum of k
// mean-loss gradients, and ScaleGrad(1/k) makes it their mean.
//
// The enas-macro child network, per layer i with op o on the previous
// layer's output:
//
//	conv K:    1×1 conv → BN → ReLU → K×K conv → BN → ReLU
//	sepconv K: 1×1 conv → BN → ReLU → K×K depthwise → 1×1 conv → BN → ReLU
//	pool K:    1×1 conv → BN → ReLU → K×K pool, stride 1
//	then for i > 0: add(branch, selected skips) → BN
//
// after a stem (3×3 conv → BN) and before a head (global average pool →
// dense). Channels stay constant. After each layer r of ReduceAfter, every
// output read later goes through its own factorized reduction (pool after
// r, from layer j): a 1×1 stride-2 conv of half the channels on the even
// pixels and another on the odd ones, concatenated, then BN. The odd pixels
// are taken by a fixed 3×3 stride-2 depthwise "shift" (one tap set), a
// constant, since the primitives have no crop. Only the reductions a child
// reads are built. Differences from the authors' child: no dropout before
// the dense layer (keep probability 1), and the dense layer has a bias.
//
// Batch norm: Step uses batch statistics and updates running statistics
// (kept in RunningStats, shared by all children and so fitting none);
// Evaluate uses the batch's own statistics, as ENAS does when it scores
// children during the search, and leaves the running statistics alone.
//
// A Supernet is not safe for concurrent use.
type Supernet struct {
	space   arch.Space
	opt     arch.Options
	ops     []snOp
	micro   *snMicro // nil for enas-macro
	reduce  []bool
	buckets []Bucket
	bucketI map[string]int
	specs   []paramSpec

	w, grad []float32 // flat parameters and their gradients
	vel     []float64 // SGD momentum, per parameter
	sgd     optimizer // ApplySGD's rule and parallel loop
	sgdSt   optState  // ApplySGD's state: vel
	stats   []float32 // batch-norm running means and variances

	trainW, evalW *Weights       // both alias w; evalW has private running stats
	offset        map[*Param]int // aliased parameter → offset in w
	buf           *Buffers
	maxNets       int
	lru           *list.List // of *snNet, most recent first
	nets          map[snKey]*list.Element
}

// Bucket is a contiguous range of the flat parameter buffer: the weights of
// one (layer, op) pair, one layer's output batch norm, one factorized
// reduction, the stem or the head.
type Bucket struct {
	Name   string
	Offset int
	Len    int
}

// SupernetOptions configures NewSupernet.
type SupernetOptions struct {
	// MaxNets bounds the built child nets kept (least recently used dropped);
	// default 256.
	MaxNets int
}

// snOp is a parsed enas-macro op name.
type snOp struct {
	name string
	kind string // conv, sepconv, maxpool or avgpool
	k    int
}

type paramSpec struct {
	name      string
	shape     []int
	init      initKind
	fanIn     int
	trainable bool
	bucket    int // -1: the shift constant
	off       int // in w (trainable) or stats
}

// isShift reports whether a parameter prefix names a shift constant.
func isShift(prefix string) bool { return strings.HasPrefix(prefix, shiftPrefix) }

type snKey struct {
	arch  string
	batch int
	train bool
}

type snNet struct {
	key  snKey
	net  *Net
	offs []int // per net param, offset in w
}

// shiftPrefix names the constant 3×3 depthwise kernel of factorized reductions.
const shiftPrefix = "fr-shift"

// SupernetPrefix names a child node's parameters in the graphs ChildGraph
// returns: node Layer fields are the parameter prefixes. Pass it as
// BuildOptions.Prefix to build a child stand-alone.
func SupernetPrefix(_ int, n arch.Node) string { return n.Layer }

// NewSupernet returns the shared weights of an enas-macro or enas-micro
// space, initialised from seed: each tensor is drawn from (seed, its name)
// as Weights does, so a stand-alone store of the same seed starts a child
// with the same values.
func NewSupernet(s arch.Space, seed uint64, o SupernetOptions) (*Supernet, error) {
	if s == nil || (s.Name() != "enas-macro" && s.Name() != "enas-micro") {
		return nil, errors.New("train: supernet: need an enas-macro or enas-micro space")
	}
	if o.MaxNets == 0 {
		o.MaxNets = 256
	}
	if o.MaxNets < 1 {
		return nil, fmt.Errorf("train: supernet: MaxNets %d: must be ≥ 1", o.MaxNets)
	}
	opt := s.Options()
	if opt.FinalNetwork {
		return nil, errors.New("train: supernet: final_network describes the retrained network, not the shared graph of a search")
	}
	sn := &Supernet{space: s, opt: opt, reduce: make([]bool, opt.Layers), bucketI: map[string]int{},
		offset: map[*Param]int{}, buf: NewBuffers(), maxNets: o.MaxNets, lru: list.New(), nets: map[snKey]*list.Element{}}
	if opt.Channels < 2 {
		return nil, fmt.Errorf("train: supernet: %d channels: factorized reduction needs ≥ 2", opt.Channels)
	}
	if s.Name() == "enas-micro" {
		m, err := newSnMicro(opt)
		if err != nil {
			return nil, err
		}
		sn.micro = m
		sn.microDeclare()
	} else {
		for _, name := range opt.Ops {
			op, err := parseSnOp(name)
			if err != nil {
				return nil, err
			}
			sn.ops = append(sn.ops, op)
		}
		for _, r := range opt.ReduceAfter {
			sn.reduce[r] = true
		}
		sn.declare()
	}

	init := NewWeights(tensor.Float32, seed)
	sn.trainW, sn.evalW = NewWeights(tensor.Float32, seed), NewWeights(tensor.Float32, seed)
	var nw, ns int
	for i := range sn.specs {
		p := &sn.specs[i]
		size := tensor.Shape(p.shape).TotalSize()
		if p.trainable {
			if sn.buckets[p.bucket].Len == 0 {
				sn.buckets[p.bucket].Offset = nw
			}
			p.off, nw = nw, nw+size
			sn.buckets[p.bucket].Len += size
		} else if p.bucket >= 0 {
			p.off, ns = ns, ns+size
		}
	}
	sn.w, sn.grad, sn.vel, sn.stats = make([]float32, nw), make([]float32, nw), make([]float64, nw), make([]float32, ns)
	for i := range sn.specs {
		p := &sn.specs[i]
		switch {
		case p.bucket < 0:
			shift := make([]float32, p.shape[0]*9)
			for c := range p.shape[0] {
				shift[c*9+8] = 1 // tap (2, 2): output (y, x) reads input (2y+1, 2x+1)
			}
			sn.trainW.put(p.name, p.shape, false, shift)
			sn.evalW.put(p.name, p.shape, false, shift)
		case p.trainable:
			v, err := init.param(p.name, p.shape, p.init, p.fanIn, true)
			if err != nil {
				return nil, err
			}
			dst := sn.w[p.off : p.off+len(v.Value.Float32s())]
			copy(dst, v.Value.Float32s())
			sn.offset[sn.trainW.put(p.name, p.shape, true, dst)] = p.off
			sn.offset[sn.evalW.put(p.name, p.shape, true, dst)] = p.off
		default: // running statistics: the evaluation store makes its own
			v, err := init.param(p.name, p.shape, p.init, 0, false)
			if err != nil {
				return nil, err
			}
			dst := sn.stats[p.off : p.off+len(v.Value.Float32s())]
			copy(dst, v.Value.Float32s())
			sn.trainW.put(p.name, p.shape, false, dst)
		}
	}
	return sn, nil
}

// put adds a tensor backed by v (not copied) to the store.
func (w *Weights) put(name string, shape []int, trainable bool, v []float32) *Param {
	p := &Param{Name: name, Shape: append([]int(nil), shape...), Trainable: trainable,
		Value: tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))}
	w.params[name] = p
	w.order = append(w.order, name)
	return p
}

func parseSnOp(name string) (snOp, error) {
	for _, kind := range []string{"sepconv", "conv", "maxpool", "avgpool"} {
		rest, ok := strings.CutPrefix(name, kind)
		if !ok {
			continue
		}
		a, b, ok := strings.Cut(rest, "x")
		k, err := strconv.Atoi(a)
		if ok && err == nil && a == b && k > 0 && k%2 == 1 {
			return snOp{name: name, kind: kind, k: k}, nil
		}
	}
	return snOp{}, fmt.Errorf("train: supernet: op %q: want convKxK, sepconvKxK, maxpoolKxK or avgpoolKxK", name)
}

// Buckets returns the flat buffer's buckets in order; they tile it.
func (s *Supernet) Buckets() []Bucket { return append([]Bucket(nil), s.buckets...) }

// Weights returns the flat parameter buffer itself (not a copy): every child
// net reads it in place.
func (s *Supernet) Weights() []float32 { return s.w }

// Grad returns the flat gradient buffer itself, laid out as Weights: a
// caller may sum it over ranks in place between Step and ApplySGD.
func (s *Supernet) Grad() []float32 { return s.grad }

// Momentum returns the flat SGD momentum buffer itself (checkpoints).
func (s *Supernet) Momentum() []float64 { return s.vel }

// RunningStats returns the batch-norm running means and variances that
// Step updates, flat, itself (not a copy).
func (s *Supernet) RunningStats() []float32 { return s.stats }

// UsedBuckets reports, per bucket, whether child's sub-graph reads it: the
// buckets whose gradients a Step of child can make non-zero.
func (s *Supernet) UsedBuckets(child arch.Arch) ([]bool, error) {
	_, used, err := s.lower(child)
	return used, err
}

// ChildGraph returns child's network as the supernet trains it. Node Layer
// fields are parameter prefixes (see SupernetPrefix).
func (s *Supernet) ChildGraph(child arch.Arch) (*arch.Graph, error) {
	g, _, err := s.lower(child)
	return g, err
}

// ChildWeights returns a new store holding copies of child's current
// weights, running statistics and constants, under the names that
// ChildGraph built with SupernetPrefix uses: the child, detached from the
// supernet (to fine-tune it stand-alone, say).
func (s *Supernet) ChildWeights(child arch.Arch) (*Weights, error) {
	_, used, err := s.lower(child)
	if err != nil {
		return nil, err
	}
	w := NewWeights(tensor.Float32, 0)
	for _, p := range s.specs {
		if p.bucket >= 0 && !used[p.bucket] {
			continue
		}
		src := s.trainW.Get(p.name).Value.Float32s()
		w.put(p.name, p.shape, p.trainable, append([]float32(nil), src...))
	}
	return w, nil
}

// ZeroGrad clears the gradient buffer.
func (s *Supernet) ZeroGrad() { clear(s.grad) }

// ScaleGrad multiplies the gradient buffer by f: after k Steps (summed over
// ranks), ScaleGrad(1/k) turns the sum into the mean.
func (s *Supernet) ScaleGrad(f float32) {
	for i := range s.grad {
		s.grad[i] *= f
	}
}

// Step runs child forward and backward on one full batch (x holds len(y)
// images) and adds the gradient of its mean loss into the gradient buffer:
// Steps accumulate a sum (see ScaleGrad). Weights do not change until
// ApplySGD. A non-finite loss adds nothing and is returned with an error.
func (s *Supernet) Step(child arch.Arch, x []float32, y []int32) (loss float64, err error) {
	n, err := s.net(child, len(y), true)
	if err != nil {
		return 0, err
	}
	if loss, _, err = n.net.Run(x, y); err != nil {
		return 0, err
	}
	if !finite(loss) {
		return loss, fmt.Errorf("train: supernet step: loss %v", loss)
	}
	for i, off := range n.offs {
		g := n.net.prog.value(n.net.grads[i]).(*tensor.Dense).Float32s()
		dst := s.grad[off : off+len(g)]
		for j, v := range g {
			dst[j] += v
		}
	}
	return loss, nil
}

// Evaluate returns child's accuracy on one full batch, with batch-norm
// batch statistics (see Supernet); it changes nothing in the supernet.
func (s *Supernet) Evaluate(child arch.Arch, x []float32, y []int32) (float64, error) {
	n, err := s.net(child, len(y), false)
	if err != nil {
		return 0, err
	}
	_, correct, err := n.net.Run(x, y)
	if err != nil {
		return 0, err
	}
	return float64(correct) / float64(len(y)), nil
}

// ApplySGD takes one SGD step over every weight with the gradient buffer as
// it is (it does not clear it): momentum and L2 decay apply to all buckets,
// used by the last children or not, as in ENAS, where the L2 term covers
// every shared weight. The rule is Train's (PyTorch's SGD, optionally
// Nesterov), element by element, so a child alone trains exactly as it
// would stand-alone.
func (s *Supernet) ApplySGD(lr, momentum float64, nesterov bool, l2 float64) {
	s.sgd.kind, s.sgd.momentum, s.sgd.nesterov, s.sgd.decay = "sgd", momentum, nesterov, l2
	s.sgdSt.m = s.vel
	applyOpt(&s.sgd, s.w, s.grad, &s.sgdSt, lr)
}

// Close drops every built net.
func (s *Supernet) Close() error {
	for e := s.lru.Front(); e != nil; e = e.Next() {
		e.Value.(*snNet).net.Close()
	}
	s.lru.Init()
	clear(s.nets)
	return nil
}

// net returns child's net for a batch size and mode, building it once.
func (s *Supernet) net(child arch.Arch, batch int, train bool) (*snNet, error) {
	if child.Space != s.space.Name() {
		return nil, fmt.Errorf("train: supernet: architecture of space %q", child.Space)
	}
	k := snKey{decisionsKey(child.Decisions), batch, train}
	if e, ok := s.nets[k]; ok {
		s.lru.MoveToFront(e)
		return e.Value.(*snNet), nil
	}
	g, _, err := s.lower(child)
	if err != nil {
		return nil, err
	}
	w := s.trainW
	if !train {
		w = s.evalW
	}
	n, err := Build(g, w, BuildOptions{Batch: batch, Train: train, BatchStats: !train, Prefix: SupernetPrefix, Buffers: s.buf})
	if err != nil {
		return nil, err
	}
	sn := &snNet{key: k, net: n}
	for _, p := range n.params {
		off, ok := s.offset[p]
		if !ok { // a name the declaration missed: it would train a private copy
			panic("train: supernet: child parameter " + p.Name + " is not in the flat buffer")
		}
		sn.offs = append(sn.offs, off)
	}
	s.nets[k] = s.lru.PushFront(sn)
	for s.lru.Len() > s.maxNets {
		old := s.lru.Remove(s.lru.Back()).(*snNet)
		delete(s.nets, old.key)
		old.net.Close()
	}
	return sn, nil
}

func decisionsKey(d []int) string {
	b := make([]byte, 0, 2*len(d))
	for _, v := range d {
		b = strconv.AppendInt(b, int64(v), 36)
		b = append(b, ',')
	}
	return string(b)
}

// lower checks child and builds its graph, reporting the buckets it reads.
func (s *Supernet) lower(child arch.Arch) (*arch.Graph, []bool, error) {
	// Both check space, options and decisions; enas-micro's Lower refuses
	// the factorized reductions the supernet builds with its shift constant.
	var err error
	if s.micro != nil {
		err = arch.Validate(s.space, child, arch.Budget{})
	} else {
		_, err = s.space.Lower(child)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("train: supernet: %w", err)
	}
	b := &snBuilder{s: s, nodeBucket: []int{-1},
		g: &arch.Graph{Input: s.opt.Input, Classes: s.opt.Classes, Nodes: []arch.Node{{Op: arch.Op{Kind: arch.KindInput}, Layer: "input"}}}}
	if s.micro != nil {
		b.microChild(child.Decisions)
	} else {
		b.child(child.Decisions)
	}
	used := b.prune()
	return b.g, used, nil
}

// prune drops the nodes the logits do not depend on (a micro cell whose
// successors read only prev-prev, an input calibration no node reads) and
// returns the buckets of the nodes left: those are exactly the ones a Step
// gives gradients.
func (b *snBuilder) prune() []bool {
	nodes := b.g.Nodes
	live := make([]bool, len(nodes))
	live[0], live[len(nodes)-1] = true, true
	for i := len(nodes) - 1; i > 0; i-- {
		if live[i] {
			for _, j := range nodes[i].Inputs {
				live[j] = true
			}
		}
	}
	used := make([]bool, len(b.s.buckets))
	at := make([]int, len(nodes))
	kept := nodes[:0:0]
	for i, n := range nodes {
		if !live[i] {
			continue
		}
		if k := b.nodeBucket[i]; k >= 0 {
			used[k] = true
		}
		at[i] = len(kept)
		ins := make([]int, len(n.Inputs))
		for k, j := range n.Inputs {
			ins[k] = at[j]
		}
		n.Inputs = ins
		kept = append(kept, n)
	}
	b.g.Nodes = kept
	return used
}

// declare lists every bucket and parameter, in flat-buffer order.
func (s *Supernet) declare() {
	b := &snBuilder{s: s}
	b.stem()
	for i := range s.opt.Layers {
		for o := range s.ops {
			b.branch(i, o, -1)
		}
		if i > 0 {
			b.layerOut(i, -1)
		}
		if s.reduce[i] {
			for j := 0; j <= i; j++ {
				b.reduction(i, j, -1)
			}
		}
	}
	b.head(-1)
}

// snBuilder emits the supernet's graph fragments. With g nil it declares
// their buckets and parameters instead, so that the two never disagree on
// a name or shape.
type snBuilder struct {
	s          *Supernet
	g          *arch.Graph // nil: declaring
	nodeBucket []int       // per graph node, the bucket it reads or -1
	bucket     int         // of the fragment being emitted; -1: none
	shifts     map[string]bool
}

// enter starts the fragment of a bucket.
func (b *snBuilder) enter(name string) {
	s := b.s
	if b.g == nil {
		s.bucketI[name] = len(s.buckets)
		b.bucket = len(s.buckets)
		s.buckets = append(s.buckets, Bucket{Name: name})
		return
	}
	b.bucket = s.bucketI[name]
}

// free starts a fragment with no parameters (pools, identity, adds).
func (b *snBuilder) free() { b.bucket = -1 }

// add appends op (parameters named prefix/...) on inputs of inC channels.
func (b *snBuilder) add(prefix string, op arch.Op, inC int, in ...int) int {
	if b.g != nil {
		b.g.Nodes = append(b.g.Nodes, arch.Node{Op: op, Inputs: in, Layer: prefix})
		b.nodeBucket = append(b.nodeBucket, b.bucket)
		return len(b.g.Nodes) - 1
	}
	if isShift(prefix) {
		if !b.shifts[prefix] {
			if b.shifts == nil {
				b.shifts = map[string]bool{}
			}
			b.shifts[prefix] = true
			b.s.specs = append(b.s.specs, paramSpec{name: prefix + "/dwconv/W", shape: []int{inC, 1, op.KH, op.KW}, bucket: -1})
		}
		return -1
	}
	switch op.Kind {
	case arch.KindConv:
		b.spec(prefix+"/conv/W", []int{op.Out, inC, op.KH, op.KW}, initHe, inC*op.KH*op.KW, true)
	case arch.KindDepthwiseConv:
		b.spec(prefix+"/dwconv/W", []int{inC, 1, op.KH, op.KW}, initHe, op.KH*op.KW, true)
	case arch.KindBatchNorm:
		b.spec(prefix+"/bn/gamma", []int{inC}, initOnes, 0, true)
		b.spec(prefix+"/bn/beta", []int{inC}, initZeros, 0, true)
		b.spec(prefix+"/bn/mean", []int{inC}, initZeros, 0, false)
		b.spec(prefix+"/bn/var", []int{inC}, initOnes, 0, false)
	case arch.KindDense:
		b.spec(prefix+"/dense/W", []int{op.Out, inC}, initHe, inC, true)
		b.spec(prefix+"/dense/b", []int{op.Out}, initZeros, 0, true)
	}
	return -1
}

func (b *snBuilder) spec(name string, shape []int, init initKind, fanIn int, trainable bool) {
	b.s.specs = append(b.s.specs, paramSpec{name: name, shape: shape, init: init, fanIn: fanIn, trainable: trainable, bucket: b.bucket})
}

func conv(k, out, stride int) arch.Op {
	return arch.Op{Kind: arch.KindConv, KH: k, KW: k, Stride: stride, Out: out}
}

var (
	snBN   = arch.Op{Kind: arch.KindBatchNorm}
	snReLU = arch.Op{Kind: arch.KindReLU}
)

func (b *snBuilder) stem() int {
	o := b.s.opt
	b.enter("stem")
	x := b.add("stem", conv(3, o.Channels, 1), o.Input.C, 0)
	return b.add("stem", snBN, o.Channels, x)
}

// branch is layer i's op o on prev.
func (b *snBuilder) branch(i, o, prev int) int {
	c := b.s.opt.Channels
	op := b.s.ops[o]
	name := "layer " + strconv.Itoa(i) + "/" + op.name
	b.enter(name)
	in, p := name+"/in", name+"/op"
	x := b.add(in, conv(1, c, 1), c, prev)
	x = b.add(in, snBN, c, x)
	x = b.add(in, snReLU, c, x)
	switch op.kind {
	case "conv":
		x = b.add(p, conv(op.k, c, 1), c, x)
		x = b.add(p, snBN, c, x)
		x = b.add(p, snReLU, c, x)
	case "sepconv":
		x = b.add(p, arch.Op{Kind: arch.KindDepthwiseConv, KH: op.k, KW: op.k, Stride: 1}, c, x)
		x = b.add(p, conv(1, c, 1), c, x)
		x = b.add(p, snBN, c, x)
		x = b.add(p, snReLU, c, x)
	default:
		kind := arch.KindMaxPool
		if op.kind == "avgpool" {
			kind = arch.KindAvgPool
		}
		x = b.add(p, arch.Op{Kind: kind, KH: op.k, KW: op.k, Stride: 1, Pad: (op.k - 1) / 2}, c, x)
	}
	return x
}

// layerOut is layer i's batch norm after the skip sum.
func (b *snBuilder) layerOut(i, x int) int {
	name := "layer " + strconv.Itoa(i) + "/out"
	b.enter(name)
	return b.add(name, snBN, b.s.opt.Channels, x)
}

// reduction is the factorized reduction of layer j's output (x) at the pool
// after layer r.
func (b *snBuilder) reduction(r, j, x int) int {
	c := b.s.opt.Channels
	name := "pool after layer " + strconv.Itoa(r) + "/from layer " + strconv.Itoa(j)
	b.enter(name)
	even := b.add(name+"/even", conv(1, c/2, 2), c, x)
	odd := b.add(shiftPrefix, arch.Op{Kind: arch.KindDepthwiseConv, KH: 3, KW: 3, Stride: 2}, c, x)
	odd = b.add(name+"/odd", conv(1, c-c/2, 1), c, odd)
	y := b.add(name, arch.Op{Kind: arch.KindConcat}, c, even, odd)
	return b.add(name, snBN, c, y)
}

func (b *snBuilder) head(x int) int {
	o := b.s.opt
	b.enter("head")
	x = b.add("head", arch.Op{Kind: arch.KindGlobalAvgPool}, o.Channels, x)
	return b.add("head", arch.Op{Kind: arch.KindDense, Out: o.Classes}, o.Channels, x)
}

// child emits the graph of decisions d (the enas-macro layout: per layer,
// its op, then one skip bit per earlier layer).
func (b *snBuilder) child(d []int) {
	s := b.s
	L := s.opt.Layers
	out := make([]int, L)   // layer outputs
	level := make([]int, L) // reductions before each output
	var pools []int         // the layer each reduction follows
	reduced := map[[2]int]int{}
	// at returns layer j's output brought down to lvl reductions.
	var at func(j, lvl int) int
	at = func(j, lvl int) int {
		if lvl == level[j] {
			return out[j]
		}
		if y, ok := reduced[[2]int{j, lvl}]; ok {
			return y
		}
		y := b.reduction(pools[lvl-1], j, at(j, lvl-1))
		reduced[[2]int{j, lvl}] = y
		return y
	}
	prev := b.stem()
	k := 0
	for i := range L {
		x := b.branch(i, d[k], prev)
		if i > 0 {
			var skips []int
			for j := range i {
				if d[k+1+j] == 1 {
					skips = append(skips, at(j, len(pools)))
				}
			}
			if len(skips) > 0 {
				x = b.add("layer "+strconv.Itoa(i)+"/skips", arch.Op{Kind: arch.KindAdd}, s.opt.Channels, append([]int{x}, skips...)...)
			}
			x = b.layerOut(i, x)
		}
		out[i], level[i] = x, len(pools)
		prev = x
		if s.reduce[i] {
			pools = append(pools, i)
			prev = at(i, len(pools))
		}
		k += 1 + i
	}
	b.head(prev)
}

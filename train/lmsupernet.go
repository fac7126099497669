package train

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"nasd/arch"
)

// LMSupernet is the shared graph of an enas-rnn space (Pham et al. 2018,
// §2.2): one language model — embedding, the weights of every node for
// every input it may read, decoder — of which each sampled child (a cell)
// uses a part. Node 1 owns W_c and W_h on [x_t, h_{t−1}]; node ℓ owns one
// pair of H×H matrices per earlier node j it may read, keyed by (ℓ, j) as
// the lowered graph's layer names "node ℓ from node j" say. A child's cell
// reads its matrices in place from one flat buffer, and Step adds its
// gradients at the same offsets, so the contract is Supernet's: Steps sum
// gradients (ZeroGrad, ScaleGrad), ApplySGD updates every weight.
//
// The training streams' hidden state is carried from window to window
// across children, as in ENAS (ResetState starts it over, at an epoch's
// start); RankState/SetRankState save it, with the dropout generator, for
// checkpoints. Evaluation has a state of its own.
//
// An LMSupernet is not safe for concurrent use.
type LMSupernet struct {
	space   arch.Space
	m       *lm
	buckets []Bucket
	bucketI map[string]int
	region  map[string]int // layer name → offset of its matrices in the cell region
	vel     []float64
	sgd     optimizer // ApplySGD's rule and parallel loop
	sgdSt   optState  // ApplySGD's state: vel
	train   *lmRun
	eval    *lmRun
	specs   map[string]lmChild
}

type lmChild struct {
	spec cellSpec
	used []bool
}

// LMSupernetOptions configures NewLMSupernet.
type LMSupernetOptions struct {
	Batch int // training streams (the evaluation streams are the config's EvalBatch)
	// Rank seeds the dropout masks: every replica starts from the same
	// weights, but each draws its own masks.
	Rank int
}

// maxLMChildren bounds the cached lowered children; the cache starts over
// when full (lowering a cell costs microseconds).
const maxLMChildren = 4096

// NewLMSupernet returns the shared weights of an enas-rnn space for a
// vocabulary of vocab words, trained with cfg's BPTT, dropout, tying and
// initialisation (embedding and decoder in ±InitRange, the cell's matrices
// in ±1/√hidden, all drawn from seed).
func NewLMSupernet(s arch.Space, vocab int, cfg LMConfig, seed uint64, o LMSupernetOptions) (*LMSupernet, error) {
	if s == nil || s.Name() != "enas-rnn" {
		name := "<nil>"
		if s != nil {
			name = s.Name()
		}
		return nil, fmt.Errorf("train: lm supernet: space %s: shared weights are for enas-rnn only", name)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if vocab < 2 {
		return nil, fmt.Errorf("train: lm supernet: vocabulary of %d words", vocab)
	}
	if o.Batch < 1 {
		return nil, fmt.Errorf("train: lm supernet: %d training streams", o.Batch)
	}
	opt := s.Options()
	E, H := opt.Embed, opt.Hidden
	sn := &LMSupernet{space: s, bucketI: map[string]int{}, region: map[string]int{}, specs: map[string]lmChild{}}
	// The cell region: node 1's two matrices on [x, h], then (ℓ, j)'s.
	var regionNames []string
	var regionLens []int
	n := 0
	add := func(name string, size int) {
		sn.region[name] = n
		regionNames = append(regionNames, name)
		regionLens = append(regionLens, size)
		n += size
	}
	add("node 1", 2*(E+H)*H)
	for l := 2; l <= opt.Nodes; l++ {
		for j := 1; j < l; j++ {
			add(fmt.Sprintf("node %d from node %d", l, j), 2*H*H)
		}
	}
	m, err := newLM(cellSpec{nparams: n}, vocab, E, H, cfg, seed)
	if err != nil {
		return nil, err
	}
	m.rng = rand.NewPCG(mix(seed, saltLMDrop), saltLMDrop+uint64(o.Rank))
	sn.m = m
	bucket := func(name string, off, size int) {
		sn.bucketI[name] = len(sn.buckets)
		sn.buckets = append(sn.buckets, Bucket{Name: name, Offset: off, Len: size})
	}
	bucket("embedding", m.emb, vocab*E)
	for i, name := range regionNames {
		bucket(name, m.cell+sn.region[name], regionLens[i])
	}
	if !cfg.Tie {
		bucket("decoder", m.dec, vocab*H)
	}
	bucket("decoder bias", m.bias, vocab)
	sn.vel = make([]float64, len(m.params))
	a0, err := s.Arch(make([]int, len(s.Decisions())))
	if err != nil {
		return nil, err
	}
	first, err := sn.child(a0)
	if err != nil {
		return nil, err
	}
	m.spec = first.spec
	if sn.train, err = m.newRun(o.Batch); err != nil {
		return nil, err
	}
	if sn.eval, err = m.newRun(cfg.EvalBatch); err != nil {
		return nil, err
	}
	return sn, nil
}

// child lowers a cell and points its linears at the shared matrices.
func (s *LMSupernet) child(a arch.Arch) (lmChild, error) {
	if a.Space != s.space.Name() {
		return lmChild{}, fmt.Errorf("train: lm supernet: architecture of space %q", a.Space)
	}
	k := decisionsKey(a.Decisions)
	if c, ok := s.specs[k]; ok {
		return c, nil
	}
	g, err := s.space.Lower(a)
	if err != nil {
		return lmChild{}, err
	}
	spec, err := cellSpecOf(g)
	if err != nil {
		return lmChild{}, err
	}
	used := make([]bool, len(s.buckets))
	for _, name := range []string{"embedding", "decoder", "decoder bias"} {
		if i, ok := s.bucketI[name]; ok {
			used[i] = true
		}
	}
	seen := map[string]int{} // linears met so far in each layer
	for i, n := range spec.nodes {
		if n.kind != cellLinear {
			continue
		}
		layer := g.Nodes[i].Layer
		base, ok := s.region[layer]
		if !ok || n.b >= 0 {
			panic("train: lm supernet: linear of layer " + layer + " has no shared weights")
		}
		in := spec.nodes[n.in[0]].size
		spec.nodes[i].w = base + seen[layer]*in*n.size
		seen[layer]++
		used[s.bucketI[layer]] = true
	}
	spec.nparams = s.m.spec.nparams
	if len(s.specs) >= maxLMChildren {
		clear(s.specs)
	}
	c := lmChild{spec: spec, used: used}
	s.specs[k] = c
	return c, nil
}

// Buckets returns the flat buffer's buckets in order; they tile it.
func (s *LMSupernet) Buckets() []Bucket { return append([]Bucket(nil), s.buckets...) }

// Weights returns the flat parameter buffer itself.
func (s *LMSupernet) Weights() []float32 { return s.m.params }

// Grad returns the flat gradient buffer itself.
func (s *LMSupernet) Grad() []float32 { return s.m.grads }

// Momentum returns the SGD momentum buffer itself.
func (s *LMSupernet) Momentum() []float64 { return s.vel }

// RunningStats is empty: a language model has no batch norm.
func (s *LMSupernet) RunningStats() []float32 { return nil }

// UsedBuckets reports, per bucket, whether child reads it.
func (s *LMSupernet) UsedBuckets(child arch.Arch) ([]bool, error) {
	c, err := s.child(child)
	return c.used, err
}

// ZeroGrad clears the gradient buffer.
func (s *LMSupernet) ZeroGrad() { clear(s.m.grads) }

// ScaleGrad multiplies the gradient buffer by f.
func (s *LMSupernet) ScaleGrad(f float32) {
	for i := range s.m.grads {
		s.m.grads[i] *= f
	}
}

// ClipGrad scales the gradient buffer to a global norm of at most maxNorm
// (0: no clipping) and returns the norm before.
func (s *LMSupernet) ClipGrad(maxNorm float64) float64 {
	norm, k := clipScale(s.m.grads, maxNorm)
	if k != 1 {
		s.ScaleGrad(float32(k))
	}
	return norm
}

// ApplySGD takes one SGD step over every weight (Supernet.ApplySGD's rule).
func (s *LMSupernet) ApplySGD(lr, momentum float64, nesterov bool, l2 float64) {
	s.sgd.kind, s.sgd.momentum, s.sgd.nesterov, s.sgd.decay = "sgd", momentum, nesterov, l2
	s.sgdSt.m = s.vel
	applyOpt(&s.sgd, s.m.params, s.m.grads, &s.sgdSt, lr)
}

// Step trains child on one window of T steps of the training streams (ids
// and tgt time-major, T·Batch each) from the carried state, adds the
// gradient of the window's mean NLL per token into the gradient buffer and
// carries the state on. It returns that mean NLL; a non-finite one adds
// nothing and comes with an error.
func (s *LMSupernet) Step(child arch.Arch, ids, tgt []int32, T int) (float64, error) {
	r := s.train
	if err := s.use(r, child, ids, tgt, T); err != nil {
		return 0, err
	}
	nll := r.window(T, true) / float64(T*r.batch)
	if math.IsNaN(nll) || math.IsInf(nll, 0) {
		return nll, fmt.Errorf("train: lm supernet step: loss %v", nll)
	}
	return nll, nil
}

// Eval returns child's summed NLL on one window of the evaluation streams
// (EvalBatch of them) from the evaluation state, which it carries on;
// fresh zeroes that state first. Nothing of the supernet changes.
func (s *LMSupernet) Eval(child arch.Arch, ids, tgt []int32, T int, fresh bool) (float64, error) {
	r := s.eval
	if err := s.use(r, child, ids, tgt, T); err != nil {
		return 0, err
	}
	if fresh {
		r.reset()
	}
	return r.window(T, false), nil
}

// EvalBatch is the number of evaluation streams.
func (s *LMSupernet) EvalBatch() int { return s.eval.batch }

// use points run r at child's cell and copies a window in.
func (s *LMSupernet) use(r *lmRun, child arch.Arch, ids, tgt []int32, T int) error {
	c, err := s.child(child)
	if err != nil {
		return err
	}
	if T < 1 || T > s.m.cfg.BPTT || len(ids) != T*r.batch || len(tgt) != T*r.batch {
		return fmt.Errorf("train: lm supernet: a window of %d steps with %d inputs and %d targets for %d streams (bptt %d)",
			T, len(ids), len(tgt), r.batch, s.m.cfg.BPTT)
	}
	r.cell.respec(c.spec)
	copy(r.ids, ids)
	copy(r.tgt, tgt)
	return nil
}

// ResetState zeroes the training streams' carried state.
func (s *LMSupernet) ResetState() { s.train.reset() }

// RankState is this replica's own state, which differs by rank: the
// training streams' carried hidden state and the dropout generator.
func (s *LMSupernet) RankState() []byte {
	g, _ := s.m.rng.MarshalBinary()
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(g)))
	b = append(b, g...)
	for _, v := range s.train.h {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	for _, v := range s.train.c {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// SetRankState takes a RankState of a replica of the same shape.
func (s *LMSupernet) SetRankState(b []byte) error {
	bad := errors.New("train: lm supernet: the rank state does not fit this supernet (another batch or hidden size)")
	if len(b) < 4 {
		return bad
	}
	n := int(binary.LittleEndian.Uint32(b))
	if len(b) != 4+n+4*(len(s.train.h)+len(s.train.c)) {
		return bad
	}
	if err := s.m.rng.UnmarshalBinary(b[4 : 4+n]); err != nil {
		return fmt.Errorf("train: lm supernet: rank state: %w", err)
	}
	b = b[4+n:]
	for _, dst := range [][]float32{s.train.h, s.train.c} {
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b))
			b = b[4:]
		}
	}
	return nil
}

// ChildGraph returns child's cell graph as NewLMSupernet lowers it.
func (s *LMSupernet) ChildGraph(child arch.Arch) (*arch.Graph, error) {
	if _, err := s.child(child); err != nil {
		return nil, err
	}
	return s.space.Lower(child)
}

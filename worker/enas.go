package worker

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"nasd/arch"
	"nasd/cluster"
	"nasd/train"
	"nasd/train/dataset"
)

// ENASConfig is what a worker of an ENAS search needs beyond the plans.
type ENASConfig struct {
	Batch    int     // training minibatch of this worker
	Momentum float64 // Nesterov momentum of the shared weights
	L2       float64 // weight decay
	Seed     uint64  // run seed: the epochs' example order
	// Clip scales the averaged gradient to this global norm before the
	// step (language models; 0: off).
	Clip float64
	// NewSampler rebuilds the policy of a policy plan, from which the
	// worker samples its own children (cmd/nasd passes rl.NewSampler);
	// nil: only train plans that list their children can be followed.
	NewSampler func(state []byte) (ChildSampler, error)
}

// ChildSampler draws one child of the search space from a frozen policy.
type ChildSampler interface {
	Sample(r *rand.Rand) (arch.Arch, error)
}

// RunENAS is a worker's side of an ENAS search over images: it holds a
// replica of the shared weights sn and follows rank 0's plans
// (cluster.ENASPlan) until a stop plan. Each train plan trains this rank's
// child on this rank's slice of the epoch's minibatches, and the gradients
// of all workers are averaged with cluster.AllreduceBuckets, so every
// replica takes the same SGD step and stays bit-identical (checked when the
// plan asks). A step whose loss is not finite contributes no gradient and
// is counted; the run goes on.
func RunENAS(ctx context.Context, t cluster.Transport, space arch.Space, sn *train.Supernet, data *dataset.Splits, cfg ENASConfig) error {
	return runENAS(ctx, t, space, sn, &imageTask{sn: sn, data: data, seed: cfg.Seed, epochPerm: -1}, cfg)
}

// replica is the shared weights a worker holds: train.Supernet or
// train.LMSupernet.
type replica interface {
	Buckets() []train.Bucket
	Weights() []float32
	Grad() []float32
	Momentum() []float64
	RunningStats() []float32
	UsedBuckets(arch.Arch) ([]bool, error)
	ZeroGrad()
	ScaleGrad(float32)
	ApplySGD(lr, momentum float64, nesterov bool, l2 float64)
}

// task is what differs between searches over images and over text: the
// data, a step's minibatch, scoring, and state of a rank's own.
type task interface {
	// info fills the data fields of the setup message.
	info(in *cluster.ENASInfo, rank, workers, batch int) error
	// step adds the gradient of child's loss on this rank's minibatch of
	// the plan's step into the replica's gradient and returns the loss.
	step(plan cluster.ENASPlan, child arch.Arch, rank, workers, batch int) (loss float64, err error)
	// score is child's score on validation minibatch b (−1: the whole
	// split), and its perplexity (language models; else 0).
	score(child arch.Arch, b, batch int) (score, ppl float64, err error)
	rankState() []byte // nil: none
	setRankState([]byte) error
}

func runENAS(ctx context.Context, t cluster.Transport, space arch.Space, sn replica, tk task, cfg ENASConfig) error {
	if t.Rank() == 0 {
		return errors.New("worker: RunENAS on rank 0, which hosts the controller")
	}
	w := &enasWorker{t: t, space: space, sn: sn, task: tk, cfg: cfg, workers: t.Size() - 1}
	if err := w.setup(ctx); err != nil {
		return err
	}
	for {
		b, err := t.Bcast(ctx, 0, nil)
		if err != nil {
			return fmt.Errorf("worker: enas: waiting for a plan: %w", err)
		}
		var plan cluster.ENASPlan
		if err := cluster.DecodeENAS(0, b, &plan); err != nil {
			return fmt.Errorf("worker: enas: %w", err)
		}
		switch plan.Op {
		case cluster.ENASPolicy:
			err = w.setPolicy(plan.Policy)
		case cluster.ENASTrain:
			err = w.train(ctx, plan)
		case cluster.ENASEval:
			err = w.eval(ctx, plan)
		case cluster.ENASStatsOp:
			err = w.gather(ctx, w.stats)
			w.stats = cluster.ENASStats{}
		case cluster.ENASSave:
			err = w.save(ctx)
		case cluster.ENASLoad:
			err = w.load(ctx)
		case cluster.ENASStop:
			return nil
		default:
			return fmt.Errorf("worker: enas: rank 0 sent an unknown plan %q", plan.Op)
		}
		if err != nil {
			return err
		}
	}
}

type enasWorker struct {
	t       cluster.Transport
	space   arch.Space
	sn      replica
	task    task
	cfg     ENASConfig
	workers int
	layout  *cluster.Buckets
	stats   cluster.ENASStats
	sampler ChildSampler // the last policy plan's
}

func (w *enasWorker) setup(ctx context.Context) error {
	if w.cfg.Batch < 1 {
		return fmt.Errorf("worker: enas: minibatch of %d", w.cfg.Batch)
	}
	bs := w.sn.Buckets()
	list := make([]cluster.Bucket, len(bs))
	for i, b := range bs {
		list[i] = cluster.Bucket{Name: b.Name, Off: b.Offset, Len: b.Len}
	}
	size := len(w.sn.Weights())
	var err error
	if w.layout, err = cluster.NewBuckets(size, list); err != nil {
		return fmt.Errorf("worker: enas: %w", err)
	}
	in := cluster.ENASInfo{Size: size, Buckets: list, Batch: w.cfg.Batch, RankState: w.task.rankState() != nil}
	if err := w.task.info(&in, w.t.Rank(), w.workers, w.cfg.Batch); err != nil {
		return fmt.Errorf("worker: enas: %w", err)
	}
	return w.gather(ctx, in)
}

// gather sends v to rank 0 in a Gather.
func (w *enasWorker) gather(ctx context.Context, v any) error {
	b, err := cluster.EncodeENAS(v)
	if err != nil {
		return err
	}
	if _, err := w.t.Gather(ctx, 0, b); err != nil {
		return fmt.Errorf("worker: enas: Gather: %w", err)
	}
	return nil
}

// child decodes plan child i.
func (w *enasWorker) child(plan cluster.ENASPlan, i int) (arch.Arch, error) {
	if i < 0 || i >= len(plan.Children) {
		return arch.Arch{}, fmt.Errorf("worker: enas: a %s plan with %d children has none for rank %d", plan.Op, len(plan.Children), w.t.Rank())
	}
	a, err := w.space.Arch(plan.Children[i])
	if err != nil {
		return arch.Arch{}, fmt.Errorf("worker: enas: child %d of a %s plan: %w", i, plan.Op, err)
	}
	return a, nil
}

func (w *enasWorker) setPolicy(state []byte) error {
	if w.cfg.NewSampler == nil {
		return errors.New("worker: enas: a policy plan, but this worker has no sampler")
	}
	s, err := w.cfg.NewSampler(state)
	if err != nil {
		return fmt.Errorf("worker: enas: policy plan: %w", err)
	}
	w.sampler = s
	return nil
}

// trainChild is the child of a train plan: listed, or drawn by this rank.
func (w *enasWorker) trainChild(plan cluster.ENASPlan) (arch.Arch, error) {
	if len(plan.Children) > 0 {
		return w.child(plan, w.t.Rank()-1)
	}
	if w.sampler == nil {
		return arch.Arch{}, fmt.Errorf("worker: enas: step %d of epoch %d lists no children and no policy plan came before it", plan.Step, plan.Epoch)
	}
	a, err := w.sampler.Sample(rand.New(rand.NewPCG(plan.SampleSeed, uint64(w.t.Rank()))))
	if err != nil {
		return arch.Arch{}, fmt.Errorf("worker: enas: sampling the child of step %d of epoch %d: %w", plan.Step, plan.Epoch, err)
	}
	return a, nil
}

func (w *enasWorker) train(ctx context.Context, plan cluster.ENASPlan) error {
	child, err := w.trainChild(plan)
	if err != nil {
		return err
	}
	w.sn.ZeroGrad()
	used := w.layout.NewMask()
	t0 := time.Now()
	loss, err := w.task.step(plan, child, w.t.Rank(), w.workers, w.cfg.Batch)
	w.stats.StepS += time.Since(t0).Seconds()
	switch {
	case err == nil:
		u, err := w.sn.UsedBuckets(child)
		if err != nil {
			return fmt.Errorf("worker: enas: %w", err)
		}
		for i, ok := range u {
			if ok {
				used.Set(i)
			}
		}
		w.stats.Steps++
		w.stats.LossSum += loss
	case math.IsNaN(loss) || math.IsInf(loss, 0):
		w.sn.ZeroGrad() // a diverged child adds nothing
		w.stats.Diverged++
	default:
		return fmt.Errorf("worker: enas: step %d of epoch %d: %w", plan.Step, plan.Epoch, err)
	}
	t1 := time.Now()
	if _, err := cluster.AllreduceBuckets(ctx, w.t, w.sn.Grad(), w.layout, used); err != nil {
		return fmt.Errorf("worker: enas: %w", err)
	}
	w.stats.AllreduceS += time.Since(t1).Seconds()
	// Steps sum gradients; the step is their mean over the workers (ENAS's
	// average over sampled models, M = workers).
	w.sn.ScaleGrad(1 / float32(w.workers))
	if c, ok := w.sn.(interface{ ClipGrad(float64) float64 }); ok && w.cfg.Clip > 0 {
		c.ClipGrad(w.cfg.Clip) // the same mean on every replica: the same clip
	}
	w.sn.ApplySGD(plan.LR, w.cfg.Momentum, w.cfg.Momentum > 0, w.cfg.L2)
	if plan.Check {
		sum := w.checksum()
		if _, err := w.t.Gather(ctx, 0, sum[:]); err != nil {
			return fmt.Errorf("worker: enas: Gather of checksums: %w", err)
		}
	}
	return nil
}

// eval scores this rank's share of the plan's children: child i on rank
// 1 + i mod workers.
func (w *enasWorker) eval(ctx context.Context, plan cluster.ENASPlan) error {
	var s cluster.ENASScores
	for i := w.t.Rank() - 1; i < len(plan.Children); i += w.workers {
		child, err := w.child(plan, i)
		if err != nil {
			return err
		}
		score, ppl, err := w.task.score(child, plan.Batch, w.cfg.Batch)
		if err != nil {
			return fmt.Errorf("worker: enas: scoring child %d: %w", i, err)
		}
		s.Acc = append(s.Acc, score)
		if ppl != 0 {
			s.PPL = append(s.PPL, ppl)
		}
	}
	return w.gather(ctx, s)
}

// save answers a save plan: rank 1 sends the replica's state; with rank
// state, every rank then sends its own in a second Gather.
func (w *enasWorker) save(ctx context.Context) error {
	var state []byte
	if w.t.Rank() == 1 {
		state = w.state()
	}
	if _, err := w.t.Gather(ctx, 0, state); err != nil {
		return fmt.Errorf("worker: enas: Gather of the shared weights: %w", err)
	}
	if own := w.task.rankState(); own != nil {
		if _, err := w.t.Gather(ctx, 0, own); err != nil {
			return fmt.Errorf("worker: enas: Gather of the rank states: %w", err)
		}
	}
	return nil
}

// state is the replica as bytes: weights, momentum, batch-norm running
// statistics, little endian. Every replica has the same state; rank 1's is
// checkpointed.
func (w *enasWorker) state() []byte {
	wt, mom, st := w.sn.Weights(), w.sn.Momentum(), w.sn.RunningStats()
	b := make([]byte, 0, 4*len(wt)+8*len(mom)+4*len(st))
	for _, v := range wt {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	for _, v := range mom {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	for _, v := range st {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// checksum hashes the weights and the momentum: what the averaged steps
// keep identical on every replica. The batch-norm running statistics are
// each replica's own (each normalised its own minibatches); the search
// scores children with batch statistics and never reads them.
func (w *enasWorker) checksum() []byte {
	h := sha256.New()
	var b [8]byte
	for _, v := range w.sn.Weights() {
		binary.LittleEndian.PutUint32(b[:4], math.Float32bits(v))
		h.Write(b[:4])
	}
	for _, v := range w.sn.Momentum() {
		binary.LittleEndian.PutUint64(b[:], math.Float64bits(v))
		h.Write(b[:])
	}
	return h.Sum(nil)
}

// load receives a replica's state from rank 0 and takes it.
func (w *enasWorker) load(ctx context.Context) error {
	b, err := w.t.Bcast(ctx, 0, nil)
	if err != nil {
		return fmt.Errorf("worker: enas: Bcast of the shared weights: %w", err)
	}
	wt, mom, st := w.sn.Weights(), w.sn.Momentum(), w.sn.RunningStats()
	want := 4*len(wt) + 8*len(mom) + 4*len(st)
	var ranks []byte
	if w.task.rankState() != nil && len(b) > want {
		b, ranks = b[:want], b[want:]
	}
	if len(b) != want {
		return fmt.Errorf("worker: enas: the checkpoint's shared weights are %d bytes, this supernet's are %d: another space or options", len(b), want)
	}
	if w.task.rankState() != nil {
		own, err := cluster.RankFrame(ranks, w.t.Rank())
		if err != nil {
			return fmt.Errorf("worker: enas: the checkpoint's rank states: %w", err)
		}
		if err := w.task.setRankState(own); err != nil {
			return fmt.Errorf("worker: enas: rank %d: %w", w.t.Rank(), err)
		}
	}
	for i := range wt {
		wt[i] = math.Float32frombits(binary.LittleEndian.Uint32(b))
		b = b[4:]
	}
	for i := range mom {
		mom[i] = math.Float64frombits(binary.LittleEndian.Uint64(b))
		b = b[8:]
	}
	for i := range st {
		st[i] = math.Float32frombits(binary.LittleEndian.Uint32(b))
		b = b[4:]
	}
	return nil
}

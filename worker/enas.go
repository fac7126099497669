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
	// NewSampler rebuilds the policy of a policy plan, from which the
	// worker samples its own children (cmd/nasd passes rl.NewSampler);
	// nil: only train plans that list their children can be followed.
	NewSampler func(state []byte) (ChildSampler, error)
}

// ChildSampler draws one child of the search space from a frozen policy.
type ChildSampler interface {
	Sample(r *rand.Rand) (arch.Arch, error)
}

// RunENAS is a worker's side of an ENAS search: it holds a replica of the
// shared weights sn and follows rank 0's plans (cluster.ENASPlan) until a
// stop plan. Each train plan trains this rank's child on this rank's slice
// of the epoch's minibatches, and the gradients of all workers are averaged
// with cluster.AllreduceBuckets, so every replica takes the same SGD step
// and stays bit-identical (checked when the plan asks). A step whose loss is
// not finite contributes no gradient and is counted; the run goes on.
func RunENAS(ctx context.Context, t cluster.Transport, space arch.Space, sn *train.Supernet, data *dataset.Splits, cfg ENASConfig) error {
	if t.Rank() == 0 {
		return errors.New("worker: RunENAS on rank 0, which hosts the controller")
	}
	w := &enasWorker{t: t, space: space, sn: sn, data: data, cfg: cfg, workers: t.Size() - 1, epochPerm: -1}
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
			var state []byte
			if t.Rank() == 1 {
				state = w.state()
			}
			_, err = t.Gather(ctx, 0, state)
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
	t         cluster.Transport
	space     arch.Space
	sn        *train.Supernet
	data      *dataset.Splits
	cfg       ENASConfig
	workers   int
	layout    *cluster.Buckets
	stats     cluster.ENASStats
	perm      []int
	epochPerm int
	x         []float32
	y         []int32
	sampler   ChildSampler // the last policy plan's
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
	tr, val := w.data.Train.Len(), w.data.Val.Len()
	return w.gather(ctx, cluster.ENASInfo{Size: size, Buckets: list, TrainExamples: tr, ValExamples: val, Batch: w.cfg.Batch,
		StepsPerEpoch: tr / (w.cfg.Batch * w.workers), ValBatches: val / w.cfg.Batch})
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

// batch copies examples idx of set into the worker's buffers.
func (w *enasWorker) batch(set *dataset.Set, idx []int) ([]float32, []int32) {
	size := set.Size()
	w.x, w.y = w.x[:0], w.y[:0]
	for _, i := range idx {
		w.x = append(w.x, set.Images[i*size:(i+1)*size]...)
		w.y = append(w.y, set.Labels[i])
	}
	return w.x, w.y
}

// order returns the epoch's example order: the same on every rank.
func (w *enasWorker) order(epoch int) []int {
	if w.epochPerm != epoch {
		r := rand.New(rand.NewPCG(w.cfg.Seed, 0x656e617300+uint64(epoch)))
		w.perm, w.epochPerm = r.Perm(w.data.Train.Len()), epoch
	}
	return w.perm
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
	B := w.cfg.Batch
	at := (plan.Step*w.workers + w.t.Rank() - 1) * B
	perm := w.order(plan.Epoch)
	if plan.Step < 0 || at+B > len(perm) {
		return fmt.Errorf("worker: enas: step %d of epoch %d is past the epoch's %d examples", plan.Step, plan.Epoch, len(perm))
	}
	x, y := w.batch(w.data.Train, perm[at:at+B])
	w.sn.ZeroGrad()
	used := w.layout.NewMask()
	t0 := time.Now()
	loss, err := w.sn.Step(child, x, y)
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
	w.sn.ApplySGD(plan.LR, w.cfg.Momentum, true, w.cfg.L2)
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
	val, B := w.data.Val, w.cfg.Batch
	for i := w.t.Rank() - 1; i < len(plan.Children); i += w.workers {
		child, err := w.child(plan, i)
		if err != nil {
			return err
		}
		lo, hi := plan.Batch*B, (plan.Batch+1)*B
		if plan.Batch < 0 {
			lo, hi = 0, val.Len()/B*B
		}
		if lo < 0 || hi > val.Len() || lo >= hi {
			return fmt.Errorf("worker: enas: validation batch %d is outside the %d examples", plan.Batch, val.Len())
		}
		correct := 0.0
		idx := make([]int, B)
		for at := lo; at < hi; at += B {
			for k := range idx {
				idx[k] = at + k
			}
			x, y := w.batch(val, idx)
			acc, err := w.sn.Evaluate(child, x, y)
			if err != nil {
				return fmt.Errorf("worker: enas: scoring child %d: %w", i, err)
			}
			correct += acc * float64(B)
		}
		s.Acc = append(s.Acc, correct/float64(hi-lo))
	}
	return w.gather(ctx, s)
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
	if want := 4*len(wt) + 8*len(mom) + 4*len(st); len(b) != want {
		return fmt.Errorf("worker: enas: the checkpoint's shared weights are %d bytes, this supernet's are %d: another space or options", len(b), want)
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

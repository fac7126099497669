package worker

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"nasd/arch"
	"nasd/cluster"
	"nasd/train"
	"nasd/train/dataset"
)

// imageTask is an ENAS search over images (enas-macro, enas-micro).
type imageTask struct {
	sn        *train.Supernet
	data      *dataset.Splits
	seed      uint64
	perm      []int
	epochPerm int
	x         []float32
	y         []int32
}

func (k *imageTask) info(in *cluster.ENASInfo, _, workers, batch int) error {
	in.TrainExamples, in.ValExamples = k.data.Train.Len(), k.data.Val.Len()
	in.StepsPerEpoch, in.ValBatches = in.TrainExamples/(batch*workers), in.ValExamples/batch
	return nil
}

// batch copies examples idx of set into the task's buffers.
func (k *imageTask) batch(set *dataset.Set, idx []int) ([]float32, []int32) {
	size := set.Size()
	k.x, k.y = k.x[:0], k.y[:0]
	for _, i := range idx {
		k.x = append(k.x, set.Images[i*size:(i+1)*size]...)
		k.y = append(k.y, set.Labels[i])
	}
	return k.x, k.y
}

// order returns the epoch's example order: the same on every rank.
func (k *imageTask) order(epoch int) []int {
	if k.epochPerm != epoch {
		r := rand.New(rand.NewPCG(k.seed, 0x656e617300+uint64(epoch)))
		k.perm, k.epochPerm = r.Perm(k.data.Train.Len()), epoch
	}
	return k.perm
}

func (k *imageTask) step(plan cluster.ENASPlan, child arch.Arch, rank, workers, B int) (float64, error) {
	at := (plan.Step*workers + rank - 1) * B
	perm := k.order(plan.Epoch)
	if plan.Step < 0 || at+B > len(perm) {
		return 0, fmt.Errorf("step %d of epoch %d is past the epoch's %d examples", plan.Step, plan.Epoch, len(perm))
	}
	x, y := k.batch(k.data.Train, perm[at:at+B])
	return k.sn.Step(child, x, y)
}

func (k *imageTask) score(child arch.Arch, b, B int) (float64, float64, error) {
	val := k.data.Val
	lo, hi := b*B, (b+1)*B
	if b < 0 {
		lo, hi = 0, val.Len()/B*B
	}
	if lo < 0 || hi > val.Len() || lo >= hi {
		return 0, 0, fmt.Errorf("validation batch %d is outside the %d examples", b, val.Len())
	}
	correct := 0.0
	idx := make([]int, B)
	for at := lo; at < hi; at += B {
		for i := range idx {
			idx[i] = at + i
		}
		x, y := k.batch(val, idx)
		acc, err := k.sn.Evaluate(child, x, y)
		if err != nil {
			return 0, 0, err
		}
		correct += acc * float64(B)
	}
	return correct / float64(hi-lo), 0, nil
}

func (k *imageTask) rankState() []byte         { return nil }
func (k *imageTask) setRankState([]byte) error { return nil }

// RunENASLM is a worker's side of an ENAS search over recurrent cells
// (enas-rnn) on text: RunENAS's protocol with a language model's data.
// The training split is cut into one contiguous part per worker, each read
// as sn's Batch parallel streams; step s of an epoch trains window s of
// this rank's streams from the hidden state the previous window left (the
// state starts over with each epoch, and checkpoints keep it). A child is
// scored by c / perplexity on one window of the validation split's
// evaluation streams, the state warmed on the window before it (or on the
// whole split, state carried, for b = −1).
func RunENASLM(ctx context.Context, t cluster.Transport, space arch.Space, sn *train.LMSupernet, text *dataset.Text, rewardC float64, bptt int, cfg ENASConfig) error {
	tk := &lmTask{sn: sn, text: text, c: rewardC, bptt: bptt}
	return runENAS(ctx, t, space, sn, tk, cfg)
}

// maxPPL stands for a perplexity that is not finite: reward c/1e30 ≈ 0.
const maxPPL = 1e30

// lmTask is an ENAS search over recurrent cells.
type lmTask struct {
	sn         *train.LMSupernet
	text       *dataset.Text
	c          float64
	bptt       int
	train, val *dataset.Streams
	ids, tgt   []int32
}

func (k *lmTask) info(in *cluster.ENASInfo, rank, workers, batch int) error {
	part := len(k.text.Train) / workers
	var err error
	if k.train, err = dataset.NewStreams(k.text.Train[(rank-1)*part:rank*part], batch, k.bptt); err != nil {
		return fmt.Errorf("training split, rank %d's part of %d tokens: %w", rank, part, err)
	}
	if k.val, err = dataset.NewStreams(k.text.Val, k.sn.EvalBatch(), k.bptt); err != nil {
		return fmt.Errorf("validation split: %w", err)
	}
	n := k.bptt * max(batch, k.sn.EvalBatch())
	k.ids, k.tgt = make([]int32, n), make([]int32, n)
	in.Task = cluster.TaskLM
	in.TrainExamples, in.ValExamples = len(k.text.Train), len(k.text.Val)
	in.StepsPerEpoch, in.ValBatches = k.train.WindowsPerEpoch(), k.val.WindowsPerEpoch()
	return nil
}

func (k *lmTask) step(plan cluster.ENASPlan, child arch.Arch, _, _, B int) (float64, error) {
	if plan.Step == 0 {
		k.sn.ResetState() // a new epoch: its streams start from zero (a resume restores the state)
	}
	T := k.train.Window(plan.Step, k.ids, k.tgt)
	if T == 0 {
		return 0, fmt.Errorf("step %d of epoch %d is past the epoch's %d windows", plan.Step, plan.Epoch, k.train.WindowsPerEpoch())
	}
	return k.sn.Step(child, k.ids[:T*B], k.tgt[:T*B], T)
}

func (k *lmTask) score(child arch.Arch, b, _ int) (float64, float64, error) {
	E := k.sn.EvalBatch()
	from, to := b-1, b+1 // window b−1 only warms the state
	if b < 0 {
		from, to = 0, k.val.WindowsPerEpoch()
	} else if b >= k.val.WindowsPerEpoch() {
		return 0, 0, fmt.Errorf("validation window %d is outside the %d windows", b, k.val.WindowsPerEpoch())
	}
	nll, n := 0.0, 0
	for w := max(from, 0); w < to; w++ {
		T := k.val.Window(w, k.ids, k.tgt)
		l, err := k.sn.Eval(child, k.ids[:T*E], k.tgt[:T*E], T, w == max(from, 0))
		if err != nil {
			return 0, 0, err
		}
		if b < 0 || w == b {
			nll += l
			n += T * E
		}
	}
	ppl := math.Exp(nll / float64(n))
	if !(ppl < maxPPL) { // NaN, overflow: JSON has no infinity
		ppl = maxPPL
	}
	return train.LMReward(k.c, ppl), ppl, nil
}

func (k *lmTask) rankState() []byte { return k.sn.RankState() }

func (k *lmTask) setRankState(b []byte) error { return k.sn.SetRankState(b) }

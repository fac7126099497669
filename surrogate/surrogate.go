package surrogate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"nasd/arch"
	"nasd/cluster"
)

// Options configure the objective.
type Options struct {
	// Seed draws the hidden optimum and the weight of each decision.
	Seed uint64
	// Duration is the simulated training time of one trial, spread evenly
	// over its epochs; 0 returns at once.
	Duration time.Duration
	// Noise is the standard deviation of the Gaussian noise added to a
	// trial's final accuracy, drawn from the trial's seed.
	Noise float64
	// Epochs is the number of simulated epochs when a trial does not say;
	// 0 means DefaultEpochs.
	Epochs int
	// HangOn names a trial whose training never returns and ignores its
	// context: fault injection for a child stuck in a kernel or a node
	// that stops answering. "" : none.
	HangOn string
}

// DefaultEpochs is the number of epochs of a trial when neither the trial nor
// Options.Epochs gives one.
const DefaultEpochs = 5

// Accuracy range: chance level for 10 classes at no matching decision, and
// the ceiling at the optimum.
const (
	baseAcc  = 0.1
	rangeAcc = 0.85
)

// rewardEpochs: the reward is the best validation accuracy of the last
// rewardEpochs epochs, cubed, as in Zoph & Le 2017, §4.1.
const rewardEpochs = 5

// Objective is the synthetic objective. It satisfies worker.Trainer and is
// safe for concurrent use.
type Objective struct {
	space   arch.Space
	opt     Options
	optimum []int     // the best choice of each decision
	weight  []float64 // each decision's weight, summing to 1
}

// New draws the hidden optimum and the decisions' weights (each uniform in
// [0.5, 1.5), normalised) from opt.Seed.
func New(space arch.Space, opt Options) *Objective {
	if opt.Epochs <= 0 {
		opt.Epochs = DefaultEpochs
	}
	r := rand.New(rand.NewPCG(opt.Seed, 0x7375_7272_6f67_6174)) // "surrogat"
	ds := space.Decisions()
	o := &Objective{space: space, opt: opt, optimum: make([]int, len(ds)), weight: make([]float64, len(ds))}
	sum := 0.0
	for i, d := range ds {
		o.optimum[i] = r.IntN(len(d.Choices))
		o.weight[i] = 0.5 + r.Float64()
		sum += o.weight[i]
	}
	for i := range o.weight {
		o.weight[i] /= sum
	}
	return o
}

// Optimum returns the best architecture and its noise-free reward
// (0.95³ ≈ 0.857).
func (o *Objective) Optimum() (arch.Arch, float64) {
	a, err := o.space.Arch(o.optimum)
	if err != nil {
		panic("surrogate: optimum is not an architecture of its space: " + err.Error())
	}
	return a, math.Pow(baseAcc+rangeAcc, 3)
}

// Accuracy is the noise-free final accuracy of a: 0.1 + 0.85·(weighted
// fraction of a's decisions equal to the optimum's).
func (o *Objective) Accuracy(a arch.Arch) float64 {
	match := 0.0
	for i, d := range a.Decisions {
		if i < len(o.optimum) && d == o.optimum[i] {
			match += o.weight[i]
		}
	}
	return baseAcc + rangeAcc*match
}

// Train simulates training t: Options.Duration of sleep (split over the
// epochs), a validation-accuracy curve rising from chance towards the
// trial's final accuracy, and the reward (best of the last 5 epochs)³. The
// same trial always gives the same result. A ctx that ends first gives
// status "timeout" (deadline) or "canceled" with the epochs completed. An
// architecture of another space or options gives status "failed".
func (o *Objective) Train(ctx context.Context, t cluster.Trial) cluster.Result {
	return o.TrainEpochs(ctx, t, nil)
}

// TrainEpochs is Train that calls epochEnd (when not nil) after each
// simulated epoch but the last, with the epoch (1-based) and its validation
// accuracy, after that epoch's share of Options.Duration. When epochEnd
// returns true the trial ends there with status "stopped": its val_acc and
// reward cover the epochs run, which are those of the full run's curve. It
// makes Objective a worker.EpochTrainer, for early stopping without training.
func (o *Objective) TrainEpochs(ctx context.Context, t cluster.Trial, epochEnd func(epoch int, valAcc float64) (stop bool)) cluster.Result {
	res := cluster.Result{TrialID: t.ID}
	if o.opt.HangOn != "" && t.ID == o.opt.HangOn {
		select {} // as a stuck kernel would: nothing ends it but the process's end
	}
	an, err := arch.Analyze(o.space, t.Arch) // also checks that t.Arch is of o's space and options
	if err != nil {
		res.Status, res.Reason = cluster.StatusFailed, "surrogate: "+err.Error()
		return res
	}
	res.Params, res.FLOPs = an.Params, an.FLOPs

	epochs := o.opt.Epochs
	if t.Epochs > 0 {
		epochs = t.Epochs
	}
	final := o.Accuracy(t.Arch)
	if o.opt.Noise > 0 {
		final += o.opt.Noise * rand.New(rand.NewPCG(t.Seed, 0x6e6f697365)).NormFloat64() // "noise"
	}
	final = min(max(final, 0), 1)
	// A saturating curve that reaches final at the last epoch.
	const rate = 3.0
	curve := make([]float64, epochs)
	for e := range epochs {
		g := (1 - math.Exp(-rate*float64(e+1)/float64(epochs))) / (1 - math.Exp(-rate))
		curve[e] = baseAcc + (final-baseAcc)*g
	}

	done, status := epochs, "ok"
	if epochEnd == nil {
		err = o.sleep(ctx, epochs, &done)
	} else {
		err = ctx.Err()
		done = 0
		for e := 1; e <= epochs && err == nil; e++ {
			if err = o.wait(ctx, o.opt.Duration/time.Duration(epochs)); err != nil {
				break
			}
			done = e
			if e < epochs && epochEnd(e, curve[e-1]) {
				status = cluster.StatusStopped
				res.Reason = fmt.Sprintf("stopped early after epoch %d of %d", e, epochs)
				break
			}
		}
	}
	if err != nil {
		status = "canceled"
		if errors.Is(err, context.DeadlineExceeded) {
			status = "timeout"
		}
		res.Reason = fmt.Sprintf("stopped after %d of %d epochs: %v", done, epochs, err)
	}
	res.Status = status

	res.ValAcc = curve[:done:done]
	best := 0.0
	for _, v := range res.ValAcc {
		best = max(best, v)
	}
	last := 0.0
	for _, v := range res.ValAcc[max(0, done-rewardEpochs):] {
		last = max(last, v)
	}
	res.BestValAcc, res.Reward = best, last*last*last
	if done == 0 {
		res.ValAcc = nil
	}
	return res
}

// wait sleeps d (nothing when d ≤ 0) or until ctx ends, returning its error.
func (o *Objective) wait(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil || d <= 0 {
		return err
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sleep waits Duration, counting the epochs that completed in *done; it
// returns ctx's error if ctx ends first.
func (o *Objective) sleep(ctx context.Context, epochs int, done *int) error {
	if err := ctx.Err(); err != nil {
		*done = 0
		return err
	}
	if o.opt.Duration <= 0 {
		return nil
	}
	start := time.Now()
	timer := time.NewTimer(o.opt.Duration)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		perEpoch := o.opt.Duration / time.Duration(epochs)
		*done = 0
		if perEpoch > 0 {
			*done = min(epochs, int(time.Since(start)/perEpoch))
		}
		return ctx.Err()
	}
}

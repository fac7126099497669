package controller

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/klauspost/compress/zstd"

	"nasd/arch"
	"nasd/cluster"
	"nasd/journal"
)

// ENAS events (docs/events.md).
const (
	EventENASEpoch  = "enas_epoch"
	EventENASDerive = "enas_derive"
)

// ENASPolicy is the controller ENAS trains: a strategy whose Propose/Observe
// are the REINFORCE phase (trials scored by the shared weights), and which
// can draw children for the shared-weight phase without proposing trials.
// rl.Strategy is one.
type ENASPolicy interface {
	Strategy
	Sample(n int) []arch.Arch
	// SamplerState encodes the current policy for the workers, which draw
	// their own shared-weight children from it (rank 0 would otherwise
	// sample every worker's child serially, each step).
	SamplerState() ([]byte, error)
}

// ENASOptions is the schedule of an ENAS search. Defaults (ENASDefaults)
// are the authors' macro search where it fits 2 cores; the paper's values
// are in the comments.
type ENASOptions struct {
	Epochs          int     // shared-weight epochs (paper: 310 macro, 150 micro)
	Batch           int     // training minibatch per worker (paper: 128)
	LRMax, LRMin    float64 // cosine schedule with warm restarts (0.05, 0.0005)
	LRT0, LRTMul    int     // first period in epochs, period growth (10, 2)
	Momentum        float64 // Nesterov (0.9)
	L2              float64 // weight decay (2.5e-4)
	ControllerSteps int     // policy updates per epoch (50)
	ControllerBatch int     // children scored per update (20)
	DeriveSamples   int     // children sampled to derive the final one (10)
	CheckpointSteps int     // a checkpoint every this many shared-weight steps (and at each epoch end)
	ChecksumSteps   int     // replicas compared every this many steps
}

// ENASDefaults returns the default schedule.
func ENASDefaults() ENASOptions {
	return ENASOptions{Epochs: 10, Batch: 128, LRMax: 0.05, LRMin: 0.0005, LRT0: 10, LRTMul: 2, Momentum: 0.9,
		L2: 2.5e-4, ControllerSteps: 50, ControllerBatch: 20, DeriveSamples: 10, CheckpointSteps: 200, ChecksumSteps: 50}
}

// ENASDefaultsLM returns the default schedule of a search over recurrent
// cells (Pham et al. 2018, §3.1: minibatch 64, plain SGD, ℓ2 1e-7; the
// rate is constant, at 10 where the paper's 1 000-unit cells took 20: at
// the few hundred units that train on 2 cores, 20 diverges).
func ENASDefaultsLM() ENASOptions {
	o := ENASDefaults()
	o.Batch, o.LRMax, o.LRMin, o.Momentum, o.L2 = 64, 10, 10, 0, 1e-7
	return o
}

// ENASOptionNames lists the keys ParseENASOptions takes.
func ENASOptionNames() []string {
	return []string{"epochs", "batch_size", "lr_max", "lr_min", "lr_t0", "lr_tmul", "momentum", "l2",
		"controller_steps", "controller_batch", "derive_samples", "checkpoint_steps", "checksum_steps"}
}

// ParseENASOptions takes the schedule's keys out of m (the strategy's
// options) into the defaults def (ENASDefaults or ENASDefaultsLM) and
// returns the rest, which configure the policy. Every problem is reported
// at once, as arch.FieldErrors (paths relative to the options).
func ParseENASOptions(m map[string]any, def ENASOptions) (ENASOptions, map[string]any, error) {
	o := def
	rest := map[string]any{}
	var errs []error
	bad := func(key string, v any, want string) {
		errs = append(errs, &arch.FieldError{Path: []string{key}, Msg: fmt.Sprintf("enas: options.%s = %v: %s", key, v, want)})
	}
	ints := map[string]*int{"epochs": &o.Epochs, "batch_size": &o.Batch, "lr_t0": &o.LRT0, "lr_tmul": &o.LRTMul,
		"controller_steps": &o.ControllerSteps, "controller_batch": &o.ControllerBatch, "derive_samples": &o.DeriveSamples,
		"checkpoint_steps": &o.CheckpointSteps, "checksum_steps": &o.ChecksumSteps}
	floats := map[string]*float64{"lr_max": &o.LRMax, "lr_min": &o.LRMin, "momentum": &o.Momentum, "l2": &o.L2}
	for k, v := range m {
		if p, ok := ints[k]; ok {
			var n int64
			isInt := false
			switch x := v.(type) {
			case int64:
				n, isInt = x, true
			case int:
				n, isInt = int64(x), true
			case float64: // JSON (config.json) has no integers
				n, isInt = int64(x), x == math.Trunc(x) && math.Abs(x) < 1<<53
			}
			if !isInt || n < 1 || n > 1<<30 {
				bad(k, v, "must be a whole number ≥ 1")
				continue
			}
			*p = int(n)
			continue
		}
		if p, ok := floats[k]; ok {
			f, isNum := v.(float64)
			if n, ok := v.(int64); ok {
				f, isNum = float64(n), true
			}
			if !isNum || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || (k == "lr_max" && f == 0) || (k == "momentum" && f >= 1) {
				bad(k, v, "must be a finite number ≥ 0 (lr_max: > 0; momentum: < 1, 0 = plain SGD)")
				continue
			}
			*p = f
			continue
		}
		rest[k] = v
	}
	if o.LRMin > o.LRMax {
		bad("lr_min", o.LRMin, fmt.Sprintf("must be ≤ lr_max (%g)", o.LRMax))
	}
	return o, rest, errors.Join(errs...)
}

// LR is the shared weights' learning rate at a fractional epoch: SGDR
// (Loshchilov & Hutter 2017), cosine from LRMax to LRMin over periods of
// LRT0, LRT0·LRTMul, ... epochs, as in the authors' code.
func (o ENASOptions) LR(epoch float64) float64 {
	t, period := epoch, float64(o.LRT0)
	for t >= period {
		t -= period
		period *= float64(max(o.LRTMul, 1))
	}
	return o.LRMin + 0.5*(o.LRMax-o.LRMin)*(1+math.Cos(math.Pi*t/period))
}

// ENASConfig configures RunENAS.
type ENASConfig struct {
	RunID      string
	Seed       uint64
	Space      arch.Space
	Options    ENASOptions
	ConfigJSON []byte // the resolved configuration, logged in run_start
	Version    string
	// Stop, when done, ends the search at the next step boundary with a
	// checkpoint (a signal, the job's end); its cause is the reason. The
	// ctx of RunENAS, which the collectives use, ends the search at once
	// with an error (a worker that failed).
	Stop context.Context
	// Progress, if set, is called after every shared-weight step and at
	// each epoch's end (on rank 0's goroutine; keep it quick).
	Progress func(ENASProgress)
}

// ENASProgress is where an ENAS search is.
type ENASProgress struct {
	Epoch, Epochs       int // Epoch is 1-based, the one under way
	Step, StepsPerEpoch int
	// At an epoch's end: its mean shared loss and controller reward, and
	// how long it took.
	EpochDone                  bool
	SharedLoss, ControllerMean float64
	Seconds                    float64
}

// ENASSummary is what an ENAS search did.
type ENASSummary struct {
	Epochs, Steps int        // completed
	Best          *arch.Arch // the derived architecture (nil if the search did not get there)
	BestBatchAcc  float64    // its accuracy on the derive minibatch
	BestValAcc    float64    // its accuracy on the whole validation split
	// Language models: the scores above are c / perplexity, and these the
	// perplexities (0 for images).
	BestBatchPPL, BestValPPL float64
	Interrupted              bool // checkpointed before the end: resume it
	Reason                   string
	Checkpoints              int
}

// enasState is the ENAS loop's part of a checkpoint.
type enasState struct {
	Version     int    `json:"version"`
	Epoch       int    `json:"epoch"`   // the epoch under way
	Step        int    `json:"step"`    // next shared-weight step in it
	Phase       string `json:"phase"`   // "train", "controller" (the epoch's steps are done), "done"
	Steps       int    `json:"steps"`   // shared-weight steps so far
	Workers     int    `json:"workers"` // rank count the run was made with
	Weights     string `json:"weights"` // file of the shared weights
	WeightsHash string `json:"weights_sha256"`
	Checkpoints int    `json:"checkpoints"`
	RNG         []byte `json:"rng"` // rank 0's PCG (validation minibatch choice)
	ElapsedNS   int64  `json:"elapsed_ns"`
}

const enasStateVersion = 1

// enasLoop is rank 0's state during RunENAS.
type enasLoop struct {
	cfg    ENASConfig
	p      ENASPolicy
	t      cluster.Transport
	run    *journal.Run
	log    *journal.Log
	info   cluster.ENASInfo
	layout *cluster.Buckets
	zero   []float32 // rank 0's part of each gradient Allreduce: nothing
	pcg    *rand.PCG
	rng    *rand.Rand
	st     enasState
	start  time.Time
	before time.Duration

	stepsSinceCkpt int
	checksums      int
	epochStart     time.Time
	traffic        enasTraffic
}

// enasTraffic is what the epoch's train steps moved and took on rank 0,
// since the epoch began (or the run resumed).
type enasTraffic struct {
	steps   int
	buckets int     // Σ union buckets
	floats  int     // Σ union floats
	bytes   int     // Σ bytes each rank sent in AllreduceBuckets (lengths not counted)
	wall    float64 // Σ seconds of trainStep
	// policyBytes is the size of the policy plans broadcast (once per
	// epoch, and again after a resume).
	policyBytes int
}

// RunENAS is rank 0's side of an ENAS search (Pham et al. 2018) over every
// worker of t: per epoch, one pass of shared-weight training in which each
// step trains one sampled child per worker and averages their gradients
// (cluster.AllreduceBuckets), then ControllerSteps policy updates on
// children scored by the shared weights on one validation minibatch each;
// at the end it derives the best of DeriveSamples children. It checkpoints
// (policy, loop, shared weights) every CheckpointSteps steps and at each
// epoch end; resume restarts from the newest checkpoint. A cancelled ctx
// checkpoints and returns an interrupted summary.
func RunENAS(ctx context.Context, cfg ENASConfig, p ENASPolicy, t cluster.Transport, run *journal.Run, log *journal.Log, resume bool) (ENASSummary, error) {
	l := &enasLoop{cfg: cfg, p: p, t: t, run: run, log: log, start: time.Now(), epochStart: time.Now()}
	l.pcg = rand.NewPCG(cfg.Seed, 0x656e6173) // "enas"
	l.rng = rand.New(l.pcg)
	l.st = enasState{Version: enasStateVersion, Phase: "train", Workers: t.Size() - 1}
	sum, err := l.run1(ctx, resume)
	if err != nil {
		l.log.Event(EventRunEnd).Str("reason", "error").Str("error", err.Error()).Msg("")
		l.log.Flush()
		// Workers waiting for a plan must not hang the job; after a failed
		// collective they are not waiting, and MPI's abort ends them.
		if b, e := cluster.EncodeENAS(cluster.ENASPlan{Op: cluster.ENASStop}); e == nil && ctx.Err() == nil && !errors.As(err, new(collectiveError)) {
			t.Bcast(ctx, 0, b)
		}
	}
	return sum, err
}

func (l *enasLoop) run1(ctx context.Context, resume bool) (ENASSummary, error) {
	if l.t.Size() < 2 {
		return ENASSummary{}, errors.New("controller: enas: no workers")
	}
	if err := l.setup(ctx); err != nil {
		return ENASSummary{}, err
	}
	if resume {
		if err := l.restore(ctx); err != nil {
			return ENASSummary{}, err
		}
	}
	l.logStart(resume)
	o := l.cfg.Options
	stopped := func() bool { return l.cfg.Stop != nil && l.cfg.Stop.Err() != nil }
	interrupted := func() (ENASSummary, error) {
		if err := l.checkpoint(ctx); err != nil {
			return ENASSummary{}, err
		}
		reason := "interrupted: " + context.Cause(l.cfg.Stop).Error()
		if errors.Is(context.Cause(l.cfg.Stop), errENASDeadline) {
			reason = "deadline"
		}
		return l.end(ctx, ENASSummary{Interrupted: true, Reason: reason})
	}
	for l.st.Epoch < o.Epochs {
		if l.st.Phase == "train" {
			if err := l.sendPolicy(ctx); err != nil {
				return ENASSummary{}, err
			}
			for l.st.Step < l.info.StepsPerEpoch {
				if stopped() {
					return interrupted()
				}
				if err := l.trainStep(ctx); err != nil {
					return ENASSummary{}, err
				}
				if l.stepsSinceCkpt >= o.CheckpointSteps && l.st.Step < l.info.StepsPerEpoch {
					if err := l.checkpoint(ctx); err != nil {
						return ENASSummary{}, err
					}
				}
			}
			l.st.Phase = "controller"
		}
		if stopped() {
			return interrupted()
		}
		if err := l.endEpoch(ctx); err != nil {
			return ENASSummary{}, err
		}
		l.st.Epoch++
		l.st.Step, l.st.Phase = 0, "train"
		if err := l.checkpoint(ctx); err != nil {
			return ENASSummary{}, err
		}
	}
	sum, err := l.derive(ctx)
	if err != nil {
		return ENASSummary{}, err
	}
	l.st.Phase = "done"
	return l.end(ctx, sum)
}

// bcast sends a plan to every worker.
func (l *enasLoop) bcast(ctx context.Context, plan cluster.ENASPlan) error {
	b, err := cluster.EncodeENAS(plan)
	if err != nil {
		return err
	}
	if _, err := l.t.Bcast(ctx, 0, b); err != nil {
		return collectiveError{fmt.Errorf("controller: enas: Bcast of a %s plan: %w", plan.Op, err)}
	}
	return nil
}

// collectiveError is a collective that failed: the ranks are out of step,
// and no further collective can be trusted.
type collectiveError struct{ error }

func (e collectiveError) Unwrap() error { return e.error }

// errENASDeadline is the cause of a Stop context that the job's end ended.
var errENASDeadline = errors.New("deadline")

// ENASDeadline returns the cause to give a Stop context that ends at the
// job's end: the summary's reason is then "deadline".
func ENASDeadline(at time.Time) error {
	return fmt.Errorf("%w: the job ends at %s", errENASDeadline, at.Format(time.RFC3339))
}

// gather collects the workers' answers (index: rank; 0 is rank 0's nil).
func (l *enasLoop) gather(ctx context.Context, what string) ([][]byte, error) {
	got, err := l.t.Gather(ctx, 0, nil)
	if err != nil {
		return nil, collectiveError{fmt.Errorf("controller: enas: Gather of %s: %w", what, err)}
	}
	return got, nil
}

// setup learns the workers' layout and data sizes; every worker must agree.
func (l *enasLoop) setup(ctx context.Context) error {
	got, err := l.gather(ctx, "the workers' setup")
	if err != nil {
		return err
	}
	for r := 1; r < len(got); r++ {
		var in cluster.ENASInfo
		if err := cluster.DecodeENAS(r, got[r], &in); err != nil {
			return fmt.Errorf("controller: enas: %w", err)
		}
		if r == 1 {
			l.info = in
			continue
		}
		a, _ := json.Marshal(in)
		b, _ := json.Marshal(l.info)
		if !bytes.Equal(a, b) {
			return fmt.Errorf("controller: enas: rank %d has another supernet or data split than rank 1 (%d weights, %d steps an epoch; rank 1: %d, %d)",
				r, in.Size, in.StepsPerEpoch, l.info.Size, l.info.StepsPerEpoch)
		}
	}
	if l.info.StepsPerEpoch < 1 || l.info.ValBatches < 1 {
		return fmt.Errorf("controller: enas: %d training and %d validation examples make no minibatch of %d for %d workers",
			l.info.TrainExamples, l.info.ValExamples, l.info.Batch, l.t.Size()-1)
	}
	l.layout, err = cluster.NewBuckets(l.info.Size, l.info.Buckets)
	if err != nil {
		return fmt.Errorf("controller: enas: the workers' layout: %w", err)
	}
	l.zero = make([]float32, l.info.Size)
	return nil
}

// sendPolicy gives the workers the policy they sample their children from
// in the shared-weight phase: it changes only in the controller phase.
func (l *enasLoop) sendPolicy(ctx context.Context) error {
	state, err := l.p.SamplerState()
	if err != nil {
		return strategyError{fmt.Errorf("controller: enas: %w", err)}
	}
	l.traffic.policyBytes += len(state)
	return l.bcast(ctx, cluster.ENASPlan{Op: cluster.ENASPolicy, Policy: state})
}

// trainStep trains one child per worker on the shared weights; each worker
// samples its own from the policy, with a generator seeded from the run
// seed, the step and its rank.
func (l *enasLoop) trainStep(ctx context.Context) error {
	began := time.Now()
	o := l.cfg.Options
	plan := cluster.ENASPlan{Op: cluster.ENASTrain, Epoch: l.st.Epoch, Step: l.st.Step,
		LR:         o.LR(float64(l.st.Epoch) + float64(l.st.Step)/float64(l.info.StepsPerEpoch)),
		SampleSeed: enasSampleSeed(l.cfg.Seed, l.st.Steps), Check: (l.st.Steps+1)%o.ChecksumSteps == 0}
	if err := l.bcast(ctx, plan); err != nil {
		return err
	}
	clear(l.zero) // the Allreduce leaves the sum in it
	union, err := cluster.AllreduceBuckets(ctx, l.t, l.zero, l.layout, l.layout.NewMask())
	if err != nil {
		return collectiveError{fmt.Errorf("controller: enas: step %d: %w", l.st.Steps+1, err)}
	}
	if plan.Check {
		if err := l.compareChecksums(ctx); err != nil {
			return err
		}
	}
	n := l.layout.Floats(union)
	tr := &l.traffic
	tr.steps++
	tr.buckets += union.Count()
	tr.floats += n
	tr.bytes += cluster.AllreduceBucketsBytes(l.t.Size(), l.layout.Len(), n)
	tr.wall += time.Since(began).Seconds()
	l.st.Step++
	l.st.Steps++
	l.stepsSinceCkpt++
	if l.cfg.Progress != nil {
		l.cfg.Progress(ENASProgress{Epoch: l.st.Epoch + 1, Epochs: o.Epochs, Step: l.st.Step, StepsPerEpoch: l.info.StepsPerEpoch})
	}
	return nil
}

// compareChecksums gathers every replica's checksum: they must be equal.
func (l *enasLoop) compareChecksums(ctx context.Context) error {
	got, err := l.gather(ctx, "weight checksums")
	if err != nil {
		return err
	}
	for r := 2; r < len(got); r++ {
		if !bytes.Equal(got[r], got[1]) {
			return fmt.Errorf("controller: enas: after step %d the shared weights of rank %d (checksum %x) differ from rank 1's (%x): the replicas diverged",
				l.st.Steps+1, r, got[r], got[1])
		}
	}
	l.checksums++
	return nil
}

// score has the workers score children on validation batch b (-1: all):
// accuracies, or for language models c / perplexity and the perplexities.
func (l *enasLoop) score(ctx context.Context, children []arch.Arch, b int) (acc, ppl []float64, err error) {
	if err := l.bcast(ctx, cluster.ENASPlan{Op: cluster.ENASEval, Children: decisions(children), Batch: b}); err != nil {
		return nil, nil, err
	}
	got, err := l.gather(ctx, "scores")
	if err != nil {
		return nil, nil, err
	}
	workers := l.t.Size() - 1
	acc = make([]float64, len(children))
	lm := l.info.Task == cluster.TaskLM
	if lm {
		ppl = make([]float64, len(children))
	}
	for r := 1; r < len(got); r++ {
		var s cluster.ENASScores
		if err := cluster.DecodeENAS(r, got[r], &s); err != nil {
			return nil, nil, fmt.Errorf("controller: enas: %w", err)
		}
		want := 0
		for i := r - 1; i < len(children); i += workers {
			want++
		}
		if len(s.Acc) != want || (lm && len(s.PPL) != want) {
			return nil, nil, fmt.Errorf("controller: enas: rank %d scored %d children (%d perplexities), its share is %d", r, len(s.Acc), len(s.PPL), want)
		}
		for k, i := 0, r-1; i < len(children); k, i = k+1, i+workers {
			acc[i] = s.Acc[k]
			if lm {
				ppl[i] = s.PPL[k]
			}
		}
	}
	return acc, ppl, nil
}

// endEpoch gathers the epoch's training statistics, trains the policy and
// logs the epoch.
func (l *enasLoop) endEpoch(ctx context.Context) error {
	began := time.Now()
	if err := l.bcast(ctx, cluster.ENASPlan{Op: cluster.ENASStatsOp}); err != nil {
		return err
	}
	got, err := l.gather(ctx, "training statistics")
	if err != nil {
		return err
	}
	var tot cluster.ENASStats
	for r := 1; r < len(got); r++ {
		var s cluster.ENASStats
		if err := cluster.DecodeENAS(r, got[r], &s); err != nil {
			return fmt.Errorf("controller: enas: %w", err)
		}
		tot.Steps += s.Steps
		tot.LossSum += s.LossSum
		tot.Correct += s.Correct
		tot.Seen += s.Seen
		tot.Diverged += s.Diverged
		tot.StepS += s.StepS
		tot.AllreduceS += s.AllreduceS
	}
	o := l.cfg.Options
	var rewards []float64
	for range o.ControllerSteps {
		trials, err := l.p.Propose(o.ControllerBatch)
		if err != nil {
			return strategyError{fmt.Errorf("controller: enas: policy %s: %w", l.p.Name(), err)}
		}
		children := make([]arch.Arch, len(trials))
		for i, tr := range trials {
			children[i] = tr.Arch
		}
		acc, ppl, err := l.score(ctx, children, l.rng.IntN(l.info.ValBatches))
		if err != nil {
			return err
		}
		for i, tr := range trials {
			r := Result{TrialID: tr.ID, Status: "ok", Reward: acc[i], ValAcc: []float64{acc[i]}, BestValAcc: acc[i]}
			if ppl != nil {
				r.ValPPL = []float64{ppl[i]}
			}
			if err := l.p.Observe(r); err != nil {
				return strategyError{fmt.Errorf("controller: enas: policy %s: %w", l.p.Name(), err)}
			}
			rewards = append(rewards, acc[i])
		}
	}
	e := l.log.Event(EventENASEpoch).Int("epoch", l.st.Epoch+1).Int("steps", l.st.Steps).
		Float64("lr", o.LR(float64(l.st.Epoch+1)-1e-9)).Int("children_trained", tot.Steps).Int("diverged", tot.Diverged).Int("checksums_verified", l.checksums)
	if tot.Steps > 0 {
		journal.Float(e, "shared_loss", tot.LossSum/float64(tot.Steps))
		if l.info.Task == cluster.TaskLM { // the loss is the mean NLL per token
			journal.Float(e, "shared_ppl", math.Exp(tot.LossSum/float64(tot.Steps)))
		}
	}
	if tot.Seen > 0 {
		journal.Float(e, "shared_acc", float64(tot.Correct)/float64(tot.Seen))
	}
	if tr := l.traffic; tr.steps > 0 {
		n := float64(tr.steps)
		e.Int("train_steps", tr.steps).Float64("train_s", tr.wall)
		journal.Float(e, "union_buckets", float64(tr.buckets)/n)
		journal.Float(e, "union_floats", float64(tr.floats)/n)
		journal.Float(e, "allreduce_bytes", float64(tr.bytes)/n)
		e.Int("policy_bytes", tr.policyBytes)
		if tot.StepS > 0 {
			w := float64(tr.steps * (l.t.Size() - 1))
			journal.Float(e, "step_s", tot.StepS/w)
			journal.Float(e, "allreduce_s", tot.AllreduceS/w)
		}
	}
	l.traffic = enasTraffic{}
	if len(rewards) > 0 {
		journal.Float(e, "controller_reward", mean(rewards))
		journal.Float(e, "controller_reward_max", slices.Max(rewards))
	}
	if lr, ok := l.p.(Learner); ok {
		if u := lr.LastUpdate(); u.Updates > 0 {
			e.Int("updates", u.Updates)
			journal.Float(e, "baseline", u.Baseline)
			journal.Float(e, "entropy", u.Entropy)
			journal.Float(e, "loss", u.Loss)
		}
	}
	e.Float64("controller_s", time.Since(began).Seconds()).Float64("elapsed_s", l.elapsed().Seconds()).Msg("")
	if l.cfg.Progress != nil {
		p := ENASProgress{Epoch: l.st.Epoch + 1, Epochs: o.Epochs, Step: l.st.Step, StepsPerEpoch: l.info.StepsPerEpoch,
			EpochDone: true, Seconds: time.Since(l.epochStart).Seconds()}
		if tot.Steps > 0 {
			p.SharedLoss = tot.LossSum / float64(tot.Steps)
		}
		if len(rewards) > 0 {
			p.ControllerMean = mean(rewards)
		}
		l.cfg.Progress(p)
	}
	l.epochStart = time.Now()
	l.checksums = 0
	return nil
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// derive samples DeriveSamples children from the trained policy, scores
// each on one validation minibatch (ENAS's choice) and on the whole
// validation split, and keeps the best on the whole split: a minibatch of
// 128 separates children by noise as much as by quality.
func (l *enasLoop) derive(ctx context.Context) (ENASSummary, error) {
	children := l.p.Sample(l.cfg.Options.DeriveSamples)
	batchAcc, batchPPL, err := l.score(ctx, children, l.rng.IntN(l.info.ValBatches))
	if err != nil {
		return ENASSummary{}, err
	}
	valAcc, valPPL, err := l.score(ctx, children, -1)
	if err != nil {
		return ENASSummary{}, err
	}
	best := 0
	for i := range children {
		if valAcc[i] > valAcc[best] {
			best = i
		}
	}
	arr := make([]map[string]any, len(children))
	for i, c := range children {
		if valPPL != nil { // language models: the scores are c / perplexity
			arr[i] = map[string]any{"arch_hash": c.Hash(), "batch_reward": batchAcc[i], "val_reward": valAcc[i],
				"batch_ppl": batchPPL[i], "val_ppl": valPPL[i]}
		} else {
			arr[i] = map[string]any{"arch_hash": c.Hash(), "batch_acc": batchAcc[i], "val_acc": valAcc[i]}
		}
	}
	cj, _ := json.Marshal(arr)
	e := l.log.Event(EventENASDerive).RawJSON("candidates", cj).Int("best", best)
	if a, err := children[best].CompactJSON(); err == nil {
		e.RawJSON("arch", a)
	}
	e.Msg("")
	var buf bytes.Buffer
	if err := arch.WriteJSON(&buf, children[best]); err != nil {
		return ENASSummary{}, err
	}
	if err := journal.WriteFileAtomic(filepath.Join(l.run.Dir, "best.json"), buf.Bytes(), 0o644); err != nil {
		return ENASSummary{}, fmt.Errorf("controller: enas: %w", err)
	}
	a := children[best]
	sum := ENASSummary{Best: &a, BestBatchAcc: batchAcc[best], BestValAcc: valAcc[best], Reason: "done"}
	if valPPL != nil {
		sum.BestBatchPPL, sum.BestValPPL = batchPPL[best], valPPL[best]
	}
	return sum, nil
}

// end stops the workers and logs run_end.
func (l *enasLoop) end(ctx context.Context, sum ENASSummary) (ENASSummary, error) {
	sum.Epochs, sum.Steps, sum.Checkpoints = l.st.Epoch, l.st.Steps, l.st.Checkpoints
	if err := l.bcast(ctx, cluster.ENASPlan{Op: cluster.ENASStop}); err != nil {
		return sum, err
	}
	e := l.log.Event(EventRunEnd).Str("reason", sum.Reason).Bool("interrupted", sum.Interrupted).
		Int("epochs", sum.Epochs).Int("steps", sum.Steps).Float64("elapsed_s", l.elapsed().Seconds())
	switch {
	case sum.Best != nil && sum.BestValPPL > 0:
		journal.Float(e, "best_val_ppl", sum.BestValPPL)
		journal.Float(e, "best_reward", sum.BestValAcc)
	case sum.Best != nil:
		journal.Float(e, "best_val_acc", sum.BestValAcc)
	}
	e.Msg("")
	if err := l.log.Flush(); err != nil {
		return sum, fmt.Errorf("controller: enas: flushing the event log: %w", err)
	}
	return sum, nil
}

func (l *enasLoop) elapsed() time.Duration { return l.before + time.Since(l.start) }

func (l *enasLoop) logStart(resume bool) {
	o := l.cfg.Options
	e := l.log.Event(EventRunStart).Int("schema", SchemaVersion).Str("mode", "enas").Int("ranks", l.t.Size()).
		Int("workers", l.t.Size()-1).Str("strategy", "enas").Str("policy", l.p.Name()).Uint64("seed", l.cfg.Seed).
		Bool("resumed", resume).Int("epochs", o.Epochs).Int("batch", l.info.Batch).
		Int("steps_per_epoch", l.info.StepsPerEpoch).Int("shared_weights", l.info.Size).Int("buckets", len(l.info.Buckets)).
		Int("train_examples", l.info.TrainExamples).Int("val_examples", l.info.ValExamples)
	if l.cfg.Version != "" {
		e.Str("version", l.cfg.Version)
	}
	if len(l.cfg.ConfigJSON) > 0 {
		e.RawJSON("config", compact(l.cfg.ConfigJSON))
	}
	if resume {
		e.Int("from_epoch", l.st.Epoch).Int("from_step", l.st.Step).Int("steps_before", l.st.Steps)
	}
	e.Msg("")
}

// weightsName is the file of checkpoint number n's shared weights.
func weightsName(n int) string { return fmt.Sprintf("supernet-%06d.bin.zst", n) }

// checkpoint fetches the shared weights from rank 1, writes them to their
// own file (zstd), then the checkpoint naming that file and its hash. The
// previous checkpoint's weights file is kept (checkpoint.prev.zst names
// it); older ones are removed.
func (l *enasLoop) checkpoint(ctx context.Context) error {
	if err := l.bcast(ctx, cluster.ENASPlan{Op: cluster.ENASSave}); err != nil {
		return err
	}
	got, err := l.gather(ctx, "the shared weights")
	if err != nil {
		return err
	}
	state := got[1]
	if len(state) == 0 {
		return errors.New("controller: enas: rank 1 sent no weights to checkpoint")
	}
	if l.info.RankState { // each worker's own state follows the weights
		ranks, err := l.gather(ctx, "the rank states")
		if err != nil {
			return err
		}
		state = cluster.AppendRankFrames(state, ranks)
	}
	n := l.st.Checkpoints + 1
	var z bytes.Buffer
	enc, _ := zstd.NewWriter(&z, zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(true))
	enc.Write(state)
	if err := enc.Close(); err != nil {
		return fmt.Errorf("controller: enas: compressing the shared weights: %w", err)
	}
	name := weightsName(n)
	if err := journal.WriteFileAtomic(filepath.Join(l.run.Dir, name), z.Bytes(), 0o644); err != nil {
		return fmt.Errorf("controller: enas: %w", err)
	}
	h := sha256.Sum256(state)
	prevWeights := l.st.Weights
	l.st.Checkpoints, l.st.Weights, l.st.WeightsHash = n, name, hex.EncodeToString(h[:])
	l.st.ElapsedNS = int64(l.elapsed())
	l.st.RNG, _ = l.pcg.MarshalBinary()
	snap, err := l.p.Snapshot()
	if err != nil {
		return strategyError{fmt.Errorf("controller: enas: policy %s: Snapshot: %w", l.p.Name(), err)}
	}
	loop, _ := json.Marshal(l.st)
	if err := l.log.Flush(); err != nil {
		return fmt.Errorf("controller: enas: flushing the event log: %w", err)
	}
	seq := l.log.Seq()
	if err := l.run.SaveCheckpoint(journal.Checkpoint{Version: enasStateVersion, Run: l.cfg.RunID, Seq: seq,
		Strategy: "enas/" + l.p.Name(), State: snap, Loop: loop}); err != nil {
		return fmt.Errorf("controller: enas: %w", err)
	}
	// Keep this checkpoint's weights and the previous one's.
	files, _ := filepath.Glob(filepath.Join(l.run.Dir, "supernet-*.bin.zst"))
	for _, f := range files {
		if b := filepath.Base(f); b != name && b != prevWeights {
			os.Remove(f)
		}
	}
	l.log.Event("checkpoint").Int("number", n).Uint64("covers_seq", seq).Int("bytes", len(snap)+len(loop)).
		Int("weights_bytes", z.Len()).Str("weights", name).Int("epoch", l.st.Epoch).Int("step", l.st.Step).Msg("")
	l.stepsSinceCkpt = 0
	return nil
}

// restore loads the newest checkpoint and sends its weights to the workers.
func (l *enasLoop) restore(ctx context.Context) error {
	c, warnings, err := l.run.LoadCheckpoint()
	for _, w := range warnings {
		l.log.Event(EventWarning).Str("message", w).Msg("")
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil // killed before the first checkpoint: start over
	}
	if err != nil {
		return fmt.Errorf("controller: enas: resume: %w", err)
	}
	if c.Strategy != "enas/"+l.p.Name() || c.Version != enasStateVersion {
		return fmt.Errorf("controller: enas: resume: the checkpoint is of %q version %d, this search is enas/%s version %d",
			c.Strategy, c.Version, l.p.Name(), enasStateVersion)
	}
	var st enasState
	if err := json.Unmarshal(c.Loop, &st); err != nil {
		return fmt.Errorf("controller: enas: resume: loop state: %w", err)
	}
	if st.Workers != l.t.Size()-1 {
		return fmt.Errorf("controller: enas: resume: the run was made with %d workers, this job has %d: the same seed and rank count give the same search",
			st.Workers, l.t.Size()-1)
	}
	z, err := os.ReadFile(filepath.Join(l.run.Dir, st.Weights))
	if err != nil {
		return fmt.Errorf("controller: enas: resume: %w", err)
	}
	dec, err := zstd.NewReader(bytes.NewReader(z), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<34))
	if err != nil {
		return fmt.Errorf("controller: enas: resume: %s: %w", st.Weights, err)
	}
	state, err := dec.DecodeAll(z, nil)
	dec.Close()
	if err != nil {
		return fmt.Errorf("controller: enas: resume: %s: %w", st.Weights, err)
	}
	if h := sha256.Sum256(state); hex.EncodeToString(h[:]) != st.WeightsHash {
		return fmt.Errorf("controller: enas: resume: %s: checksum mismatch (the checkpoint says %s)", st.Weights, st.WeightsHash)
	}
	if err := l.p.Restore(c.State); err != nil {
		return strategyError{fmt.Errorf("controller: enas: resume: policy %s: %w", l.p.Name(), err)}
	}
	if err := l.pcg.UnmarshalBinary(st.RNG); err != nil {
		return fmt.Errorf("controller: enas: resume: rng: %w", err)
	}
	if err := l.bcast(ctx, cluster.ENASPlan{Op: cluster.ENASLoad}); err != nil {
		return err
	}
	if _, err := l.t.Bcast(ctx, 0, state); err != nil {
		return fmt.Errorf("controller: enas: resume: Bcast of the shared weights: %w", err)
	}
	l.st, l.before = st, time.Duration(st.ElapsedNS)
	return nil
}

// enasSampleSeed seeds the workers' child draws of global step steps
// (SplitMix64's finaliser spreads consecutive steps apart).
func enasSampleSeed(seed uint64, steps int) uint64 {
	z := seed ^ 0x656e6173_73616d70 + uint64(steps)*0x9e3779b97f4a7c15 // "enassamp"
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// decisions returns the children's decision lists.
func decisions(as []arch.Arch) [][]int {
	out := make([][]int, len(as))
	for i, a := range as {
		out[i] = a.Decisions
	}
	return out
}

package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"gorgonia.org/tensor"

	"nasd/arch"
	"nasd/train/dataset"
)

// Result statuses.
const (
	StatusOK       = "ok"       // the budget was used up (or the run finished)
	StatusDiverged = "diverged" // the training loss became NaN or ±Inf
	StatusTimeout  = "timeout"  // ctx's deadline passed
	StatusCanceled = "canceled" // ctx was canceled
	StatusError    = "error"    // an op failed or panicked; Train also returns the error
	StatusStopped  = "stopped"  // Hooks.EpochEnd asked to stop at an epoch boundary (early stopping)
)

// EpochStats are one epoch's metrics. The last epoch of a run stopped by a
// Steps or Deadline budget may be partial: it is evaluated all the same.
type EpochStats struct {
	Epoch     int     `json:"epoch"` // 1-based
	Steps     int     `json:"steps"` // minibatch updates in this epoch
	TrainLoss float64 `json:"train_loss"`
	TrainAcc  float64 `json:"train_acc"` // over the epoch's minibatches, in training mode
	ValAcc    float64 `json:"val_acc"`
	Seconds   float64 `json:"seconds"` // training and evaluation (validation, test)
	// TestAcc is the test accuracy after this epoch (Config.TestEveryEpoch).
	TestAcc *float64 `json:"test_acc,omitempty"`
	// TrainClock is the wall time in seconds from the start of Train to the
	// end of this epoch's last step, evaluations (validation, test)
	// excluded: weight initialisation, building the nets, minibatch
	// assembly and the steps. Data loading, done before Train, is not in it.
	TrainClock float64 `json:"train_clock"`
}

// Result is what training a child produced. It never holds NaN or Inf.
type Result struct {
	Status         string       `json:"status"`
	Reason         string       `json:"reason,omitempty"`
	Epochs         []EpochStats `json:"epochs"`
	BestValAcc     float64      `json:"best_val_acc"`
	Reward         float64      `json:"reward"` // Reward over Epochs' ValAcc
	TestAcc        *float64     `json:"test_acc,omitempty"`
	Params         int          `json:"params"`
	WallSeconds    float64      `json:"wall_seconds"`
	ExamplesPerSec float64      `json:"examples_per_sec"` // training examples per second of training steps
	Steps          int          `json:"steps"`
}

// Progress reports training as it goes: after every step, and once more with
// EpochDone set after each epoch's validation.
type Progress struct {
	Epoch         int     // 1-based
	Epochs        int     // Config.Epochs; 0 when the budget is steps or time only
	Step          int     // 1-based step within the epoch
	StepsPerEpoch int     //
	Loss          float64 // this step's training loss
	EpochDone     *EpochStats
}

// Train trains g on data.Train from weights initialised with seed, validates
// on data.Val after every epoch and scores the run with Reward. The same g,
// data, cfg and seed give identical results on the same machine and thread
// count (unless cfg.Deadline stops the run).
//
// Training outcomes — ok, diverged, timeout (ctx's deadline), canceled — are
// reported in Result.Status with a nil error; Result then holds the epochs
// completed. A non-nil error means training could not start (invalid config,
// graph or data) or an op failed; a panic inside the graph code is recovered
// into such an error (Status "error"), never crashing the process.
func Train(ctx context.Context, g *arch.Graph, data *dataset.Splits, cfg Config, seed uint64, progress func(Progress)) (Result, error) {
	return trainWith(ctx, g, data, cfg, seed, Hooks{Progress: progress}, nil)
}

// Hooks are TrainHooked's optional callbacks; a nil one is not called.
type Hooks struct {
	// Progress is Train's progress function.
	Progress func(Progress)
	// EpochEnd is called after each epoch's validation, except after the
	// epoch that ends the budget (stopping there would save nothing).
	// Returning true stops the run at that epoch boundary: Result.Status
	// is "stopped", Result.Epochs holds the epochs run, Reward is computed
	// over them, and the test set (EvalTest) is not evaluated.
	EpochEnd func(EpochStats) (stop bool)
	// Trained is called once with the store when the loop has ended without
	// an error, whatever the status: the weights as they stand (the last
	// step's, not the best epoch's), for nasd train -save-weights.
	Trained func(*Weights)
}

// TrainHooked is Train with hooks; Train(…, progress) is
// TrainHooked(…, Hooks{Progress: progress}).
func TrainHooked(ctx context.Context, g *arch.Graph, data *dataset.Splits, cfg Config, seed uint64, h Hooks) (Result, error) {
	return trainWith(ctx, g, data, cfg, seed, h, nil)
}

// trainWith is TrainHooked with the given kernels (nil: the pure-Go ones).
func trainWith(ctx context.Context, g *arch.Graph, data *dataset.Splits, cfg Config, seed uint64, h Hooks, k kernels) (res Result, err error) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			res.Status, res.Reason = StatusError, fmt.Sprintf("panic: %v", r)
			err = fmt.Errorf("train: recovered panic: %v", r)
		}
		res.WallSeconds = time.Since(start).Seconds()
	}()
	if err := cfg.Validate(); err != nil {
		return Result{Status: StatusError, Reason: err.Error()}, err
	}
	cfg = cfg.withDefaults()
	stats, err := g.Infer()
	if err != nil {
		return Result{Status: StatusError, Reason: err.Error()}, err
	}
	if err := checkData(g, data, cfg.EvalTest || cfg.TestEveryEpoch, !cfg.TestEveryEpoch); err != nil {
		return Result{Status: StatusError, Reason: err.Error()}, err
	}
	for _, s := range stats {
		res.Params += s.Params
	}
	progress := h.Progress
	if progress == nil {
		progress = func(Progress) {}
	}
	r := &run{ctx: ctx, cfg: cfg, data: data, progress: progress, epochEnd: h.EpochEnd, start: start, res: &res,
		t: newTrainer(g, cfg, seed)}
	r.t.kern = k
	defer r.t.close()
	if err := r.loop(seed); err != nil {
		res.Status, res.Reason = StatusError, err.Error()
		return res, err
	}
	if h.Trained != nil {
		h.Trained(r.t.w)
	}
	return res, nil
}

// checkData checks the sets training reads; with needVal false an empty
// validation set is allowed (and then skipped).
func checkData(g *arch.Graph, d *dataset.Splits, test, needVal bool) error {
	if d == nil || d.Train == nil || d.Val == nil {
		return errors.New("train: data needs Train and Val sets")
	}
	sets := []struct {
		name string
		s    *dataset.Set
	}{{"train", d.Train}}
	if needVal || d.Val.Len() > 0 {
		sets = append(sets, struct {
			name string
			s    *dataset.Set
		}{"validation", d.Val})
	}
	if test {
		if d.Test == nil {
			return errors.New("train: EvalTest is set but data has no Test set")
		}
		sets = append(sets, struct {
			name string
			s    *dataset.Set
		}{"test", d.Test})
	}
	for _, x := range sets {
		s := x.s
		if in := (arch.Shape{C: s.C, H: s.H, W: s.W}); in != g.Input || s.Classes != g.Classes {
			return fmt.Errorf("train: %s set has %v images in %d classes; the architecture expects %v in %d",
				x.name, in, s.Classes, g.Input, g.Classes)
		}
		if s.Len() == 0 || len(s.Images) != s.Len()*s.Size() {
			return fmt.Errorf("train: %s set has %d labels and %d values for %v images", x.name, s.Len(), len(s.Images), g.Input)
		}
		for i, l := range s.Labels {
			if l < 0 || int(l) >= s.Classes {
				return fmt.Errorf("train: %s set: example %d has label %d, outside [0, %d)", x.name, i, l, s.Classes)
			}
		}
	}
	return nil
}

// trainer owns one architecture's weights, optimizer and compiled nets.
type trainer struct {
	kern kernels  // nil: the pure-Go ones
	buf  *Buffers // shared by the trainer's nets, which run one at a time
	g    *arch.Graph
	cfg  Config
	w    *Weights
	opt  *optimizer
	nets map[netKey]*Net
	drop *rand.PCG // dropout masks, shared by the training nets in step order
}

type netKey struct {
	batch int
	train bool
}

func newTrainer(g *arch.Graph, cfg Config, seed uint64) *trainer {
	return &trainer{g: g, cfg: cfg, w: NewWeights(tensor.Float32, mix(seed, saltInit)), opt: newOptimizer(cfg),
		nets: map[netKey]*Net{}, buf: NewBuffers(), drop: rand.NewPCG(mix(seed, saltDropout), saltDropout)}
}

// Seeds of a run's random streams derive from the trial seed and a salt.
const (
	saltInit = 1 + iota
	saltData
	saltDropout
)

// net returns the compiled net for a batch size and mode, building it once.
func (t *trainer) net(batch int, train bool) (*Net, error) {
	k := netKey{batch, train}
	if n, ok := t.nets[k]; ok {
		return n, nil
	}
	n, err := buildWith(t.g, t.w, BuildOptions{Batch: batch, Train: train, Buffers: t.buf, Dropout: t.cfg.Dropout, DropoutRNG: t.drop}, t.kern)
	if err != nil {
		return nil, err
	}
	t.nets[k] = n
	return n, nil
}

// step trains on one minibatch (a net of exactly len(y) examples, so a short
// last batch trains too). A non-finite loss skips the update.
func (t *trainer) step(x []float32, y []int32, lr float64) (loss float64, correct int, err error) {
	n, err := t.net(len(y), true)
	if err != nil {
		return 0, 0, err
	}
	if loss, correct, err = n.Run(x, y); err != nil || !finite(loss) {
		return loss, correct, err
	}
	t.opt.update(n, lr)
	return loss, correct, nil
}

// evaluate returns the accuracy on s in evaluation mode, batch by batch; the
// last short batch is padded and the padding ignored, so every example counts.
func (t *trainer) evaluate(ctx context.Context, s *dataset.Set) (float64, error) {
	b := t.cfg.BatchSize
	n, err := t.net(b, false)
	if err != nil {
		return 0, err
	}
	size, correct := s.Size(), 0
	for i := 0; i < s.Len(); i += b {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		m := min(b, s.Len()-i)
		_, c, err := n.Run(s.Images[i*size:(i+m)*size], s.Labels[i:i+m])
		if err != nil {
			return 0, err
		}
		correct += c
	}
	return float64(correct) / float64(s.Len()), nil
}

func (t *trainer) close() {
	for _, n := range t.nets {
		n.Close()
	}
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// run is one Train call's loop state.
type run struct {
	ctx      context.Context
	cfg      Config
	data     *dataset.Splits
	progress func(Progress)
	epochEnd func(EpochStats) bool // nil: none
	start    time.Time
	res      *Result
	t        *trainer
}

// stopped reports whether ctx ended, setting the status.
func (r *run) stopped() bool {
	err := r.ctx.Err()
	if err == nil {
		return false
	}
	r.res.Status = StatusCanceled
	if errors.Is(err, context.DeadlineExceeded) {
		r.res.Status = StatusTimeout
	}
	r.res.Reason = fmt.Sprintf("%v after %d steps, %d epochs", err, r.res.Steps, len(r.res.Epochs))
	return true
}

func (r *run) loop(seed uint64) error {
	cfg, res := r.cfg, r.res
	train := r.data.Train
	size, b := train.Size(), cfg.BatchSize
	batches := dataset.NewBatches(train, b, true, cfg.Augment, mix(seed, saltData))
	x, y := make([]float32, b*size), make([]int32, b)
	perEpoch := (train.Len() + b - 1) / b
	total := 0 // planned steps, for the cosine schedule
	if cfg.Epochs > 0 {
		total = cfg.Epochs * perEpoch
	}
	if cfg.Steps > 0 && (total == 0 || cfg.Steps < total) {
		total = cfg.Steps
	}
	var trainTime, evalTime time.Duration
	var trained int
	defer func() {
		if trainTime > 0 {
			res.ExamplesPerSec = float64(trained) / trainTime.Seconds()
		}
		accs := make([]float64, len(res.Epochs))
		for i, e := range res.Epochs {
			accs[i] = e.ValAcc
			res.BestValAcc = max(res.BestValAcc, e.ValAcc)
		}
		res.Reward = Reward(accs, cfg.RewardEpochs, cfg.RewardKind, cfg.RewardPower)
	}()
	budget := "" // why the budget ended, if before cfg.Epochs
	for epoch := 1; cfg.Epochs == 0 || epoch <= cfg.Epochs; epoch++ {
		epochStart := time.Now()
		var lossSum float64
		var correct, seen, steps int
		for {
			if r.stopped() {
				return nil
			}
			m := batches.Next(x, y)
			if m == 0 {
				break
			}
			t0 := time.Now()
			loss, c, err := r.t.step(x[:m*size], y[:m], cfg.lr(res.Steps, epoch, total))
			if err != nil {
				return fmt.Errorf("train: epoch %d step %d: %w", epoch, steps+1, err)
			}
			trainTime += time.Since(t0)
			if !finite(loss) {
				res.Status = StatusDiverged
				res.Reason = fmt.Sprintf("training loss %v at epoch %d step %d", loss, epoch, steps+1)
				return nil
			}
			trained += m
			steps++
			res.Steps++
			lossSum += loss * float64(m)
			correct += c
			seen += m
			r.progress(Progress{Epoch: epoch, Epochs: cfg.Epochs, Step: steps, StepsPerEpoch: perEpoch, Loss: loss})
			if cfg.Steps > 0 && res.Steps >= cfg.Steps {
				budget = fmt.Sprintf("step budget of %d reached", cfg.Steps)
				break
			}
			if cfg.Deadline > 0 && time.Since(r.start) >= cfg.Deadline {
				budget = fmt.Sprintf("time budget of %v reached", cfg.Deadline)
				break
			}
		}
		if seen > 0 {
			clock := time.Since(r.start) - evalTime
			evalStart := time.Now()
			var acc float64
			if r.data.Val.Len() > 0 { // empty only with TestEveryEpoch (checkData)
				var err error
				if acc, err = r.t.evaluate(r.ctx, r.data.Val); err != nil {
					if r.stopped() {
						return nil
					}
					return fmt.Errorf("train: validation after epoch %d: %w", epoch, err)
				}
			}
			e := EpochStats{Epoch: epoch, Steps: steps, TrainLoss: lossSum / float64(seen),
				TrainAcc: float64(correct) / float64(seen), ValAcc: acc, TrainClock: clock.Seconds()}
			if cfg.TestEveryEpoch {
				test, err := r.t.evaluate(r.ctx, r.data.Test)
				if err != nil {
					if r.stopped() {
						return nil
					}
					return fmt.Errorf("train: test evaluation after epoch %d: %w", epoch, err)
				}
				e.TestAcc = &test
			}
			evalTime += time.Since(evalStart)
			e.Seconds = time.Since(epochStart).Seconds()
			res.Epochs = append(res.Epochs, e)
			r.progress(Progress{Epoch: epoch, Epochs: cfg.Epochs, Step: steps, StepsPerEpoch: perEpoch, Loss: e.TrainLoss, EpochDone: &e})
			if last := budget != "" || (cfg.Epochs > 0 && epoch >= cfg.Epochs); !last && r.epochEnd != nil && r.epochEnd(e) {
				res.Status = StatusStopped
				if cfg.Epochs > 0 {
					res.Reason = fmt.Sprintf("stopped early after epoch %d of %d", epoch, cfg.Epochs)
				} else {
					res.Reason = fmt.Sprintf("stopped early after epoch %d", epoch)
				}
				return nil
			}
		}
		if budget != "" {
			break
		}
	}
	res.Status, res.Reason = StatusOK, budget
	if cfg.EvalTest {
		acc, err := r.t.evaluate(r.ctx, r.data.Test)
		if err != nil {
			if r.stopped() {
				return nil
			}
			return fmt.Errorf("train: test evaluation: %w", err)
		}
		res.TestAcc = &acc
	}
	return nil
}

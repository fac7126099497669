package worker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"nasd/cluster"
)

// Trainer trains one trial. It fills every field of the result but Rank,
// Host, Start and End, which Run adds; it reports its outcome in
// Result.Status ("ok", "diverged", "timeout", "canceled", "failed", ...) and
// honours ctx.
type Trainer interface {
	Train(ctx context.Context, t cluster.Trial) cluster.Result
}

// TrainerFunc adapts a function to Trainer.
type TrainerFunc func(ctx context.Context, t cluster.Trial) cluster.Result

// Train calls f(ctx, t).
func (f TrainerFunc) Train(ctx context.Context, t cluster.Trial) cluster.Result { return f(ctx, t) }

// EpochTrainer is a Trainer that can stop a trial at an epoch boundary, for
// early stopping. TrainEpochs is Train that calls epochEnd after each epoch
// but the last, with the epoch (1-based) and its validation accuracy, from
// the goroutine that called TrainEpochs and never after it returned; when
// epochEnd returns true, training ends there and the result has status
// "stopped", the epochs run in ValAcc and the reward over them. A nil
// epochEnd is Train. NewTrainer's trainer and surrogate.Objective are
// EpochTrainers.
type EpochTrainer interface {
	Trainer
	TrainEpochs(ctx context.Context, t cluster.Trial, epochEnd func(epoch int, valAcc float64) (stop bool)) cluster.Result
}

// EpochTrainerFunc adapts a function to EpochTrainer; Train calls it with a
// nil epochEnd.
type EpochTrainerFunc func(ctx context.Context, t cluster.Trial, epochEnd func(epoch int, valAcc float64) (stop bool)) cluster.Result

// Train calls f(ctx, t, nil).
func (f EpochTrainerFunc) Train(ctx context.Context, t cluster.Trial) cluster.Result {
	return f(ctx, t, nil)
}

// TrainEpochs calls f(ctx, t, epochEnd).
func (f EpochTrainerFunc) TrainEpochs(ctx context.Context, t cluster.Trial, epochEnd func(int, float64) bool) cluster.Result {
	return f(ctx, t, epochEnd)
}

// Modes of the search loop; Run's mode must match the controller's.
const (
	ModeSync  = "sync"  // rounds: Scatter a task or idle to each worker, Gather the results
	ModeAsync = "async" // point-to-point: a task to each idle worker, results from any
)

// Run is the loop of a rank ≥ 1: it receives trials from rank 0, trains
// each with tr and reports the result, until rank 0 sends a stop message
// (then it returns nil). In mode "sync" it takes part in rank 0's rounds
// (Scatter of a task or idle message, Gather of the result); in "async" it
// receives tasks point-to-point and sends each result back at once.
//
// Every trial runs under its own context with timeout (0: none): a trial
// that runs out of time reports status "timeout". A panic in the trainer
// becomes status "failed" with the panic's message, and NaN or ±Inf in a
// result (which JSON cannot carry) becomes status "diverged" with the values
// zeroed; the worker goes on with the next trial in all three cases.
//
// Early stopping (async only): for a trial with Trial.Report set, an
// EpochTrainer's epochs are reported to rank 0 as they end (a progress
// message with the validation accuracy), and the worker waits for rank 0's
// decision message before the next epoch; "stop" ends the trial there with
// status "stopped". A trainer that is not an EpochTrainer trains the trial
// in full without reporting. Trials without Report send nothing but their
// result.
//
// A message from rank 0 that does not decode, has an unexpected kind or
// comes from another rank is an error that names it; so is a transport
// error, and ctx's error once ctx ends. The job is expected to end then.
func Run(ctx context.Context, t cluster.Transport, tr Trainer, mode string, timeout time.Duration, log zerolog.Logger) error {
	if t.Rank() == 0 {
		return errors.New("worker: Run on rank 0, which hosts the controller")
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	w := &loop{t: t, tr: tr, timeout: timeout, host: host, rank: t.Rank(),
		log: log.With().Int("rank", t.Rank()).Logger()}
	switch mode {
	case ModeSync:
		return w.sync(ctx)
	case ModeAsync:
		return w.async(ctx)
	}
	return fmt.Errorf("worker: mode %q: must be %q or %q", mode, ModeSync, ModeAsync)
}

type loop struct {
	t       cluster.Transport
	tr      Trainer
	timeout time.Duration
	host    string
	rank    int
	log     zerolog.Logger
}

func (w *loop) errorf(format string, args ...any) error {
	return fmt.Errorf("worker: rank %d: "+format, append([]any{w.rank}, args...)...)
}

var idleMsg = mustEncode(cluster.Message{Kind: cluster.KindIdle})

func mustEncode(m cluster.Message) []byte {
	b, err := cluster.Encode(m)
	if err != nil {
		panic("worker: encoding a constant message: " + err.Error())
	}
	return b
}

func (w *loop) sync(ctx context.Context) error {
	// The round's trials and the slowest of them are long waits.
	wait := cluster.LongWait(ctx)
	for {
		b, err := w.t.Scatter(wait, 0, nil)
		if err != nil {
			return w.errorf("Scatter: %w", err)
		}
		m, err := cluster.Decode(0, b)
		if err != nil {
			return w.errorf("%w", err)
		}
		var out []byte
		switch m.Kind {
		case cluster.KindStop:
			w.log.Debug().Msg("stop")
			return nil
		case cluster.KindIdle:
			out = idleMsg
		case cluster.KindTask:
			trial := *m.Trial
			trial.Report = false // sync rounds have no room for progress messages; rank 0 never asks
			if out, err = w.run(ctx, trial); err != nil {
				return err
			}
		default:
			return w.errorf("unexpected %s message from rank 0 in a sync round", m.Kind)
		}
		if _, err := w.t.Gather(wait, 0, out); err != nil {
			return w.errorf("Gather: %w", err)
		}
	}
}

func (w *loop) async(ctx context.Context) error {
	wait := cluster.LongWait(ctx) // for the next task: the other trials' length
	for {
		from, b, err := w.t.Recv(wait)
		if err != nil {
			return w.errorf("Recv: %w", err)
		}
		if from != 0 {
			return w.errorf("message from rank %d: workers take messages from rank 0 only", from)
		}
		m, err := cluster.Decode(from, b)
		if err != nil {
			return w.errorf("%w", err)
		}
		switch m.Kind {
		case cluster.KindStop:
			w.log.Debug().Msg("stop")
			return nil
		case cluster.KindIdle:
			continue
		case cluster.KindTask:
			out, err := w.run(ctx, *m.Trial)
			if err != nil {
				return err
			}
			if err := w.t.Send(0, out); err != nil {
				return w.errorf("Send: %w", err)
			}
		default:
			return w.errorf("unexpected %s message from rank 0", m.Kind)
		}
	}
}

// run trains one trial and returns its encoded result. It fails only when
// ctx (the job's) ends or the result cannot be encoded.
func (w *loop) run(ctx context.Context, trial cluster.Trial) ([]byte, error) {
	log := w.log.With().Str("trial", trial.ID).Logger()
	log.Debug().Msg("start")
	var epochEnd func(int, float64) bool
	var hookErr error
	if trial.Report {
		if _, ok := w.tr.(EpochTrainer); ok {
			epochEnd = w.reporter(ctx, trial.ID, &hookErr)
		} else {
			log.Warn().Msg("rank 0 asked for epoch reports, but the trainer cannot stop early: training in full")
		}
	}
	res := w.train(ctx, trial, epochEnd)
	if err := ctx.Err(); err != nil {
		return nil, w.errorf("trial %s: %w", trial.ID, err)
	}
	if hookErr != nil {
		return nil, hookErr
	}
	switch res.Status {
	case "ok":
		log.Debug().Float64("reward", res.Reward).Msg("done")
	case cluster.StatusStopped:
		log.Debug().Int("epochs", len(res.ValAcc)).Float64("reward", res.Reward).Msg("stopped early")
	default:
		log.Warn().Str("status", res.Status).Str("reason", res.Reason).Msg("trial did not finish")
	}
	b, err := cluster.Encode(cluster.Message{Kind: cluster.KindResult, Result: &res})
	if err != nil {
		return nil, w.errorf("trial %s: %w", trial.ID, err)
	}
	return b, nil
}

// reporter returns the epochEnd function of a reporting trial: it sends
// each epoch's validation accuracy to rank 0 and returns rank 0's decision.
// A transport or protocol error is kept in *errp (the job is broken; run
// returns it) and stops the trial. It waits under the job's ctx, not the
// trial's: rank 0 answers every progress message at once, and an answer
// left unread would be taken for the next task.
func (w *loop) reporter(ctx context.Context, id string, errp *error) func(int, float64) bool {
	return func(epoch int, acc float64) bool {
		if *errp != nil {
			return true
		}
		if math.IsNaN(acc) || math.IsInf(acc, 0) {
			return false // not reportable; the result will say diverged
		}
		b, err := cluster.Encode(cluster.Message{Kind: cluster.KindProgress, Progress: &cluster.Progress{TrialID: id, Epoch: epoch, ValAcc: acc}})
		if err != nil {
			*errp = w.errorf("trial %s: %w", id, err)
			return true
		}
		if err := w.t.Send(0, b); err != nil {
			*errp = w.errorf("trial %s: Send of progress: %w", id, err)
			return true
		}
		from, b, err := w.t.Recv(ctx)
		if err != nil {
			*errp = w.errorf("trial %s: Recv of the decision: %w", id, err)
			return true
		}
		if from != 0 {
			*errp = w.errorf("message from rank %d: workers take messages from rank 0 only", from)
			return true
		}
		m, err := cluster.Decode(from, b)
		if err != nil {
			*errp = w.errorf("%w", err)
			return true
		}
		if m.Kind != cluster.KindDecision || m.Decision.TrialID != id {
			what := m.Kind.String()
			if m.Kind == cluster.KindDecision {
				what = "decision for trial " + m.Decision.TrialID
			}
			*errp = w.errorf("trial %s: rank 0 sent a %s message where the decision after epoch %d was due", id, what, epoch)
			return true
		}
		return m.Decision.Stop
	}
}

// train runs the trainer under the trial's own timeout, turning a panic into
// a failed result, and fills the fields the trainer does not. A non-nil
// epochEnd goes to the trainer, which is then an EpochTrainer.
func (w *loop) train(ctx context.Context, trial cluster.Trial, epochEnd func(int, float64) bool) (res cluster.Result) {
	tctx, cancel := ctx, context.CancelFunc(func() {})
	if w.timeout > 0 {
		tctx, cancel = context.WithTimeout(ctx, w.timeout)
	}
	defer cancel()
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			w.log.Error().Str("trial", trial.ID).Str("stack", string(debug.Stack())).Msgf("trainer panicked: %v", p)
			res = cluster.Result{Status: cluster.StatusFailed, Reason: fmt.Sprintf("panic: %v", p)}
		}
		end := time.Now()
		res.TrialID = trial.ID
		if res.Status == "" {
			res.Status, res.Reason = cluster.StatusFailed, "trainer reported no status"
		}
		if res.Status == "ok" && errors.Is(tctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			// The trainer ignored its deadline: the budget was still exceeded.
			res.Status, res.Reason = "timeout", fmt.Sprintf("ran %v, over the trial timeout of %v", end.Sub(start).Round(time.Millisecond), w.timeout)
		}
		sanitize(&res)
		res.Rank, res.Host, res.Start, res.End = w.rank, w.host, start, end
	}()
	if epochEnd != nil {
		return w.tr.(EpochTrainer).TrainEpochs(tctx, trial, epochEnd)
	}
	return w.tr.Train(tctx, trial)
}

// sanitize replaces NaN and ±Inf, which JSON cannot carry and the event log
// must not hold, by 0 and marks the result diverged.
func sanitize(r *cluster.Result) {
	var bad []string
	fix := func(name string, v *float64) {
		if math.IsNaN(*v) || math.IsInf(*v, 0) {
			bad = append(bad, fmt.Sprintf("%s = %v", name, *v))
			*v = 0
		}
	}
	fix("reward", &r.Reward)
	for i := range r.ValAcc {
		fix(fmt.Sprintf("val_acc[%d]", i), &r.ValAcc[i])
	}
	fix("best_val_acc", &r.BestValAcc)
	if r.TestAcc != nil {
		v := *r.TestAcc
		fix("test_acc", &v)
		r.TestAcc = &v
	}
	fix("img_per_sec", &r.ImgPerSec)
	if len(bad) == 0 {
		return
	}
	if r.Status == "ok" {
		r.Status = "diverged"
	}
	why := "non-finite " + strings.Join(bad, ", ")
	if r.Reason != "" {
		why = r.Reason + "; " + why
	}
	r.Reason = why
}

package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"nasd/arch"
	"nasd/cluster"
	"nasd/journal"
)

// The events the loop writes; docs/events.md describes their fields.
const (
	EventRunStart        = "run_start"
	EventStrategyPropose = "strategy_propose"
	EventTrialDispatch   = "trial_dispatched"
	EventTrialProgress   = "trial_progress"
	EventTrialResult     = "trial_result"
	EventStrategyUpdate  = "strategy_update"
	EventCheckpoint      = "checkpoint"
	EventWarning         = "warning"
	EventRunEnd          = "run_end"
)

func (l *loop) logStart(resume bool, info resumeInfo) {
	e := l.log.Event(EventRunStart).Int("schema", SchemaVersion).Str("mode", l.cfg.Mode).
		Int("ranks", l.t.Size()).Int("workers", l.workers).Str("strategy", l.s.Name()).Uint64("seed", l.cfg.Seed).
		Bool("resumed", resume)
	if len(l.cfg.Hosts) > 0 {
		e.Strs("hosts", l.cfg.Hosts)
	}
	if l.cfg.Version != "" {
		e.Str("version", l.cfg.Version)
	}
	e.Str("go", runtime.Version()).Int("wire", cluster.WireVersion)
	if l.cfg.MaxTrials > 0 {
		e.Int("max_trials", l.cfg.MaxTrials)
	}
	if l.cfg.MaxTime > 0 {
		e.Float64("max_time_s", l.cfg.MaxTime.Seconds())
	}
	if !l.cfg.StopAt.IsZero() {
		e.Str("stop_at", l.cfg.StopAt.Format(time.RFC3339Nano)).Float64("stop_margin_s", l.cfg.StopMargin.Seconds())
	}
	if len(l.cfg.Overrides) > 0 {
		e.Strs("overrides", l.cfg.Overrides)
	}
	if l.cfg.Mode == ModeAsync {
		e.Float64("checkpoint_every_s", l.cfg.CheckpointEvery.Seconds())
	}
	if l.stopper != nil {
		e.Str("stopper", l.stopper.Name())
	}
	if l.cfg.Epochs > 0 {
		e.Int("epochs", l.cfg.Epochs)
	}
	if b := l.cfg.Budget; b != (arch.Budget{}) {
		if bj, err := json.Marshal(b); err == nil {
			e.RawJSON("budget", bj)
		}
	}
	if l.cfg.PenaltyTargetFLOPs > 0 {
		e.Int64("penalty_target_flops", l.cfg.PenaltyTargetFLOPs).Float64("penalty_weight", l.cfg.penaltyWeight())
	}
	if len(l.cfg.ConfigJSON) > 0 {
		e.RawJSON("config", compact(l.cfg.ConfigJSON))
	}
	if resume {
		e.Bool("from_checkpoint", info.fromCheckpoint)
		if info.fromCheckpoint {
			e.Uint64("checkpoint_seq", info.ckptSeq).Int("checkpoint_number", l.st.Checkpoints)
		}
		e.Int("replayed", info.replayed).Int("trials_before", l.st.Trials).Int("in_flight", len(l.order)).
			Int("events_read", info.eventsRead)
		if p := info.readFrom; p != (journal.Position{}) {
			e.Dict("read_from", zerolog.Dict().Int("segment", p.Segment).Int64("offset", p.Offset).Uint64("seq", p.Seq))
		}
	}
	e.Msg("")
	for _, w := range info.warnings {
		l.warn("", w)
	}
	l.dirty = true
}

// compact returns b without insignificant white space (an event is one line).
func compact(b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b // validated before; cannot happen
	}
	return buf.Bytes()
}

// logPropose logs one Propose(n) call and the trials it returned: resuming
// repeats the call and checks that the strategy returns the same trials.
func (l *loop) logPropose(n int, trials []Trial) {
	ids := make([]string, len(trials))
	hashes := make([]string, len(trials))
	for i, tr := range trials {
		ids[i], hashes[i] = tr.ID, tr.Arch.Hash()
	}
	l.log.Event(EventStrategyPropose).Int("n", n).Strs("ids", ids).Strs("arch_hashes", hashes).Msg("")
	l.dirty = true
}

func (l *loop) logDispatched(f *flight) {
	e := l.log.Event(EventTrialDispatch).Str("trial", f.Trial.ID).Int("rank", f.Rank).
		Str("arch_hash", f.Hash)
	if f.Trial.Epochs > 0 {
		e.Int("epochs", f.Trial.Epochs)
	}
	if l.stopper != nil {
		e.Bool("report", true)
	}
	e.Msg("")
	l.dirty = true
}

// logProgress logs an epoch report and the stopper's decision.
func (l *loop) logProgress(f *flight, p *cluster.Progress, stop bool) {
	e := l.log.Event(EventTrialProgress).Str("trial", p.TrialID).Int("rank", f.Rank).Int("epoch", p.Epoch)
	journal.Float(e, "val_acc", p.ValAcc)
	e.Bool("stop", stop).Msg("")
	l.dirty = true
}

// logResult logs a result fresh from a worker or rejected before dispatch;
// pen is the penalty applied to it, if any.
func (l *loop) logResult(f *flight, r *Result, pen *penalty) {
	e := l.log.Event(EventTrialResult).Str("trial", r.TrialID)
	if a, err := f.Trial.Arch.CompactJSON(); err == nil {
		e.RawJSON("arch", a)
	}
	e.Str("arch_hash", f.Hash).Uint64("seed", f.Trial.Seed).Str("status", r.Status)
	if r.Reason != "" {
		e.Str("reason", r.Reason)
	}
	if r.Status == "diverged" {
		e.Bool("diverged", true)
	}
	// Results reach rank 0 finite (cluster.Decode refuses NaN and Inf);
	// journal.Float keeps the log valid JSON all the same.
	journal.Float(e, "reward", r.Reward)
	if pen != nil {
		journal.Float(e, "raw_reward", pen.raw)
		journal.Float(e, "penalty", pen.factor)
	}
	journal.Floats(e, "val_acc", r.ValAcc)
	if b := l.epochBudget(f); b > 0 || r.Status == StatusStopped {
		e.Int("epochs_run", len(r.ValAcc))
		if b > 0 {
			e.Int("epochs_budget", b)
		}
	}
	journal.Float(e, "best_val_acc", r.BestValAcc)
	if r.TestAcc != nil {
		journal.Float(e, "test_acc", *r.TestAcc)
	}
	if len(r.ValPPL) > 0 {
		journal.Floats(e, "val_ppl", r.ValPPL)
	}
	if r.TestPPL != nil {
		journal.Float(e, "test_ppl", *r.TestPPL)
	}
	e.Int("params", r.Params).Int64("flops", r.FLOPs).Int("rank", r.Rank).Str("host", r.Host).
		Str("start", r.Start.UTC().Format(journal.TimeFormat)).Str("end", r.End.UTC().Format(journal.TimeFormat)).
		Float64("seconds", r.End.Sub(r.Start).Seconds())
	if r.ImgPerSec > 0 {
		journal.Float(e, "img_per_sec", r.ImgPerSec)
	}
	e.Msg("")
	l.dirty = true
}

// logUpdate logs a strategy_update after n results were observed.
func (l *loop) logUpdate(n int) {
	e := l.log.Event(EventStrategyUpdate).Int("observed", n).Int("trials", l.st.Trials).
		Int("ok", l.st.OK).Int("failed", l.st.Failed)
	l.logCounts(e)
	if l.cfg.Mode == ModeSync {
		e.Int("round", l.st.Rounds)
	}
	if b := l.st.Best; b != nil {
		e.Str("best_trial", b.TrialID).Float64("best_reward", b.Reward)
	}
	if lr, ok := l.s.(Learner); ok {
		if u := lr.LastUpdate(); u.Updates > 0 && u.Updates != l.loggedUpdates {
			l.loggedUpdates = u.Updates
			e.Int("updates", u.Updates).Int("update_batch", u.Batch).Int("max_staleness", u.MaxStaleness)
			journal.Float(e, "mean_reward", u.MeanReward)
			journal.Float(e, "baseline", u.Baseline)
			journal.Float(e, "loss", u.Loss)
			journal.Float(e, "entropy", u.Entropy)
		}
	}
	e.Msg("")
	l.dirty = true
}

func (l *loop) warn(trial, msg string) {
	e := l.log.Event(EventWarning)
	if trial != "" {
		e.Str("trial", trial)
	}
	e.Str("message", msg).Msg("")
	l.dirty = true
}

// logCounts adds the stopped and rejected counts when there are any.
func (l *loop) logCounts(e *zerolog.Event) {
	if l.st.Stopped > 0 || l.stopper != nil {
		e.Int("stopped", l.st.Stopped)
	}
	if l.st.Rejected > 0 || l.cfg.Budget != (arch.Budget{}) {
		e.Int("rejected", l.st.Rejected)
	}
}

func (l *loop) logEnd(reason string, interrupted bool, err error) {
	e := l.log.Event(EventRunEnd).Int("trials", l.st.Trials).Int("ok", l.st.OK).Int("failed", l.st.Failed)
	l.logCounts(e)
	if l.stopper != nil || l.st.EpochsSaved > 0 {
		e.Int("epochs_saved", l.st.EpochsSaved)
	}
	if b := l.st.Best; b != nil {
		e.Str("best_trial", b.TrialID).Float64("best_reward", b.Reward)
	}
	e.Bool("interrupted", interrupted).Str("reason", reason).Int("in_flight", len(l.order)).
		Float64("elapsed_s", l.elapsed().Seconds())
	if err != nil {
		e.Str("error", err.Error())
	}
	e.Msg("")
	l.dirty = true
}

func (l *loop) summary(reason string, interrupted bool) Summary {
	s := Summary{Trials: l.st.Trials, OK: l.st.OK, Failed: l.st.Failed, Stopped: l.st.Stopped, Rejected: l.st.Rejected,
		EpochsSaved: l.st.EpochsSaved, Interrupted: interrupted, Reason: reason}
	if l.st.Best != nil {
		b := *l.st.Best
		s.Best = &b
	}
	return s
}

// summaryFile is summary.json.
type summaryFile struct {
	Schema   int    `json:"schema"`
	Run      string `json:"run"`
	Mode     string `json:"mode"`
	Strategy string `json:"strategy"`
	Seed     uint64 `json:"seed"`
	tally
	InFlight    int       `json:"in_flight"`
	Interrupted bool      `json:"interrupted"`
	Reason      string    `json:"reason"`
	ElapsedS    float64   `json:"elapsed_s"`
	Checkpoints int       `json:"checkpoints"`
	Written     time.Time `json:"written"`
}

// writeResults writes best.json (the best architecture, readable by
// arch.Load) and summary.json.
func (l *loop) writeResults(reason string, interrupted bool) error {
	var errs []error
	if bt := l.st.BestTrial; bt != nil {
		var buf bytes.Buffer
		if err := arch.WriteJSON(&buf, bt.Arch); err != nil {
			errs = append(errs, err)
		} else if err := journal.WriteFileAtomic(filepath.Join(l.run.Dir, "best.json"), buf.Bytes(), 0o644); err != nil {
			errs = append(errs, err)
		}
	}
	sum := summaryFile{Schema: SchemaVersion, Run: l.cfg.RunID, Mode: l.cfg.Mode, Strategy: l.s.Name(), Seed: l.cfg.Seed,
		tally: l.st.tally, InFlight: len(l.order), Interrupted: interrupted, Reason: reason, ElapsedS: l.elapsed().Seconds(), Checkpoints: l.st.Checkpoints, Written: time.Now()}
	if err := l.run.WriteJSON("summary.json", sum); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	return nil
}

// finish ends a run that reached its end: final checkpoint, result files,
// stop messages to the workers, run_end.
func (l *loop) finish(ctx context.Context, reason string) (Summary, error) {
	if err := l.checkpoint(); err != nil {
		return l.fail(err)
	}
	if err := l.writeResults(reason, false); err != nil {
		return l.fail(err)
	}
	var err error
	if l.cfg.Mode == ModeSync {
		parts := make([][]byte, l.t.Size())
		for r := 1; r < len(parts); r++ {
			parts[r] = stopMsg
		}
		if _, e := l.t.Scatter(ctx, 0, parts); e != nil {
			err = fmt.Errorf("controller: Scatter of stop: %w", e)
		}
	} else {
		for r := 1; r < l.t.Size() && err == nil; r++ {
			if e := l.t.Send(r, stopMsg); e != nil {
				err = fmt.Errorf("controller: Send of stop to rank %d: %w", r, e)
			}
		}
	}
	if err != nil && ctx.Err() != nil {
		// Everything is saved; the workers did not hear the stop. Say
		// interrupted, so that the caller aborts the job; a resume
		// finds the budget used up and only stops the workers.
		l.logEnd(reason, true, nil)
		return l.summary(reason, true), l.flush()
	}
	if err != nil {
		return l.fail(err)
	}
	l.logEnd(reason, false, nil)
	return l.summary(reason, false), l.flush()
}

// interrupted ends a segment that ctx or the job's end (why) stopped:
// checkpoint with the trials in flight, result files, run_end with
// interrupted true.
func (l *loop) interrupted(ctx context.Context, why error) (Summary, error) {
	if err := l.checkpoint(); err != nil {
		return l.fail(err)
	}
	reason := "interrupted"
	switch cause := context.Cause(ctx); {
	case errors.Is(why, errDeadline), errors.Is(cause, errDeadline):
		reason = reasonDeadline
	case cause != nil:
		reason = "interrupted: " + cause.Error()
	}
	err := l.writeResults(reason, true)
	l.logEnd(reason, true, err)
	return l.summary(reason, true), errors.Join(err, l.flush())
}

// fail ends a run on an error: it checkpoints (unless the strategy failed,
// whose state may then be inconsistent), logs run_end with the error and
// returns it.
func (l *loop) fail(err error) (Summary, error) {
	var se strategyError
	if !errors.As(err, &se) {
		err = joinNew(err, l.checkpoint())
	}
	l.logEnd("error", false, err)
	return l.summary("error", false), joinNew(err, l.flush())
}

// joinNew adds more to err unless it says nothing new: a full disk fails
// the flush, the checkpoint and the last flush alike, and one message is
// enough.
func joinNew(err, more error) error {
	if more == nil || strings.Contains(err.Error(), more.Error()) {
		return err
	}
	return errors.Join(err, more)
}

package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"nasd/arch"
	"nasd/cluster"
	"nasd/journal"
)

// Run is rank 0's loop: it asks the strategy s for trials, sends them to the
// workers over t, observes their results and records everything in the
// run's event log (log) and checkpoints (run). It returns when a budget is
// reached (after stopping the workers), when the strategy has nothing more
// to propose and nothing is running, when ctx ends, or on an error.
//
// Mode "sync" runs rounds: up to Size()-1 trials, one per worker (idle
// messages to the rest) by Scatter, results by Gather, observed in trial
// order, a checkpoint after each round; the same seed and rank count give
// the same trials and results. Mode "async" sends each idle worker the next
// trial at once and observes results as they arrive from any worker.
//
// When ctx ends, Run checkpoints at once with the trials in flight, logs
// run_end with interrupted true and returns Summary{Interrupted: true} and a
// nil error; the workers are left as they are (the caller aborts the job).
//
// resume=true continues a run: the newest good checkpoint restores the
// strategy and the loop's state, then the strategy (and stopper) is driven
// again through the calls the event log records after it, in their order
// (every Propose, Observe and epoch report), so that it is exactly where it
// was when the last surviving event was written; re-proposed trials must
// have the logged IDs and architectures (else an error names the trial).
// Logged results are observed, never run again; the trials proposed without
// a logged result run again. A run killed before its first checkpoint
// starts the strategy afresh and replays the whole log. The loop then
// checkpoints before it dispatches anything. See docs/events.md.
//
// Config.StopAt is the job's end, not the search's budget: no trial starts
// after StopAt − StopMargin; trials still running at StopAt − reserve
// (min(StopMargin/2, 30 s)) are interrupted; either way Run checkpoints and
// returns Summary{Interrupted: true} with reason "deadline" (the caller
// exits 3 and the next job resumes). MaxTrials and MaxTime end the search
// itself: Run stops proposing, waits for the trials running and returns.
//
// With a stopper (Config.Stopper, async only), each dispatched trial
// reports its epochs; Run answers each report with the stopper's decision
// between results. Its state is checkpointed with the loop's; on resume,
// trials in flight restart from scratch and the stopper forgets their
// partial reports. With Config.Budget, trials over it are rejected before
// dispatch; with Config.PenaltyTargetFLOPs, rewards are penalised before
// the strategy observes them.
func Run(ctx context.Context, cfg Config, s Strategy, t cluster.Transport, run *journal.Run, log *journal.Log, resume bool, progress func(Progress)) (Summary, error) {
	return runLoop(ctx, cfg, s, t, run, log, resume, progress, hooks{})
}

// hooks let tests observe the loop at points no event marks.
type hooks struct {
	afterWrite func(n int) // after the n-th commit or flush of the log (1-based)
	afterSync  func()      // after each flush (fsync)
}

// loop is the state of one segment of a run on rank 0.
type loop struct {
	cfg      Config
	s        Strategy
	t        cluster.Transport
	run      *journal.Run
	log      *journal.Log
	progress func(Progress)
	hooks    hooks
	stopper  Stopper // nil: no early stopping

	workers int           // Size()-1
	start   time.Time     // of this segment
	before  time.Duration // search time of earlier segments, from the checkpoint

	loggedUpdates int       // the learner update last logged in strategy_update
	deadline      time.Time // of MaxTime; zero if none
	drainAt       time.Time // StopAt − StopMargin: no trial starts after it; zero if no StopAt
	segDone       int       // trials finished in this segment, for the ETA

	st       loopState          // what a checkpoint keeps
	inflight map[string]*flight // by trial ID
	order    []*flight          // in flight, in dispatch order

	replaying    bool // load is re-driving the strategy from the log: log nothing
	stopperFresh bool // the stopper started afresh on resume: its decisions may differ from the log's

	writes    int       // commits and flushes, for hooks.afterWrite
	lastFlush time.Time // of the last fsync
	committed uint64    // the log's seq at the last commit or flush
	unsynced  time.Time // of the first commit since the last fsync
	dirty     bool      // events written since the last fsync
	lastCkpt  time.Time
}

// flight is a trial proposed and not yet observed.
type flight struct {
	Trial Trial  `json:"trial"`
	Rank  int    `json:"rank"` // 0 while not dispatched (a replayed or queued trial)
	Hash  string `json:"arch_hash"`

	sent time.Time // when it was dispatched, this segment
}

// loopState is the loop's part of a checkpoint. Its size is bounded by the
// number of workers, never by the number of trials run.
type loopState struct {
	Version int    `json:"version"`
	Mode    string `json:"mode"`
	Workers int    `json:"workers"`
	Rounds  int    `json:"rounds"` // sync rounds completed
	tally
	InFlight    []*flight     `json:"in_flight"`
	Elapsed     time.Duration `json:"elapsed"`     // search time up to this checkpoint, all segments
	Checkpoints int           `json:"checkpoints"` // written so far, this one included
	// The stopper's name and snapshot (JSON); absent without one.
	StopperName  string          `json:"stopper_name,omitempty"`
	StopperState json.RawMessage `json:"stopper_state,omitempty"`
}

// tally is what the loop counts of a run's trials, kept in the checkpoint
// and written to summary.json (the same JSON fields in both).
type tally struct {
	Trials      int     `json:"trials"`
	OK          int     `json:"ok"`
	Failed      int     `json:"failed"`
	Stopped     int     `json:"stopped,omitempty"`
	Rejected    int     `json:"rejected,omitempty"`
	EpochsSaved int     `json:"epochs_saved,omitempty"`
	Best        *Result `json:"best,omitempty"`
	BestTrial   *Trial  `json:"best_trial,omitempty"`
}

// loopStateVersion 2: resuming replays the strategy's calls from the log
// (version 1 matched logged results to re-proposed trials).
const loopStateVersion = 2

// checkpointVersion is journal.Checkpoint.Version as the loop writes it.
const checkpointVersion = 1

// errInterrupted marks the end of ctx in the middle of the loop.
var errInterrupted = errors.New("interrupted")

// errDeadline is the cause of the loop's context at StopAt − reserve, and
// what the loop returns when it drained before StopAt.
var errDeadline = errors.New("deadline")

// reasonDeadline is run_end's reason when the job's end stopped the segment.
const reasonDeadline = "deadline"

// strategyError marks an error of the strategy: no checkpoint is written
// after it, since its state may be inconsistent.
type strategyError struct{ err error }

func (e strategyError) Error() string { return e.err.Error() }
func (e strategyError) Unwrap() error { return e.err }

func runLoop(ctx context.Context, cfg Config, s Strategy, t cluster.Transport, run *journal.Run, log *journal.Log, resume bool, progress func(Progress), h hooks) (Summary, error) {
	if err := cfg.validate(t.Size()); err != nil {
		return Summary{}, err
	}
	if t.Rank() != 0 {
		return Summary{}, fmt.Errorf("controller: Run on rank %d: the controller is rank 0", t.Rank())
	}
	if cfg.CheckpointEvery == 0 {
		cfg.CheckpointEvery = DefaultCheckpointEvery
	}
	if progress == nil {
		progress = func(Progress) {}
	}
	stopper, err := cfg.newStopper() // validated above
	if err != nil {
		return Summary{}, err
	}
	l := &loop{cfg: cfg, s: s, t: t, run: run, log: log, progress: progress, hooks: h, stopper: stopper,
		workers: t.Size() - 1, start: time.Now(), inflight: map[string]*flight{},
		st: loopState{Version: loopStateVersion, Mode: cfg.Mode, Workers: t.Size() - 1}}
	l.lastFlush, l.lastCkpt = l.start, l.start

	info := resumeInfo{warnings: run.Warnings}
	if resume {
		var err error
		if info, err = l.load(); err != nil {
			// No checkpoint here: it would overwrite the good one with
			// a state that was never restored.
			l.logStart(resume, info)
			l.logEnd("error", false, err)
			return Summary{}, errors.Join(err, l.flush())
		}
	}
	l.setDeadline()
	l.logStart(resume, info)
	if resume {
		// The replayed state is the run's from now on: a crash before the
		// next checkpoint must not replay the same log again into a state
		// that has moved on.
		if err := l.checkpoint(); err != nil {
			return l.fail(err)
		}
	}
	if err := l.checkDrain(); err != nil {
		return l.fail(err)
	}
	if !cfg.StopAt.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadlineCause(ctx, cfg.StopAt.Add(-cfg.ExitReserve()), errDeadline)
		defer cancel()
	}

	var reason string
	if cfg.Mode == ModeSync {
		reason, err = l.runSync(ctx)
	} else {
		reason, err = l.runAsync(ctx)
	}
	switch {
	case errors.Is(err, errInterrupted), errors.Is(err, errDeadline):
		return l.interrupted(ctx, err)
	case err != nil:
		return l.fail(err)
	}
	return l.finish(ctx, reason)
}

// setDeadline computes when the time budget ends and when dispatching stops
// before the job's end.
func (l *loop) setDeadline() {
	if l.cfg.MaxTime > 0 {
		l.deadline = l.start.Add(l.cfg.MaxTime - l.before)
	}
	if !l.cfg.StopAt.IsZero() {
		l.drainAt = l.cfg.StopAt.Add(-l.cfg.StopMargin)
	}
}

// checkDrain refuses a segment that could start no trial: the job ends
// within the stop margin of now, and the search is not finished. Exiting 3
// would only resubmit a job as short.
func (l *loop) checkDrain() error {
	if l.drainAt.IsZero() || time.Now().Before(l.drainAt) || l.budgetReached() != "" {
		return nil
	}
	return fmt.Errorf("controller: the job ends at %s, less than the stop margin (%v) from now: no trial can start "+
		"(give the job more time, or a smaller stop margin)", l.cfg.StopAt.Format(time.RFC3339), l.cfg.StopMargin)
}

// budgetReached returns why the search is over, or "".
func (l *loop) budgetReached() string {
	if l.cfg.MaxTrials > 0 && l.st.Trials >= l.cfg.MaxTrials {
		return "budget: trials"
	}
	if !l.deadline.IsZero() && !time.Now().Before(l.deadline) {
		return "budget: time"
	}
	return ""
}

// draining says that no trial may start any more in this job.
func (l *loop) draining() bool {
	return !l.drainAt.IsZero() && !time.Now().Before(l.drainAt)
}

// room is how many more trials may be started under MaxTrials, at most n.
func (l *loop) room(n int) int {
	if l.cfg.MaxTrials > 0 {
		n = min(n, l.cfg.MaxTrials-l.st.Trials-len(l.order))
	}
	return max(n, 0)
}

func (l *loop) elapsed() time.Duration { return l.before + time.Since(l.start) }

// propose asks the strategy for up to n trials and checks them.
func (l *loop) propose(n int) ([]Trial, error) {
	trials, err := l.s.Propose(n)
	if err != nil {
		return nil, strategyError{fmt.Errorf("controller: strategy %s: Propose(%d): %w", l.s.Name(), n, err)}
	}
	if len(trials) > n {
		return nil, strategyError{fmt.Errorf("controller: strategy %s: Propose(%d) returned %d trials", l.s.Name(), n, len(trials))}
	}
	seen := make(map[string]bool, len(trials))
	for _, tr := range trials {
		if tr.ID == "" || seen[tr.ID] || l.inflight[tr.ID] != nil {
			return nil, strategyError{fmt.Errorf("controller: strategy %s: Propose returned trial ID %q, which is empty or not unique", l.s.Name(), tr.ID)}
		}
		seen[tr.ID] = true
	}
	if !l.replaying {
		l.logPropose(n, trials)
	}
	return trials, nil
}

// add records a proposed trial as in flight.
func (l *loop) add(tr Trial) *flight {
	f := &flight{Trial: tr, Hash: tr.Arch.Hash()}
	l.inflight[tr.ID] = f
	l.order = append(l.order, f)
	return f
}

// observe feeds one result to the strategy and the counters; f leaves the
// in-flight set.
func (l *loop) observe(f *flight, r Result) error {
	if err := l.s.Observe(r); err != nil {
		return strategyError{fmt.Errorf("controller: strategy %s: Observe(%s): %w", l.s.Name(), r.TrialID, err)}
	}
	delete(l.inflight, f.Trial.ID)
	for i, g := range l.order {
		if g == f {
			l.order = append(l.order[:i], l.order[i+1:]...)
			break
		}
	}
	l.st.Trials++
	l.segDone++
	switch r.Status {
	case "ok":
		l.st.OK++
		if l.st.Best == nil || r.Reward > l.st.Best.Reward {
			best, trial := r, f.Trial
			l.st.Best, l.st.BestTrial = &best, &trial
		}
	case StatusStopped:
		l.st.Stopped++
		if b := l.epochBudget(f); b > 0 {
			l.st.EpochsSaved += max(0, b-len(r.ValAcc))
		}
	case StatusRejected:
		l.st.Rejected++
	default:
		l.st.Failed++
	}
	if l.stopper != nil {
		l.stopper.Finished(r.TrialID, r.Status, r.ValAcc)
	}
	return nil
}

// epochBudget is f's epochs: the trial's override, else Config.Epochs (0:
// unknown).
func (l *loop) epochBudget(f *flight) int {
	if f.Trial.Epochs > 0 {
		return f.Trial.Epochs
	}
	return l.cfg.Epochs
}

// reject checks f against Config.Budget before dispatch. A trial over it
// (or whose architecture does not lower) gets a "rejected" result.
func (l *loop) reject(f *flight) (Result, bool) {
	if l.cfg.Budget == (arch.Budget{}) {
		return Result{}, false
	}
	err := arch.Validate(l.cfg.Space, f.Trial.Arch, l.cfg.Budget)
	if err == nil {
		return Result{}, false
	}
	now := time.Now()
	r := Result{TrialID: f.Trial.ID, Status: StatusRejected, Reason: err.Error(), Start: now, End: now}
	if an, err := arch.Analyze(l.cfg.Space, f.Trial.Arch); err == nil {
		r.Params, r.FLOPs = an.Params, an.FLOPs
	}
	return r, true
}

// penalty is what penalise did to a result, for the log.
type penalty struct {
	raw, factor float64
}

// penalise applies the FLOPs penalty to a result fresh from a worker:
// reward × (FLOPs/target)^w. Results replayed from the log already carry
// the penalised reward and do not come here.
func (l *loop) penalise(r *Result) *penalty {
	if l.cfg.PenaltyTargetFLOPs <= 0 || r.FLOPs <= 0 {
		return nil
	}
	p := &penalty{raw: r.Reward, factor: roundLogged(math.Pow(float64(r.FLOPs)/float64(l.cfg.PenaltyTargetFLOPs), l.cfg.penaltyWeight()))}
	r.Reward = roundLogged(r.Reward * p.factor)
	return p
}

// encodeTask returns the wire form of a task message for f; report asks the
// worker for epoch reports.
func encodeTask(f *flight, report bool) ([]byte, error) {
	tr := f.Trial
	tr.Report = report
	b, err := cluster.Encode(cluster.Message{Kind: cluster.KindTask, Trial: &tr})
	if err != nil {
		return nil, strategyError{fmt.Errorf("controller: trial %s: %w", f.Trial.ID, err)}
	}
	return b, nil
}

// decodeResult decodes a message from rank that must be f's result.
func decodeResult(rank int, b []byte, f *flight) (Result, error) {
	m, err := cluster.Decode(rank, b)
	if err != nil {
		return Result{}, fmt.Errorf("controller: %w", err)
	}
	return resultOf(rank, m, f)
}

// resultOf checks that m, from rank, is f's result.
func resultOf(rank int, m cluster.Message, f *flight) (Result, error) {
	if m.Kind != cluster.KindResult {
		return Result{}, fmt.Errorf("controller: rank %d sent a %s message, where the result of trial %s was due", rank, m.Kind, f.Trial.ID)
	}
	if m.Result.TrialID != f.Trial.ID {
		return Result{}, fmt.Errorf("controller: rank %d sent the result of trial %q, where that of trial %s was due", rank, m.Result.TrialID, f.Trial.ID)
	}
	r := *m.Result
	roundResult(&r)
	return r, nil
}

// loggedDigits is the precision of the numbers in a logged result: 6
// significant digits, 1 ppm, finer than the accuracy step of any validation
// set up to 10⁶ examples. The full float64 digits of a cubed accuracy are
// noise that zstd cannot compress: they were a quarter of the log.
const loggedDigits = 6

// roundLogged rounds v to loggedDigits significant digits.
func roundLogged(v float64) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	r, err := strconv.ParseFloat(strconv.FormatFloat(v, 'g', loggedDigits, 64), 64)
	if err != nil {
		return v
	}
	return r
}

// roundResult brings a result that reached rank 0 to the precision the log
// holds (numbers: loggedDigits; times: microseconds) before the strategy or
// the stopper sees it, so that a resumed run, which observes the logged
// result, observes exactly what the live run did.
// roundAll returns vs rounded as logged, in a new slice (the message's may
// be shared); nil stays nil.
func roundAll(vs []float64) []float64 {
	if len(vs) == 0 {
		return vs
	}
	out := make([]float64, len(vs))
	for i, v := range vs {
		out[i] = roundLogged(v)
	}
	return out
}

func roundResult(r *Result) {
	r.Reward, r.BestValAcc, r.ImgPerSec = roundLogged(r.Reward), roundLogged(r.BestValAcc), roundLogged(r.ImgPerSec)
	r.ValAcc, r.ValPPL = roundAll(r.ValAcc), roundAll(r.ValPPL)
	if r.TestAcc != nil {
		t := roundLogged(*r.TestAcc)
		r.TestAcc = &t
	}
	if r.TestPPL != nil {
		t := roundLogged(*r.TestPPL)
		r.TestPPL = &t
	}
	r.Start, r.End = r.Start.Round(time.Microsecond), r.End.Round(time.Microsecond)
}

var (
	idleMsg = mustEncode(cluster.Message{Kind: cluster.KindIdle})
	stopMsg = mustEncode(cluster.Message{Kind: cluster.KindStop})
)

func mustEncode(m cluster.Message) []byte {
	b, err := cluster.Encode(m)
	if err != nil {
		panic("controller: encoding a constant message: " + err.Error())
	}
	return b
}

// ctxErr turns a transport error into errInterrupted when ctx has ended.
func ctxErr(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return errInterrupted
	}
	return fmt.Errorf("controller: %s: %w", op, err)
}

// report calls the progress function.
func (l *loop) report() {
	p := Progress{Done: l.st.Trials, Budget: l.cfg.MaxTrials, Running: len(l.order), Elapsed: l.elapsed()}
	if b := l.st.Best; b != nil {
		p.Best, p.BestTrial = b.Reward, b.TrialID
	}
	if l.cfg.MaxTrials > 0 && l.segDone > 0 {
		per := time.Since(l.start) / time.Duration(l.segDone)
		p.ETA = per * time.Duration(max(0, l.cfg.MaxTrials-l.st.Trials))
	}
	if !l.deadline.IsZero() {
		left := max(0, time.Until(l.deadline))
		if p.ETA == 0 || left < p.ETA {
			p.ETA = left
		}
	}
	l.progress(p)
}

// runSync runs rounds until a budget is reached or the strategy is done.
func (l *loop) runSync(ctx context.Context) (string, error) {
	if len(l.order) > 0 { // resumed in the middle of a round
		if err := l.round(ctx, nil); err != nil {
			return "", err
		}
	}
	for {
		if ctx.Err() != nil {
			return "", errInterrupted
		}
		if why := l.budgetReached(); why != "" {
			return why, nil
		}
		if l.draining() {
			return "", errDeadline
		}
		trials, err := l.propose(l.room(l.workers))
		if err != nil {
			return "", err
		}
		if len(trials) == 0 {
			return "strategy done", nil
		}
		if err := l.round(ctx, trials); err != nil {
			return "", err
		}
	}
}

// round completes one sync round: the trials in flight (a round resumed
// from a checkpoint) plus trials. The trials run Size()-1 at a time, each on
// the worker of its position; trials over the budget are rejected without
// running. Results are logged and observed in trial order, each as soon as
// it and every result before it are in, so that the log's order is the
// strategy's (resuming replays it); then the loop checkpoints.
func (l *loop) round(ctx context.Context, trials []Trial) error {
	for _, tr := range trials {
		l.add(tr)
	}
	flights := append([]*flight(nil), l.order...)
	results := make([]*Result, len(flights))
	pens := make([]*penalty, len(flights))
	var todo []int
	for i, f := range flights {
		if r, ok := l.reject(f); ok {
			results[i] = &r
		} else {
			todo = append(todo, i)
		}
	}
	next := 0 // the first flight not yet logged and observed
	settle := func() error {
		for ; next < len(flights) && results[next] != nil; next++ {
			l.logResult(flights[next], results[next], pens[next])
			if err := l.observe(flights[next], *results[next]); err != nil {
				return err
			}
		}
		return nil
	}
	if err := settle(); err != nil {
		return err
	}
	for len(todo) > 0 {
		chunk := todo[:min(len(todo), l.workers)]
		todo = todo[len(chunk):]
		parts := make([][]byte, l.t.Size())
		for r := 1; r < len(parts); r++ {
			parts[r] = idleMsg
		}
		for k, i := range chunk {
			f := flights[i]
			f.Rank = k + 1
			b, err := encodeTask(f, false)
			if err != nil {
				return err
			}
			parts[f.Rank] = b
			l.logDispatched(f)
		}
		if err := l.flush(); err != nil {
			return err
		}
		if _, err := l.t.Scatter(ctx, 0, parts); err != nil {
			return ctxErr(ctx, "Scatter", err)
		}
		gctx, cancel := ctx, context.CancelFunc(func() {})
		if h := l.cfg.hangAfter(); h > 0 {
			gctx, cancel = context.WithTimeout(ctx, h)
		}
		// The round's slowest trial: a long wait, as in runAsync.
		got, err := l.t.Gather(cluster.PromptLongWait(gctx), 0, nil)
		cancel()
		if err != nil && ctx.Err() == nil && gctx.Err() != nil {
			var on []string
			for k, i := range chunk {
				on = append(on, fmt.Sprintf("%s on rank %d", flights[i].Trial.ID, k+1))
			}
			return fmt.Errorf("controller: no result of the round (%s) after %v (trial timeout %v + grace): a rank hangs or its node stopped answering",
				strings.Join(on, ", "), l.cfg.hangAfter(), l.cfg.TrialTimeout)
		}
		if err != nil {
			return ctxErr(ctx, "Gather", err)
		}
		if len(got) != l.t.Size() {
			return fmt.Errorf("controller: Gather returned %d parts for %d ranks", len(got), l.t.Size())
		}
		for k, i := range chunk {
			r, err := decodeResult(k+1, got[k+1], flights[i])
			if err != nil {
				return err
			}
			pens[i] = l.penalise(&r)
			results[i] = &r
		}
		for r := len(chunk) + 1; r < len(got); r++ {
			m, err := cluster.Decode(r, got[r])
			if err != nil {
				return fmt.Errorf("controller: %w", err)
			}
			if m.Kind != cluster.KindIdle {
				return fmt.Errorf("controller: rank %d sent a %s message in a round where it was idle", r, m.Kind)
			}
		}
		if err := settle(); err != nil {
			return err
		}
		if err := l.flush(); err != nil {
			return err
		}
	}
	l.st.Rounds++
	l.logUpdate(len(flights))
	if err := l.checkpoint(); err != nil {
		return err
	}
	l.report()
	return nil
}

// syncEvery bounds the fsyncs of an async run. Every result is committed to
// the log (a zstd block written, no fsync) before its worker gets the next
// trial, and whatever else was logged is committed before rank 0 waits: a
// kill -9 of rank 0 loses nothing logged. The fsync that makes it survive
// the machine going down comes after the dispatch rather than before it,
// when rank 0 is about to wait and the last fsync is half a syncEvery old,
// or syncEvery after the first commit it has not covered, whichever is
// first: at most two a second, and a crash of rank 0's node loses at most a
// second of results (which then run again). With trials of half a second or
// more the fsync rides on the wake-up a result causes anyway.
const syncEvery = time.Second

// runAsync keeps every worker busy until a budget is reached or the strategy
// is done, then collects the trials in flight. Near the job's end it stops
// dispatching and returns errDeadline once nothing runs.
func (l *loop) runAsync(ctx context.Context) (string, error) {
	busy := make([]*flight, l.t.Size()) // by rank
	var idle []int                      // ranks, lowest last
	for r := l.t.Size() - 1; r >= 1; r-- {
		idle = append(idle, r)
	}
	// Resumed: the trials proposed and not observed run again, in order.
	queue := append([]*flight(nil), l.order...)
	for _, f := range queue {
		f.Rank = 0
	}
	dispatch := func(f *flight) error {
		r := idle[len(idle)-1]
		idle = idle[:len(idle)-1]
		f.Rank, busy[r], f.sent = r, f, time.Now()
		b, err := encodeTask(f, l.stopper != nil)
		if err != nil {
			return err
		}
		l.logDispatched(f)
		// The worker's last result goes into the file (in one block with
		// this dispatch) before the worker gets its next trial.
		if err := l.commit(); err != nil {
			return err
		}
		if err := l.t.Send(r, b); err != nil {
			return ctxErr(ctx, fmt.Sprintf("Send to rank %d", r), err)
		}
		return nil
	}

	reportDue := false
	// launch rejects f (observing its result at once) or dispatches it.
	launch := func(f *flight) error {
		r, ok := l.reject(f)
		if !ok {
			return dispatch(f)
		}
		l.logResult(f, &r, nil)
		if err := l.observe(f, r); err != nil {
			return err
		}
		l.logUpdate(1)
		reportDue = true
		return nil
	}

	// stopping: why no trial starts any more ("": they do). A budget ends
	// the search; the job's end (reasonDeadline) only this segment.
	stopping := ""
	stopCheck := func() {
		if stopping == "" {
			stopping = l.budgetReached()
		}
		if stopping == "" && l.draining() {
			stopping = reasonDeadline
		}
	}
	running := func() int { return l.t.Size() - 1 - len(idle) }
	var bctx context.Context = ctx // ends when dispatching must stop
	if end := l.stopProposingAt(); !end.IsZero() {
		var cancel context.CancelFunc
		bctx, cancel = context.WithDeadline(ctx, end)
		defer cancel()
	}
	firstResult := l.st.Trials == 0
	for {
		if ctx.Err() != nil {
			return "", errInterrupted
		}
		stopCheck()
		exhausted := false
		for stopping == "" && len(idle) > 0 {
			if len(queue) > 0 {
				if err := launch(queue[0]); err != nil {
					return "", err
				}
				queue = queue[1:]
				continue
			}
			n := l.room(len(idle))
			if n == 0 {
				break
			}
			trials, err := l.propose(n)
			if err != nil {
				return "", err
			}
			if len(trials) == 0 {
				exhausted = true
				break
			}
			for _, tr := range trials {
				f := l.add(tr)
				if l.draining() {
					// The job's end came while proposing: no trial starts;
					// proposed ones run after the resume (l.order).
					queue = append(queue, f)
					continue
				}
				if err := launch(f); err != nil {
					return "", err
				}
			}
			stopCheck()
		}
		if reportDue {
			l.report()
			reportDue = false
		}
		if running() == 0 {
			switch {
			case stopping == reasonDeadline:
				return "", errDeadline
			case stopping != "":
				return stopping, nil
			case exhausted:
				return "strategy done", nil
			case l.budgetReached() != "": // rejected trials used up the budget
				continue
			}
			return "", fmt.Errorf("controller: internal error: no trial running, none proposed, no budget reached")
		}

		// Wait for a result, flushing when due and noticing the time budget.
		wctx := bctx
		if stopping != "" {
			wctx = ctx
		}
		var cancel context.CancelFunc = func() {}
		wake := time.Time{}
		if l.dirty {
			if err := l.syncDue(); err != nil {
				return "", err
			}
		}
		if l.dirty {
			wake = l.unsynced.Add(syncEvery)
		}
		if h := l.cfg.hangAfter(); h > 0 {
			for _, f := range busy {
				if f != nil && (wake.IsZero() || f.sent.Add(h).Before(wake)) {
					wake = f.sent.Add(h)
				}
			}
		}
		if !wake.IsZero() {
			wctx, cancel = context.WithDeadline(wctx, wake)
		}
		// A result comes a trial's length after its task: a long wait, but
		// a prompt one, as the worker idles until rank 0 sees its result
		// (docs/performance.md).
		from, b, err := l.t.Recv(cluster.PromptLongWait(wctx))
		cancel()
		if err != nil {
			if herr := l.hung(busy); herr != nil && ctx.Err() == nil {
				return "", herr
			}
			switch {
			case ctx.Err() != nil:
				return "", errInterrupted
			case stopping == "" && bctx.Err() != nil:
				stopCheck()
				if stopping == "" { // the timer fired a hair before the clock says
					stopping = "budget: time"
					if l.stopProposingAt().Equal(l.drainAt) {
						stopping = reasonDeadline
					}
				}
				continue
			case l.dirty && errors.Is(err, context.DeadlineExceeded):
				if err := l.flush(); err != nil {
					return "", err
				}
				continue
			}
			return "", ctxErr(ctx, "Recv", err)
		}
		if from < 1 || from >= len(busy) || busy[from] == nil {
			return "", fmt.Errorf("controller: rank %d sent a message but runs no trial", from)
		}
		f := busy[from]
		m, err := cluster.Decode(from, b)
		if err != nil {
			return "", fmt.Errorf("controller: %w", err)
		}
		if m.Kind == cluster.KindProgress {
			if err := l.decide(ctx, from, f, m.Progress); err != nil {
				return "", err
			}
			continue
		}
		r, err := resultOf(from, m, f)
		if err != nil {
			return "", err
		}
		busy[from] = nil
		idle = append(idle, from)
		pen := l.penalise(&r)
		l.logResult(f, &r, pen)
		if err := l.observe(f, r); err != nil {
			return "", err
		}
		l.logUpdate(1)
		if firstResult || time.Since(l.lastCkpt) >= l.cfg.CheckpointEvery {
			firstResult = false
			if err := l.checkpoint(); err != nil {
				return "", err
			}
		}
		// Reported once the freed worker has its next trial, so "running"
		// counts it.
		reportDue = true
	}
}

// hung returns an error naming the first busy rank that has sent nothing
// about its trial for longer than Config.hangAfter, or nil.
func (l *loop) hung(busy []*flight) error {
	h := l.cfg.hangAfter()
	if h <= 0 {
		return nil
	}
	for r, f := range busy {
		if f != nil && time.Since(f.sent) >= h {
			return fmt.Errorf("controller: rank %d has sent nothing about trial %s for %v (trial timeout %v + grace %v): "+
				"it hangs or its node stopped answering", r, f.Trial.ID, time.Since(f.sent).Round(time.Millisecond), l.cfg.TrialTimeout, h-l.cfg.TrialTimeout)
		}
	}
	return nil
}

// stopProposingAt is the earlier of the time budget's end and the start of
// draining before the job's end; zero if neither is set.
func (l *loop) stopProposingAt() time.Time {
	end := l.deadline
	if !l.drainAt.IsZero() && (end.IsZero() || l.drainAt.Before(end)) {
		end = l.drainAt
	}
	return end
}

// decide answers a progress report of f's trial from rank with the
// stopper's decision, and logs both.
func (l *loop) decide(ctx context.Context, rank int, f *flight, p *cluster.Progress) error {
	if p.TrialID != f.Trial.ID {
		return fmt.Errorf("controller: rank %d sent progress of trial %q, where trial %s runs", rank, p.TrialID, f.Trial.ID)
	}
	if l.stopper == nil {
		return fmt.Errorf("controller: rank %d sent progress of trial %s, which was not asked to report", rank, p.TrialID)
	}
	p.ValAcc = roundLogged(p.ValAcc) // as logged: a resumed run replays this value
	stop := l.stopper.Report(p.TrialID, p.Epoch, p.ValAcc)
	l.logProgress(f, p, stop)
	b, err := cluster.Encode(cluster.Message{Kind: cluster.KindDecision, Decision: &cluster.Decision{TrialID: p.TrialID, Stop: stop}})
	if err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	if err := l.t.Send(rank, b); err != nil {
		return ctxErr(ctx, fmt.Sprintf("Send of a decision to rank %d", rank), err)
	}
	return nil
}

// checkpoint flushes the log, saves the strategy's and the loop's state and
// logs a checkpoint event.
func (l *loop) checkpoint() error {
	if err := l.flush(); err != nil { // the log must hold everything the checkpoint covers
		return err
	}
	state, err := l.s.Snapshot()
	if err != nil {
		return strategyError{fmt.Errorf("controller: strategy %s: Snapshot: %w", l.s.Name(), err)}
	}
	l.st.StopperName, l.st.StopperState = "", nil
	if l.stopper != nil {
		ss, err := l.stopper.Snapshot()
		if err == nil && !json.Valid(ss) {
			err = errors.New("not JSON")
		}
		if err != nil {
			return strategyError{fmt.Errorf("controller: stopper %s: Snapshot: %w", l.stopper.Name(), err)}
		}
		l.st.StopperName, l.st.StopperState = l.stopper.Name(), ss
	}
	seq := l.log.Seq()
	l.st.InFlight = l.order
	if l.st.InFlight == nil {
		l.st.InFlight = []*flight{}
	}
	l.st.Elapsed = l.elapsed()
	l.st.Checkpoints++
	loopJSON, err := json.Marshal(&l.st)
	if err != nil {
		return fmt.Errorf("controller: checkpoint: encoding the loop state: %w", err)
	}
	now := time.Now()
	c := journal.Checkpoint{Version: checkpointVersion, Run: l.cfg.RunID, Seq: seq, Strategy: l.s.Name(),
		State: state, Loop: loopJSON, Written: now}
	if err := l.run.SaveCheckpoint(c); err != nil {
		l.st.Checkpoints--
		return fmt.Errorf("controller: %w", err)
	}
	l.lastCkpt = now
	l.log.Event("checkpoint").Int("number", l.st.Checkpoints).Uint64("covers_seq", seq).
		Int("in_flight", len(l.order)).Int("trials", l.st.Trials).Int("bytes", len(state)+len(loopJSON)).Msg("")
	return l.flush()
}

// flush makes the events written so far durable, even against a crash of
// the machine (fsync).
func (l *loop) flush() error {
	err := l.log.Flush()
	l.lastFlush, l.dirty, l.committed, l.unsynced = time.Now(), false, l.log.Seq(), time.Time{}
	err = l.wrote(err, "flushing")
	if l.hooks.afterSync != nil {
		l.hooks.afterSync()
	}
	return err
}

// commit makes the events written so far survive a kill of this process
// (no fsync); flush or syncDue makes them durable later.
func (l *loop) commit() error {
	seq := l.log.Seq()
	if seq == l.committed {
		return nil
	}
	l.committed = seq
	if l.unsynced.IsZero() {
		l.unsynced = time.Now()
	}
	return l.wrote(l.log.Commit(), "committing")
}

// syncDue commits what was logged and flushes when the last fsync is half
// of syncEvery old. Not a whole syncEvery: with trials of about that length
// the test would flip with the jitter of each result, and every trial would
// then cost a second wake-up, for the timer.
func (l *loop) syncDue() error {
	if time.Since(l.lastFlush) >= syncEvery/2 {
		return l.flush()
	}
	return l.commit()
}

// wrote counts a commit or flush for the tests' hook and wraps its error.
func (l *loop) wrote(err error, doing string) error {
	l.writes++
	if l.hooks.afterWrite != nil {
		l.hooks.afterWrite(l.writes)
	}
	if err != nil {
		// The log is the run's record: without it a crash would lose results.
		return fmt.Errorf("controller: %s the event log: %w", doing, err)
	}
	return nil
}

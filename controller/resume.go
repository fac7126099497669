package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"nasd/journal"
)

// resumeInfo is what loading a run found, for run_start.
type resumeInfo struct {
	fromCheckpoint bool
	ckptSeq        uint64
	replayed       int              // results observed again from the log
	readFrom       journal.Position // where reading the log began
	eventsRead     int              // events decoded to resume
	warnings       []string
}

// resultEvent is the part of a trial_result event that resuming needs.
type resultEvent struct {
	Result
	ArchHash string `json:"arch_hash"`
}

// proposeEvent is a strategy_propose event: one Propose call.
type proposeEvent struct {
	N      int      `json:"n"`
	Trials []string `json:"ids"`
	Hashes []string `json:"arch_hashes"`
}

// progressEvent is the part of a trial_progress event that resuming needs.
type progressEvent struct {
	Trial  string   `json:"trial"`
	Epoch  int      `json:"epoch"`
	ValAcc *float64 `json:"val_acc"`
	Stop   bool     `json:"stop"`
}

// load restores the loop from the run's newest good checkpoint (or a fresh
// strategy, when the run was killed before its first) and re-drives the
// strategy and the stopper through the calls the event log records after
// it, in the order they were made: each strategy_propose is a Propose call,
// whose trials must come back with the logged IDs and architectures; each
// trial_result an Observe; each trial_progress a stopper Report, whose
// decision must be the logged one; each later run_start of a resumed segment
// the Forget of the trials then in flight. A deterministic strategy is then
// in exactly the state it had when the last surviving event was written.
// The trials proposed and not observed stay in flight and run again; no
// logged result is run again. A mismatch is an error naming the trial.
func (l *loop) load() (resumeInfo, error) {
	var info resumeInfo
	c, warnings, err := l.run.LoadCheckpoint()
	info.warnings = warnings
	var from uint64
	switch {
	case err == nil:
		if err := l.restore(c, &info); err != nil {
			return info, err
		}
		from = c.Seq
		info.fromCheckpoint, info.ckptSeq = true, c.Seq
	case errors.Is(err, os.ErrNotExist):
		info.warnings = append(info.warnings, "no checkpoint: the strategy starts afresh and is driven through every call the log records")
	default:
		return info, fmt.Errorf("controller: resume: %w", err)
	}

	var last uint64
	replay := func(e journal.Event) error {
		info.eventsRead++
		last = max(last, e.Seq)
		if e.Seq <= from {
			return nil
		}
		if err := l.replayEvent(e, &info); err != nil {
			return fmt.Errorf("event seq %d (%s): %w", e.Seq, e.Kind, err)
		}
		return nil
	}
	// Read from where the checkpoint says its events start: resuming then
	// costs what follows the checkpoint, not the run's length. A position
	// that does not check out delivers nothing: read the whole log.
	var pos journal.Position
	if info.fromCheckpoint && c.EventsFrom != nil {
		pos = *c.EventsFrom
	}
	l.replaying = true
	truncated, err := journal.ReadEventsFrom(l.run.Dir, pos, replay)
	info.readFrom = pos
	if errors.Is(err, journal.ErrPosition) {
		info.warnings = append(info.warnings, err.Error()+"; reading the whole event log")
		info.readFrom = journal.Position{}
		truncated, err = journal.ReadEvents(l.run.Dir, replay)
	}
	l.replaying = false
	if err != nil {
		return info, fmt.Errorf("controller: resume: replaying the event log: %w", err)
	}
	// The trials in flight restart from scratch: their partial reports
	// must not count twice.
	l.forgetInFlight()
	if lr, ok := l.s.(Learner); ok {
		l.loggedUpdates = lr.LastUpdate().Updates // logged when they happened
	}
	l.segDone = 0
	seen := map[string]bool{}
	latest := latestSegment(l.run.Dir, filepath.Base(l.log.Path()))
	for _, w := range append(append([]string(nil), l.run.Warnings...), truncated...) {
		// The segment this run writes is open and still empty: not a cut.
		// Cuts of segments before the latest were logged by the segments
		// that resumed them.
		seg := segmentName.FindString(w)
		if !seen[w] && seg != filepath.Base(l.log.Path()) && (seg == "" || seg == latest) {
			info.warnings = append(info.warnings, w)
		}
		seen[w] = true
	}
	if info.fromCheckpoint && last < c.Seq {
		info.warnings = append(info.warnings, fmt.Sprintf("the event log ends at seq %d, before the checkpoint's seq %d", last, c.Seq))
	}
	return info, nil
}

// segmentName finds an event log segment's file name in a warning.
var segmentName = regexp.MustCompile(`events-[0-9]+\.jsonl\.zst`)

// latestSegment returns the newest segment file (by number) in dir other
// than own.
func latestSegment(dir, own string) string {
	files, _ := filepath.Glob(filepath.Join(dir, "events-*.jsonl.zst"))
	latest, n := "", -1
	for _, f := range files {
		seg := filepath.Base(f)
		if seg == own {
			continue
		}
		if k, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(seg, "events-"), ".jsonl.zst")); err == nil && k > n {
			latest, n = seg, k
		}
	}
	return latest
}

// replayEvent re-makes the strategy or stopper call that event e records.
func (l *loop) replayEvent(e journal.Event, info *resumeInfo) error {
	switch e.Kind {
	case EventStrategyPropose:
		var ev proposeEvent
		if err := json.Unmarshal(e.Raw, &ev); err != nil || ev.N < 1 || len(ev.Hashes) != len(ev.Trials) {
			return fmt.Errorf("does not decode to a Propose call (%v)", err)
		}
		trials, err := l.propose(ev.N)
		if err != nil {
			return err
		}
		if len(trials) != len(ev.Trials) {
			return fmt.Errorf("strategy %s: Propose(%d) returned %d trials, the log has %d (%s): the restored strategy does not repeat the run",
				l.s.Name(), ev.N, len(trials), len(ev.Trials), strings.Join(ev.Trials, ", "))
		}
		for i, tr := range trials {
			f := l.add(tr)
			if tr.ID != ev.Trials[i] || f.Hash != ev.Hashes[i] {
				return fmt.Errorf("strategy %s re-proposed trial %s (architecture %.12s) where the log has trial %s (architecture %.12s): the restored strategy does not repeat the run",
					l.s.Name(), tr.ID, f.Hash, ev.Trials[i], ev.Hashes[i])
			}
		}
	case EventTrialResult:
		var ev resultEvent
		if err := json.Unmarshal(e.Raw, &ev); err != nil || ev.TrialID == "" || ev.Status == "" {
			return fmt.Errorf("does not decode to a result (%v)", err)
		}
		f := l.inflight[ev.TrialID]
		if f == nil {
			return fmt.Errorf("the result of trial %s, which is not in flight at this point of the log", ev.TrialID)
		}
		if ev.ArchHash != f.Hash {
			return fmt.Errorf("trial %s: the result is for architecture %.12s, the trial's is %.12s", ev.TrialID, ev.ArchHash, f.Hash)
		}
		if len(ev.ValAcc) == 0 {
			ev.ValAcc = nil
		}
		if err := l.observe(f, ev.Result); err != nil {
			return err
		}
		info.replayed++
		if l.cfg.Mode == ModeSync && len(l.order) == 0 {
			l.st.Rounds++ // the log holds the whole round
		}
	case EventTrialProgress:
		if l.stopper == nil {
			return nil // the run had a stopper and has none now (warned)
		}
		var ev progressEvent
		if err := json.Unmarshal(e.Raw, &ev); err != nil || ev.Trial == "" || ev.ValAcc == nil {
			return fmt.Errorf("does not decode to an epoch report (%v)", err)
		}
		if l.inflight[ev.Trial] == nil {
			return fmt.Errorf("a report of trial %s, which is not in flight at this point of the log", ev.Trial)
		}
		if stop := l.stopper.Report(ev.Trial, ev.Epoch, *ev.ValAcc); stop != ev.Stop && !l.stopperFresh {
			return fmt.Errorf("stopper %s: trial %s epoch %d: decided stop=%v, the log has stop=%v: the restored stopper does not repeat the run",
				l.stopper.Name(), ev.Trial, ev.Epoch, stop, ev.Stop)
		}
	case EventRunStart:
		// A later segment forgot the trials in flight when it resumed.
		var ev struct {
			Resumed bool `json:"resumed"`
		}
		if json.Unmarshal(e.Raw, &ev) == nil && ev.Resumed {
			l.forgetInFlight()
		}
	}
	return nil
}

// forgetInFlight makes the stopper forget the trials in flight, which run
// again from scratch.
func (l *loop) forgetInFlight() {
	if l.stopper == nil {
		return
	}
	for _, f := range l.order {
		l.stopper.Forget(f.Trial.ID)
	}
}

// restore loads the strategy and the loop's state from c.
func (l *loop) restore(c journal.Checkpoint, info *resumeInfo) error {
	if c.Version != checkpointVersion {
		return fmt.Errorf("controller: resume: checkpoint version %d, this build reads %d", c.Version, checkpointVersion)
	}
	if c.Strategy != l.s.Name() {
		return fmt.Errorf("controller: resume: the checkpoint is of strategy %q, the run's strategy is %q", c.Strategy, l.s.Name())
	}
	var st loopState
	if err := json.Unmarshal(c.Loop, &st); err != nil {
		return fmt.Errorf("controller: resume: the checkpoint's loop state: %w", err)
	}
	if st.Version != loopStateVersion {
		return fmt.Errorf("controller: resume: loop state version %d, this build reads %d (a run checkpointed by an older nasd, "+
			"which resumed by matching results instead of replaying the strategy: finish it with that version)", st.Version, loopStateVersion)
	}
	if err := l.checkSameRun(st, info); err != nil {
		return err
	}
	if err := l.s.Restore(c.State); err != nil {
		return fmt.Errorf("controller: resume: strategy %s: %w", l.s.Name(), err)
	}
	if c.Run != l.cfg.RunID {
		info.warnings = append(info.warnings, fmt.Sprintf("the checkpoint is of run %q, resumed as %q", c.Run, l.cfg.RunID))
	}
	for _, f := range st.InFlight {
		if f == nil || f.Trial.ID == "" || l.inflight[f.Trial.ID] != nil {
			return errors.New("controller: resume: the checkpoint's in-flight trials are empty or repeated")
		}
		f.Rank = 0
		l.inflight[f.Trial.ID] = f
		l.order = append(l.order, f)
	}
	if err := l.restoreStopper(&st, info); err != nil {
		return err
	}
	st.InFlight, st.Mode, st.Workers = nil, l.cfg.Mode, l.workers
	l.st = st
	l.before = st.Elapsed
	return nil
}

// checkSameRun refuses to continue a run in a way that changes it (another
// mode; another worker count in sync mode, where a round is one trial per
// worker) unless Config.Override allows it; then it warns.
func (l *loop) checkSameRun(st loopState, info *resumeInfo) error {
	var changes []string
	if st.Mode != l.cfg.Mode {
		changes = append(changes, fmt.Sprintf("the checkpoint is of a %s run, resumed in %s mode", st.Mode, l.cfg.Mode))
	}
	if st.Mode == ModeSync && l.cfg.Mode == ModeSync && st.Workers > 0 && st.Workers != l.workers {
		changes = append(changes, fmt.Sprintf("the run has %d workers in sync mode (a round is one trial per worker), this job has %d "+
			"(launch %d ranks to continue it as it was)", st.Workers, l.workers, st.Workers+1))
	}
	if len(changes) == 0 {
		return nil
	}
	if l.cfg.Override {
		info.warnings = append(info.warnings, changes...)
		return nil
	}
	return fmt.Errorf("controller: resume: %s; allow the change with Override (nasd search -override)", strings.Join(changes, "; "))
}

// restoreStopper loads the stopper's state from the checkpoint's loop state.
// A checkpoint without the state of this run's stopper (written without a
// stopper, or with another) starts the stopper afresh, with a warning. The
// trials in flight are forgotten after the log's replay (load).
func (l *loop) restoreStopper(st *loopState, info *resumeInfo) error {
	name := StopperNone
	if l.stopper != nil {
		name = l.stopper.Name()
	}
	had := st.StopperName
	if had == "" {
		had = StopperNone
	}
	switch {
	case l.stopper == nil:
		if had != StopperNone {
			info.warnings = append(info.warnings, fmt.Sprintf("the checkpoint holds the state of stopper %q; this run has none, so nothing is stopped early from now on", had))
		}
	case had != name:
		l.stopperFresh = true
		info.warnings = append(info.warnings, fmt.Sprintf("the checkpoint has no state of stopper %q (it was written with stopper %q): the stopper starts afresh", name, had))
	default:
		if err := l.stopper.Restore(st.StopperState); err != nil {
			return fmt.Errorf("controller: resume: %w", err)
		}
	}
	return nil
}

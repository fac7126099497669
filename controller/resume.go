package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"nasd/journal"
)

// resumeInfo is what loading a run found, for run_start.
type resumeInfo struct {
	fromCheckpoint bool
	ckptSeq        uint64
	warnings       []string
}

// resultEvent is the part of a trial_result event that resuming needs.
type resultEvent struct {
	Result
	ArchHash string `json:"arch_hash"`
}

// load restores the loop from the run's newest good checkpoint and collects
// the results logged that the checkpoint has not observed:
//
//   - with a checkpoint, those of the trials it records in flight (whatever
//     their seq: a sync round resumed twice holds results logged before the
//     checkpoint) and every result logged after its ReplayFrom seq;
//   - without one (killed before the first), every logged result; the
//     strategy starts afresh and proposes the same trials again.
//
// A collected result is observed when its trial is in flight or proposed
// again with the same architecture, instead of running the trial again.
func (l *loop) load() (resumeInfo, error) {
	var info resumeInfo
	c, warnings, err := l.run.LoadCheckpoint()
	info.warnings = warnings
	inFlight := map[string]bool{}
	var from uint64
	switch {
	case err == nil:
		if err := l.restore(c, &info); err != nil {
			return info, err
		}
		for _, f := range l.order {
			inFlight[f.Trial.ID] = true
		}
		from = min(c.Seq, l.st.ReplayFrom)
		info.fromCheckpoint, info.ckptSeq = true, c.Seq
	case errors.Is(err, os.ErrNotExist):
		info.warnings = append(info.warnings, "no checkpoint: the strategy starts afresh and every logged result is replayed")
	default:
		return info, fmt.Errorf("controller: resume: %w", err)
	}

	var last uint64
	truncated, err := journal.ReadEvents(l.run.Dir, func(e journal.Event) error {
		last = max(last, e.Seq)
		if e.Kind != EventTrialResult {
			return nil
		}
		if e.Seq <= from {
			if len(inFlight) == 0 {
				return nil
			}
			var id struct {
				Trial string `json:"trial"`
			}
			if json.Unmarshal(e.Raw, &id) != nil || !inFlight[id.Trial] {
				return nil
			}
		}
		var ev resultEvent
		if err := json.Unmarshal(e.Raw, &ev); err != nil || ev.TrialID == "" || ev.Status == "" {
			info.warnings = append(info.warnings, fmt.Sprintf("trial_result event seq %d does not decode (%v): its trial runs again", e.Seq, err))
			return nil
		}
		if len(ev.ValAcc) == 0 {
			ev.ValAcc = nil
		}
		l.replay[ev.TrialID] = logged{seq: e.Seq, hash: ev.ArchHash, res: ev.Result}
		return nil
	})
	if err != nil {
		return info, fmt.Errorf("controller: resume: reading the event log: %w", err)
	}
	seen := map[string]bool{}
	for _, w := range append(append([]string(nil), l.run.Warnings...), truncated...) {
		// The segment this run writes is open and still empty: not a cut.
		if !seen[w] && !strings.Contains(w, filepath.Base(l.log.Path())) {
			info.warnings = append(info.warnings, w)
		}
		seen[w] = true
	}
	if info.fromCheckpoint && last < c.Seq {
		info.warnings = append(info.warnings, fmt.Sprintf("the event log ends at seq %d, before the checkpoint's seq %d", last, c.Seq))
	}
	return info, nil
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
		return fmt.Errorf("controller: resume: loop state version %d, this build reads %d", st.Version, loopStateVersion)
	}
	if err := l.s.Restore(c.State); err != nil {
		return fmt.Errorf("controller: resume: strategy %s: %w", l.s.Name(), err)
	}
	if c.Run != l.cfg.RunID {
		info.warnings = append(info.warnings, fmt.Sprintf("the checkpoint is of run %q, resumed as %q", c.Run, l.cfg.RunID))
	}
	if st.Mode != l.cfg.Mode {
		info.warnings = append(info.warnings, fmt.Sprintf("the checkpoint is of a %s run, resumed in %s mode", st.Mode, l.cfg.Mode))
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
	st.InFlight, st.Mode = nil, l.cfg.Mode
	l.st = st
	l.before = st.Elapsed
	return nil
}

// restoreStopper loads the stopper's state from the checkpoint's loop state
// and makes it forget the trials in flight, which run again from scratch.
// A checkpoint without the state of this run's stopper (written without a
// stopper, or with another) starts the stopper afresh, with a warning.
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
		return nil
	case had != name:
		info.warnings = append(info.warnings, fmt.Sprintf("the checkpoint has no state of stopper %q (it was written with stopper %q): the stopper starts afresh", name, had))
	default:
		if err := l.stopper.Restore(st.StopperState); err != nil {
			return fmt.Errorf("controller: resume: %w", err)
		}
	}
	for _, f := range st.InFlight {
		l.stopper.Forget(f.Trial.ID)
	}
	return nil
}

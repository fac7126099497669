package controller_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"nasd/controller"
	_ "nasd/controller/evolution"
	_ "nasd/controller/rl"
)

// resumeCase is a strategy (with options small enough for a short run) and
// a stopper, resumed in one mode.
type resumeCase struct {
	strategy string
	opts     map[string]any
	stopper  string
}

// resumeCases is every strategy, and in async mode every stopper.
func resumeCases(mode string) []resumeCase {
	cases := []resumeCase{
		{strategy: "random"},
		{strategy: "random-policy"},
		{strategy: "rl", opts: map[string]any{"batch": int64(3), "hidden": int64(8)}},
		{strategy: "ga", opts: map[string]any{"population": int64(6)}},
		{strategy: "ga", opts: map[string]any{"population": int64(6), "steady_state": true}},
		{strategy: "aging-evolution", opts: map[string]any{"population": int64(6), "sample": int64(3)}},
	}
	if mode == controller.ModeAsync {
		cases = append(cases,
			resumeCase{strategy: "aging-evolution", opts: map[string]any{"population": int64(6), "sample": int64(3)}, stopper: "median"},
			resumeCase{strategy: "ga", opts: map[string]any{"population": int64(6)}, stopper: "asha"})
	}
	return cases
}

func (c resumeCase) String() string {
	s := c.strategy
	if v, ok := c.opts["steady_state"]; ok && v == true {
		s += "-steady"
	}
	if c.stopper != "" {
		s += "+" + c.stopper
	}
	return s
}

// checkOneArchPerID fails when a trial ID names two architectures anywhere
// in the log (proposed, dispatched or with a result).
func checkOneArchPerID(t testing.TB, evs []event) {
	t.Helper()
	hash := map[string]string{}
	note := func(seq uint64, id, h string) {
		if h == "" {
			return
		}
		if old, ok := hash[id]; ok && old != h {
			t.Errorf("seq %d: trial %s has architecture %.12s, earlier %.12s", seq, id, h, old)
		}
		hash[id] = h
	}
	for _, e := range evs {
		switch e.Event {
		case controller.EventStrategyPropose:
			for i, id := range e.IDs {
				note(e.Seq, id, e.Hashes[i])
			}
		case controller.EventTrialDispatch, controller.EventTrialResult:
			note(e.Seq, e.Trial, e.ArchHash)
		}
	}
}

// TestResumeEveryStrategy kills every strategy's run after each flush of
// the log (a copy of the run directory as a kill -9 would leave it), resumes
// each copy and checks: each trial has one result and one architecture, no
// logged result is trained again, the resumed segment trains exactly the
// trials without a result, and a sync run ends as the uninterrupted one.
func TestResumeEveryStrategy(t *testing.T) {
	const n, ranks = 16, 4
	slow := func(id string) time.Duration { return time.Millisecond + 2*jitter(id) }
	for _, mode := range []string{controller.ModeSync, controller.ModeAsync} {
		for _, c := range resumeCases(mode) {
			t.Run(mode+"/"+c.String(), func(t *testing.T) {
				t.Parallel()
				tmp := t.TempDir()
				src := filepath.Join(tmp, "run")
				var mu sync.Mutex
				var copies []string
				base := search{mode: mode, ranks: ranks, trials: n, strategy: c.strategy, stratOpts: c.opts, stopper: c.stopper, delay: slow}
				s := base
				s.dir = src
				s.afterWrite = func(k int) {
					mu.Lock()
					defer mu.Unlock()
					dst := filepath.Join(tmp, fmt.Sprintf("kill-%03d", k))
					copyDir(t, src, dst)
					copies = append(copies, dst)
				}
				orig := s.run(t)
				if orig.err != nil || orig.sum.Trials != n {
					t.Fatalf("%+v %v", orig.sum, orig.err)
				}
				ref := results(readEvents(t, src))
				step := max(1, len(copies)/8)
				if testing.Short() {
					step = max(1, len(copies)/3)
				}
				for i := 0; i < len(copies); i += step {
					dir := copies[i]
					before := loggedIn(t, dir)
					r := base
					r.dir, r.resume = dir, true
					out := r.run(t)
					if out.err != nil || out.sum.Interrupted || out.sum.Trials != n {
						t.Fatalf("%s: resumed: %+v %v", filepath.Base(dir), out.sum, out.err)
					}
					evs := readEvents(t, dir)
					got := results(evs)
					checkOnce(t, got, n)
					checkOneArchPerID(t, evs)
					for _, id := range out.calls {
						if before[id] {
							t.Errorf("%s: trial %s had a logged result and ran again", filepath.Base(dir), id)
						}
					}
					if want := n - len(before); len(out.calls) != want {
						t.Errorf("%s: the resumed segment trained %d trials, want %d (%d of %d were logged)",
							filepath.Base(dir), len(out.calls), want, len(before), n)
					}
					if mode == controller.ModeSync && !reflect.DeepEqual(got, ref) {
						t.Fatalf("%s: resumed sync run differs from the uninterrupted one:\n%v\n%v", filepath.Base(dir), got, ref)
					}
				}
			})
		}
	}
}

// TestAsyncCommitsBeforeDispatch: an async run writes each result into the
// log file before its worker gets the next trial (a kill -9 of rank 0 then
// loses no result), though it fsyncs at most once a second. When the k-th
// training starts, at most ranks-1 trials are unfinished, so at least
// k-(ranks-1) results must already decode from the file.
func TestAsyncCommitsBeforeDispatch(t *testing.T) {
	const n, ranks = 30, 3
	dir := filepath.Join(t.TempDir(), "run")
	var mu sync.Mutex
	checked := 0
	s := search{mode: controller.ModeAsync, ranks: ranks, trials: n, dir: dir, checkEvery: time.Hour,
		onTrain: func(calls int, _ func()) {
			mu.Lock()
			defer mu.Unlock()
			want := calls - (ranks - 1)
			if want <= 0 {
				return
			}
			if got := len(results(readEvents(t, dir))); got < want {
				t.Errorf("training %d started with %d results in the log file, want ≥ %d", calls, got, want)
			}
			checked++
		}}
	if out := s.run(t); out.err != nil || out.sum.Trials != n {
		t.Fatalf("%+v %v", out.sum, out.err)
	}
	if checked < n-ranks {
		t.Fatalf("checked %d trainings", checked)
	}
}

// TestAsyncFsyncsTwiceASecond: an async run whose results come every few ms
// fsyncs the log at most twice a second, not per result, and every commit is
// covered by an fsync within that second (plus scheduling slack): a crash of
// the machine loses at most a second of results.
func TestAsyncFsyncsTwiceASecond(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for 2.5 s")
	}
	const n, ranks = 100, 3
	var mu sync.Mutex
	var commits, syncs []time.Time
	s := search{mode: controller.ModeAsync, ranks: ranks, trials: n, checkEvery: time.Hour,
		delay:      func(string) time.Duration { return 50 * time.Millisecond },
		afterWrite: func(int) { mu.Lock(); commits = append(commits, time.Now()); mu.Unlock() },
		afterSync:  func() { mu.Lock(); syncs = append(syncs, time.Now()); mu.Unlock() }}
	start := time.Now()
	if out := s.run(t); out.err != nil || out.sum.Trials != n {
		t.Fatalf("%+v %v", out.sum, out.err)
	}
	elapsed := time.Since(start)
	// Beyond two a second: two for the first checkpoint (the log before it,
	// its event after), three at the end (the run_end event, the last
	// checkpoint's two).
	if max := int(2*elapsed/time.Second) + 5; len(syncs) > max {
		var at []time.Duration
		for _, s := range syncs {
			at = append(at, s.Sub(start).Round(time.Millisecond))
		}
		t.Errorf("%d fsyncs in %v (at %v), %d commits: want ≤ %d", len(syncs), elapsed, at, len(commits), max)
	}
	for _, c := range commits {
		i := sort.Search(len(syncs), func(i int) bool { return !syncs[i].Before(c) })
		if i == len(syncs) {
			t.Fatalf("a commit at %v was never fsynced", c.Sub(start))
		}
		if lag := syncs[i].Sub(c); lag > time.Second+700*time.Millisecond {
			t.Errorf("a commit at %v waited %v for its fsync", c.Sub(start), lag)
		}
	}
}

// TestResumeRefusesAnotherProposal: a strategy that proposes another
// architecture under a logged trial ID after the restore is an error that
// names the trial, never a silent retrain.
func TestResumeRefusesAnotherProposal(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "run")
	var copies []string
	s := search{mode: controller.ModeAsync, ranks: 3, trials: 12, dir: src, checkEvery: time.Hour, delay: jitter,
		afterWrite: func(k int) {
			dst := filepath.Join(tmp, fmt.Sprintf("kill-%03d", k))
			copyDir(t, src, dst)
			copies = append(copies, dst)
		}}
	if out := s.run(t); out.err != nil {
		t.Fatal(out.err)
	}
	// The first checkpoint follows the first result; pick a copy whose
	// log proposes trials after it.
	dir := copies[len(copies)/2]
	var id string
	evs := readEvents(t, dir)
	ck := ofKind(evs, controller.EventCheckpoint)
	for _, e := range ofKind(evs, controller.EventStrategyPropose) {
		if len(ck) > 0 && e.Seq > ck[len(ck)-1].Seq && len(e.IDs) > 0 {
			id = e.IDs[0]
		}
	}
	if id == "" {
		t.Fatalf("%s: no proposal after the last checkpoint", dir)
	}
	out := search{mode: controller.ModeAsync, ranks: 3, trials: 12, dir: dir, resume: true, mutate: id}.run(t)
	if out.err == nil || !strings.Contains(out.err.Error(), "re-proposed trial "+id) {
		t.Fatalf("resume with a strategy that proposes another architecture for %s: %v", id, out.err)
	}
	if len(out.calls) != 0 {
		t.Errorf("trials %v trained after the mismatch", out.calls)
	}
}

// TestResumeRefusesChanges: another mode, or another worker count in sync
// mode, is an error unless overridden; overridden, the run goes on.
func TestResumeRefusesChanges(t *testing.T) {
	first := search{mode: controller.ModeSync, ranks: 4, trials: 8, onTrain: func(calls int, cancel func()) {
		if calls == 5 { // in the second round of 3
			cancel()
		}
	}}.run(t)
	if !first.sum.Interrupted {
		t.Fatalf("not interrupted: %+v %v", first.sum, first.err)
	}
	for _, tc := range []struct {
		mode  string
		ranks int
		want  string
	}{
		{controller.ModeAsync, 4, "resumed in async mode"},
		// 3 trials in flight on 2 workers: the round runs in two parts.
		{controller.ModeSync, 3, "this job has 2"},
	} {
		dir := filepath.Join(t.TempDir(), "run")
		copyDir(t, first.dir, dir)
		out := search{mode: tc.mode, ranks: tc.ranks, trials: 8, dir: dir, resume: true}.run(t)
		if out.err == nil || !strings.Contains(out.err.Error(), tc.want) || !strings.Contains(out.err.Error(), "-override") {
			t.Errorf("%s with %d ranks: %v, want an error saying %q and -override", tc.mode, tc.ranks, out.err, tc.want)
		}
		out = search{mode: tc.mode, ranks: tc.ranks, trials: 8, dir: dir, resume: true, override: true}.run(t)
		if out.err != nil || out.sum.Trials != 8 {
			t.Errorf("%s with %d ranks, overridden: %+v %v", tc.mode, tc.ranks, out.sum, out.err)
		}
		checkOnce(t, results(readEvents(t, dir)), 8)
	}
}

// TestDeadline: with StopAt, no trial is dispatched after StopAt − margin,
// the segment checkpoints and ends Interrupted with reason "deadline" before
// StopAt, and a chain of such segments finishes the search with every
// trial once.
func TestDeadline(t *testing.T) {
	const n = 24
	// Generous times: run_end must come before stop_at on a loaded 2-core
	// machine, with min(margin/2, 30 s) to checkpoint.
	const margin = 600 * time.Millisecond
	for _, mode := range []string{controller.ModeSync, controller.ModeAsync} {
		t.Run(mode, func(t *testing.T) {
			delay := func(string) time.Duration { return 100 * time.Millisecond }
			dir := filepath.Join(t.TempDir(), "run")
			var segments int
			for resume := false; ; resume = true {
				segments++
				if segments > 30 {
					t.Fatal("the chain does not end")
				}
				stopAt := time.Now().Add(1200 * time.Millisecond)
				out := search{mode: mode, ranks: 3, trials: n, dir: dir, resume: resume, stopAt: stopAt, margin: margin, delay: delay}.run(t)
				if out.err != nil && strings.Contains(out.err.Error(), "less than the stop margin") {
					// A loaded machine spent the segment's window starting it:
					// refused as it should be, and resumable like any segment.
					continue
				}
				if out.err != nil {
					t.Fatal(out.err)
				}
				evs := readEvents(t, dir)
				end := evs[len(evs)-1]
				if !out.sum.Interrupted {
					if out.sum.Trials != n || end.Reason != "budget: trials" {
						t.Fatalf("segment %d: %+v, run_end %+v", segments, out.sum, end)
					}
					break
				}
				if out.sum.Reason != "deadline" || end.Event != controller.EventRunEnd || end.Reason != "deadline" || !end.Interrupted {
					t.Fatalf("segment %d: %+v, last event %+v: want an interrupted run_end for the deadline", segments, out.sum, end)
				}
				checkSegmentTimes(t, dir, stopAt, margin)
			}
			if segments < 2 {
				t.Errorf("the search ended in %d segments: the deadline did not cut it", segments)
			}
			evs := readEvents(t, dir)
			checkOnce(t, results(evs), n)
			checkOneArchPerID(t, evs)
		})
	}
}

// checkSegmentTimes checks the last segment of dir: no trial_dispatched at or
// after stopAt − margin, and a checkpoint and run_end before stopAt.
func checkSegmentTimes(t *testing.T, dir string, stopAt time.Time, margin time.Duration) {
	t.Helper()
	var last []event
	for _, e := range readEvents(t, dir) {
		if e.Event == controller.EventRunStart {
			last = nil
		}
		last = append(last, e)
	}
	var ckpt bool
	for _, e := range last {
		switch e.Event {
		case controller.EventTrialDispatch:
			if !e.Time.Before(stopAt.Add(-margin)) {
				t.Errorf("trial %s dispatched at %s, after stop_at − margin %s", e.Trial, e.Time.Format(time.StampMicro), stopAt.Add(-margin).Format(time.StampMicro))
			}
		case controller.EventCheckpoint:
			ckpt = true
		case controller.EventRunEnd:
			if !ckpt || !e.Time.Before(stopAt) {
				t.Errorf("run_end at %s (checkpointed: %v), want a checkpoint and run_end before stop_at %s",
					e.Time.Format(time.StampMicro), ckpt, stopAt.Format(time.StampMicro))
			}
		}
	}
}

// TestDeadlineInterruptsRunningTrials: a trial longer than the margin is
// interrupted at StopAt − reserve, checkpointed in flight, and runs again
// after the resume.
func TestDeadlineInterruptsRunningTrials(t *testing.T) {
	for _, mode := range []string{controller.ModeSync, controller.ModeAsync} {
		t.Run(mode, func(t *testing.T) {
			long := func(string) time.Duration { return 1500 * time.Millisecond }
			stopAt := time.Now().Add(700 * time.Millisecond)
			s := search{mode: mode, ranks: 3, trials: 2, stopAt: stopAt, margin: 400 * time.Millisecond, delay: long}
			out := s.run(t)
			if out.err != nil || !out.sum.Interrupted || out.sum.Reason != "deadline" || out.sum.Trials != 0 {
				t.Fatalf("%+v %v: want interrupted by the deadline with no trial finished", out.sum, out.err)
			}
			checkSegmentTimes(t, out.dir, stopAt, 400*time.Millisecond)
			ck := ofKind(readEvents(t, out.dir), controller.EventCheckpoint)
			if len(ck) == 0 || ck[len(ck)-1].InFlight != 2 {
				t.Fatalf("checkpoints %+v: want the last with 2 trials in flight", ck)
			}
			out = search{mode: mode, ranks: 3, trials: 2, dir: out.dir, resume: true, delay: long}.run(t)
			if out.err != nil || out.sum.Interrupted || out.sum.Trials != 2 || len(out.calls) != 2 {
				t.Fatalf("resumed: %+v %v, trained %v", out.sum, out.err, out.calls)
			}
		})
	}
}

// TestDeadlineWithinMargin: a job that ends within the margin of its start
// could start nothing; it is an error (a chain must not resubmit it).
func TestDeadlineWithinMargin(t *testing.T) {
	out := search{mode: controller.ModeAsync, ranks: 3, trials: 4, stopAt: time.Now().Add(time.Second), margin: time.Minute}.run(t)
	if out.err == nil || !strings.Contains(out.err.Error(), "stop margin") || len(out.calls) != 0 {
		t.Fatalf("%+v %v: want an error about the stop margin", out.sum, out.err)
	}
}

// TestResumeWarnsOnceAboutCutSegments: each resumed segment warns about the
// cut tail of the segment before it, not again about older ones (they were
// warned about when they were resumed).
func TestResumeWarnsOnceAboutCutSegments(t *testing.T) {
	tmp := t.TempDir()
	copyAt := func(src, dst string, at int) func(int) {
		return func(k int) {
			if k == at {
				copyDir(t, src, dst)
			}
		}
	}
	a, b := filepath.Join(tmp, "a"), filepath.Join(tmp, "b")
	first := filepath.Join(tmp, "run")
	slow := func(id string) time.Duration { return 15*time.Millisecond + jitter(id) }
	s := search{mode: controller.ModeAsync, ranks: 3, trials: 20, dir: first, delay: slow}
	s.afterWrite = copyAt(first, a, 6)
	if out := s.run(t); out.err != nil {
		t.Fatal(out.err)
	}
	s = search{mode: controller.ModeAsync, ranks: 3, trials: 20, dir: a, resume: true, delay: slow}
	s.afterWrite = copyAt(a, b, 6)
	if out := s.run(t); out.err != nil {
		t.Fatal(out.err)
	}
	if out := (search{mode: controller.ModeAsync, ranks: 3, trials: 20, dir: b, resume: true}).run(t); out.err != nil {
		t.Fatal(out.err)
	}
	var warnings []string
	for _, e := range readEvents(t, b) {
		switch e.Event {
		case controller.EventRunStart:
			warnings = nil
		case controller.EventWarning:
			warnings = append(warnings, e.Message)
		}
	}
	var cut2 bool
	for _, w := range warnings {
		if strings.Contains(w, "events-0001") {
			t.Errorf("the third segment warns again about the first: %s", w)
		}
		cut2 = cut2 || strings.Contains(w, "events-0002")
	}
	if !cut2 {
		t.Errorf("the third segment does not warn about the second's cut tail: %q", warnings)
	}
}

// Resuming reads the event log from the frame the checkpoint names, not from
// the start: what it decodes is what follows the checkpoint (plus at most a
// frame), whatever the run's length. A position that does not check out
// (here: the segment cut before it) falls back to the whole log, with a
// warning, and the run resumes all the same.
func TestResumeReadsFromCheckpoint(t *testing.T) {
	const n = 2500 // ~1.4 KB of JSON a trial: several 1 MiB frames
	dir := filepath.Join(t.TempDir(), "run")
	out := search{mode: controller.ModeAsync, ranks: 3, trials: n, dir: dir, checkEvery: 5 * time.Millisecond}.run(t)
	if out.err != nil || out.sum.Trials != n {
		t.Fatalf("%+v %v", out.sum, out.err)
	}
	total := len(readEvents(t, dir))
	cut := filepath.Join(t.TempDir(), "cut")
	copyDir(t, dir, cut)

	out = search{mode: controller.ModeAsync, ranks: 3, trials: n, dir: dir, resume: true}.run(t)
	if out.err != nil || out.sum.Trials != n || len(out.calls) != 0 {
		t.Fatalf("resumed: %+v %v, %d trained", out.sum, out.err, len(out.calls))
	}
	evs := readEvents(t, dir)
	start := evs[total]
	if start.Event != controller.EventRunStart || start.ReadFrom == nil || start.ReadFrom.Offset == 0 {
		t.Fatalf("resumed run_start %+v: want read_from at a frame past the start", start)
	}
	after := total - int(start.ReadFrom.Seq)
	// How recent the last checkpoint is depends on the machine's load (it
	// is timed); that the resume skipped the events before it does not.
	if start.EventsRead != after || after >= total {
		t.Fatalf("resume read %d events from seq %d; %d follow it of %d", start.EventsRead, start.ReadFrom.Seq, after, total)
	}
	checkOnce(t, results(evs), n)

	seg := filepath.Join(cut, "events-0001.jsonl.zst")
	if err := os.Truncate(seg, start.ReadFrom.Offset-1); err != nil {
		t.Fatal(err)
	}
	out = search{mode: controller.ModeAsync, ranks: 3, trials: n, dir: cut, resume: true}.run(t)
	if out.err != nil || out.sum.Trials != n {
		t.Fatalf("resumed after the cut: %+v %v", out.sum, out.err)
	}
	warned := false
	for _, e := range readEvents(t, cut) {
		warned = warned || e.Event == controller.EventWarning && strings.Contains(e.Message, "reading the whole event log")
	}
	if !warned {
		t.Error("no warning that the checkpoint's position was not usable")
	}
}

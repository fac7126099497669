package controller_test

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"nasd/arch"
	"nasd/cluster"
	"nasd/controller"
	"nasd/journal"
)

// jitter gives trials different durations (0–2 ms), so that async results
// arrive out of order.
func jitter(id string) time.Duration {
	h := fnv.New32a()
	h.Write([]byte(id))
	return time.Duration(h.Sum32()%3) * time.Millisecond
}

func TestRunCompletes(t *testing.T) {
	for _, mode := range []string{"sync", "async"} {
		for _, ranks := range []int{2, 5} {
			t.Run(fmt.Sprintf("%s/ranks=%d", mode, ranks), func(t *testing.T) {
				const n = 10
				start := time.Now()
				out := search{mode: mode, ranks: ranks, trials: n, delay: jitter}.run(t)
				if out.err != nil {
					t.Fatal(out.err)
				}
				// Every round checkpoints; elapsed time must not add up across checkpoints.
				if wall := time.Since(start); out.last.Elapsed <= 0 || out.last.Elapsed > wall {
					t.Errorf("reported elapsed %v, measured %v", out.last.Elapsed, wall)
				}
				s := out.sum
				if s.Trials != n || s.OK != n || s.Failed != 0 || s.Interrupted || s.Best == nil {
					t.Fatalf("summary %+v, want %d ok trials and a best", s, n)
				}
				if len(out.calls) != n {
					t.Errorf("trainer called %d times, want %d", len(out.calls), n)
				}
				if p := out.last; p.Done != n || p.Budget != n || p.BestTrial != s.Best.TrialID || p.Running != 0 || out.nprog == 0 {
					t.Errorf("last progress %+v after %d reports, want %d of %d done, best %s", p, out.nprog, n, n, s.Best.TrialID)
				}
				evs := readEvents(t, out.dir)
				checkEvents(t, evs, mode, ranks, n)
				checkFiles(t, out.dir, evs, s)
			})
		}
	}
}

// checkEvents checks the documented events of a complete run of n trials.
func checkEvents(t *testing.T, evs []event, mode string, ranks, n int) {
	t.Helper()
	first, last := evs[0], evs[len(evs)-1]
	if first.Event != controller.EventRunStart || first.Schema != controller.SchemaVersion || first.Mode != mode ||
		first.Ranks != ranks || first.Resumed || string(first.Config) != `{"test":true}` {
		t.Errorf("first event %+v, want run_start of schema %d, mode %s, %d ranks, the config", first, controller.SchemaVersion, mode, ranks)
	}
	if last.Event != controller.EventRunEnd || last.Trials != n || last.Interrupted || last.Reason != "budget: trials" {
		t.Errorf("last event %+v, want run_end of %d trials, budget: trials", last, n)
	}
	dispatched := map[string]int{}
	for _, e := range ofKind(evs, controller.EventTrialDispatch) {
		dispatched[e.Trial]++
		if e.Rank < 1 || e.Rank >= ranks || e.ArchHash == "" {
			t.Errorf("trial_dispatched %+v: bad rank or no arch hash", e)
		}
	}
	checkOnce(t, results(evs), n)
	for _, e := range ofKind(evs, controller.EventTrialResult) {
		if dispatched[e.Trial] != 1 {
			t.Errorf("trial %s dispatched %d times", e.Trial, dispatched[e.Trial])
		}
		var a arch.Arch
		if err := json.Unmarshal(e.Arch, &a); err != nil || a.Hash() != e.ArchHash {
			t.Errorf("trial %s: arch %s does not decode to hash %s (%v)", e.Trial, e.Arch, e.ArchHash, err)
		}
		if e.Status != "ok" || len(e.ValAcc) != 3 || e.Params == 0 || e.FLOPs == 0 || e.Host == "" ||
			e.Rank < 1 || e.Start.IsZero() || e.End.Before(e.Start) || e.Seconds == nil {
			t.Errorf("trial_result %+v: missing fields", e)
		}
	}
	if len(dispatched) != n {
		t.Errorf("%d trials dispatched, want %d", len(dispatched), n)
	}
	ups := ofKind(evs, controller.EventStrategyUpdate)
	if len(ups) == 0 || ups[len(ups)-1].Trials != n {
		t.Errorf("strategy_update events %v: want the last at %d trials", ups, n)
	}
	if len(ofKind(evs, controller.EventCheckpoint)) == 0 {
		t.Error("no checkpoint event")
	}
	for _, w := range ofKind(evs, controller.EventWarning) {
		t.Errorf("warning: %s", w.Message)
	}
}

// checkFiles checks best.json, summary.json and the final checkpoint.
func checkFiles(t *testing.T, dir string, evs []event, s controller.Summary) {
	t.Helper()
	a, _, err := arch.Load(filepath.Join(dir, "best.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ofKind(evs, controller.EventTrialResult) {
		if e.Trial == s.Best.TrialID && e.ArchHash != a.Hash() {
			t.Errorf("best.json is not the architecture of the best trial %s", e.Trial)
		}
		if e.Status == "ok" && e.Reward > s.Best.Reward {
			t.Errorf("trial %s has reward %v, above the best %v", e.Trial, e.Reward, s.Best.Reward)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Trials      int  `json:"trials"`
		Interrupted bool `json:"interrupted"`
		Best        *struct {
			Trial string `json:"trial"`
		} `json:"best"`
	}
	if err := json.Unmarshal(b, &sum); err != nil || sum.Trials != s.Trials || sum.Best == nil || sum.Best.Trial != s.Best.TrialID {
		t.Errorf("summary.json %s (%v) does not match %+v", b, err, s)
	}
}

func TestSyncIsDeterministic(t *testing.T) {
	const n = 13
	var observed []string
	// Trials of a round take different times, so results reach rank 0 out
	// of order; the strategy must see them in trial order all the same.
	late := func(id string) time.Duration { return time.Duration('9'-id[len(id)-1]) * time.Millisecond / 2 }
	a := search{mode: "sync", ranks: 5, trials: n, delay: late, observed: &observed}.run(t)
	for i, id := range observed {
		if want := fmt.Sprintf("t%06d", i+1); id != want {
			t.Fatalf("observation %d is of trial %s, want %s (trial order): %v", i, id, want, observed)
		}
	}
	b := search{mode: "sync", ranks: 5, trials: n}.run(t)
	ra, rb := results(readEvents(t, a.dir)), results(readEvents(t, b.dir))
	if len(ra) != n || !reflect.DeepEqual(ra, rb) {
		t.Fatalf("two sync runs with seed 1 differ:\n%v\n%v", ra, rb)
	}
	c := search{mode: "sync", ranks: 5, trials: n, seed: 2}.run(t)
	if rc := results(readEvents(t, c.dir)); reflect.DeepEqual(ra, rc) {
		t.Fatal("seeds 1 and 2 gave the same run")
	}
}

func TestAsyncSameResults(t *testing.T) {
	const n = 16
	ref := results(readEvents(t, search{mode: "sync", ranks: 2, trials: n}.run(t).dir))
	for range 2 {
		out := search{mode: "async", ranks: 5, trials: n, delay: jitter}.run(t)
		got := results(readEvents(t, out.dir))
		if !reflect.DeepEqual(sortedByTrial(got), sortedByTrial(ref)) {
			t.Fatalf("async results differ from sync's as a set:\n%v\n%v", sortedByTrial(got), sortedByTrial(ref))
		}
	}
}

func TestTimeBudget(t *testing.T) {
	slow := func(string) time.Duration { return 5 * time.Millisecond }
	for _, mode := range []string{"sync", "async"} {
		for _, budget := range []string{"time"} {
			t.Run(mode+"/"+budget, func(t *testing.T) {
				s := search{mode: mode, ranks: 3, delay: slow, maxTime: 60 * time.Millisecond}
				start := time.Now()
				out := s.run(t)
				if out.err != nil {
					t.Fatal(out.err)
				}
				if el := time.Since(start); el > 2*time.Second || out.sum.Trials < 2 || out.sum.Interrupted {
					t.Fatalf("after %v: %+v", el, out.sum)
				}
				evs := readEvents(t, out.dir)
				end := evs[len(evs)-1]
				if end.Event != controller.EventRunEnd || end.Reason != "budget: "+budget {
					t.Fatalf("last event %+v, want run_end for budget: %s", end, budget)
				}
				checkOnce(t, results(evs), out.sum.Trials)
			})
		}
	}
}

func TestTimeoutAndPanic(t *testing.T) {
	for _, mode := range []string{"sync", "async"} {
		t.Run(mode, func(t *testing.T) {
			const n = 8
			out := search{mode: mode, ranks: 3, trials: n, timeout: 200 * time.Millisecond, panicOn: "t000003",
				delay: func(id string) time.Duration {
					if id == "t000005" {
						return time.Minute
					}
					return 0
				}}.run(t)
			if out.err != nil {
				t.Fatal(out.err)
			}
			if out.sum.Trials != n || out.sum.OK != n-2 || out.sum.Failed != 2 {
				t.Fatalf("summary %+v, want %d trials, 2 failed", out.sum, n)
			}
			for _, e := range ofKind(readEvents(t, out.dir), controller.EventTrialResult) {
				switch e.Trial {
				case "t000003":
					if e.Status != "failed" || !strings.Contains(e.Reason, "trainer bug") {
						t.Errorf("panicking trial: status %q reason %q", e.Status, e.Reason)
					}
				case "t000005":
					if e.Status != "timeout" {
						t.Errorf("slow trial: status %q reason %q", e.Status, e.Reason)
					}
				}
			}
		})
	}
}

func TestCancelCheckpoints(t *testing.T) {
	for _, mode := range []string{"sync", "async"} {
		t.Run(mode, func(t *testing.T) {
			out := search{mode: mode, ranks: 4, trials: 30, delay: jitter,
				onTrain: func(calls int, cancel func()) {
					if calls == 7 {
						cancel()
					}
				}}.run(t)
			if out.err != nil || !out.sum.Interrupted {
				t.Fatalf("cancelled run: %+v, %v; want Interrupted", out.sum, out.err)
			}
			evs := readEvents(t, out.dir)
			end := evs[len(evs)-1]
			ck := ofKind(evs, controller.EventCheckpoint)
			if end.Event != controller.EventRunEnd || !end.Interrupted || len(ck) == 0 || ck[len(ck)-1].InFlight == 0 {
				t.Fatalf("last event %+v, last checkpoint %+v: want run_end interrupted after a checkpoint with trials in flight", end, ck)
			}
			run, err := journal.Open(out.dir)
			if err != nil {
				t.Fatal(err)
			}
			defer run.Close()
			c, warnings, err := run.LoadCheckpoint()
			if err != nil || len(warnings) > 0 {
				t.Fatalf("LoadCheckpoint: %v %v", err, warnings)
			}
			var loop struct {
				InFlight []json.RawMessage `json:"in_flight"`
			}
			if err := json.Unmarshal(c.Loop, &loop); err != nil || len(loop.InFlight) != ck[len(ck)-1].InFlight {
				t.Fatalf("checkpoint loop state %s: %v", c.Loop, err)
			}
		})
	}
}

// loggedIn returns the trials with a result in the run directory.
func loggedIn(t *testing.T, dir string) map[string]bool {
	out := map[string]bool{}
	for _, r := range results(readEvents(t, dir)) {
		out[r.Trial] = true
	}
	return out
}

// checkResumed checks a resumed run against the uninterrupted reference:
// the same results (in the same order for sync), no result lost, none
// logged before the resume run again.
func checkResumed(t *testing.T, mode string, before map[string]bool, out outcome, ref []result) {
	t.Helper()
	if out.err != nil || out.sum.Interrupted {
		t.Fatalf("resumed run: %+v, %v", out.sum, out.err)
	}
	got := results(readEvents(t, out.dir))
	checkOnce(t, got, len(ref))
	if mode == "sync" && !reflect.DeepEqual(got, ref) {
		t.Fatalf("resumed sync run differs from the uninterrupted one:\n%v\n%v", got, ref)
	}
	if !reflect.DeepEqual(sortedByTrial(got), sortedByTrial(ref)) {
		t.Fatalf("resumed run's results differ from the uninterrupted one's:\n%v\n%v", sortedByTrial(got), sortedByTrial(ref))
	}
	for _, id := range out.calls {
		if before[id] {
			t.Errorf("trial %s had a logged result and ran again", id)
		}
	}
	if want := len(ref) - len(before); len(out.calls) != want {
		t.Errorf("resumed run trained %d trials, want %d (%d of %d were logged)", len(out.calls), want, len(before), len(ref))
	}
	if out.sum.Trials != len(ref) {
		t.Errorf("summary counts %d trials, want %d", out.sum.Trials, len(ref))
	}
}

func TestResumeAfterCancel(t *testing.T) {
	const n = 14
	for _, mode := range []string{"sync", "async"} {
		t.Run(mode, func(t *testing.T) {
			ref := results(readEvents(t, search{mode: mode, ranks: 5, trials: n}.run(t).dir))
			if mode == "async" {
				ref = sortedByTrial(ref)
			}
			for _, k := range []int{3, 6, 11} { // cancel when the k-th training starts
				first := search{mode: mode, ranks: 5, trials: n, delay: jitter, onTrain: func(calls int, cancel func()) {
					if calls == k {
						cancel()
					}
				}}.run(t)
				if !first.sum.Interrupted {
					t.Fatalf("k=%d: not interrupted: %+v %v", k, first.sum, first.err)
				}
				before := loggedIn(t, first.dir)
				out := search{mode: mode, ranks: 5, trials: n, dir: first.dir, resume: true, delay: jitter}.run(t)
				checkResumed(t, mode, before, out, ref)
				evs := readEvents(t, out.dir)
				starts := ofKind(evs, controller.EventRunStart)
				if len(starts) != 2 || !starts[1].Resumed {
					t.Errorf("k=%d: run_start events %+v, want a second one with resumed", k, starts)
				}
			}
		})
	}
}

func TestResumeAfterKill(t *testing.T) {
	const n = 14
	slow := func(id string) time.Duration { return time.Millisecond + 2*jitter(id) }
	for _, tc := range []struct {
		name, mode string
		at         string // "flush": copy after every flush of rank 0; "train": at every training's start, while rank 0 runs
		delay      func(string) time.Duration
	}{
		{"sync/flush", "sync", "flush", jitter},
		{"async/flush", "async", "flush", slow},
		{"async/train", "async", "train", slow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			src := filepath.Join(tmp, "run")
			var mu sync.Mutex
			var copies []string
			snap := func(k int) {
				mu.Lock()
				defer mu.Unlock()
				dst := filepath.Join(tmp, fmt.Sprintf("kill-%03d", k))
				copyDir(t, src, dst)
				copies = append(copies, dst)
			}
			s := search{mode: tc.mode, ranks: 5, trials: n, dir: src, delay: tc.delay}
			if tc.at == "flush" {
				s.afterWrite = snap
			} else {
				s.onTrain = func(calls int, _ func()) { snap(calls) }
			}
			orig := s.run(t)
			if orig.err != nil || orig.sum.Trials != n {
				t.Fatalf("%+v %v", orig.sum, orig.err)
			}
			ref := results(readEvents(t, src))
			if tc.mode == "async" {
				ref = sortedByTrial(ref)
			}
			for i, dir := range copies {
				if testing.Short() && i%3 != 0 {
					continue
				}
				before := loggedIn(t, dir)
				out := search{mode: tc.mode, ranks: 5, trials: n, dir: dir, resume: true, delay: jitter}.run(t)
				t.Logf("%s: %d results logged before the kill, %d trained after", filepath.Base(dir), len(before), len(out.calls))
				checkResumed(t, tc.mode, before, out, ref)
			}
		})
	}
}

func TestCheckpointSizeBounded(t *testing.T) {
	size := func(n int) (last, maxBytes int) {
		out := search{mode: "async", ranks: 3, trials: n, checkEvery: time.Nanosecond}.run(t)
		if out.err != nil {
			t.Fatal(out.err)
		}
		ck := ofKind(readEvents(t, out.dir), controller.EventCheckpoint)
		for _, c := range ck {
			maxBytes = max(maxBytes, c.Bytes)
		}
		return ck[len(ck)-1].Bytes, maxBytes
	}
	small, _ := size(10)
	big, bigMax := size(200)
	t.Logf("final checkpoint after 10 trials: %d bytes, after 200: %d (largest of the 200-trial run: %d)", small, big, bigMax)
	if big > small+16 || bigMax > small+2048 {
		t.Fatalf("checkpoint grows with the trials run: %d bytes after 10, %d after 200, %d at most", small, big, bigMax)
	}
}

func TestResumeNothingToDo(t *testing.T) {
	first := search{mode: "sync", ranks: 3, trials: 4}.run(t)
	out := search{mode: "sync", ranks: 3, trials: 4, dir: first.dir, resume: true}.run(t)
	if out.err != nil || out.sum.Trials != 4 || len(out.calls) != 0 {
		t.Fatalf("resuming a finished run: %+v %v, %d trainings", out.sum, out.err, len(out.calls))
	}
}

func TestConfigErrors(t *testing.T) {
	err := controller.Config{Mode: "fast", MaxTrials: -1}.Validate(1)
	for _, want := range []string{`mode "fast"`, "MaxTrials = -1", "1 rank"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}

func TestResumeRefusesOtherStrategyState(t *testing.T) {
	first := search{mode: "sync", ranks: 3, trials: 4}.run(t)
	run, err := journal.Open(first.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	c, _, err := run.LoadCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	c.Strategy = "evolution"
	if err := run.SaveCheckpoint(c); err != nil {
		t.Fatal(err)
	}
	log, err := run.NewLog(runID)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	s, _ := controller.New("random", controller.Env{Space: testSpace(t), Seed: 1})
	cfg := controller.Config{Mode: "sync", MaxTrials: 8, RunID: runID}
	_, err = controller.Run(t.Context(), cfg, s, cluster.NewInProcess(2)[0], run, log, true, nil)
	if err == nil || !strings.Contains(err.Error(), `"evolution"`) {
		t.Fatalf("resume from another strategy's checkpoint: %v", err)
	}
}

// TestHungRank: a worker that sends nothing about its trial for the trial
// timeout plus the grace ends the run with an error naming the rank and
// the trial, checkpointed; a resume runs that trial again.
func TestHungRank(t *testing.T) {
	for _, mode := range []string{controller.ModeSync, controller.ModeAsync} {
		t.Run(mode, func(t *testing.T) {
			s := search{mode: mode, ranks: 3, trials: 8, hangOn: "t000003", timeout: 200 * time.Millisecond,
				hangGrace: 200 * time.Millisecond, delay: jitter}
			start := time.Now()
			out := s.run(t)
			if out.err == nil || !strings.Contains(out.err.Error(), "t000003") || !strings.Contains(out.err.Error(), "hangs") {
				t.Fatalf("%+v %v: want an error naming the hung trial", out.sum, out.err)
			}
			if el := time.Since(start); el > 20*time.Second {
				t.Errorf("noticed after %v", el)
			}
			if mode == controller.ModeAsync && !strings.Contains(out.err.Error(), "rank ") {
				t.Errorf("error %v does not name the rank", out.err)
			}
			ck := ofKind(readEvents(t, out.dir), controller.EventCheckpoint)
			if len(ck) == 0 || ck[len(ck)-1].InFlight == 0 {
				t.Fatalf("checkpoints %+v: want the last with the hung trial in flight", ck)
			}
			res := search{mode: mode, ranks: 3, trials: 8, dir: out.dir, resume: true, timeout: time.Second}.run(t)
			if res.err != nil || res.sum.Trials != 8 || !slices.Contains(res.calls, "t000003") {
				t.Fatalf("resumed: %+v %v, trained %v", res.sum, res.err, res.calls)
			}
		})
	}
}

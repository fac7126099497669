package controller_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"nasd/arch"
	"nasd/controller"
	"nasd/journal"
)

// checkStopped checks the journal of a complete run of n trials of the
// given epochs with a stopper, and returns the epochs trained.
func checkStopped(t *testing.T, out outcome, n, epochs int) (trained int) {
	t.Helper()
	if out.err != nil || out.sum.Interrupted || out.sum.Trials != n {
		t.Fatalf("run: %+v, %v", out.sum, out.err)
	}
	evs := readEvents(t, out.dir)
	progress := map[string][]event{}
	for _, e := range ofKind(evs, controller.EventTrialProgress) {
		progress[e.Trial] = append(progress[e.Trial], e)
	}
	for _, e := range ofKind(evs, controller.EventTrialDispatch) {
		if !e.Report {
			t.Errorf("trial_dispatched %s without report", e.Trial)
		}
	}
	stopped, saved := 0, 0
	for _, e := range ofKind(evs, controller.EventTrialResult) {
		ps := progress[e.Trial]
		if e.EpochsRun == nil || *e.EpochsRun != len(e.ValAcc) || e.EpochsBudget != epochs {
			t.Errorf("trial %s: epochs_run %v epochs_budget %d, want %d and %d", e.Trial, e.EpochsRun, e.EpochsBudget, len(e.ValAcc), epochs)
		}
		trained += len(e.ValAcc)
		// Every epoch but the last of the budget was reported, in order,
		// with the value of the result's curve; only the last report can
		// say stop, and exactly the stopped trials got one.
		if want := min(len(e.ValAcc), epochs-1); len(ps) != want {
			t.Errorf("trial %s (%s, %d epochs): %d trial_progress events, want %d", e.Trial, e.Status, len(e.ValAcc), len(ps), want)
			continue
		}
		for i, p := range ps {
			if p.Epoch != i+1 || len(p.ValAcc) != 1 || p.ValAcc[0] != e.ValAcc[i] || p.Rank != e.Rank || p.Stop != (e.Status == "stopped" && i == len(ps)-1) {
				t.Errorf("trial %s: progress %+v does not match result %+v", e.Trial, p, e)
			}
		}
		switch e.Status {
		case "stopped":
			stopped++
			saved += epochs - len(e.ValAcc)
			if len(e.ValAcc) >= epochs || !strings.Contains(e.Reason, "stopped early") {
				t.Errorf("stopped trial %s ran %d of %d epochs, reason %q", e.Trial, len(e.ValAcc), epochs, e.Reason)
			}
			// The reward is over the epochs run: (best of the last 5)³, the surrogate's.
			best := slices.Max(e.ValAcc[max(0, len(e.ValAcc)-5):])
			if !loggedClose(e.Reward, best*best*best) {
				t.Errorf("stopped trial %s: reward %v, want %v³", e.Trial, e.Reward, best)
			}
		case "ok":
			if len(e.ValAcc) != epochs {
				t.Errorf("ok trial %s ran %d of %d epochs", e.Trial, len(e.ValAcc), epochs)
			}
		default:
			t.Errorf("trial %s: status %s", e.Trial, e.Status)
		}
	}
	end := evs[len(evs)-1]
	if end.Event != controller.EventRunEnd || end.Stopped != stopped || end.EpochsSaved == nil || *end.EpochsSaved != saved ||
		out.sum.Stopped != stopped || out.sum.EpochsSaved != saved || out.sum.OK+out.sum.Stopped != n || out.sum.Failed != 0 {
		t.Errorf("run_end %+v, summary %+v: want %d stopped, %d epochs saved", end, out.sum, stopped, saved)
	}
	if trained+saved != n*epochs {
		t.Errorf("%d epochs trained + %d saved ≠ %d trials × %d epochs", trained, saved, n, epochs)
	}
	if out.hooks != len(ofKind(evs, controller.EventTrialProgress)) {
		t.Errorf("the trainer reported %d epochs, the log has %d trial_progress events", out.hooks, len(ofKind(evs, controller.EventTrialProgress)))
	}
	if stopped == 0 || trained >= n*epochs {
		t.Fatalf("nothing stopped: %d epochs trained of %d", trained, n*epochs)
	}
	return trained
}

func TestEarlyStopping(t *testing.T) {
	const n, epochs = 40, 8
	for _, tc := range []struct {
		stopper string
		opts    map[string]any
	}{
		{"median", nil},                                  // min_trials 5, grace 1
		{"asha", map[string]any{"eta": 3.0}},             // rungs at epochs 1, 3
		{"asha", map[string]any{"min_epochs": int64(2)}}, // η 4: rungs at 2
	} {
		t.Run(tc.stopper, func(t *testing.T) {
			out := search{mode: "async", ranks: 4, trials: n, epochs: epochs, stopper: tc.stopper, stopperOpts: tc.opts, delay: jitter}.run(t)
			trained := checkStopped(t, out, n, epochs)
			t.Logf("%s %v: %d of %d trials stopped; %d epochs trained instead of %d (%.0f%% saved)", tc.stopper, tc.opts,
				out.sum.Stopped, n, trained, n*epochs, 100*float64(n*epochs-trained)/float64(n*epochs))
			evs := readEvents(t, out.dir)
			if s := evs[0]; s.Stopper != tc.stopper || s.Schema != controller.SchemaVersion {
				t.Errorf("run_start %+v: want stopper %s, schema %d", s, tc.stopper, controller.SchemaVersion)
			}
		})
	}
}

func TestNoStopperNoReports(t *testing.T) {
	out := search{mode: "async", ranks: 3, trials: 6, stopper: "none"}.run(t)
	if out.err != nil || out.sum.OK != 6 {
		t.Fatalf("%+v %v", out.sum, out.err)
	}
	evs := readEvents(t, out.dir)
	if out.hooks != 0 || len(ofKind(evs, controller.EventTrialProgress)) != 0 {
		t.Errorf("no stopper: %d epoch reports, %d trial_progress events; want none", out.hooks, len(ofKind(evs, controller.EventTrialProgress)))
	}
	for _, e := range ofKind(evs, controller.EventTrialDispatch) {
		if e.Report {
			t.Errorf("trial %s dispatched with report", e.Trial)
		}
	}
	if end := evs[len(evs)-1]; end.EpochsSaved != nil {
		t.Errorf("run_end without a stopper has epochs_saved %d", *end.EpochsSaved)
	}
}

func TestSyncRejectsStopper(t *testing.T) {
	cfg := controller.Config{Mode: "sync", Stopper: "median"}
	err := cfg.Validate(3)
	if err == nil || !strings.Contains(err.Error(), `stopper "median" needs mode "async"`) {
		t.Fatalf("sync with a stopper: %v", err)
	}
	out := search{mode: "sync", ranks: 2, trials: 2, stopper: "asha"}.run(t)
	if out.err == nil || !strings.Contains(out.err.Error(), `stopper "asha" needs mode "async"`) || len(out.calls) != 0 {
		t.Fatalf("sync run with asha: %v after %d trainings", out.err, len(out.calls))
	}
	for _, c := range []controller.Config{
		{Mode: "async", Stopper: "asha", StopperOptions: map[string]any{"eta": 1}, Epochs: 5},
		{Mode: "async", Stopper: "bandit"},
		{Mode: "async", Epochs: -1},
		{Mode: "async", Budget: arch.Budget{MaxFLOPs: 5}},
		{Mode: "async", Budget: arch.Budget{MaxParams: -1}, Space: testSpace(t)},
		{Mode: "async", PenaltyTargetFLOPs: -3},
		{Mode: "async", PenaltyWeight: -0.1},
		{Mode: "async", PenaltyTargetFLOPs: 10, PenaltyWeight: math.NaN()},
	} {
		if err := c.Validate(3); err == nil {
			t.Errorf("config %+v accepted", c)
		} else {
			t.Log(err)
		}
	}
}

// flopsQuantile returns the q-quantile of the FLOPs of sampled architectures.
func flopsQuantile(t *testing.T, q float64) int64 {
	space := testSpace(t)
	r := rand.New(rand.NewPCG(1, 2))
	var fs []int64
	for range 200 {
		an, err := arch.Analyze(space, space.Sample(r))
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, an.FLOPs)
	}
	slices.Sort(fs)
	return fs[int(q*float64(len(fs)-1))]
}

func TestBudgetRejects(t *testing.T) {
	limit := flopsQuantile(t, 0.5)
	for _, mode := range []string{"sync", "async"} {
		t.Run(mode, func(t *testing.T) {
			const n = 16
			out := search{mode: mode, ranks: 3, trials: n, budget: arch.Budget{MaxFLOPs: limit}}.run(t)
			if out.err != nil || out.sum.Trials != n {
				t.Fatalf("%+v %v", out.sum, out.err)
			}
			evs := readEvents(t, out.dir)
			dispatched := map[string]bool{}
			for _, e := range ofKind(evs, controller.EventTrialDispatch) {
				dispatched[e.Trial] = true
			}
			trained := map[string]bool{}
			for _, id := range out.calls {
				trained[id] = true
			}
			rejected := 0
			for _, e := range ofKind(evs, controller.EventTrialResult) {
				switch {
				case e.Status == "rejected":
					rejected++
					if e.FLOPs <= limit || e.Reward != 0 || !strings.Contains(e.Reason, "FLOPs") || !strings.Contains(e.Reason, "over budget") ||
						dispatched[e.Trial] || trained[e.Trial] {
						t.Errorf("rejected trial %+v (limit %d): dispatched %v, trained %v", e, limit, dispatched[e.Trial], trained[e.Trial])
					}
				case e.Status == "ok":
					if e.FLOPs > limit || !trained[e.Trial] {
						t.Errorf("trial %s with %d FLOPs (limit %d) ran", e.Trial, e.FLOPs, limit)
					}
				default:
					t.Errorf("trial %s: status %s", e.Trial, e.Status)
				}
			}
			t.Logf("FLOPs limit %d: %d of %d trials rejected, %d trained", limit, rejected, n, len(out.calls))
			if rejected == 0 || rejected == n || len(out.calls) != n-rejected || out.sum.Rejected != rejected || out.sum.OK != n-rejected {
				t.Errorf("%d rejected, %d trainer calls, summary %+v", rejected, len(out.calls), out.sum)
			}
			if end := evs[len(evs)-1]; end.Rejected != rejected || end.Failed != 0 {
				t.Errorf("run_end %+v: want %d rejected, 0 failed", end, rejected)
			}
			checkOnce(t, results(evs), n)
		})
	}
}

// Reference: Tan et al. 2019, "MnasNet", §3, eq. 2 (soft constraint,
// α = β = −0.07).
func TestFLOPsPenalty(t *testing.T) {
	target := flopsQuantile(t, 0.5)
	for _, w := range []float64{0, -0.5} {
		rewards := map[string]float64{}
		out := search{mode: "async", ranks: 3, trials: 10, penaltyTarget: target, penaltyWeight: w, rewards: rewards}.run(t)
		if out.err != nil {
			t.Fatal(out.err)
		}
		if w == 0 {
			w = controller.DefaultPenaltyWeight
		}
		evs := readEvents(t, out.dir)
		below, above := 0, 0
		for _, e := range ofKind(evs, controller.EventTrialResult) {
			if e.RawReward == nil || e.Penalty == nil {
				t.Fatalf("trial %s: no raw_reward or penalty", e.Trial)
			}
			// e.g. at w = −0.07 a child of twice the target: 2^−0.07 = 0.9526.
			factor := math.Pow(float64(e.FLOPs)/float64(target), w)
			if !loggedClose(*e.Penalty, factor) || !loggedClose(e.Reward, *e.RawReward*factor) {
				t.Errorf("trial %s: %d FLOPs, raw %v × penalty %v = %v; want factor %v", e.Trial, e.FLOPs, *e.RawReward, *e.Penalty, e.Reward, factor)
			}
			// The raw reward is the surrogate's: best (= last) val acc cubed.
			if last := e.ValAcc[len(e.ValAcc)-1]; !loggedClose(*e.RawReward, last*last*last) {
				t.Errorf("trial %s: raw reward %v, want %v³", e.Trial, *e.RawReward, last)
			}
			if rewards[e.Trial] != e.Reward {
				t.Errorf("trial %s: the strategy observed %v, the log says %v", e.Trial, rewards[e.Trial], e.Reward)
			}
			if e.FLOPs < target {
				below++
			} else if e.FLOPs > target {
				above++
			}
			if (e.FLOPs > target) != (e.Reward < *e.RawReward) {
				t.Errorf("trial %s: %d FLOPs vs target %d, but reward %v vs raw %v", e.Trial, e.FLOPs, target, e.Reward, *e.RawReward)
			}
		}
		if below == 0 || above == 0 {
			t.Errorf("%d trials below the target, %d above: the test wants both", below, above)
		}
	}
	if f := math.Pow(2, controller.DefaultPenaltyWeight); math.Abs(f-0.95264) > 1e-5 {
		t.Errorf("2^−0.07 = %v, want 0.95264", f)
	}
}

func TestResumeWithStopper(t *testing.T) {
	const n, epochs = 24, 6
	for _, stopper := range []string{"median", "asha"} {
		t.Run(stopper, func(t *testing.T) {
			opts := map[string]any{"min_trials": 3}
			if stopper == "asha" {
				opts = map[string]any{"eta": 2}
			}
			s := search{mode: "async", ranks: 4, trials: n, epochs: epochs, stopper: stopper, stopperOpts: opts, delay: jitter}
			first := s
			first.onReport = func(reports, epoch int, cancel func()) {
				// Mid-trial: this trial's epochs 1 and 2 were reported and
				// logged; rank 0 notices the end of its ctx at the latest
				// after answering this report.
				if reports >= 30 && epoch == 3 {
					cancel()
				}
			}
			a := first.run(t)
			if !a.sum.Interrupted {
				t.Fatalf("not interrupted: %+v %v", a.sum, a.err)
			}
			// The checkpoint holds the stopper's state.
			run, err := journal.Open(a.dir)
			if err != nil {
				t.Fatal(err)
			}
			c, _, err := run.LoadCheckpoint()
			run.Close()
			if err != nil {
				t.Fatal(err)
			}
			var loop struct {
				Name  string          `json:"stopper_name"`
				State json.RawMessage `json:"stopper_state"`
			}
			if err := json.Unmarshal(c.Loop, &loop); err != nil || loop.Name != stopper || len(loop.State) == 0 {
				t.Fatalf("checkpoint loop state %s: %v", c.Loop, err)
			}
			before := loggedIn(t, a.dir)
			s.dir, s.resume = a.dir, true
			b := s.run(t)
			if b.err != nil || b.sum.Interrupted {
				t.Fatalf("resumed: %+v %v", b.sum, b.err)
			}
			for _, id := range b.calls {
				if before[id] {
					t.Errorf("trial %s had a logged result and ran again", id)
				}
			}
			evs := readEvents(t, b.dir)
			checkOnce(t, results(evs), n)
			for _, w := range ofKind(evs, controller.EventWarning) {
				t.Errorf("warning: %s", w.Message)
			}
			// A trial in flight at the interruption restarted from scratch:
			// its reports after the resume start again at epoch 1.
			starts := ofKind(evs, controller.EventRunStart)
			if len(starts) != 2 {
				t.Fatalf("%d run_start events", len(starts))
			}
			var inFlightAgain int
			last := map[string]int{}
			for _, e := range evs {
				if e.Seq > starts[1].Seq && e.Event == controller.EventTrialProgress && e.Epoch == 1 && last[e.Trial] > 0 {
					inFlightAgain++
				}
				if e.Event == controller.EventTrialProgress {
					last[e.Trial] = e.Epoch
				}
			}
			// Totals across both segments add up; the final run_end counts
			// every stopped trial of the run, the replayed ones included.
			stopped, saved := 0, 0
			for _, e := range ofKind(evs, controller.EventTrialResult) {
				if e.Status == "stopped" {
					stopped++
					saved += epochs - len(e.ValAcc)
				}
			}
			end := evs[len(evs)-1]
			if end.Stopped != stopped || end.EpochsSaved == nil || *end.EpochsSaved != saved || b.sum.Stopped != stopped || stopped == 0 {
				t.Errorf("run_end %+v: want %d stopped, %d epochs saved", end, stopped, saved)
			}
			if inFlightAgain == 0 {
				t.Error("no trial in flight at the interruption reported again from epoch 1")
			}
			// The final stopper state is what replaying every logged result
			// into a fresh stopper gives: partial reports of the trials that
			// restarted left nothing behind.
			run, err = journal.Open(b.dir)
			if err != nil {
				t.Fatal(err)
			}
			c, _, err = run.LoadCheckpoint()
			run.Close()
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(c.Loop, &loop); err != nil {
				t.Fatal(err)
			}
			fresh := newStopper(t, stopper, epochs, opts)
			for _, e := range ofKind(evs, controller.EventTrialResult) {
				fresh.Finished(e.Trial, e.Status, e.ValAcc)
			}
			if want, _ := fresh.Snapshot(); string(loop.State) != string(want) {
				t.Errorf("final stopper state\n%s\nwant (replayed)\n%s", loop.State, want)
			}
			t.Logf("%s: %d results before the interruption, %d trained after (%d restarted from epoch 1); %d stopped, %d epochs saved of %d",
				stopper, len(before), len(b.calls), inFlightAgain, stopped, saved, n*epochs)
		})
	}
}

func TestResumeAddsStopper(t *testing.T) {
	first := search{mode: "async", ranks: 3, trials: 4, epochs: 4}.run(t)
	out := search{mode: "async", ranks: 3, trials: 8, epochs: 4, stopper: "median", dir: first.dir, resume: true}.run(t)
	if out.err != nil || out.sum.Trials != 8 {
		t.Fatalf("%+v %v", out.sum, out.err)
	}
	var found bool
	for _, w := range ofKind(readEvents(t, out.dir), controller.EventWarning) {
		found = found || strings.Contains(w.Message, `no state of stopper "median"`)
	}
	if !found {
		t.Error("no warning that the stopper starts afresh")
	}
}

// loggedClose says whether a logged number agrees with one computed from
// other logged numbers: the log holds 6 significant digits (rounded on
// arrival at rank 0), so each is off by at most 5e-6 relative, and a cube
// of one by three times that.
func loggedClose(logged, computed float64) bool {
	return math.Abs(logged-computed) <= 3e-5*math.Abs(computed)
}

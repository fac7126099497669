package controller_test

import (
	"reflect"
	"strings"
	"testing"

	"nasd/controller"
)

func newStopper(t *testing.T, name string, epochs int, opts map[string]any) controller.Stopper {
	t.Helper()
	s, err := controller.NewStopper(name, controller.StopperEnv{Epochs: epochs, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// report is one Report call and the decision it must get.
type report struct {
	trial string
	epoch int
	acc   float64
	stop  bool
}

func checkReports(t *testing.T, s controller.Stopper, rs []report) {
	t.Helper()
	for _, r := range rs {
		if got := s.Report(r.trial, r.epoch, r.acc); got != r.stop {
			t.Errorf("%s: Report(%s, epoch %d, %v) = %v, want %v", s.Name(), r.trial, r.epoch, r.acc, got, r.stop)
		}
	}
}

// medianHistory: finished trials whose running averages (Vizier's statistic)
// are, by epoch:
//
//	A [0.2 0.4 0.6]  → 0.2  0.3  0.4
//	B [0.4 0.6 0.8]  → 0.4  0.5  0.6
//	C [0.6 0.8 0.9]  → 0.6  0.7  0.7667
//	D [0.1], stopped → 0.1
//	E failed, F diverged, G rejected: not counted
//
// so the medians are: epoch 1 of {0.1 0.2 0.4 0.6} = (0.2+0.4)/2 = 0.3,
// epoch 2 of {0.3 0.5 0.7} = 0.5, epoch 3 of {0.4 0.6 0.7667} = 0.6.
func medianHistory(s controller.Stopper) {
	s.Finished("A", "ok", []float64{0.2, 0.4, 0.6})
	s.Finished("B", "ok", []float64{0.4, 0.6, 0.8})
	s.Finished("C", "ok", []float64{0.6, 0.8, 0.9})
	s.Finished("D", "stopped", []float64{0.1})
	s.Finished("E", "failed", []float64{0.9, 0.95})
	s.Finished("F", "diverged", []float64{0.99})
	s.Finished("G", "rejected", nil)
}

// Reference: Golovin et al. 2017, "Google Vizier", §3.2.2 (median stopping rule).
func TestMedianStopper(t *testing.T) {
	s := newStopper(t, "median", 3, map[string]any{"min_trials": int64(3), "grace_epochs": int64(2)})
	medianHistory(s)
	checkReports(t, s, []report{
		{"X", 1, 0.05, false}, // below the epoch-1 median 0.3, but within the grace of 2 epochs
		{"X", 2, 0.45, true},  // best so far 0.45 < median 0.5
		{"Y", 1, 0.55, false}, // grace
		{"Y", 2, 0.48, false}, // best so far is 0.55 ≥ 0.5: the trial's own statistic is its best
		{"Y", 3, 0.59, true},  // best 0.59 < 0.6
		{"Z", 2, 0.5, false},  // equal to the median: not strictly below
		{"Z", 4, 0.01, false}, // no finished trial ran 4 epochs
	})

	// min_trials 4: epoch 2 has only 3 finished trials (A, B, C), epoch 1 has 4.
	s = newStopper(t, "median", 3, map[string]any{"min_trials": 4.0})
	medianHistory(s)
	checkReports(t, s, []report{
		{"X", 1, 0.25, true},  // grace_epochs defaults to 1; 0.25 < 0.3 with 4 trials at epoch 1
		{"Y", 1, 0.35, false}, // 0.35 ≥ 0.3
		{"Y", 2, 0.36, false}, // 0.36 < 0.5, but only 3 trials reached epoch 2
	})

	// statistic "best": the finished trials' best so far (the curves rise, so
	// their values): epoch 2 of {0.4 0.6 0.8} has median 0.6.
	s = newStopper(t, "median", 3, map[string]any{"min_trials": 3, "grace_epochs": 2, "statistic": "best"})
	medianHistory(s)
	checkReports(t, s, []report{
		{"X", 2, 0.55, true}, // 0.55 < 0.6 (with "mean" it would go on: 0.55 ≥ 0.5)
		{"Y", 2, 0.6, false},
	})

	// Default min_trials is 5: four finished trials never stop anyone.
	s = newStopper(t, "median", 3, nil)
	medianHistory(s)
	checkReports(t, s, []report{{"X", 1, 0.0, false}, {"X", 2, 0.0, false}})
}

// Reference: Li et al. 2020, "A System for Massively Parallel
// Hyperparameter Tuning", Algorithm 2 (ASHA), as a stopping rule.
func TestASHAStopper(t *testing.T) {
	// η = 2, min_epochs 1, 9 epochs: rungs at 1, 2, 4, 8.
	s := newStopper(t, "asha", 9, map[string]any{"eta": int64(2)})
	checkReports(t, s, []report{
		{"a", 1, 0.5, false},  // n=1: keep ⌈1/2⌉=1, 0 above
		{"b", 1, 0.4, true},   // n=2: keep 1, 1 above (a)
		{"c", 1, 0.6, false},  // n=3: keep 2, 0 above
		{"d", 1, 0.45, true},  // n=4: keep 2, 2 above (a, c)
		{"e", 1, 0.55, false}, // n=5: keep 3, 1 above (c)
		{"f", 1, 0.5, false},  // n=6: keep 3, 2 above (c, e); a's equal 0.5 is not above
		{"a", 3, 0.1, false},  // epoch 3 is no rung
		{"a", 2, 0.7, false},  // first at rung 2
		{"c", 2, 0.6, true},   // n=2: keep 1, 1 above
		{"a", 9, 0.0, false},  // beyond the top rung
	})
	// g reaches rung 1 with the best value, then fails: it leaves the rungs.
	checkReports(t, s, []report{{"g", 1, 0.9, false}})
	s.Finished("g", "failed", []float64{0.9})
	// n=7 again without g: keep ⌈7/2⌉=4; above 0.45: a c e f = 4 → stop; with g it would be 5.
	checkReports(t, s, []report{{"h", 1, 0.45, true}})
	// A forgotten trial (in flight at a resumed checkpoint) leaves its rungs too.
	checkReports(t, s, []report{{"i", 1, 0.95, false}})
	s.Forget("i")
	// n=8 without i: keep 4; above 0.47: a c e f = 4 → stop.
	checkReports(t, s, []report{{"j", 1, 0.47, true}})

	// Defaults: η = 4, min_epochs 1; with 20 epochs the rungs are 1, 4, 16.
	s = newStopper(t, "asha", 20, nil)
	checkReports(t, s, []report{
		{"a", 1, 0.5, false}, {"b", 1, 0.6, false}, {"c", 1, 0.7, false}, {"d", 1, 0.8, false}, // n ≤ 4: keep 1, each the best so far
		{"e", 1, 0.75, false}, // n=5: keep ⌈5/4⌉=2; above 0.75: d only (1 < 2)
		{"f", 1, 0.72, true},  // n=6: keep 2; above 0.72: d, e (2)
		{"a", 2, 0.1, false},  // no rung at 2
		{"a", 4, 0.1, false},  // first at rung 4
		{"b", 16, 0.1, false}, // first at rung 16
		{"b", 20, 0.1, false}, // the budget's end is no rung
	})
	// min_epochs 2, η 3, 20 epochs: rungs 2, 6, 18.
	s = newStopper(t, "asha", 20, map[string]any{"eta": 3.0, "min_epochs": 2})
	checkReports(t, s, []report{{"a", 2, 0.5, false}, {"b", 2, 0.4, true}, {"c", 1, 0.1, false}, {"a", 6, 0.5, false}, {"b", 18, 0.5, false}})
}

// TestStopperReplay: Finished with a trial's curve records what its
// reports would have, so replaying logged results on resume rebuilds the
// state; a snapshot restored into a fresh stopper continues exactly.
func TestStopperSnapshotRestore(t *testing.T) {
	for _, tc := range []struct {
		name   string
		epochs int
		opts   map[string]any
	}{
		{"median", 4, map[string]any{"min_trials": 2}},
		{"asha", 4, map[string]any{"eta": 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newStopper(t, tc.name, tc.epochs, tc.opts)
			curves := map[string][]float64{
				"t1": {0.3, 0.5, 0.6, 0.7}, "t2": {0.5, 0.6, 0.7, 0.8}, "t3": {0.2, 0.25, 0.3, 0.35}, "t4": {0.6, 0.7},
			}
			for _, id := range []string{"t1", "t2", "t3", "t4"} {
				for e, v := range curves[id] {
					if e < 3 && a.Report(id, e+1, v) {
						curves[id] = curves[id][:e+1]
						break
					}
				}
				status := "ok"
				if len(curves[id]) < 4 {
					status = "stopped"
				}
				a.Finished(id, status, curves[id])
			}
			a.Report("t5", 1, 0.45) // in flight at the snapshot
			snap, err := a.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			b := newStopper(t, tc.name, tc.epochs, tc.opts)
			if err := b.Restore(snap); err != nil {
				t.Fatal(err)
			}
			again, _ := b.Snapshot()
			if string(again) != string(snap) {
				t.Fatalf("snapshot of the restored stopper differs:\n%s\n%s", again, snap)
			}
			// Replaying the finished trials' results into a fresh stopper
			// gives the same state, minus the trial in flight.
			c := newStopper(t, tc.name, tc.epochs, tc.opts)
			for _, id := range []string{"t1", "t2", "t3", "t4"} {
				status := "ok"
				if len(curves[id]) < 4 {
					status = "stopped"
				}
				c.Finished(id, status, curves[id])
			}
			a.Forget("t5")
			sa, _ := a.Snapshot()
			sc, _ := c.Snapshot()
			if string(sa) != string(sc) {
				t.Errorf("replayed state differs from the reported one:\nreported %s\nreplayed %s", sa, sc)
			}
			var da, db []bool
			for e := 1; e <= 3; e++ {
				for _, v := range []float64{0.1, 0.4, 0.55, 0.65, 0.9} {
					id := "n" + string(rune('0'+e))
					da = append(da, a.Report(id, e, v))
					db = append(db, c.Report(id, e, v))
				}
			}
			if !reflect.DeepEqual(da, db) {
				t.Errorf("decisions differ after replay: %v vs %v", da, db)
			}
			if err := b.Restore([]byte(`{"version":9}`)); err == nil || !strings.Contains(err.Error(), "version 9") {
				t.Errorf("restoring version 9: %v", err)
			}
		})
	}
	a := newStopper(t, "asha", 9, map[string]any{"eta": 2})
	snap, _ := a.Snapshot()
	b := newStopper(t, "asha", 9, map[string]any{"eta": 3})
	if err := b.Restore(snap); err == nil || !strings.Contains(err.Error(), "rungs are at epochs [1 2 4 8], this run's at [1 3]") {
		t.Errorf("restoring asha with other rungs: %v", err)
	}
}

func TestStopperOptions(t *testing.T) {
	if s, err := controller.NewStopper("", controller.StopperEnv{}); s != nil || err != nil {
		t.Errorf(`NewStopper(""): %v, %v; want nil, nil`, s, err)
	}
	if s, err := controller.NewStopper("none", controller.StopperEnv{Epochs: 5}); s != nil || err != nil {
		t.Errorf(`NewStopper("none"): %v, %v; want nil, nil`, s, err)
	}
	if got, want := strings.Join(controller.StopperNames(), " "), "asha median none"; got != want {
		t.Errorf("StopperNames() = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		name   string
		epochs int
		opts   map[string]any
		want   []string
	}{
		{"hyperband", 5, nil, []string{`stopper "hyperband": unknown (known: asha, median, none)`}},
		{"none", 5, map[string]any{"eta": 2}, []string{`stopper "none" takes no options, got "eta"`}},
		{"median", 5, map[string]any{"min_trials": 0, "grace_epochs": 2.5, "statistic": "p90", "window": 3, "eta": 2},
			[]string{"controller: stopper median: ", "option min_trials = 0: must be ≥ 1", "option grace_epochs = 2.5: must be an integer",
				`option statistic = "p90": must be "mean"`, `unknown option "eta", "window" (known: grace_epochs, min_trials, statistic)`}},
		{"median", 5, map[string]any{"min_trials": "5"}, []string{"option min_trials = 5: must be an integer"}},
		{"asha", 5, map[string]any{"eta": int64(1), "min_epochs": -1, "max_epochs": 9},
			[]string{"controller: stopper asha: ", "option eta = 1: must be ≥ 2", "option min_epochs = -1: must be ≥ 1",
				`unknown option "max_epochs" (known: eta, min_epochs)`}},
		{"asha", 0, nil, []string{"epoch budget is unknown (Config.Epochs = 0)"}},
		{"asha", 3, map[string]any{"min_epochs": 3}, []string{"option min_epochs = 3: must be below the trials' 3 epochs"}},
	} {
		_, err := controller.NewStopper(tc.name, controller.StopperEnv{Epochs: tc.epochs, Options: tc.opts})
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s %v: error %v does not say %q", tc.name, tc.opts, err, w)
			}
		}
	}
	// TOML integers and JSON numbers both work.
	for _, v := range []any{int64(3), 3.0, 3} {
		if _, err := controller.NewStopper("asha", controller.StopperEnv{Epochs: 10, Options: map[string]any{"eta": v}}); err != nil {
			t.Errorf("eta = %T %v: %v", v, v, err)
		}
	}
}

package rl_test

import (
	"encoding/json"
	"maps"
	"math"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"nasd/arch"
	"nasd/controller"
	"nasd/controller/random"
	"nasd/controller/rl"
)

func newRL(t testing.TB, name, space string, layers int, seed uint64, opts map[string]any) *rl.Strategy {
	t.Helper()
	sp, err := arch.New(space, arch.Options{Layers: layers})
	if err != nil {
		t.Fatal(err)
	}
	s, err := controller.New(name, controller.Env{Space: sp, Seed: seed, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	return s.(*rl.Strategy)
}

func propose(t testing.TB, s controller.Strategy, n int) []controller.Trial {
	t.Helper()
	ts, err := s.Propose(n)
	if err != nil || len(ts) != n {
		t.Fatalf("Propose(%d): %d trials, %v", n, len(ts), err)
	}
	return ts
}

// fakeReward is a deterministic reward of an architecture in [0, 1).
func fakeReward(a arch.Arch) float64 {
	h := uint64(14695981039346656037)
	for _, d := range a.Decisions {
		h = (h ^ uint64(d)) * 1099511628211
	}
	return float64(h%1000) / 1000
}

func observe(t testing.TB, s controller.Strategy, ts ...controller.Trial) {
	t.Helper()
	for _, tr := range ts {
		if err := s.Observe(controller.Result{TrialID: tr.ID, Status: "ok", Reward: fakeReward(tr.Arch)}); err != nil {
			t.Fatal(err)
		}
	}
}

func snapshot(t testing.TB, s controller.Strategy) []byte {
	t.Helper()
	b, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRegisteredAndIDs(t *testing.T) {
	for _, name := range []string{"rl", "random-policy"} {
		s := newRL(t, name, "nas", 3, 5, nil)
		if s.Name() != name {
			t.Errorf("Name() = %q, want %q", s.Name(), name)
		}
		ts := propose(t, s, 3)
		for i, tr := range ts {
			if want := random.ID(i + 1); tr.ID != want {
				t.Errorf("%s trial %d: ID %q, want %q", name, i, tr.ID, want)
			}
			if want := controller.TrialSeed(5, tr.ID); tr.Seed != want {
				t.Errorf("%s trial %s: seed %d, want %d", name, tr.ID, tr.Seed, want)
			}
			sp, _ := arch.New("nas", arch.Options{Layers: 3})
			if _, err := sp.Lower(tr.Arch); err != nil {
				t.Errorf("%s trial %s: %v", name, tr.ID, err)
			}
		}
		if got := propose(t, s, 0); len(got) != 0 {
			t.Errorf("Propose(0) = %d trials", len(got))
		}
		if _, err := s.Propose(-1); err == nil {
			t.Error("Propose(-1) is not an error")
		}
		if err := s.Observe(controller.Result{TrialID: "t999999", Status: "ok"}); err == nil {
			t.Error("observing an unknown trial is not an error")
		}
		observe(t, s, ts[0])
		if err := s.Observe(controller.Result{TrialID: ts[0].ID, Status: "ok"}); err == nil {
			t.Error("observing a trial twice is not an error")
		}
	}
}

func TestDeterminism(t *testing.T) {
	run := func(seed uint64) []controller.Trial {
		s := newRL(t, "rl", "nas", 3, seed, map[string]any{"batch": int64(4), "lr": 0.05})
		var all []controller.Trial
		for range 3 {
			ts := propose(t, s, 4)
			observe(t, s, ts...)
			all = append(all, ts...)
		}
		return all
	}
	a, b, c := run(7), run(7), run(8)
	if !reflect.DeepEqual(a, b) {
		t.Error("same seed proposed different trials")
	}
	same := 0
	for i := range a {
		if reflect.DeepEqual(a[i].Arch.Decisions, c[i].Arch.Decisions) {
			same++
		}
	}
	if same > 1 {
		t.Errorf("seeds 7 and 8 proposed %d of %d identical architectures", same, len(a))
	}
	// rl and random-policy share the initial policy: the first batch is the
	// same, and after an update they part.
	r := newRL(t, "random-policy", "nas", 3, 7, map[string]any{"batch": int64(4), "lr": 0.05})
	first := propose(t, r, 4)
	if !reflect.DeepEqual(first, a[:4]) {
		t.Error("rl and random-policy with one seed propose different first batches")
	}
}

// A snapshot taken mid-batch, with trials in flight, restored into a fresh
// strategy continues exactly: the same updates, the same proposals, the same
// bytes.
func TestSnapshotRestoreContinues(t *testing.T) {
	for _, tc := range []struct {
		name, space string
		layers      int
	}{{"rl", "nas", 3}, {"rl", "enas-macro", 4}, {"random-policy", "nas", 2}} {
		t.Run(tc.name+"/"+tc.space, func(t *testing.T) {
			opts := map[string]any{"lr": 0.02, "entropy_weight": 0.01, "grad_clip": 5.0}
			a := newRL(t, tc.name, tc.space, tc.layers, 11, opts)
			// async style: batch fixed by the first Propose (3), results one at a time
			ts := propose(t, a, 3)
			observe(t, a, ts[0])
			ts = append(ts, propose(t, a, 1)...)
			observe(t, a, ts[1], ts[2]) // update 1
			ts = append(ts, propose(t, a, 2)...)
			observe(t, a, ts[4])
			// now: ts[3], ts[5] in flight; ts[4] observed in the current batch
			snap := snapshot(t, a)
			b := newRL(t, tc.name, tc.space, tc.layers, 11, opts)
			if err := b.Restore(snap); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(snapshot(t, b), snap) {
				t.Fatal("Snapshot after Restore differs from the snapshot restored")
			}
			for _, s := range []*rl.Strategy{a, b} {
				observe(t, s, ts[5], ts[3]) // update 2
				for range 4 {
					observe(t, s, propose(t, s, 3)...)
				}
			}
			if x, y := propose(t, a, 5), propose(t, b, 5); !reflect.DeepEqual(x, y) {
				t.Fatalf("after Restore:\n%v\nwant\n%v", y, x)
			}
			if x, y := a.LastUpdate(), b.LastUpdate(); x != y || x.Updates != 6 {
				t.Fatalf("LastUpdate after Restore %+v, original %+v (want 6 updates)", y, x)
			}
			if sa, sb := snapshot(t, a), snapshot(t, b); string(sa) != string(sb) {
				t.Fatal("snapshots differ after the same steps")
			}
		})
	}
}

func TestRestoreRefuses(t *testing.T) {
	a := newRL(t, "rl", "nas", 3, 11, nil)
	observe(t, a, propose(t, a, 2)...)
	snap := snapshot(t, a)
	for _, tc := range []struct {
		what string
		s    *rl.Strategy
		b    []byte
		want string
	}{
		{"other seed", newRL(t, "rl", "nas", 3, 12, nil), snap, "seed"},
		{"other space", newRL(t, "rl", "nas", 4, 11, nil), snap, "controller"},
		{"other shape", newRL(t, "rl", "nas", 3, 11, map[string]any{"hidden": int64(20)}), snap, "hidden=20"},
		{"other strategy", newRL(t, "random-policy", "nas", 3, 11, nil), snap, "strategy"},
		{"garbage", newRL(t, "rl", "nas", 3, 11, nil), []byte("{"), "restore"},
	} {
		before := snapshot(t, tc.s)
		err := tc.s.Restore(tc.b)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Restore: %v, want an error mentioning %q", tc.what, err, tc.want)
		}
		if after := snapshot(t, tc.s); string(after) != string(before) {
			t.Errorf("%s: a refused Restore changed the strategy", tc.what)
		}
	}
}

func TestSnapshotBounded(t *testing.T) {
	s := newRL(t, "rl", "nas", 3, 1, map[string]any{"batch": int64(8)})
	observe(t, s, propose(t, s, 8)...)
	small := len(snapshot(t, s))
	for range 30 {
		observe(t, s, propose(t, s, 8)...)
	}
	if big := len(snapshot(t, s)); big > small+64 {
		t.Fatalf("snapshot grew from %d to %d bytes over 240 trials", small, big)
	}
	t.Logf("snapshot of nas 3 layers, 2×35 LSTM: %d bytes", small)
}

// Failed trials get failure_reward, early-stopped ones keep their reward;
// staleness counts the updates between proposal and result.
func TestRewardsAndStaleness(t *testing.T) {
	s := newRL(t, "rl", "nas", 2, 3, map[string]any{"batch": int64(2), "failure_reward": -0.5, "baseline_decay": 0.5})
	ts := propose(t, s, 6)
	results := []controller.Result{
		{TrialID: ts[0].ID, Status: "ok", Reward: 0.8},
		{TrialID: ts[1].ID, Status: "failed", Reward: 0.9}, // → −0.5
	}
	for _, r := range results {
		if err := s.Observe(r); err != nil {
			t.Fatal(err)
		}
	}
	u := s.LastUpdate()
	want := rl.UpdateInfo{Updates: 1, Batch: 2, MeanReward: 0.15, Baseline: 0.15}
	if u.Updates != want.Updates || u.Batch != want.Batch || !near(u.MeanReward, want.MeanReward) || !near(u.Baseline, want.Baseline) || u.MaxStaleness != 0 {
		t.Fatalf("first update %+v, want %+v", u, want)
	}
	// baseline after the batch: 0.5·(0.5·0.15 + 0.5·0.8) + 0.5·(−0.5) = −0.0125
	for _, r := range []controller.Result{
		{TrialID: ts[2].ID, Status: "stopped", Reward: 0.4},
		{TrialID: ts[3].ID, Status: "timeout"},
	} {
		if err := s.Observe(r); err != nil {
			t.Fatal(err)
		}
	}
	u = s.LastUpdate()
	if u.Updates != 2 || !near(u.MeanReward, (0.4-0.5)/2) || !near(u.Baseline, -0.0125) || u.MaxStaleness != 1 {
		t.Fatalf("second update %+v: want mean −0.05, baseline −0.0125, staleness 1", u)
	}
	if u.Entropy <= 0 || u.Loss == 0 {
		t.Fatalf("second update %+v: want a positive entropy and a loss", u)
	}
}

func near(a, b float64) bool { return a-b < 1e-12 && b-a < 1e-12 }

func TestOptions(t *testing.T) {
	sp, _ := arch.New("nas", arch.Options{Layers: 2})
	mk := func(opts map[string]any) (*rl.Strategy, error) {
		s, err := controller.New("rl", controller.Env{Space: sp, Seed: 1, Options: opts})
		if err != nil {
			return nil, err
		}
		return s.(*rl.Strategy), nil
	}
	// TOML types: ints as int64, floats as float64; an int for a float is fine.
	s, err := mk(map[string]any{"layers": int64(1), "hidden": int64(100), "temperature": int64(5), "tanh_constant": 2.5,
		"entropy_weight": 1e-4, "baseline_decay": 0.99, "lr": 0.00035, "grad_clip": 1.0, "batch": int64(16),
		"failure_reward": -1.0, "init_range": 0.1, "share_heads": true, "skip_weight": 0.8, "skip_target": 0.3})
	if err != nil {
		t.Fatal(err)
	}
	want := rl.Options{Layers: 1, Hidden: 100, Temperature: 5, TanhConstant: 2.5, EntropyWeight: 1e-4, BaselineDecay: 0.99,
		LR: 0.00035, GradClip: 1, Batch: 16, FailureReward: -1, InitRange: 0.1, ShareHeads: true, SkipWeight: 0.8, SkipTarget: 0.3}
	if got := s.Options(); got != want {
		t.Errorf("options %+v, want %+v", got, want)
	}
	if s.Batch() != 16 {
		t.Errorf("Batch() = %d, want 16", s.Batch())
	}
	if s, _ := mk(nil); s.Options() != rl.DefaultOptions() {
		t.Errorf("no options: %+v, want the defaults", s.Options())
	}
	_, err = mk(map[string]any{"beta": 1, "lstm_size": 3, "lr": 0.1})
	if err == nil || !strings.Contains(err.Error(), `rl: unknown options "beta", "lstm_size" (known: baseline_decay, batch, `) {
		t.Errorf("unknown options: %v, want both named and the known ones listed", err)
	}
	for _, bad := range []map[string]any{
		{"layers": int64(0)}, {"layers": 2.5}, {"hidden": int64(1)}, {"hidden": "35"},
		{"temperature": 0.0}, {"temperature": -1.0}, {"tanh_constant": -1.0}, {"entropy_weight": -0.1},
		{"baseline_decay": 1.0}, {"baseline_decay": -0.1}, {"lr": 0.0}, {"grad_clip": -1.0}, {"batch": int64(-1)},
		{"init_range": 0.0}, {"share_heads": int64(1)}, {"lr": "fast"}, {"skip_target": 1.0}, {"skip_weight": -1.0},
	} {
		if _, err := mk(bad); err == nil {
			t.Errorf("options %v accepted", bad)
		} else if k := reflect.ValueOf(bad).MapKeys()[0].String(); !strings.HasPrefix(err.Error(), "rl: option "+k+" = ") {
			t.Errorf("options %v: error %q does not start with \"rl: option %s = \"", bad, err, k)
		}
	}
	// Every problem at once.
	_, err = mk(map[string]any{"layers": int64(0), "lr": -1.0})
	if err == nil || !strings.Contains(err.Error(), "layers") || !strings.Contains(err.Error(), "lr") {
		t.Errorf("two bad options: %v, want both reported", err)
	}
	// Integral floats serve as ints.
	if s, err := mk(map[string]any{"hidden": 20.0}); err != nil || s.Options().Hidden != 20 {
		t.Errorf("hidden = 20.0: %v", err)
	}
	if _, err := controller.New("random-policy", controller.Env{Space: sp, Options: map[string]any{"x": 1}}); err == nil ||
		!strings.HasPrefix(err.Error(), `random-policy: unknown option "x"`) {
		t.Errorf("random-policy, unknown option: %v", err)
	}
}

// Both spaces: every decision is taken, both values of skip decisions occur,
// and the update runs.
func TestSpaces(t *testing.T) {
	for _, tc := range []struct {
		space  string
		layers int
	}{{"nas", 6}, {"enas-macro", 12}, {"nas", 1}, {"enas-macro", 1}} {
		s := newRL(t, "rl", tc.space, tc.layers, 2, map[string]any{"lr": 0.01})
		sp, _ := arch.New(tc.space, arch.Options{Layers: tc.layers})
		ds := sp.Decisions()
		seen := make([]map[int]bool, len(ds))
		for i := range seen {
			seen[i] = map[int]bool{}
		}
		for range 3 {
			ts := propose(t, s, 20)
			for _, tr := range ts {
				for i, d := range tr.Arch.Decisions {
					seen[i][d] = true
				}
			}
			observe(t, s, ts...)
		}
		if u := s.LastUpdate(); u.Updates != 3 || u.Batch != 20 {
			t.Errorf("%s %d layers: %+v, want 3 updates of 20", tc.space, tc.layers, u)
		}
		for i, d := range ds {
			if len(seen[i]) < 2 && len(d.Choices) > 1 {
				t.Errorf("%s: decision %q took only %v in 60 samples", tc.space, d.Name, seen[i])
			}
		}
	}
}

// The snapshot is JSON, as the checkpoint files store it.
func TestSnapshotIsJSON(t *testing.T) {
	s := newRL(t, "rl", "enas-macro", 3, 1, nil)
	observe(t, s, propose(t, s, 2)...)
	var m map[string]any
	if err := json.Unmarshal(snapshot(t, s), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"params", "pcg", "baseline", "adam_t", "next"} {
		if _, ok := m[k]; !ok {
			t.Errorf("snapshot lacks %q", k)
		}
	}
}

// TestOptionErrorsNameTheirFields: each problem is an *arch.FieldError whose
// Path is the option (the first unknown one for the list of unknown ones).
func TestOptionErrorsNameTheirFields(t *testing.T) {
	_, err := rl.ParseOptions("rl", map[string]any{"lr": 0.0, "hidden": int64(1), "zeta": 1, "beta": 2})
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		got = append(got, strings.Join(arch.FieldPath(e), "."))
	}
	if want := []string{"beta", "hidden", "lr"}; !reflect.DeepEqual(got, want) {
		t.Errorf("paths %q, want %q; error:\n%v", got, want, err)
	}
}

// Sample draws from the policy without proposing: no trial awaits a result,
// the trial numbering is untouched, the draws follow the seed, and a
// restored strategy samples what the original would.
func TestSample(t *testing.T) {
	a := newRL(t, "rl", "enas-macro", 4, 5, nil)
	b := newRL(t, "rl", "enas-macro", 4, 5, nil)
	xs, ys := a.Sample(6), b.Sample(6)
	if len(xs) != 6 || !reflect.DeepEqual(xs, ys) {
		t.Fatalf("same seed, different samples:\n%v\n%v", xs, ys)
	}
	distinct := map[string]bool{}
	for _, x := range xs {
		distinct[x.Hash()] = true
	}
	if len(distinct) < 2 {
		t.Fatalf("6 samples of a random policy are all one architecture")
	}
	if ts := propose(t, a, 1); ts[0].ID != "t000001" {
		t.Fatalf("after Sample the first trial is %s, want t000001", ts[0].ID)
	}
	snap := snapshot(t, a)
	c := newRL(t, "rl", "enas-macro", 4, 5, nil)
	if err := c.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if x, y := a.Sample(3), c.Sample(3); !reflect.DeepEqual(x, y) {
		t.Fatalf("after Restore:\n%v\nwant\n%v", y, x)
	}
}

// ENAS's skip penalty pulls the skip rate toward its target: with the same
// reward for every child (no signal but the penalty), 40 updates move the
// sampled skip rate from ~0.5 to near 0.15, and without it the rate stays.
// Reference: Pham et al. 2018, §2.3 (KL(p ‖ q) on the skip probabilities).
func TestSkipPenalty(t *testing.T) {
	rate := func(opts map[string]any) float64 {
		s := newRL(t, "rl", "enas-macro", 6, 3, opts)
		skip := regexp.MustCompile(`skip from`)
		var isSkip []bool
		sp, _ := arch.New("enas-macro", arch.Options{Layers: 6})
		for _, d := range sp.Decisions() {
			isSkip = append(isSkip, skip.MatchString(d.Name))
		}
		for range 40 {
			for _, tr := range propose(t, s, 8) {
				if err := s.Observe(controller.Result{TrialID: tr.ID, Status: "ok", Reward: 0.5}); err != nil {
					t.Fatal(err)
				}
			}
		}
		on, all := 0, 0
		for _, a := range s.Sample(200) {
			for k, d := range a.Decisions {
				if isSkip[k] {
					on += d
					all++
				}
			}
		}
		return float64(on) / float64(all)
	}
	base := map[string]any{"lr": 0.05, "hidden": int64(16), "layers": int64(1)}
	with := maps.Clone(base)
	with["skip_weight"], with["skip_target"] = 2.0, 0.15
	r0, r1 := rate(base), rate(with)
	t.Logf("skip rate after 40 updates: %.3f without the penalty, %.3f with it (target 0.15)", r0, r1)
	if math.Abs(r0-0.5) > 0.1 || math.Abs(r1-0.15) > 0.07 {
		t.Fatalf("skip rate %.3f without the penalty (want ~0.5), %.3f with it (want ~0.15)", r0, r1)
	}
}

// Every depth of the nas space updates, with the smallest batches: a
// 4-layer space once failed its first update in Gorgonia (a broadcast
// operand's gradient lost its unit axis and could not be added to another).
func TestEveryDepthUpdates(t *testing.T) {
	for _, layers := range []int{1, 2, 3, 4, 5, 8} {
		for batch := 1; batch <= 2; batch++ {
			s := newRL(t, "rl", "nas", layers, 11, map[string]any{"lr": 0.01})
			for range 3 {
				observe(t, s, propose(t, s, batch)...)
			}
			if u := s.LastUpdate(); u.Updates == 0 {
				t.Errorf("%d layers, batch %d: no update (%+v)", layers, batch, u)
			}
		}
	}
}

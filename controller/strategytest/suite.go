package strategytest

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"nasd/arch"
	"nasd/controller/strategy"
	"nasd/surrogate"
)

// Run runs the conformance suite on the strategy registered as name, made
// with options opts (as decoded from a config file; Run does not modify
// them). Each check is a subtest:
//
//   - Name: Name() is the registered name (checkpoints and summaries record
//     it, and resume compares it).
//   - Options: an unknown option is an error that names it; opts after a
//     JSON round trip (TOML's int64 become float64, as in a run's
//     config.json) make a strategy that proposes the same trials.
//   - Valid: every proposal, in every subtest, is checked: at most n trials
//     for Propose(n); at least one when none is in flight (else the loop
//     ends the run); IDs non-empty and unique within the run; seed =
//     strategy.TrialSeed(run seed, ID); Epochs ≥ 0; the architecture is
//     Space.Arch(decisions) of the space and passes arch.Validate; a
//     proposed trial is not modified after Propose returned it.
//   - ProposeCount: Propose(n) for n = 0, 1, 2, 3, 8 in turn; Propose(0)
//     returns nothing and changes nothing (a run with a Propose(0) before
//     every fill proposes exactly what one without does); Propose(-1)
//     neither panics nor returns trials.
//   - Deterministic: in a sync and an async run (mixed statuses), the same
//     seed gives the same proposals, IDs, seeds and architectures after the
//     same observations; the next seed gives other architectures.
//   - Statuses: results of every status the worker and rank 0 report (ok;
//     failed, error and rejected without a curve; timeout, canceled and
//     stopped with a partial curve; diverged) are accepted; a run where every
//     trial fails goes on proposing.
//   - AnyOrder: results observed in reverse trial order (sync), in random
//     order with a straggler that returns only when it is the last trial in
//     flight (async).
//   - ObserveErrors: a result for a trial never proposed, or observed
//     already, is an error (not a panic), and the strategy goes on.
//   - SnapshotRestore: in a sync and an async run, with trials in flight and
//     some observed, Restore of a Snapshot into a fresh strategy of the same
//     options continues exactly like the original (the same proposals after
//     the same observations, the in-flight results included), and so does a
//     second snapshot taken from the restored strategy; taking snapshots
//     changes nothing (a run without them proposes the same).
//   - RestoreGarbage: Restore of nil, empty, truncated, random, JSON "null",
//     "{}" and "[]" bytes returns an error and does not panic.
//   - SnapshotBounded: from 160 to 320 trials the snapshot grows by at most 32
//     bytes per trial (a hash-sized record such as a dedupe window), so
//     per-trial records (architectures, results) do not accumulate.
//   - Duplicates: in a space of 16 architectures and one of 2 (whose other
//     decisions have a single choice), runs longer than the space propose
//     repeats under new IDs and seeds, with noisy rewards, without errors,
//     panics or stalls; the harness checks that repeats did occur.
//
// Every call into the strategy is guarded: a panic, or a call that does not
// return within 20 s, fails the subtest with the call named. The standard
// space is "nas" with 3 layers (15 decisions, 1.7·10⁷ architectures); the
// objective is surrogate with noise 0.02. Runs are 80 to 320 trials with 8
// in flight or per round; testing.Short() halves them, NASD_LONG=1 makes them
// 4× longer.
func Run(t *testing.T, name string, opts map[string]any) {
	t.Helper()
	run(stdT{t}, name, opts)
}

// Layout of the standard runs.
const (
	width  = 8 // trials in flight (async) or per round (sync)
	rounds = 20
)

// scale returns n trials (or rounds) adjusted for -short and NASD_LONG.
func scale(n int) int {
	switch {
	case os.Getenv("NASD_LONG") != "":
		return 4 * n
	case testing.Short():
		return max(1, n/2)
	}
	return n
}

type suite struct {
	name  string
	opts  map[string]any
	space arch.Space
	obj   *surrogate.Objective
}

func mustSpace(name string, o arch.Options) arch.Space {
	s, err := arch.New(name, o)
	if err != nil {
		panic("strategytest: " + err.Error())
	}
	return s
}

// standardSpace is the space the suite searches.
func standardSpace() arch.Space { return mustSpace("nas", arch.Options{Layers: 3}) }

func run(t tester, name string, opts map[string]any) {
	t.Helper()
	space := standardSpace()
	s := &suite{name: name, opts: opts, space: space,
		obj: surrogate.New(space, surrogate.Options{Seed: 7, Noise: 0.02})}
	if _, err := strategy.New(name, strategy.Env{Space: space, Seed: 1, Options: maps.Clone(opts)}); err != nil {
		t.Fatalf("strategytest: %v", err)
	}
	t.run("Name", s.testName)
	t.run("Options", s.testOptions)
	t.run("Valid", s.testValid)
	t.run("ProposeCount", s.testProposeCount)
	t.run("Deterministic", s.testDeterministic)
	t.run("Statuses", s.testStatuses)
	t.run("AnyOrder", s.testAnyOrder)
	t.run("ObserveErrors", s.testObserveErrors)
	t.run("SnapshotRestore", s.testSnapshotRestore)
	t.run("RestoreGarbage", s.testRestoreGarbage)
	t.run("SnapshotBounded", s.testSnapshotBounded)
	t.run("Duplicates", s.testDuplicates)
}

// make returns a fresh strategy; each gets its own copy of the options.
func (s *suite) make(t tester, space arch.Space, seed uint64, opts map[string]any) strategy.Strategy {
	t.Helper()
	var st strategy.Strategy
	var err error
	guard(t, "strategy.New", func() {
		st, err = strategy.New(s.name, strategy.Env{Space: space, Seed: seed, Options: maps.Clone(opts)})
	})
	if err != nil {
		t.Fatalf("strategy.New(%q, seed %d): %v", s.name, seed, err)
	}
	return st
}

// driver returns a driver of a fresh strategy on the standard space.
func (s *suite) driver(t tester, label string, seed uint64, res results) *driver {
	t.Helper()
	return newDriver(t, label, s.make(t, s.space, seed, s.opts), s.space, seed, res)
}

func (s *suite) testName(t tester) {
	st := s.make(t, s.space, 1, s.opts)
	if got := st.Name(); got != s.name {
		t.Errorf("Name() = %q, registered as %q: checkpoints and summaries record Name(), and resume compares it with the run's", got, s.name)
	}
}

const bogusOption = "strategytest_no_such_option"

func (s *suite) testOptions(t tester) {
	bad := maps.Clone(s.opts)
	if bad == nil {
		bad = map[string]any{}
	}
	bad[bogusOption] = int64(1)
	var err error
	guard(t, "strategy.New with an unknown option", func() {
		_, err = strategy.New(s.name, strategy.Env{Space: s.space, Seed: 1, Options: bad})
	})
	if err == nil || !strings.Contains(err.Error(), bogusOption) {
		t.Errorf("unknown option %q: error %v, want one that names it", bogusOption, err)
	}

	b, err := json.Marshal(s.opts)
	if err != nil {
		t.Fatalf("options %v do not marshal to JSON: %v", s.opts, err)
	}
	var fromJSON map[string]any
	if err := json.Unmarshal(b, &fromJSON); err != nil {
		t.Fatalf("options %s: %v", b, err)
	}
	a := s.driver(t, "options as given", 3, okResults(s.obj))
	j := newDriver(t, "options from JSON", s.make(t, s.space, 3, fromJSON), s.space, 3, okResults(s.obj))
	n := scale(rounds / 2)
	a.rounds(n, width)
	j.rounds(n, width)
	if d := sameTrials(a.trials, j.trials); d != "" {
		t.Errorf("options %v and their JSON round trip %s propose different trials: %s", s.opts, b, d)
	}
}

func (s *suite) testValid(t tester) {
	d := s.driver(t, "sync", 1, okResults(s.obj))
	d.rounds(scale(rounds/2), width)
	a := s.driver(t, "async", 2, okResults(s.obj))
	a.steps(scale(rounds*width/2), width)
	a.drain()
	distinct := map[string]bool{}
	for _, tr := range append(d.trials, a.trials...) {
		distinct[tr.Arch.Hash()] = true
	}
	t.Logf("%d proposals checked, %d distinct architectures", len(d.trials)+len(a.trials), len(distinct))
}

func (s *suite) testProposeCount(t tester) {
	d := s.driver(t, "counts", 4, okResults(s.obj))
	ns := []int{0, 1, 2, 3, 8}
	for i := range scale(40) {
		n := ns[i%len(ns)]
		got := d.propose(n)
		if n == 0 && len(got) != 0 {
			t.Fatalf("Propose(0) returned %d trials", len(got))
		}
		// Observe about half of what is in flight, oldest first.
		for k := (len(d.flight) + 1) / 2; k > 0; k-- {
			d.observe(0)
		}
	}
	d.drain()

	// Propose(0) is a no-op.
	plain := s.driver(t, "without Propose(0)", 5, okResults(s.obj))
	zero := s.driver(t, "with Propose(0)", 5, okResults(s.obj))
	zero.zeroCall = true
	n := scale(rounds * width / 2)
	plain.steps(n, width)
	zero.steps(n, width)
	if diff := sameTrials(plain.trials, zero.trials); diff != "" {
		t.Errorf("Propose(0) before every fill changed the run: %s", diff)
	}

	// Propose(-1) must not panic or return trials; an error is fine.
	var got []strategy.Trial
	var err error
	guard(t, "Propose(-1)", func() { got, err = zero.s.Propose(-1) })
	if len(got) != 0 {
		t.Errorf("Propose(-1) returned %d trials (error %v)", len(got), err)
	}
	t.Logf("Propose(-1): %v", err)
	zero.steps(width, width)
}

func (s *suite) testDeterministic(t tester) {
	for _, mode := range []string{"sync", "async"} {
		play := func(label string, seed uint64, rounds int) *driver {
			d := s.driver(t, mode+" "+label, seed, mixedResults(s.obj))
			if mode == "sync" {
				d.rounds(rounds, width)
			} else {
				d.steps(rounds*width, width)
			}
			return d
		}
		n := scale(rounds)
		a, b, c := play("seed 11", 11, n), play("seed 11 again", 11, n), play("seed 12", 12, 4)
		if diff := sameTrials(a.trials, b.trials); diff != "" {
			t.Errorf("%s: the same seed proposed different trials: %s", mode, diff)
		}
		k := min(len(a.trials), len(c.trials), 4*width)
		same := true
		for i := range k {
			same = same && slices.Equal(a.trials[i].Arch.Decisions, c.trials[i].Arch.Decisions)
		}
		if same {
			t.Errorf("%s: seeds 11 and 12 propose the same %d architectures", mode, k)
		}
	}
}

func (s *suite) testStatuses(t tester) {
	d := s.driver(t, "mixed statuses", 21, mixedResults(s.obj))
	d.steps(scale(rounds*width), width)
	d.drain()
	d.rounds(scale(rounds/2), width)
	for _, st := range statusCycle {
		if d.statuses[st] == 0 {
			t.Errorf("internal: the run observed no result of status %q (%v)", st, d.statuses)
		}
	}
	t.Logf("statuses observed: %v", d.statuses)

	f := s.driver(t, "every trial fails", 22, failedResults)
	f.rounds(scale(rounds/2), width)
	f.steps(scale(rounds*width/2), width)
}

func (s *suite) testAnyOrder(t tester) {
	d := s.driver(t, "sync, reverse order", 31, mixedResults(s.obj))
	for range scale(rounds) {
		d.round(width, true)
	}
	a := s.driver(t, "async, straggler", 32, mixedResults(s.obj))
	a.step(width)
	a.hold = a.flight[0].ID
	a.steps(scale(rounds*width), width)
	if slices.ContainsFunc(a.flight, func(tr strategy.Trial) bool { return tr.ID == a.hold }) {
		t.Logf("straggler %s still in flight after %d results", a.hold, a.observed())
	}
	a.drain()
}

func (s *suite) testObserveErrors(t tester) {
	d := s.driver(t, "errors", 41, okResults(s.obj))
	d.propose(2) // at least one: none is in flight
	first := d.flight[0]
	d.observe(0)
	try := func(what string, r strategy.Result) {
		t.Helper()
		var err error
		guard(t, what, func() { err = d.s.Observe(r) })
		if err == nil {
			t.Errorf("%s: no error", what)
		} else {
			t.Logf("%s: %v", what, err)
		}
	}
	try("Observe of a trial never proposed", strategy.Result{TrialID: "strategytest-never-proposed", Status: "ok", Reward: 0.5})
	try("Observe of a trial observed already", strategy.Result{TrialID: first.ID, Status: "ok", Reward: 0.5})
	d.drain()
	d.steps(scale(4*width), width)
}

// snapshot and restore with the calls guarded.
func snapshot(t tester, label string, st strategy.Strategy) []byte {
	t.Helper()
	var b []byte
	var err error
	guard(t, label+": Snapshot", func() { b, err = st.Snapshot() })
	if err != nil {
		t.Fatalf("%s: Snapshot: %v", label, err)
	}
	return b
}

func (s *suite) restored(t tester, label string, seed uint64, snap []byte) strategy.Strategy {
	t.Helper()
	st := s.make(t, s.space, seed, s.opts)
	var err error
	guard(t, label+": Restore", func() { err = st.Restore(slices.Clone(snap)) })
	if err != nil {
		t.Fatalf("%s: Restore of a %d-byte snapshot: %v", label, len(snap), err)
	}
	return st
}

func (s *suite) testSnapshotRestore(t tester) {
	const seed = 51
	for _, mode := range []string{"sync", "async"} {
		// play advances d by one third of the run; a sync third ends with
		// a round half observed, so trials are in flight.
		play := func(d *driver) {
			t.Helper()
			if mode == "async" {
				d.steps(scale(rounds*width/3), width)
				return
			}
			d.drain()
			d.rounds(scale(rounds/3), width)
			d.propose(width)
			for k := len(d.flight) / 2; k > 0; k-- {
				d.observe(0)
			}
		}
		plain := s.driver(t, mode+", no snapshots", seed, mixedResults(s.obj))
		orig := s.driver(t, mode+", original", seed, mixedResults(s.obj))
		play(plain)
		play(orig)
		inFlight := len(orig.flight)
		first := orig.fork(mode+", restored once", s.restored(t, mode+" at "+fmt.Sprint(len(orig.trials)), seed, snapshot(t, mode, orig.s)))
		play(plain)
		play(orig)
		play(first)
		second := first.fork(mode+", restored twice", s.restored(t, mode+" (restored) at "+fmt.Sprint(len(first.trials)), seed, snapshot(t, mode, first.s)))
		for _, d := range []*driver{plain, orig, first, second} {
			play(d)
			d.drain()
			d.round(width, false)
		}
		if inFlight == 0 {
			t.Errorf("internal: %s: no trial was in flight at the snapshot", mode)
		}
		for _, d := range []*driver{first, second} {
			if diff := sameTrials(orig.trials, d.trials); diff != "" {
				t.Errorf("%s: %s: %s", mode, d.label, diff)
			}
		}
		if diff := sameTrials(plain.trials, orig.trials); diff != "" {
			t.Errorf("%s: taking snapshots changed the run: %s", mode, diff)
		}
	}
}

func (s *suite) testRestoreGarbage(t tester) {
	d := s.driver(t, "garbage", 61, okResults(s.obj))
	d.steps(scale(4*width), width)
	snap := snapshot(t, "garbage", d.s)
	noise := make([]byte, 256)
	r := rand.New(rand.NewPCG(61, 61))
	for i := range noise {
		noise[i] = byte(r.Uint32())
	}
	cases := []struct {
		name string
		b    []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"half a snapshot", snap[:len(snap)/2]},
		{"a snapshot less its last byte", snap[:len(snap)-1]},
		{"random bytes", noise},
		{"JSON null", []byte("null")},
		{"JSON {}", []byte("{}")},
		{"JSON []", []byte("[]")},
		{"text", []byte("not a snapshot\n")},
	}
	for _, c := range cases {
		st := s.make(t, s.space, 61, s.opts)
		var err error
		guard(t, "Restore of "+c.name, func() { err = st.Restore(c.b) })
		if err == nil {
			t.Errorf("Restore of %s (%d bytes): no error", c.name, len(c.b))
		}
	}
}

// maxGrowth is how many bytes per trial a snapshot may grow by.
const maxGrowth = 32

func (s *suite) testSnapshotBounded(t tester) {
	d := s.driver(t, "bounded", 71, mixedResults(s.obj))
	n := scale(rounds)
	d.rounds(n, width)
	small := len(snapshot(t, "bounded", d.s))
	at := len(d.trials)
	d.rounds(n, width)
	big := len(snapshot(t, "bounded", d.s))
	per := float64(big-small) / float64(len(d.trials)-at)
	t.Logf("snapshot %d bytes after %d trials, %d after %d (%.1f bytes/trial)", small, at, big, len(d.trials), per)
	if per > maxGrowth {
		t.Errorf("snapshot grew from %d bytes after %d trials to %d after %d: %.1f bytes per trial, want ≤ %d (DESIGN.md: a checkpoint's size is bounded by the strategy's state, not the run's length)",
			small, at, big, len(d.trials), per, maxGrowth)
	}
}

func (s *suite) testDuplicates(t tester) {
	spaces := []struct {
		label string
		space arch.Space
		size  int
	}{
		{"16 architectures", mustSpace("nas", arch.Options{Layers: 1, FilterSizes: []int{1, 3}, FilterCounts: []int{8, 16}, Strides: []int{1, 2}}), 16},
		{"2 architectures", mustSpace("nas", arch.Options{Layers: 1, FilterSizes: []int{3}, FilterCounts: []int{8, 16}, Strides: []int{1}}), 2},
	}
	for _, sp := range spaces {
		t.run(strings.ReplaceAll(sp.label, " ", "_"), func(t tester) {
			obj := surrogate.New(sp.space, surrogate.Options{Seed: 3, Noise: 0.05})
			d := newDriver(t, sp.label+", async", s.make(t, sp.space, 81, s.opts), sp.space, 81, okResults(obj))
			d.steps(scale(12*width), width)
			d.drain()
			d.label = sp.label + ", sync"
			d.rounds(scale(rounds/2), width)
			count := map[string]int{}
			for _, tr := range d.trials {
				count[tr.Arch.Hash()]++
			}
			if len(count) > sp.size || len(d.trials) <= sp.size {
				t.Fatalf("internal: %s: %d trials, %d distinct", sp.label, len(d.trials), len(count))
			}
			t.Logf("%s: %d trials of %d distinct architectures, all accepted", sp.label, len(d.trials), len(count))
		})
	}
}

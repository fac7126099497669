package strategytest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime/debug"
	"slices"
	"testing"
	"time"

	"nasd/arch"
	"nasd/controller/strategy"
	"nasd/surrogate"
)

// tester is the part of *testing.T the suite uses. The package's own tests
// substitute a recorder to check that the suite catches broken strategies.
type tester interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Failed() bool
	run(name string, f func(t tester)) bool
}

// stdT adapts *testing.T.
type stdT struct{ *testing.T }

func (t stdT) run(name string, f func(tester)) bool {
	return t.T.Run(name, func(t *testing.T) { f(stdT{t}) })
}

// callTimeout bounds one call into a strategy. A strategy that loops (say,
// searching a space of two architectures for a new one) fails the subtest
// with a message instead of hanging the test binary; its goroutine is left
// behind.
const callTimeout = 20 * time.Second

// guard calls f, turning a panic or a call that does not return within
// callTimeout into a fatal failure that names the call.
func guard(t tester, what string, f func()) {
	t.Helper()
	type panicked struct {
		v     any
		stack []byte
	}
	done := make(chan *panicked, 1)
	go func() {
		ok := false
		defer func() {
			if ok {
				done <- nil
				return
			}
			done <- &panicked{recover(), debug.Stack()}
		}()
		f()
		ok = true
	}()
	limit := callTimeout
	if l, ok := t.(interface{ timeout() time.Duration }); ok { // the suite's own tests
		limit = l.timeout()
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case p := <-done:
		if p != nil {
			t.Fatalf("%s panicked: %v\n%s", what, p.v, p.stack)
		}
	case <-timer.C:
		t.Fatalf("%s did not return within %v (an endless loop?)", what, limit)
	}
}

// Statuses the harness reports. The worker reports train's statuses (ok,
// diverged, timeout, canceled, error) and its own "failed"; rank 0 reports
// "stopped" (its stopper ended the trial early: a partial validation curve,
// the reward over the epochs run) and "rejected" (never run: over the static
// budget, reward 0).
var statusCycle = []string{"ok", "ok", "ok", "failed", "timeout", "diverged", "stopped", "canceled", "error", "rejected"}

// results turns a trial into its result.
type results func(strategy.Trial) strategy.Result

// okResults trains every trial on obj: status "ok".
func okResults(obj *surrogate.Objective) results {
	return func(tr strategy.Trial) strategy.Result { return obj.Train(context.Background(), tr) }
}

// mixedResults gives each trial a status from statusCycle, picked by its
// seed, shaped as the worker or rank 0 would report it: no curve and reward
// 0 for failed, error and rejected; a partial curve (and the reward of its
// best epoch) for timeout, stopped and canceled; a sanitised curve and
// reward 0 for diverged.
func mixedResults(obj *surrogate.Objective) results {
	return func(tr strategy.Trial) strategy.Result {
		r := obj.Train(context.Background(), tr)
		r.Status = statusCycle[tr.Seed%uint64(len(statusCycle))]
		cut := func(k int) {
			r.ValAcc = r.ValAcc[:k]
			r.BestValAcc, r.Reward = 0, 0
			for _, v := range r.ValAcc {
				r.BestValAcc = max(r.BestValAcc, v)
			}
			r.Reward = r.BestValAcc * r.BestValAcc * r.BestValAcc
			if k == 0 {
				r.ValAcc = nil
			}
		}
		switch r.Status {
		case "failed", "error", "rejected":
			cut(0)
			r.Reason = "strategytest: injected " + r.Status
		case "timeout", "canceled": // 0 .. epochs-1 epochs done
			cut(int((tr.Seed >> 8) % uint64(len(r.ValAcc))))
			r.Reason = "strategytest: injected " + r.Status
		case "stopped": // 1 .. epochs-1 epochs done
			cut(1 + int((tr.Seed>>8)%uint64(max(1, len(r.ValAcc)-1))))
			r.Reason = "strategytest: injected early stop"
		case "diverged":
			r.ValAcc[len(r.ValAcc)-1] = 0 // a NaN, sanitised by the worker
			r.BestValAcc, r.Reward = 0, 0
			r.Reason = "non-finite val_acc[4] = NaN"
		}
		return r
	}
}

// failedResults fails every trial.
func failedResults(tr strategy.Trial) strategy.Result {
	return strategy.Result{TrialID: tr.ID, Status: "failed", Reason: "strategytest: every trial fails"}
}

// driver plays the rank-0 loop against a strategy: it proposes, checks every
// proposal, and observes the results in a sync or an async pattern.
type driver struct {
	t       tester
	label   string // names the run in messages
	s       strategy.Strategy
	space   arch.Space
	runSeed uint64
	result  results

	pcg      *rand.PCG  // the order of async observations
	rng      *rand.Rand //
	zeroCall bool       // call Propose(0) before each fill (it must be a no-op)
	hold     string     // an async straggler: observed only when alone in flight

	flight   []strategy.Trial          // in flight, in proposal order
	pristine map[string]strategy.Trial // deep copies of the trials in flight
	ids      map[string]int            // every ID proposed → its position in trials
	trials   []strategy.Trial          // every proposal, in order
	statuses map[string]int            // observed results by status
}

func newDriver(t tester, label string, s strategy.Strategy, space arch.Space, runSeed uint64, res results) *driver {
	pcg := rand.NewPCG(runSeed, 0x6f72646572) // "order"
	return &driver{t: t, label: label, s: s, space: space, runSeed: runSeed, result: res,
		pcg: pcg, rng: rand.New(pcg),
		pristine: map[string]strategy.Trial{}, ids: map[string]int{}, statuses: map[string]int{}}
}

// fork returns a copy of d that drives s: same trials in flight, same
// history, same generator state.
func (d *driver) fork(label string, s strategy.Strategy) *driver {
	pcg := *d.pcg
	f := *d
	f.label, f.s, f.pcg, f.rng = label, s, &pcg, rand.New(&pcg)
	f.flight = slices.Clone(d.flight)
	f.trials = slices.Clone(d.trials)
	f.pristine = make(map[string]strategy.Trial, len(d.pristine))
	for k, v := range d.pristine {
		f.pristine[k] = v
	}
	f.ids = make(map[string]int, len(d.ids))
	for k, v := range d.ids {
		f.ids[k] = v
	}
	f.statuses = map[string]int{}
	return &f
}

func cloneTrial(tr strategy.Trial) strategy.Trial {
	tr.Arch.Decisions = slices.Clone(tr.Arch.Decisions)
	o := &tr.Arch.Options
	o.FilterSizes, o.FilterCounts, o.Strides = slices.Clone(o.FilterSizes), slices.Clone(o.FilterCounts), slices.Clone(o.Strides)
	o.Ops, o.ReduceAfter = slices.Clone(o.Ops), slices.Clone(o.ReduceAfter)
	return tr
}

// observed is the number of results observed.
func (d *driver) observed() int { return len(d.trials) - len(d.flight) }

// propose asks for up to n trials and checks them: at most n; at least one
// when none is in flight (the loop ends a run as "strategy done" when it gets
// none then); each valid (checkTrial). They join the trials in flight.
func (d *driver) propose(n int) []strategy.Trial {
	d.t.Helper()
	var got []strategy.Trial
	var err error
	guard(d.t, fmt.Sprintf("%s: Propose(%d) after %d trials", d.label, n, len(d.trials)), func() { got, err = d.s.Propose(n) })
	switch {
	case err != nil:
		d.t.Fatalf("%s: Propose(%d) after %d trials (%d in flight): %v", d.label, n, len(d.trials), len(d.flight), err)
	case len(got) > n:
		d.t.Fatalf("%s: Propose(%d) returned %d trials", d.label, n, len(got))
	case n > 0 && len(got) == 0 && len(d.flight) == 0:
		d.t.Fatalf("%s: Propose(%d) after %d trials returned none with none in flight: the loop would end the run as \"strategy done\"",
			d.label, n, len(d.trials))
	}
	for _, tr := range got {
		if err := d.checkTrial(tr); err != nil {
			d.t.Fatalf("%s: Propose(%d) after %d trials: trial %q: %v", d.label, n, len(d.trials), tr.ID, err)
		}
		d.ids[tr.ID] = len(d.trials)
		d.pristine[tr.ID] = cloneTrial(tr)
		d.flight = append(d.flight, tr)
		d.trials = append(d.trials, tr)
	}
	return got
}

// checkTrial checks a proposed trial: a new, non-empty ID; the seed
// strategy.TrialSeed(run seed, ID); no negative epochs; an architecture of
// the space that passes arch.Validate and is exactly what Space.Arch makes of
// its decisions (same options, so the same hash).
func (d *driver) checkTrial(tr strategy.Trial) error {
	if tr.ID == "" {
		return fmt.Errorf("empty ID")
	}
	if k, dup := d.ids[tr.ID]; dup {
		return fmt.Errorf("ID already used by proposal #%d", k+1)
	}
	if want := strategy.TrialSeed(d.runSeed, tr.ID); tr.Seed != want {
		return fmt.Errorf("seed %d, want strategy.TrialSeed(%d, %q) = %d", tr.Seed, d.runSeed, tr.ID, want)
	}
	if tr.Epochs < 0 {
		return fmt.Errorf("epochs %d: must be ≥ 0 (0 = the run's)", tr.Epochs)
	}
	return checkArch(d.space, tr.Arch)
}

func checkArch(space arch.Space, a arch.Arch) error {
	canon, err := space.Arch(a.Decisions)
	if err != nil {
		return fmt.Errorf("decisions %v: %w", a.Decisions, err)
	}
	if err := arch.Validate(space, a, arch.Budget{}); err != nil {
		return fmt.Errorf("decisions %v: %w", a.Decisions, err)
	}
	if canon.Hash() != a.Hash() {
		return fmt.Errorf("architecture %+v is not the space's own Arch(%v)", a, a.Decisions)
	}
	return nil
}

// observe takes the i-th trial in flight out of flight and gives its result
// to the strategy. The trial must not have changed since Propose returned it.
func (d *driver) observe(i int) {
	d.t.Helper()
	tr := d.flight[i]
	d.flight = slices.Delete(d.flight, i, i+1)
	orig := d.pristine[tr.ID]
	delete(d.pristine, tr.ID)
	if !reflect.DeepEqual(tr, orig) {
		d.t.Errorf("%s: trial %s changed after Propose returned it (the strategy kept and modified its slices):\nnow  %+v\nthen %+v",
			d.label, tr.ID, tr, orig)
	}
	r := d.result(orig)
	r.TrialID = orig.ID
	var err error
	guard(d.t, fmt.Sprintf("%s: Observe(%s, status %q)", d.label, r.TrialID, r.Status), func() { err = d.s.Observe(r) })
	if err != nil {
		d.t.Fatalf("%s: Observe(%s, status %q) after %d results: %v", d.label, r.TrialID, r.Status, d.observed()-1, err)
	}
	d.statuses[r.Status]++
}

// round is one sync round: propose w, observe them all in trial order (or
// in reverse).
func (d *driver) round(w int, reverse bool) {
	d.t.Helper()
	if d.zeroCall {
		d.propose(0)
	}
	if len(d.flight) > 0 {
		panic("strategytest: internal error: a sync round with trials in flight")
	}
	d.propose(w)
	for len(d.flight) > 0 {
		i := 0
		if reverse {
			i = len(d.flight) - 1
		}
		d.observe(i)
	}
}

// rounds plays n sync rounds of w trials.
func (d *driver) rounds(n, w int) {
	d.t.Helper()
	for range n {
		d.round(w, false)
	}
}

// step is one async step: fill up to w trials in flight, asking again while
// the strategy returns some, then observe one chosen at random (the
// straggler d.hold only when it is alone).
func (d *driver) step(w int) {
	d.t.Helper()
	if d.zeroCall {
		d.propose(0)
	}
	for len(d.flight) < w {
		if len(d.propose(w-len(d.flight))) == 0 {
			break
		}
	}
	i := d.rng.IntN(len(d.flight))
	if d.hold != "" && len(d.flight) > 1 {
		for d.flight[i].ID == d.hold {
			i = d.rng.IntN(len(d.flight))
		}
	}
	d.observe(i)
}

// steps plays async steps until n more results are observed.
func (d *driver) steps(n, w int) {
	d.t.Helper()
	for range n {
		d.step(w)
	}
}

// drain observes every trial in flight, in random order.
func (d *driver) drain() {
	d.t.Helper()
	for len(d.flight) > 0 {
		d.observe(d.rng.IntN(len(d.flight)))
	}
}

// sameTrials reports the first difference between two runs' proposals, or
// "" if they are the same.
func sameTrials(a, b []strategy.Trial) string {
	for i := range min(len(a), len(b)) {
		if !reflect.DeepEqual(a[i], b[i]) {
			return fmt.Sprintf("proposal #%d: %s %v (seed %d) vs %s %v (seed %d)",
				i+1, a[i].ID, a[i].Arch.Decisions, a[i].Seed, b[i].ID, b[i].Arch.Decisions, b[i].Seed)
		}
	}
	if len(a) != len(b) {
		return fmt.Sprintf("%d proposals vs %d", len(a), len(b))
	}
	return ""
}

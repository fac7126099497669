package strategytest

// The suite's own tests: a well-behaved strategy that returns fewer trials
// than asked passes it, and each of a set of broken strategies fails the
// subtest meant to catch its bug.

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"nasd/arch"
	"nasd/controller"
	"nasd/controller/random"
)

// recorder is a tester that records failures instead of reporting them, so
// that a test can run the suite on a broken strategy and check what failed.
type recorder struct {
	name   string
	limit  time.Duration // of a call into the strategy
	parent *recorder
	mu     *sync.Mutex
	fails  *[]string // "subtest: message"
	failed bool
}

// newRecorder's calls into a strategy time out after 1 s: the "hangs"
// strategy blocks without using a CPU.
func newRecorder() *recorder {
	return &recorder{limit: time.Second, mu: &sync.Mutex{}, fails: &[]string{}}
}

func (r *recorder) timeout() time.Duration    { return r.limit }
func (r *recorder) Helper()                   {}
func (r *recorder) Logf(string, ...any)       {}
func (r *recorder) Errorf(f string, a ...any) { r.fail(fmt.Sprintf(f, a...)) }
func (r *recorder) Fatalf(f string, a ...any) {
	r.fail(fmt.Sprintf(f, a...))
	runtime.Goexit()
}

func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

func (r *recorder) fail(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.fails = append(*r.fails, r.name+": "+msg)
	for p := r; p != nil; p = p.parent {
		p.failed = true
	}
}

// run runs f in its own goroutine, as testing does, so Fatalf can end it.
func (r *recorder) run(name string, f func(tester)) bool {
	c := &recorder{name: strings.TrimPrefix(r.name+"/"+name, "/"), limit: r.limit, parent: r, mu: r.mu, fails: r.fails}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(c)
	}()
	<-done
	return !c.Failed()
}

// suiteFailures runs the suite on name and returns the failures.
func suiteFailures(name string) []string {
	r := newRecorder()
	r.run("", func(t tester) { run(t, name, nil) })
	return *r.fails
}

// wrapped is the random strategy with a behaviour changed by bug.
type wrapped struct {
	controller.Strategy
	bug   string
	name  string
	seed  uint64
	space arch.Space

	calls   int
	kept    []controller.Trial  // bug "mutates-later"
	history []controller.Result // bug "growing": every result
	gen     int                 // "batch": trials of the current generation not yet proposed
	pending int                 // "batch": trials of the current generation not yet observed
}

const batchSize = 5

func init() {
	for _, bug := range []string{"", "batch", "name", "too-many", "reused-id", "seed", "invalid-arch", "global-rand", "ignores-seed",
		"stalls", "mutates-later", "panics-on-failure", "rejects-order", "accepts-unknown", "restore-noop",
		"restore-panics", "snapshot-draws", "growing", "zero-not-noop", "hangs", "ignores-options"} {
		name := "strategytest-" + bug
		if bug == "" {
			name = "strategytest-wrapped"
		}
		controller.Register(name, func(env controller.Env) (controller.Strategy, error) {
			inner := env
			if bug == "ignores-seed" {
				inner.Seed = 1
			}
			if bug == "ignores-options" {
				inner.Options = nil
			}
			s, err := random.New(inner)
			if err != nil {
				return nil, err
			}
			return &wrapped{Strategy: s, bug: bug, name: name, seed: env.Seed, space: env.Space}, nil
		})
	}
}

func (w *wrapped) Name() string {
	if w.bug == "name" {
		return "random"
	}
	return w.name
}

func (w *wrapped) Propose(n int) ([]controller.Trial, error) {
	w.calls++
	switch {
	case w.bug == "too-many" && n > 0:
		n++
	case w.bug == "zero-not-noop" && n == 0:
		_, err := w.Strategy.Propose(1)
		return nil, err
	case w.bug == "stalls" && w.calls > 10:
		return nil, nil
	case w.bug == "hangs" && w.space.Log10Size() < 0.5 && w.calls > 20:
		select {} // looking for a new architecture forever
	case w.bug == "batch":
		if w.gen == 0 && w.pending == 0 {
			w.gen, w.pending = batchSize, batchSize
		}
		n = min(n, w.gen)
		w.gen -= max(n, 0)
	}
	ts, err := w.Strategy.Propose(n)
	for i := range ts {
		tr := &ts[i]
		switch w.bug {
		case "reused-id":
			if w.calls > 3 {
				tr.ID = random.ID(1)
			}
		case "seed":
			tr.Seed++
		case "invalid-arch":
			if w.calls > 3 {
				tr.Arch.Decisions[0] = 99
			}
		case "global-rand":
			tr.Arch.Decisions[0] = rand.IntN(4)
		case "ignores-seed":
			tr.Seed = controller.TrialSeed(w.seed, tr.ID)
		}
		if w.bug == "reused-id" || w.bug == "global-rand" || w.bug == "ignores-seed" {
			tr.Seed = controller.TrialSeed(w.seed, tr.ID)
		}
	}
	if w.bug == "mutates-later" {
		for _, k := range w.kept {
			k.Arch.Decisions[0] = 0
		}
		w.kept = ts
	}
	return ts, err
}

func (w *wrapped) Observe(r controller.Result) error {
	switch w.bug {
	case "panics-on-failure":
		if r.Status != "ok" {
			panic("unknown status " + r.Status)
		}
	case "rejects-order":
		b, _ := w.Strategy.Snapshot()
		var st struct{ Pending []string }
		_ = json.Unmarshal(b, &st)
		if len(st.Pending) > 0 && st.Pending[0] != r.TrialID {
			return fmt.Errorf("result for %s before %s", r.TrialID, st.Pending[0])
		}
	case "accepts-unknown":
		_ = w.Strategy.Observe(r)
		return nil
	case "growing":
		w.history = append(w.history, r)
	}
	if err := w.Strategy.Observe(r); err != nil {
		return err
	}
	if w.bug == "batch" {
		w.pending--
	}
	return nil
}

type wrappedSnapshot struct {
	Inner   json.RawMessage     `json:"inner"`
	History []controller.Result `json:"history,omitempty"`
	Gen     int                 `json:"gen"`
	Pending int                 `json:"pending"`
}

func (w *wrapped) Snapshot() ([]byte, error) {
	if w.bug == "snapshot-draws" {
		if _, err := w.Strategy.Propose(1); err != nil {
			return nil, err
		}
	}
	inner, err := w.Strategy.Snapshot()
	if err != nil {
		return nil, err
	}
	return json.Marshal(wrappedSnapshot{Inner: inner, History: w.history, Gen: w.gen, Pending: w.pending})
}

func (w *wrapped) Restore(b []byte) error {
	if w.bug == "restore-panics" {
		_ = b[len(b)/2+8] // trusts the length
	}
	var st wrappedSnapshot
	if err := json.Unmarshal(b, &st); err != nil {
		return err
	}
	if w.bug == "restore-noop" {
		scratch, _ := random.New(controller.Env{Space: w.space, Seed: w.seed})
		return scratch.Restore(st.Inner)
	}
	if err := w.Strategy.Restore(st.Inner); err != nil {
		return err
	}
	w.history, w.gen, w.pending = st.History, st.Gen, st.Pending
	return nil
}

func TestSuitePassesGoodStrategies(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"strategytest-wrapped", "strategytest-batch"} {
		if fails := suiteFailures(name); len(fails) > 0 {
			t.Errorf("%s fails the suite:\n%s", name, strings.Join(fails, "\n"))
		}
	}
}

// TestSuiteCatchesBugs: each broken strategy fails the subtest that is
// meant to catch it (others may fail too).
func TestSuiteCatchesBugs(t *testing.T) {
	catches := map[string]string{
		"name":              "Name",
		"too-many":          "Valid",
		"reused-id":         "Valid",
		"seed":              "Valid",
		"invalid-arch":      "Valid",
		"global-rand":       "Deterministic",
		"ignores-seed":      "Deterministic",
		"stalls":            "Valid",
		"mutates-later":     "Valid",
		"panics-on-failure": "Statuses",
		"rejects-order":     "AnyOrder",
		"accepts-unknown":   "ObserveErrors",
		"restore-noop":      "SnapshotRestore",
		"restore-panics":    "RestoreGarbage",
		"snapshot-draws":    "SnapshotRestore",
		"growing":           "SnapshotBounded",
		"zero-not-noop":     "ProposeCount",
		"hangs":             "Duplicates",
		"ignores-options":   "Options",
	}
	t.Parallel()
	for _, bug := range slices.Sorted(maps.Keys(catches)) {
		sub := catches[bug]
		fails := suiteFailures("strategytest-" + bug)
		in := func(f string) bool { return strings.HasPrefix(f, sub+":") || strings.HasPrefix(f, sub+"/") }
		if !slices.ContainsFunc(fails, in) {
			t.Errorf("bug %q: subtest %s did not fail; failures:\n%s", bug, sub, strings.Join(fails, "\n"))
			continue
		}
		first := fails[slices.IndexFunc(fails, in)]
		t.Logf("%-17s caught by %s", bug, firstLine(first))
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

package evolution

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"nasd/arch"
	"nasd/controller"
)

func nasSpace(t testing.TB, layers int) arch.Space {
	t.Helper()
	s, err := arch.New("nas", arch.Options{Layers: layers})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mk(t testing.TB, name string, space arch.Space, seed uint64, opts map[string]any) controller.Strategy {
	t.Helper()
	s, err := controller.New(name, controller.Env{Space: space, Seed: seed, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// target is a toy objective: the reward is the fraction of decisions equal
// to a hidden target drawn from seed.
func target(space arch.Space, seed uint64) func(arch.Arch) float64 {
	r := rand.New(rand.NewPCG(seed, 99))
	want := space.Sample(r).Decisions
	return func(a arch.Arch) float64 {
		n := 0
		for i, d := range a.Decisions {
			if d == want[i] {
				n++
			}
		}
		return float64(n) / float64(len(want))
	}
}

func propose(t testing.TB, s controller.Strategy, n int) []controller.Trial {
	t.Helper()
	ts, err := s.Propose(n)
	if err != nil {
		t.Fatalf("Propose(%d): %v", n, err)
	}
	if len(ts) > n {
		t.Fatalf("Propose(%d) returned %d trials", n, len(ts))
	}
	return ts
}

func observe(t testing.TB, s controller.Strategy, tr controller.Trial, reward float64) {
	t.Helper()
	if err := s.Observe(controller.Result{TrialID: tr.ID, Status: "ok", Reward: reward}); err != nil {
		t.Fatal(err)
	}
}

// driver runs a strategy against an objective with a number of workers. In
// sync mode each round proposes up to `workers` trials and observes them in
// order; in async mode it keeps up to `workers` trials in flight and
// observes a uniformly chosen one (from its own seeded generator) at a time.
type driver struct {
	workers  int
	async    bool
	reward   func(arch.Arch) float64
	pcg      *rand.PCG
	rng      *rand.Rand
	inflight []controller.Trial
	trials   []controller.Trial // every trial proposed, in order
	best     float64
}

func newDriver(workers int, async bool, reward func(arch.Arch) float64, seed uint64) *driver {
	pcg := rand.NewPCG(seed, 7)
	return &driver{workers: workers, async: async, reward: reward, pcg: pcg, rng: rand.New(pcg), best: -1}
}

// clone copies the driver's state, generator included, for a strategy
// restored from a snapshot.
func (d *driver) clone() *driver {
	c := *d
	c.inflight = slices.Clone(d.inflight)
	c.trials = slices.Clone(d.trials)
	b, err := d.pcg.MarshalBinary()
	if err != nil {
		panic(err)
	}
	c.pcg = &rand.PCG{}
	if err := c.pcg.UnmarshalBinary(b); err != nil {
		panic(err)
	}
	c.rng = rand.New(c.pcg)
	return &c
}

func (d *driver) result(s controller.Strategy, t testing.TB, tr controller.Trial) {
	t.Helper()
	r := d.reward(tr.Arch)
	d.best = max(d.best, r)
	observe(t, s, tr, r)
}

// run proposes until `budget` trials have been proposed in all and every
// one has been observed.
func (d *driver) run(t testing.TB, s controller.Strategy, budget int) {
	t.Helper()
	for len(d.trials) < budget || len(d.inflight) > 0 {
		if room := min(d.workers-len(d.inflight), budget-len(d.trials)); room > 0 {
			ts := propose(t, s, room)
			d.trials = append(d.trials, ts...)
			d.inflight = append(d.inflight, ts...)
		}
		if len(d.inflight) == 0 {
			t.Fatalf("%s: nothing in flight and nothing proposed after %d trials", s.Name(), len(d.trials))
		}
		if !d.async {
			for _, tr := range d.inflight {
				d.result(s, t, tr)
			}
			d.inflight = d.inflight[:0]
			continue
		}
		i := d.rng.IntN(len(d.inflight))
		tr := d.inflight[i]
		d.inflight = slices.Delete(d.inflight, i, i+1)
		d.result(s, t, tr)
	}
}

// hamming counts the decisions where a and b differ.
func hamming(a, b []int) int {
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

func sameTrials(t *testing.T, what string, a, b []controller.Trial) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d trials vs %d", what, len(a), len(b))
	}
	for i := range a {
		if !reflect.DeepEqual(a[i], b[i]) {
			t.Fatalf("%s: trial %d differs:\n%+v\n%+v", what, i, a[i], b[i])
		}
	}
}

// variants are the three ways to run the package's strategies, with small
// populations to keep tests fast.
var variants = []struct {
	name, strategy string
	opts           map[string]any
}{
	{"ga", NameGA, map[string]any{"population": int64(10)}},
	{"ga-steady", NameGA, map[string]any{"population": int64(10), "steady_state": true}},
	{"aging", NameAging, map[string]any{"population": int64(10), "sample": int64(3)}},
}

package evolution

import (
	"math"
	"slices"
	"strings"
	"testing"

	"nasd/arch"
	"nasd/controller"
	"nasd/controller/random"
)

func TestRegistered(t *testing.T) {
	names := controller.Names()
	for _, n := range []string{"ga", "aging-evolution"} {
		if !slices.Contains(names, n) {
			t.Errorf("%q not registered (known: %v)", n, names)
		}
	}
}

func TestSameSeedSameProposals(t *testing.T) {
	space := nasSpace(t, 3)
	for _, v := range variants {
		for _, async := range []bool{false, true} {
			run := func(seed uint64) []controller.Trial {
				d := newDriver(4, async, target(space, 1), 3)
				d.run(t, mk(t, v.strategy, space, seed, v.opts), 60)
				return d.trials
			}
			a, b, c := run(1), run(1), run(2)
			sameTrials(t, v.name, a, b)
			if slices.EqualFunc(a, c, func(x, y controller.Trial) bool { return slices.Equal(x.Arch.Decisions, y.Arch.Decisions) }) {
				t.Errorf("%s: seeds 1 and 2 propose the same architectures", v.name)
			}
			for i, tr := range a {
				if want := random.ID(i + 1); tr.ID != want {
					t.Fatalf("%s: trial %d has ID %q, want %q", v.name, i, tr.ID, want)
				}
				if want := controller.TrialSeed(1, tr.ID); tr.Seed != want {
					t.Fatalf("%s: trial %s seed %d, want TrialSeed = %d", v.name, tr.ID, tr.Seed, want)
				}
				if err := arch.Validate(space, tr.Arch, arch.Budget{}); err != nil {
					t.Fatalf("%s: trial %s: %v", v.name, tr.ID, err)
				}
			}
		}
	}
}

func TestProposeRespectsN(t *testing.T) {
	space := nasSpace(t, 2)
	for _, v := range variants {
		s := mk(t, v.strategy, space, 1, v.opts)
		if _, err := s.Propose(-1); err == nil {
			t.Errorf("%s: Propose(-1) is not an error", v.name)
		}
		if ts := propose(t, s, 0); len(ts) != 0 {
			t.Errorf("%s: Propose(0) returned %d", v.name, len(ts))
		}
		if ts := propose(t, s, 3); len(ts) != 3 {
			t.Errorf("%s: Propose(3) returned %d", v.name, len(ts))
		}
		if err := s.Observe(controller.Result{TrialID: "t999999", Status: "ok"}); err == nil {
			t.Errorf("%s: observing an unknown trial is not an error", v.name)
		}
	}
	// Async strategies never wait: 25 at once, beyond the population.
	for _, v := range variants[1:] {
		if ts := propose(t, mk(t, v.strategy, space, 1, v.opts), 25); len(ts) != 25 {
			t.Errorf("%s: Propose(25) returned %d", v.name, len(ts))
		}
	}
}

// The generational GA hands out its generation over several calls, waits for
// every result, then breeds, keeping the elite.
func TestGAGenerations(t *testing.T) {
	space := nasSpace(t, 3)
	s := mk(t, "ga", space, 4, map[string]any{"population": int64(6), "elite": int64(2)}).(*GA)
	var gen0 []controller.Trial
	for _, want := range []int{4, 2, 0} {
		ts := propose(t, s, 4)
		if len(ts) != want {
			t.Fatalf("Propose(4) in generation 0: %d trials, want %d", len(ts), want)
		}
		gen0 = append(gen0, ts...)
	}
	rewards := []float64{0.3, 0.9, 0.1, 0.5, 0.8, 0.2}
	for i, tr := range gen0[:5] {
		observe(t, s, tr, rewards[i])
	}
	if ts := propose(t, s, 4); len(ts) != 0 || s.Generation() != 0 {
		t.Fatalf("with one result missing: %d trials, generation %d; want 0, 0", len(ts), s.Generation())
	}
	observe(t, s, gen0[5], rewards[5])
	if err := s.Observe(controller.Result{TrialID: gen0[5].ID, Status: "ok"}); err == nil {
		t.Error("observing a trial twice is not an error")
	}
	gen1 := propose(t, s, 10)
	if len(gen1) != 4 || s.Generation() != 1 {
		t.Fatalf("generation 1: %d trials, generation %d; want 4 (population − elite), 1", len(gen1), s.Generation())
	}
	if gen1[0].ID != "t000007" {
		t.Errorf("generation 1 starts at %s, want t000007", gen1[0].ID)
	}
	// The elites are the two best of generation 0, with their IDs and
	// fitness, and are not proposed again.
	elites := s.Population()
	if len(elites) != 2 || elites[0].ID != gen0[1].ID || elites[0].Fitness != 0.9 || elites[1].ID != gen0[4].ID || elites[1].Fitness != 0.8 {
		t.Fatalf("elites %+v, want %s (0.9) and %s (0.8)", elites, gen0[1].ID, gen0[4].ID)
	}
	if !slices.Equal(elites[0].Decisions, gen0[1].Arch.Decisions) {
		t.Error("the elite's decisions changed")
	}
	for _, tr := range gen1 {
		for _, old := range gen0 {
			if slices.Equal(tr.Arch.Decisions, old.Arch.Decisions) {
				t.Errorf("child %s repeats %s (dedupe is on)", tr.ID, old.ID)
			}
		}
	}
	// Worse children: the elites survive another generation.
	for _, tr := range gen1 {
		observe(t, s, tr, 0.05)
	}
	gen2 := propose(t, s, 10)
	elites = s.Population()
	if len(gen2) != 4 || elites[0].ID != gen0[1].ID || elites[1].ID != gen0[4].ID {
		t.Fatalf("generation 2: %d trials, elites %+v", len(gen2), elites)
	}
	// A better child displaces the weaker elite.
	for i, tr := range gen2 {
		observe(t, s, tr, []float64{0.1, 0.95, 0.1, 0.1}[i])
	}
	propose(t, s, 1)
	if elites = s.Population(); elites[0].ID != gen2[1].ID || elites[1].ID != gen0[1].ID {
		t.Fatalf("generation 3 elites %s, %s; want %s (0.95), %s (0.9)", elites[0].ID, elites[1].ID, gen2[1].ID, gen0[1].ID)
	}
}

func TestGASteadyStateReplacesWorst(t *testing.T) {
	space := nasSpace(t, 3)
	s := mk(t, "ga", space, 2, map[string]any{"population": int64(4), "steady_state": true}).(*GA)
	first := propose(t, s, 4)
	for i, tr := range first {
		observe(t, s, tr, []float64{0.9, 0.1, 0.5, 0.3}[i])
	}
	ids := func() []string {
		var out []string
		for _, m := range s.Population() {
			out = append(out, m.ID)
		}
		return out
	}
	c := propose(t, s, 2)
	observe(t, s, c[0], 0.7)
	if got, want := ids(), []string{first[0].ID, first[2].ID, first[3].ID, c[0].ID}; !slices.Equal(got, want) {
		t.Fatalf("after a 0.7 child: population %v, want %v (the 0.1 member gone)", got, want)
	}
	observe(t, s, c[1], 0.05)
	if got, want := ids(), []string{first[0].ID, first[2].ID, first[3].ID, c[0].ID}; !slices.Equal(got, want) {
		t.Fatalf("after a 0.05 child: population %v, want %v (the child itself gone)", got, want)
	}
}

func TestAgingRemovesOldest(t *testing.T) {
	space := nasSpace(t, 3)
	s := mk(t, "aging-evolution", space, 2, map[string]any{"population": int64(4), "sample": int64(2)}).(*Aging)
	first := propose(t, s, 4)
	for i, tr := range first {
		observe(t, s, tr, []float64{0.9, 0.1, 0.5, 0.3}[i])
	}
	c := propose(t, s, 1)[0]
	// The child is a mutant of a population member: one decision apart.
	near := false
	for _, m := range s.Population() {
		near = near || hamming(m.Decisions, c.Arch.Decisions) == 1
	}
	if !near {
		t.Errorf("child %v is not a one-decision mutant of the population", c.Arch.Decisions)
	}
	observe(t, s, c, 0)
	var ids []string
	for _, m := range s.Population() {
		ids = append(ids, m.ID)
	}
	if want := []string{first[1].ID, first[2].ID, first[3].ID, c.ID}; !slices.Equal(ids, want) {
		t.Fatalf("population %v, want %v: the oldest (and best) leaves, the worst child stays", ids, want)
	}
}

// Every aging child after the first population is one mutation from a
// member of the population it was bred from.
func TestAgingChildrenAreNeighbours(t *testing.T) {
	space := nasSpace(t, 3)
	s := mk(t, "aging-evolution", space, 9, map[string]any{"population": int64(8), "sample": int64(3)}).(*Aging)
	reward := target(space, 9)
	for _, tr := range propose(t, s, 8) {
		observe(t, s, tr, reward(tr.Arch))
	}
	for range 100 {
		pop := s.Population()
		tr := propose(t, s, 1)[0]
		ok := false
		for _, m := range pop {
			a, _ := space.Arch(m.Decisions)
			for _, n := range space.Neighbours(a) {
				ok = ok || slices.Equal(n.Decisions, tr.Arch.Decisions)
			}
		}
		if !ok {
			t.Fatalf("%s %v is no neighbour of the population", tr.ID, tr.Arch.Decisions)
		}
		observe(t, s, tr, reward(tr.Arch))
	}
}

func TestFitness(t *testing.T) {
	space := nasSpace(t, 2)
	s := mk(t, "aging-evolution", space, 1, map[string]any{"population": int64(5), "failure_reward": -1.0}).(*Aging)
	ts := propose(t, s, 5)
	results := []controller.Result{
		{Status: "ok", Reward: 0.4},
		{Status: "stopped", Reward: 0.2},
		{Status: "diverged", Reward: 0.9},
		{Status: "failed", Reward: 0.9},
		{Status: "ok", Reward: math.NaN()},
	}
	for i, r := range results {
		r.TrialID = ts[i].ID
		if err := s.Observe(r); err != nil {
			t.Fatal(err)
		}
	}
	var got []float64
	for _, m := range s.Population() {
		got = append(got, m.Fitness)
	}
	if want := []float64{0.4, 0.2, -1, -1, -1}; !slices.Equal(got, want) {
		t.Fatalf("fitness %v, want %v", got, want)
	}
	if b, ok := s.Best(); !ok || b.ID != ts[0].ID {
		t.Errorf("best %+v, want %s", b, ts[0].ID)
	}
}

// A budget that rejects most architectures: no proposal breaks it, whatever
// the objective pushes towards.
func TestInvalidNeverProposed(t *testing.T) {
	space := nasSpace(t, 3)
	var params []int
	r := newDriver(1, false, nil, 1).rng
	for range 200 {
		an, err := arch.Analyze(space, space.Sample(r))
		if err != nil {
			t.Fatal(err)
		}
		params = append(params, an.Params)
	}
	slices.Sort(params)
	limit := params[len(params)/5] // about 80% of random architectures are over
	budget := arch.Budget{MaxParams: limit}
	// The objective rewards size: evolution presses against the limit.
	bigger := func(a arch.Arch) float64 {
		an, err := arch.Analyze(space, a)
		if err != nil {
			t.Fatal(err)
		}
		return float64(an.Params) / float64(limit)
	}
	for _, v := range variants {
		opts := map[string]any{"max_params": int64(limit)}
		for k, x := range v.opts {
			opts[k] = x
		}
		s := mk(t, v.strategy, space, 5, opts)
		d := newDriver(3, false, bigger, 1)
		d.run(t, s, 80)
		for _, tr := range d.trials {
			if err := arch.Validate(space, tr.Arch, budget); err != nil {
				t.Fatalf("%s proposed %s, which is invalid: %v", v.name, tr.ID, err)
			}
		}
		if d.best < 0.8 {
			t.Errorf("%s: best params/limit %.2f; the search should approach the limit", v.name, d.best)
		}
		// A budget nothing meets is an error, not an invalid trial.
		opts["max_params"] = int64(1)
		s = mk(t, v.strategy, space, 5, opts)
		ts, err := s.Propose(2)
		if err == nil || len(ts) != 0 || !strings.Contains(err.Error(), "no valid architecture") {
			t.Errorf("%s with max_params = 1: %d trials, error %v", v.name, len(ts), err)
		}
	}
}

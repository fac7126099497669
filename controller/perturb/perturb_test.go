package perturb_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"nasd/arch"
	"nasd/controller/perturb"
	"nasd/controller/strategy"
)

func newSpace(t *testing.T, name string, o arch.Options) arch.Space {
	t.Helper()
	s, err := arch.New(name, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// oneAway counts the architectures one decision away: Σ (choices − 1).
func oneAway(s arch.Space) int {
	n := 0
	for _, d := range s.Decisions() {
		n += len(d.Choices) - 1
	}
	return n
}

func newStrategy(t *testing.T, s arch.Space, seed uint64, opts map[string]any) *perturb.Strategy {
	t.Helper()
	st, err := strategy.New(perturb.Name, strategy.Env{Space: s, Seed: seed, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	return st.(*perturb.Strategy)
}

// all proposes and observes everything, n at a time, and returns the trials.
func all(t *testing.T, s *perturb.Strategy, n int) []strategy.Trial {
	t.Helper()
	var out []strategy.Trial
	for {
		tr, err := s.Propose(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(tr) == 0 {
			break
		}
		for _, x := range tr {
			if err := s.Observe(strategy.Result{TrialID: x.ID, Status: "ok"}); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, tr...)
	}
	if !s.Done() {
		t.Error("Done() = false after every trial was observed")
	}
	return out
}

func TestNeighboursNAS(t *testing.T) {
	space := newSpace(t, "nas", arch.Options{Layers: 2})
	base := make([]int, len(space.Decisions()))
	base[0] = 1
	s := newStrategy(t, space, 1, map[string]any{"arch": toAny(base), "repeats": int64(3)})
	p := s.Plan()
	if p.Invalid != 0 || len(p.Neighbours) != oneAway(space) {
		t.Fatalf("nas/2: %d neighbours, %d invalid; want %d, 0", len(p.Neighbours), p.Invalid, oneAway(space))
	}
	trials := all(t, s, 4)
	if len(trials) != 3+oneAway(space) {
		t.Fatalf("%d trials, want %d", len(trials), 3+oneAway(space))
	}
	seeds := map[uint64]bool{}
	for i, tr := range trials {
		if tr.ID != strategy.TrialID(i+1) || tr.Seed != strategy.TrialSeed(1, tr.ID) {
			t.Errorf("trial %d: ID %s seed %d, want %s and TrialSeed", i, tr.ID, tr.Seed, strategy.TrialID(i+1))
		}
		seeds[tr.Seed] = true
		diff := 0
		for k := range base {
			if tr.Arch.Decisions[k] != base[k] {
				diff++
			}
		}
		if (i < 3 && diff != 0) || (i >= 3 && diff != 1) {
			t.Errorf("trial %d %v differs from the base in %d decisions", i, tr.Arch.Decisions, diff)
		}
	}
	if len(seeds) != len(trials) {
		t.Errorf("%d distinct seeds for %d trials: the repeats must train with other seeds", len(seeds), len(trials))
	}
	// Decision order: the changed decision's index never decreases.
	last := -1
	for _, tr := range trials[3:] {
		k := -1
		for j := range base {
			if tr.Arch.Decisions[j] != base[j] {
				k = j
			}
		}
		if k < last {
			t.Fatalf("neighbour %v out of decision order", tr.Arch.Decisions)
		}
		last = k
	}
}

func TestNeighboursENASMacro(t *testing.T) {
	space := newSpace(t, "enas-macro", arch.Options{Layers: 4})
	base := make([]int, len(space.Decisions()))
	s := newStrategy(t, space, 7, map[string]any{"arch": toAny(base), "neighbour_repeats": int64(2), "repeats": int64(1)})
	p := s.Plan()
	if len(p.Neighbours)+p.Invalid != oneAway(space) {
		t.Fatalf("enas-macro/4: %d neighbours + %d invalid, want %d", len(p.Neighbours), p.Invalid, oneAway(space))
	}
	trials := all(t, s, 5)
	if len(trials) != 1+2*len(p.Neighbours) {
		t.Fatalf("%d trials, want 1 + 2×%d", len(trials), len(p.Neighbours))
	}
	for i := 1; i < len(trials); i += 2 {
		if !slices.Equal(trials[i].Arch.Decisions, trials[i+1].Arch.Decisions) || trials[i].Seed == trials[i+1].Seed {
			t.Fatalf("trials %d and %d: a neighbour's two repeats must be the same architecture with other seeds", i+1, i+2)
		}
	}
}

// failing is a space whose networks with decision 0 set to 2 do not lower.
type failing struct{ arch.Space }

func (f failing) Lower(a arch.Arch) (*arch.Graph, error) {
	if len(a.Decisions) > 0 && a.Decisions[0] == 2 {
		return nil, errors.New("test: decision 0 = 2 does not lower")
	}
	return f.Space.Lower(a)
}

func TestInvalidSkipped(t *testing.T) {
	space := failing{newSpace(t, "nas", arch.Options{Layers: 2})}
	base := make([]int, len(space.Decisions()))
	s := newStrategy(t, space, 1, map[string]any{"arch": toAny(base)})
	p := s.Plan()
	if p.Invalid != 1 || len(p.Neighbours) != oneAway(space)-1 {
		t.Fatalf("%d neighbours, %d invalid; want %d, 1", len(p.Neighbours), p.Invalid, oneAway(space)-1)
	}
	for _, tr := range all(t, s, 100) {
		if tr.Arch.Decisions[0] == 2 {
			t.Errorf("invalid neighbour %v proposed", tr.Arch.Decisions)
		}
	}
	// An invalid base is an error naming the option.
	base[0] = 2
	_, err := strategy.New(perturb.Name, strategy.Env{Space: space, Seed: 1, Options: map[string]any{"arch": toAny(base)}})
	if err == nil || !strings.Contains(err.Error(), "option arch") {
		t.Errorf("invalid base: err = %v, want one naming option arch", err)
	}
}

func TestSample(t *testing.T) {
	space := newSpace(t, "nas", arch.Options{Layers: 2})
	base := make([]int, len(space.Decisions()))
	opts := map[string]any{"arch": toAny(base), "sample": int64(5), "repeats": int64(2)}
	list := func(seed uint64) string {
		return fmt.Sprint(decisions(all(t, newStrategy(t, space, seed, opts), 3)))
	}
	a, b, c := list(1), list(1), list(2)
	if a != b {
		t.Errorf("same seed, other samples:\n%s\n%s", a, b)
	}
	if a == c {
		t.Errorf("seeds 1 and 2 drew the same sample %s", a)
	}
	s := newStrategy(t, space, 1, opts)
	if p := s.Plan(); len(p.Neighbours) != 5 || p.Valid != oneAway(space) || p.Len() != 7 {
		t.Errorf("sample 5: %d neighbours of %d, %d trials; want 5 of %d, 7", len(p.Neighbours), p.Valid, p.Len(), oneAway(space))
	}
	// A sample larger than the neighbourhood takes all of it.
	opts["sample"] = int64(1000)
	if p := newStrategy(t, space, 1, opts).Plan(); len(p.Neighbours) != oneAway(space) {
		t.Errorf("sample 1000: %d neighbours, want all %d", len(p.Neighbours), oneAway(space))
	}
}

func TestSnapshotRestore(t *testing.T) {
	space := newSpace(t, "nas", arch.Options{Layers: 2})
	base := make([]int, len(space.Decisions()))
	opts := map[string]any{"arch": toAny(base), "sample": int64(6)}
	ref := decisions(all(t, newStrategy(t, space, 3, opts), 2))

	s := newStrategy(t, space, 3, opts)
	first, _ := s.Propose(4)
	for _, tr := range first[:2] { // two observed, two in flight
		if err := s.Observe(strategy.Result{TrialID: tr.ID}); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	r := newStrategy(t, space, 3, opts)
	if err := r.Restore(snap); err != nil {
		t.Fatal(err)
	}
	for _, tr := range first[2:] {
		if err := r.Observe(strategy.Result{TrialID: tr.ID}); err != nil {
			t.Fatalf("restored strategy does not know in-flight trial %s: %v", tr.ID, err)
		}
	}
	got := append(decisions(first), decisions(all(t, r, 2))...)
	if fmt.Sprint(got) != fmt.Sprint(ref) {
		t.Errorf("restored run:\n%v\nwant\n%v", got, ref)
	}
	// Another seed, other options or garbage: errors, not panics.
	if err := newStrategy(t, space, 4, opts).Restore(snap); err == nil {
		t.Error("restore into a strategy with another seed: no error")
	}
	opts["sample"] = int64(3)
	if err := newStrategy(t, space, 3, opts).Restore(snap); err == nil {
		t.Error("restore into a strategy with another sample: no error")
	}
	for _, b := range []string{"", "null", "{}", "[]", `{"version":1}`, string(snap[:len(snap)/2])} {
		if err := newStrategy(t, space, 3, opts).Restore([]byte(b)); err == nil {
			t.Errorf("Restore(%q): no error", b)
		}
	}
}

func TestObserveAndPropose(t *testing.T) {
	space := newSpace(t, "nas", arch.Options{Layers: 2})
	s := newStrategy(t, space, 1, map[string]any{"arch": toAny(make([]int, len(space.Decisions())))})
	if tr, _ := s.Propose(0); len(tr) != 0 {
		t.Error("Propose(0) returned trials")
	}
	if tr, err := s.Propose(-1); err == nil || len(tr) != 0 {
		t.Error("Propose(-1): no error")
	}
	tr, _ := s.Propose(1)
	if err := s.Observe(strategy.Result{TrialID: "t999999"}); err == nil {
		t.Error("Observe of an unknown trial: no error")
	}
	if err := s.Observe(strategy.Result{TrialID: tr[0].ID}); err != nil {
		t.Fatal(err)
	}
	if err := s.Observe(strategy.Result{TrialID: tr[0].ID}); err == nil {
		t.Error("Observe twice: no error")
	}
}

func TestOptionErrors(t *testing.T) {
	space := newSpace(t, "nas", arch.Options{Layers: 2})
	_, err := strategy.New(perturb.Name, strategy.Env{Space: space, Seed: 1, Options: map[string]any{
		"repeats": int64(0), "neighbour_repeats": "two", "sample": int64(-1), "bogus": true}})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"option arch: missing", "repeats = 0", "neighbour_repeats = two", "sample = -1", `unknown option "bogus"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	_, err = strategy.New(perturb.Name, strategy.Env{Space: space, Seed: 1, Options: map[string]any{"arch": []any{int64(0)}}})
	if err == nil || !strings.Contains(err.Error(), "decisions: got 1") {
		t.Errorf("short arch: err = %v", err)
	}
	// JSON's float64 (a resumed run's config.json) reads like TOML's int64.
	d := toAny(make([]int, len(space.Decisions())))
	for i := range d {
		d[i] = float64(0)
	}
	if _, err := strategy.New(perturb.Name, strategy.Env{Space: space, Seed: 1, Options: map[string]any{"arch": d, "repeats": 2.0}}); err != nil {
		t.Errorf("float64 options: %v", err)
	}
}

func toAny(d []int) []any {
	out := make([]any, len(d))
	for i, v := range d {
		out[i] = int64(v)
	}
	return out
}

func decisions(trs []strategy.Trial) [][]int {
	out := make([][]int, len(trs))
	for i, tr := range trs {
		out[i] = tr.Arch.Decisions
	}
	return out
}

package random_test

import (
	"reflect"
	"strings"
	"testing"

	"nasd/arch"
	"nasd/controller"
	"nasd/controller/random"
)

func newRandom(t *testing.T, seed uint64) controller.Strategy {
	t.Helper()
	space, err := arch.New("nas", arch.Options{Layers: 3})
	if err != nil {
		t.Fatal(err)
	}
	s, err := controller.New("random", controller.Env{Space: space, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func propose(t *testing.T, s controller.Strategy, n int) []controller.Trial {
	t.Helper()
	ts, err := s.Propose(n)
	if err != nil || len(ts) != n {
		t.Fatalf("Propose(%d): %d trials, %v", n, len(ts), err)
	}
	return ts
}

func observe(t *testing.T, s controller.Strategy, ts []controller.Trial) {
	t.Helper()
	for i, tr := range ts {
		if err := s.Observe(controller.Result{TrialID: tr.ID, Status: "ok", Reward: float64(i) / 10}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestIDsAndSeeds(t *testing.T) {
	s := newRandom(t, 5)
	ts := propose(t, s, 3)
	for i, tr := range ts {
		if want := random.ID(i + 1); tr.ID != want {
			t.Errorf("trial %d: ID %q, want %q", i, tr.ID, want)
		}
		if want := controller.TrialSeed(5, tr.ID); tr.Seed != want {
			t.Errorf("trial %s: seed %d, want TrialSeed(5, ID) = %d", tr.ID, tr.Seed, want)
		}
	}
	if ts[0].ID != "t000001" {
		t.Errorf("first ID %q, want t000001", ts[0].ID)
	}
	if reflect.DeepEqual(ts[0].Arch.Decisions, ts[1].Arch.Decisions) && reflect.DeepEqual(ts[1].Arch.Decisions, ts[2].Arch.Decisions) {
		t.Error("three samples are the same architecture")
	}
	// Same seed, same trials; another seed, others.
	if again := propose(t, newRandom(t, 5), 3); !reflect.DeepEqual(again, ts) {
		t.Error("same seed proposed different trials")
	}
	if other := propose(t, newRandom(t, 6), 3); reflect.DeepEqual(other[0].Arch, ts[0].Arch) && reflect.DeepEqual(other[1].Arch, ts[1].Arch) {
		t.Error("seeds 5 and 6 propose the same architectures")
	}
}

func TestSnapshotRestoreContinues(t *testing.T) {
	a := newRandom(t, 11)
	first := propose(t, a, 4)
	observe(t, a, first[:2]) // two left in flight
	snap, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	b := newRandom(t, 11)
	if err := b.Restore(snap); err != nil {
		t.Fatal(err)
	}
	// The restored strategy accepts the in-flight results and proposes
	// exactly what the original does.
	observe(t, a, first[2:])
	observe(t, b, first[2:])
	if x, y := propose(t, a, 5), propose(t, b, 5); !reflect.DeepEqual(x, y) {
		t.Fatalf("after Restore:\n%v\nwant\n%v", y, x)
	}
	sa, _ := a.Snapshot()
	sb, _ := b.Snapshot()
	if string(sa) != string(sb) {
		t.Fatalf("snapshots differ after the same steps:\n%s\n%s", sa, sb)
	}
	// Observing twice, or an unknown trial, is an error.
	if err := b.Observe(controller.Result{TrialID: first[0].ID, Status: "ok"}); err == nil {
		t.Error("observing a trial twice is not an error")
	}
	// A snapshot of another seed is refused.
	if err := newRandom(t, 12).Restore(snap); err == nil || !strings.Contains(err.Error(), "seed") {
		t.Errorf("Restore of a snapshot with another seed: %v", err)
	}
	if err := newRandom(t, 11).Restore([]byte("{")); err == nil {
		t.Error("Restore of garbage is not an error")
	}
}

func TestSnapshotBounded(t *testing.T) {
	s := newRandom(t, 1)
	size := func() int {
		b, err := s.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		return len(b)
	}
	observe(t, s, propose(t, s, 10))
	small := size()
	for range 50 {
		observe(t, s, propose(t, s, 10))
	}
	if big := size(); big > small+8 {
		t.Fatalf("snapshot grew from %d to %d bytes over 500 trials", small, big)
	}
}

func TestRejectsOptions(t *testing.T) {
	space, _ := arch.New("nas", arch.Options{})
	_, err := controller.New("random", controller.Env{Space: space, Options: map[string]any{"temperature": 1.0, "beta": 2}})
	if err == nil || !strings.Contains(err.Error(), `"beta", "temperature"`) {
		t.Fatalf("unknown options: %v, want both named", err)
	}
}

// TestRejectsOptionsNamingTheField: the error is an *arch.FieldError whose
// Path is the first unknown option, so a config file can point at its line.
func TestRejectsOptionsNamingTheField(t *testing.T) {
	space, _ := arch.New("nas", arch.Options{})
	_, err := controller.New("random", controller.Env{Space: space, Options: map[string]any{"zeta": 1, "beta": 2}})
	if got := arch.FieldPath(err); !reflect.DeepEqual(got, []string{"beta"}) {
		t.Errorf("path %q, want [beta]; error %v", got, err)
	}
}

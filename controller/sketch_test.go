package controller

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
)

// exactAbove counts the values of sorted strictly greater than x.
func exactAbove(sorted []float64, x float64) int {
	return len(sorted) - sort.Search(len(sorted), func(i int) bool { return sorted[i] > x })
}

// TestSketchExactWhileSmall: up to 2·size values the sketch is the sorted
// list itself, so median and above are those of the exact rule.
func TestSketchExactWhileSmall(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var s sketch
	var ref []float64
	for i := 0; i < 2*SketchSize; i++ {
		x := float64(r.IntN(50)) / 50 // ties
		s.add(x, SketchSize)
		ref = append(ref, x)
		slices.Sort(ref)
		if !s.exact() || s.median() != medianOf(ref) {
			t.Fatalf("after %d values: exact %v, median %v, want %v", i+1, s.exact(), s.median(), medianOf(ref))
		}
		q := r.Float64()
		if s.above(q) != exactAbove(ref, q) {
			t.Fatalf("after %d values: above(%v) = %d, want %d", i+1, q, s.above(q), exactAbove(ref, q))
		}
	}
}

// TestSketchBounded: past 2·size values the sketch keeps at most 2·size+1
// centroids and its median and ranks stay within 2/size of the exact ones.
func TestSketchBounded(t *testing.T) {
	const size = 64
	r := rand.New(rand.NewPCG(3, 4))
	var s sketch
	var ref []float64
	for i := 0; i < 50000; i++ {
		x := r.NormFloat64()*0.1 + 0.5
		s.add(x, size)
		ref = append(ref, x)
		if len(s.Values) > 2*size+1 {
			t.Fatalf("after %d values: %d centroids", i+1, len(s.Values))
		}
		if i%997 != 0 {
			continue
		}
		if err := s.check(); err != nil {
			t.Fatal(err)
		}
		slices.Sort(ref)
		n := len(ref)
		tol := 2*n/size + 1
		m := s.median()
		below, atMost := sort.SearchFloat64s(ref, m), n-exactAbove(ref, m)
		if below > n/2+tol || atMost < n/2-tol {
			t.Fatalf("n=%d: median %v at ranks [%d,%d], want within %d of %d", n, m, below, atMost, tol, n/2)
		}
		for _, q := range []float64{0.3, 0.45, 0.5, 0.55, 0.7} {
			if d := s.above(q) - exactAbove(ref, q); d > tol || d < -tol {
				t.Fatalf("n=%d: above(%v) = %d, exact %d, tolerance %d", n, q, s.above(q), exactAbove(ref, q), tol)
			}
		}
	}
}

// feedStopper runs n trials of epochs epochs through st as the loop would
// (reports, then Finished), with accuracies from a fixed generator, and
// returns the snapshot size and how many trials were stopped.
func feedStopper(t *testing.T, st Stopper, n, epochs int, seed uint64) (snap int, stopped int) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 9))
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("t%07d", i)
		q := r.Float64()
		var accs []float64
		status := "ok"
		for e := 1; e <= epochs; e++ {
			acc := q*(1-1/float64(e+1)) + r.Float64()*0.02
			accs = append(accs, acc)
			if e < epochs && st.Report(id, e, acc) {
				status = StatusStopped
				stopped++
				break
			}
		}
		st.Finished(id, status, accs)
	}
	b, err := st.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return len(b), stopped
}

// TestStopperStateBounded: the median and asha snapshots after 10^5
// finished trials are no bigger than a fixed bound (a few times the size
// after 10^3, not 100 times), and they restore.
func TestStopperStateBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("10^5 trials")
	}
	const epochs = 10
	for _, name := range []string{StopperMedian, StopperASHA} {
		t.Run(name, func(t *testing.T) {
			mk := func() Stopper {
				st, err := NewStopper(name, StopperEnv{Epochs: epochs})
				if err != nil {
					t.Fatal(err)
				}
				return st
			}
			small, _ := feedStopper(t, mk(), 1000, epochs, 1)
			st := mk()
			big, stopped := feedStopper(t, st, 100000, epochs, 1)
			// 2·SketchSize+1 centroids, value and weight, per epoch.
			bound := epochs * (2*SketchSize + 1) * 32
			t.Logf("%s: snapshot %d bytes after 10^3 trials, %d after 10^5 (%d stopped); bound %d", name, small, big, stopped, bound)
			if big > bound || big > 20*small {
				t.Errorf("snapshot after 10^5 trials: %d bytes (10^3: %d, bound %d)", big, small, bound)
			}
			b, _ := st.Snapshot()
			if err := mk().Restore(b); err != nil {
				t.Errorf("restore: %v", err)
			}
		})
	}
}

// TestStopperRestoreV1 reads the state version 1 wrote, and the decisions
// go on as before.
func TestStopperRestoreV1(t *testing.T) {
	m, _ := NewStopper(StopperMedian, StopperEnv{Epochs: 3})
	if err := m.Restore([]byte(`{"version":1,"by_epoch":[[0.2,0.4,0.5,0.6,0.8]],"best":{"x":0.3}}`)); err != nil {
		t.Fatal(err)
	}
	if !m.Report("y", 1, 0.49) || m.Report("z", 1, 0.5) {
		t.Error("median after a version 1 restore: want stop below 0.5 only")
	}
	if err := m.Restore([]byte(`{"version":1,"by_epoch":[[0.5,0.2]]}`)); err == nil {
		t.Error("unsorted version 1 state restored")
	}
	a, _ := NewStopper(StopperASHA, StopperEnv{Epochs: 9})
	if err := a.Restore([]byte(`{"version":1,"rungs":[1,4],"recorded":[{"a":0.9,"b":0.1,"c":0.5},{}]}`)); err != nil {
		t.Fatal(err)
	}
	// n = 4 with d: keep ⌈4/4⌉ = 1; 0.95 has none above, 0.6 has one.
	if a.Report("d", 1, 0.95) {
		t.Error("asha after a version 1 restore stopped the best trial")
	}
	if !a.Report("e", 1, 0.6) {
		t.Error("asha after a version 1 restore kept a trial with two above it")
	}
	for _, st := range []Stopper{m, a} {
		if err := st.Restore([]byte(`{"version":3}`)); err == nil || !strings.Contains(err.Error(), "reads versions 1 and 2") {
			t.Errorf("%s: restoring version 3: %v", st.Name(), err)
		}
	}
}

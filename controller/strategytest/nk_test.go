package strategytest

import (
	"context"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"nasd/arch"
	"nasd/controller"
)

// enumerate calls f with every assignment of decisions with the given
// numbers of choices (the slice is reused).
func enumerate(card []int, f func(d []int)) {
	d := make([]int, len(card))
	for {
		f(d)
		i := len(d) - 1
		for ; i >= 0; i-- {
			d[i]++
			if d[i] < card[i] {
				break
			}
			d[i] = 0
		}
		if i < 0 {
			return
		}
	}
}

// The branch and bound finds the same best and worst fitness as
// enumeration of every architecture, for every K, in the 1- and 2-layer nas
// spaces (128 and 32,768 architectures). Exact: the same sums of the same
// table entries, compared to 1e-12.
func TestNKExtremesMatchEnumeration(t *testing.T) {
	for _, layers := range []int{1, 2} {
		space := mustSpace("nas", arch.Options{Layers: layers})
		n := len(space.Decisions())
		for k := 0; k < n; k++ {
			for seed := uint64(1); seed <= 3; seed++ {
				o, err := NewNK(space, NKOptions{Seed: seed, K: k})
				if err != nil {
					t.Fatal(err)
				}
				lo, hi := math.Inf(1), math.Inf(-1)
				enumerate(o.card, func(d []int) {
					f := o.Fitness(d)
					lo, hi = min(lo, f), max(hi, f)
				})
				if math.Abs(lo-o.min) > 1e-12 || math.Abs(hi-o.max) > 1e-12 {
					t.Fatalf("%d layers, K=%d, seed %d: branch and bound [%v, %v], enumeration [%v, %v]", layers, k, seed, o.min, o.max, lo, hi)
				}
				if f := o.Fitness(o.best); math.Abs(f-hi) > 1e-12 {
					t.Fatalf("%d layers, K=%d, seed %d: the optimum's fitness %v, want %v", layers, k, seed, f, hi)
				}
			}
		}
	}
}

// The 3-layer space of the learning test (1.7·10⁷ architectures; ~1 s),
// with the learning test's K: the branch and bound against enumeration.
func TestNKExtremesMatchEnumeration3Layers(t *testing.T) {
	space := mustSpace("nas", arch.Options{Layers: 3})
	o, err := NewNK(space, NKOptions{Seed: 1, K: learnK})
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	enumerate(o.card, func(d []int) {
		f := o.Fitness(d)
		lo, hi = min(lo, f), max(hi, f)
	})
	if math.Abs(lo-o.min) > 1e-12 || math.Abs(hi-o.max) > 1e-12 {
		t.Fatalf("branch and bound [%v, %v], enumeration [%v, %v]", o.min, o.max, lo, hi)
	}
}

// K = 0 is additively separable: the optimum takes each decision's best
// table entry independently, and changing one decision changes F by the
// same amount whatever the others are. With K = 3 some change depends on
// another decision (the landscape has interactions). Tolerance 1e-12:
// sums of the same table entries in another order.
func TestNKInteractions(t *testing.T) {
	space := mustSpace("nas", arch.Options{Layers: 3})
	r := rand.New(rand.NewPCG(5, 5))
	interacts := func(o *NK) bool {
		for range 200 {
			a, b := space.Sample(r).Decisions, space.Sample(r).Decisions
			i, j := r.IntN(len(a)), r.IntN(len(a))
			if i == j || a[i] == b[i] || a[j] == b[j] {
				continue
			}
			// The effect of decision i, with j as in a and as in b.
			flip := func(d []int, v, x int) []int { e := slices.Clone(d); e[v] = x; return e }
			a2 := flip(a, j, b[j])
			d1 := o.Fitness(flip(a, i, b[i])) - o.Fitness(a)
			d2 := o.Fitness(flip(a2, i, b[i])) - o.Fitness(a2)
			if math.Abs(d1-d2) > 1e-12 {
				return true
			}
		}
		return false
	}
	sep, err := NewNK(space, NKOptions{Seed: 2, K: 0})
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for i, tab := range sep.table {
		if len(tab) != sep.card[i] {
			t.Fatalf("K = 0: table %d has %d entries, want %d", i, len(tab), sep.card[i])
		}
		sum += slices.Max(tab)
		if tab[sep.best[i]] != slices.Max(tab) {
			t.Errorf("K = 0: the optimum's decision %d is not its table's best", i)
		}
	}
	if math.Abs(sum-sep.max) > 1e-12 {
		t.Errorf("K = 0: F_max %v, want the sum of the tables' maxima %v", sep.max, sum)
	}
	if interacts(sep) {
		t.Error("K = 0: a decision's effect depends on another decision")
	}
	nk, err := NewNK(space, NKOptions{Seed: 2, K: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !interacts(nk) {
		t.Error("K = 3: no decision's effect depends on another in 200 tries")
	}
	for i, v := range nk.vars {
		if len(v) != 4 || v[0] != i || len(slices.Compact(slices.Sorted(slices.Values(v)))) != 4 {
			t.Errorf("K = 3: decision %d interacts with %v, want itself then 3 distinct others", i, v)
		}
	}
}

// The optimum scores 0.95 (reward 0.95³), the worst 0.1, every sampled
// architecture in between; the same seed gives the same landscape, another
// seed another one.
func TestNKScale(t *testing.T) {
	space := mustSpace("nas", arch.Options{Layers: 3})
	o, err := NewNK(space, NKOptions{Seed: 4, K: 3})
	if err != nil {
		t.Fatal(err)
	}
	best, reward := o.Optimum()
	if got := o.Accuracy(best); math.Abs(got-0.95) > 1e-12 || math.Abs(reward-0.95*0.95*0.95) > 1e-12 {
		t.Errorf("optimum: accuracy %v, reward %v; want 0.95 and 0.95³", got, reward)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		if acc := o.Accuracy(space.Sample(r)); acc < 0.1 || acc > 0.95 {
			t.Fatalf("accuracy %v outside [0.1, 0.95]", acc)
		}
	}
	again, _ := NewNK(space, NKOptions{Seed: 4, K: 3})
	other, _ := NewNK(space, NKOptions{Seed: 5, K: 3})
	if !reflect.DeepEqual(o, again) {
		t.Error("seed 4 twice: different landscapes")
	}
	if reflect.DeepEqual(o.table, other.table) {
		t.Error("seeds 4 and 5: the same tables")
	}
}

// Train: the same trial gives the same result; noise comes from the
// trial's seed; reward is the accuracy cubed; an ended context and an
// architecture of another space are reported, not panics.
func TestNKTrain(t *testing.T) {
	space := mustSpace("nas", arch.Options{Layers: 3})
	o, err := NewNK(space, NKOptions{Seed: 3, K: 3, Noise: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 3))
	ctx := context.Background()
	for i := range 20 {
		tr := controller.Trial{ID: "t", Arch: space.Sample(r), Seed: uint64(i)}
		a, b := o.Train(ctx, tr), o.Train(ctx, tr)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("same trial, different results:\n%+v\n%+v", a, b)
		}
		if a.Status != "ok" || len(a.ValAcc) != 1 || a.Params == 0 || math.Abs(a.Reward-math.Pow(a.ValAcc[0], 3)) > 1e-15 {
			t.Fatalf("result %+v: want ok, one epoch, params, reward = accuracy³", a)
		}
		tr.Seed += 1000
		if c := o.Train(ctx, tr); c.Reward == a.Reward {
			t.Fatalf("noise does not depend on the trial seed: reward %v twice", c.Reward)
		}
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if res := o.Train(canceled, controller.Trial{ID: "c", Arch: space.Sample(r)}); res.Status != "canceled" || res.ValAcc != nil {
		t.Errorf("canceled context: %+v", res)
	}
	expired, stop := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer stop()
	if res := o.Train(expired, controller.Trial{ID: "d", Arch: space.Sample(r)}); res.Status != "timeout" {
		t.Errorf("expired deadline: %+v", res)
	}
	foreign := mustSpace("nas", arch.Options{Layers: 2}).Sample(r)
	if res := o.Train(ctx, controller.Trial{ID: "f", Arch: foreign}); res.Status != "failed" || !strings.Contains(res.Reason, "NK") {
		t.Errorf("architecture of another space: %+v", res)
	}
	if acc := o.Accuracy(foreign); acc != 0 {
		t.Errorf("Accuracy of an architecture of another space: %v, want 0", acc)
	}
}

// NewNK refuses a K out of range, one whose tables would be too large, and
// negative noise, naming the problem.
func TestNKOptionErrors(t *testing.T) {
	space := mustSpace("nas", arch.Options{Layers: 3})
	for _, c := range []struct {
		opt  NKOptions
		want string
	}{
		{NKOptions{K: -1}, "K = -1: want 0..14"},
		{NKOptions{K: 15}, "K = 15: want 0..14"},
		{NKOptions{K: 11}, "K = 11: more than 1048576 table entries"},
		{NKOptions{K: 2, Noise: -0.1}, "noise -0.1"},
	} {
		if _, err := NewNK(space, c.opt); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one containing %q", c.opt, err, c.want)
		}
	}
	if _, err := NewNK(space, NKOptions{K: 7}); err != nil {
		t.Errorf("K = 7: %v", err)
	}
}

package evolution

import (
	"math"
	"slices"
	"testing"

	"nasd/arch"
	"nasd/controller"
)

func newTestCore(t *testing.T, space arch.Space) *core {
	t.Helper()
	p := &parser{name: "test"}
	c, err := newCore("test", controller.Env{Space: space, Seed: 1}, 1, p.common())
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

func TestLayerGroups(t *testing.T) {
	sizes := func(gs [][]int) []int {
		var out []int
		for _, g := range gs {
			out = append(out, len(g))
		}
		return out
	}
	// nas: 4 decisions per layer plus one skip per earlier layer.
	if got := sizes(layerGroups(nasSpace(t, 3).Decisions())); !slices.Equal(got, []int{4, 5, 6}) {
		t.Errorf("nas, 3 layers: group sizes %v, want [4 5 6]", got)
	}
	enas, err := arch.New("enas-macro", arch.Options{Layers: 4})
	if err != nil {
		t.Fatal(err)
	}
	if got := sizes(layerGroups(enas.Decisions())); !slices.Equal(got, []int{1, 2, 3, 4}) {
		t.Errorf("enas-macro, 4 layers: group sizes %v, want [1 2 3 4]", got)
	}
	// Every decision of a group names the group's layer.
	for _, g := range layerGroups(nasSpace(t, 4).Decisions()) {
		ds := nasSpace(t, 4).Decisions()
		l0, _ := layerOf(ds[g[0]].Name)
		for _, i := range g {
			if l, ok := layerOf(ds[i].Name); !ok || l != l0 {
				t.Errorf("decision %q in the group of layer %d", ds[i].Name, l0)
			}
		}
	}
	// One layer, or no layer names: uniform, one decision per group.
	if got := sizes(layerGroups(nasSpace(t, 1).Decisions())); !slices.Equal(got, []int{1, 1, 1, 1}) {
		t.Errorf("nas, 1 layer: group sizes %v, want [1 1 1 1]", got)
	}
	plain := []arch.Decision{{Name: "lr"}, {Name: "layers"}, {Name: "layer x"}, {Name: "width"}}
	if got := sizes(layerGroups(plain)); !slices.Equal(got, []int{1, 1, 1, 1}) {
		t.Errorf("no layer names: group sizes %v, want [1 1 1 1]", got)
	}
	mixed := []arch.Decision{{Name: "layer 0 a"}, {Name: "lr"}, {Name: "layer 1 a"}, {Name: "layer 0 b"}, {Name: "layer 10"}}
	if got := layerGroups(mixed); !slices.EqualFunc(got, [][]int{{0, 3}, {1}, {2}, {4}}, slices.Equal) {
		t.Errorf("mixed names: groups %v, want [[0 3] [1] [2] [4]]", got)
	}
}

// Crossover takes every layer whole from one parent, and both parents
// contribute.
func TestCrossoverTakesWholeLayers(t *testing.T) {
	space := nasSpace(t, 4)
	c := newTestCore(t, space)
	a := make([]int, len(c.choices))
	b := make([]int, len(c.choices))
	for i, n := range c.choices {
		b[i] = n - 1 // every decision differs from a's
	}
	mixedChildren := 0
	for range 200 {
		d := c.crossover(a, b)
		fromB := 0
		for _, g := range c.groups {
			first := d[g[0]] == b[g[0]]
			for _, i := range g {
				if (d[i] == b[i]) != first || (d[i] != a[i] && d[i] != b[i]) {
					t.Fatalf("child %v splits the layer of decisions %v", d, g)
				}
			}
			if first {
				fromB++
			}
		}
		if fromB > 0 && fromB < len(c.groups) {
			mixedChildren++
		}
	}
	// 2 of 2⁴ children are a parent's copy: expect ~175 of 200 mixed.
	if mixedChildren < 150 {
		t.Errorf("%d of 200 children mix the parents, want ≥ 150", mixedChildren)
	}
}

// Uniform crossover when the space has no layers: single decisions mix.
func TestCrossoverUniformWithoutLayers(t *testing.T) {
	c := newTestCore(t, nasSpace(t, 1))
	a, b := []int{0, 0, 0, 0}, []int{1, 1, 1, 1}
	split := 0
	for range 100 {
		d := c.crossover(a, b)
		if n := hamming(d, a); n > 0 && n < 4 {
			split++
		}
	}
	if split < 70 { // 14/16 of children expected
		t.Errorf("%d of 100 children mix decisions, want ≥ 70", split)
	}
}

func TestMutation(t *testing.T) {
	space := nasSpace(t, 3)
	c := newTestCore(t, space)
	r := newDriver(1, false, nil, 3).rng
	for range 200 {
		p := space.Sample(r)
		// mutateOne: exactly one of p's neighbours.
		d := c.mutateOne(p.Decisions)
		if hamming(d, p.Decisions) != 1 {
			t.Fatalf("mutateOne changed %d decisions", hamming(d, p.Decisions))
		}
		if !slices.ContainsFunc(space.Neighbours(p), func(n arch.Arch) bool { return slices.Equal(n.Decisions, d) }) {
			t.Fatalf("mutateOne gave %v, not a neighbour of %v", d, p.Decisions)
		}
		// mutate with a tiny rate still changes one decision; all stay
		// in range.
		for _, rate := range []float64{1e-9, 0.3, 1} {
			d := c.mutate(p.Decisions, rate)
			if hamming(d, p.Decisions) < 1 {
				t.Fatalf("mutate(rate %g) changed nothing", rate)
			}
			if rate == 1 && hamming(d, p.Decisions) != len(d) {
				t.Fatalf("mutate(rate 1) changed %d of %d decisions", hamming(d, p.Decisions), len(d))
			}
			if _, err := space.Arch(d); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Each decision is picked uniformly by mutateOne: decision 0 of 15
	// about 1/15 of the time.
	n, hits := 6000, 0
	p := make([]int, len(c.choices))
	for range n {
		if c.mutateOne(p)[0] != 0 {
			hits++
		}
	}
	if want := float64(n) / 15; math.Abs(float64(hits)-want) > 4*math.Sqrt(want) {
		t.Errorf("decision 0 mutated %d times of %d, want about %.0f", hits, n, want)
	}
}

// Tournament and sample selection: the best of k uniform draws with
// replacement wins with probability 1 − (1 − 1/P)^k.
func TestSelectionPressure(t *testing.T) {
	space := nasSpace(t, 2)
	for _, k := range []int{1, 3, 10} {
		s := mk(t, "aging-evolution", space, 1, map[string]any{"population": int64(10), "sample": int64(k)}).(*Aging)
		g := mk(t, "ga", space, 1, map[string]any{"population": int64(10), "tournament": int64(k)}).(*GA)
		for i := range 10 {
			s.pop = append(s.pop, &member{N: i + 1, F: float64(i % 7), state: done}) // the best: i = 6
		}
		n := 20000
		want := 1 - math.Pow(0.9, float64(k))
		tol := 4 * math.Sqrt(want*(1-want)/float64(n))
		hitsA, hitsG := 0, 0
		for range n {
			if s.parent().N == 7 {
				hitsA++
			}
			if g.tournament(s.pop).N == 7 {
				hitsG++
			}
		}
		for name, h := range map[string]int{"aging sample": hitsA, "ga tournament": hitsG} {
			if got := float64(h) / float64(n); math.Abs(got-want) > tol {
				t.Errorf("%s of %d: the best wins %.3f, want %.3f ± %.3f", name, k, got, want, tol)
			}
		}
	}
}

func TestDedupe(t *testing.T) {
	// A space of 4·4·4·2 = 128 architectures: 100 trials must not repeat
	// with dedupe, and do without it.
	space := nasSpace(t, 1)
	reward := target(space, 2)
	for _, v := range variants {
		repeats := func(dedupe bool) int {
			opts := map[string]any{"dedupe": dedupe}
			for k, x := range v.opts {
				opts[k] = x
			}
			d := newDriver(2, false, reward, 1)
			d.run(t, mk(t, v.strategy, space, 3, opts), 100)
			seen := map[uint64]bool{}
			n := 0
			for _, tr := range d.trials {
				h := hashOf(tr.Arch.Decisions)
				if seen[h] {
					n++
				}
				seen[h] = true
			}
			return n
		}
		with, without := repeats(true), repeats(false)
		// A converged population may have nothing new within reach, so
		// some repeats remain; measured: ga 1 vs 47, steady 8 vs 54,
		// aging 0 vs 49.
		if with > 10 || without < 30 {
			t.Errorf("%s: %d repeats in 100 trials with dedupe (want ≤ 10), %d without (want ≥ 30)", v.name, with, without)
		}
		t.Logf("%s: %d repeats with dedupe, %d without", v.name, with, without)
	}
}

func TestRing(t *testing.T) {
	r := newRing(3)
	for _, h := range []uint64{1, 2, 2, 3} {
		r.add(h)
	}
	if r.has(1) || !r.has(2) || !r.has(3) {
		t.Fatal("ring of 3 after 1 2 2 3: want 2 and 3, not 1")
	}
	r.add(4) // drops one 2, the other stays
	if !r.has(2) {
		t.Fatal("ring dropped both copies of 2")
	}
	r2 := newRing(3)
	if err := r2.setBytes(r.bytes()); err != nil {
		t.Fatal(err)
	}
	r.add(5)
	r2.add(5)
	if !slices.Equal(r.bytes(), r2.bytes()) {
		t.Fatal("a ring restored from bytes evolves differently")
	}
	r1, r3 := newRing(1), newRing(3)
	if err := r1.setBytes(r.bytes()); err == nil {
		t.Fatal("3 hashes into a ring of 1 is not an error")
	}
	if err := r3.setBytes([]byte{1, 2, 3}); err == nil {
		t.Fatal("3 bytes is not an error")
	}
}

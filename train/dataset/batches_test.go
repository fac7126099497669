package dataset

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// numbered returns a set of n c×h×w examples; value (i, ch, y, x) encodes all
// four (never 0, so padding is recognisable) and label i%7.
func numbered(n, c, h, w int) *Set {
	s := &Set{Images: make([]float32, n*c*h*w), Labels: make([]int32, n), C: c, H: h, W: w, Classes: 7}
	for i := range n {
		img := s.Image(i)
		for ch := range c {
			for y := range h {
				for x := range w {
					img[(ch*h+y)*w+x] = float32(code(i, ch, y, x))
				}
			}
		}
		s.Labels[i] = int32(i % 7)
	}
	return s
}

// code packs (i, ch, y, x) for i < 16384, ch < 4, y, x < 16 into an integer
// below 2²⁴, so float32 holds it exactly.
func code(i, ch, y, x int) int { return 1 + x + 16*(y+16*(ch+4*i)) }

func decode(v float32) (i, ch, y, x int) {
	k := int(v) - 1
	return k >> 10, k >> 8 & 3, k >> 4 & 15, k & 15
}

// epoch drains one epoch of b, returning the example index of every example
// served and the batch sizes.
func epoch(t *testing.T, b *Batches, s *Set, batch int) (order, sizes []int) {
	t.Helper()
	x, y := make([]float32, batch*s.Size()), make([]int32, batch)
	for {
		n := b.Next(x, y)
		if n == 0 {
			return order, sizes
		}
		sizes = append(sizes, n)
		for j := range n {
			i, _, _, _ := decode(x[j*s.Size()+s.Size()/2]) // centre pixel survives small crops
			if y[j] != s.Labels[i] {
				t.Fatalf("example %d served with label %d, want %d", i, y[j], s.Labels[i])
			}
			order = append(order, i)
		}
	}
}

func TestBatchesEpochs(t *testing.T) {
	s := numbered(103, 1, 4, 4)
	b := NewBatches(s, 10, true, Augment{}, 42)
	var orders [][]int
	for e := range 3 {
		if b.Epoch() != e {
			t.Fatalf("Epoch() = %d, want %d", b.Epoch(), e)
		}
		order, sizes := epoch(t, b, s, 10)
		if want := []int{10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 3}; !slices.Equal(sizes, want) {
			t.Errorf("epoch %d batch sizes %v, want %v", e, sizes, want)
		}
		sorted := slices.Sorted(slices.Values(order))
		for k, i := range sorted {
			if i != k {
				t.Fatalf("epoch %d: not every example exactly once: %v", e, sorted)
			}
		}
		orders = append(orders, order)
	}
	if slices.Equal(orders[0], orders[1]) || slices.Equal(orders[1], orders[2]) {
		t.Error("shuffle did not change between epochs")
	}
	if slices.IsSorted(orders[0]) {
		t.Error("epoch 0 was not shuffled")
	}
	// Seeded: the same seed repeats the orders, another seed does not.
	again := NewBatches(s, 7, true, Augment{}, 42)
	for e := range 3 {
		if order, _ := epoch(t, again, s, 7); !slices.Equal(order, orders[e]) {
			t.Errorf("epoch %d: same seed, different batch size gave another order", e)
		}
	}
	if order, _ := epoch(t, NewBatches(s, 10, true, Augment{}, 43), s, 10); slices.Equal(order, orders[0]) {
		t.Error("seeds 42 and 43 gave the same order")
	}
	// Without shuffle: the set's order, every epoch.
	plain := NewBatches(s, 25, false, Augment{}, 42)
	for range 2 {
		if order, sizes := epoch(t, plain, s, 25); !slices.IsSorted(order) || len(order) != 103 || sizes[4] != 3 {
			t.Errorf("unshuffled epoch: sizes %v, order sorted %v", sizes, slices.IsSorted(order))
		}
	}
}

func TestBatchesEmptySet(t *testing.T) {
	s := numbered(0, 1, 2, 2)
	b := NewBatches(s, 4, true, Augment{Pad: 1}, 1)
	x, y := make([]float32, 16), make([]int32, 4)
	for e := range 3 {
		if n := b.Next(x, y); n != 0 || b.Epoch() != e+1 {
			t.Fatalf("empty set: Next = %d, Epoch = %d", n, b.Epoch())
		}
	}
}

// match finds the unique shift (oy, ox), |oy|, |ox| ≤ pad, and mirroring
// for which out is example src of s, zero-padded, cropped and maybe mirrored:
// out[c][y][x] = src[c][y+oy][x'+ox] with x' = W-1-x if flipped, else x, and 0
// where that falls outside the image.
func match(s *Set, src int, out []float32, pad int) (oy, ox int, flipped, ok bool) {
	C, H, W := s.C, s.H, s.W
	found := 0
	for dy := -pad; dy <= pad; dy++ {
		for dx := -pad; dx <= pad; dx++ {
			for _, f := range []bool{false, true} {
				good := true
				for k := 0; k < C*H*W && good; k++ {
					c, y, x := k/(H*W), k/W%H, k%W
					if f {
						x = W - 1 - x
					}
					sy, sx := y+dy, x+dx
					want := float32(0)
					if sy >= 0 && sy < H && sx >= 0 && sx < W {
						want = float32(code(src, c, sy, sx))
					}
					good = out[k] == want
				}
				if good {
					found++
					oy, ox, flipped = dy, dx, f
				}
			}
		}
	}
	return oy, ox, flipped, found == 1
}

func TestBatchesAugment(t *testing.T) {
	for _, aug := range []Augment{{Pad: 0, FlipH: true}, {Pad: 2}, {Pad: 3, FlipH: true}, {Pad: 1}} {
		t.Run(fmt.Sprintf("pad%d-flip%v", aug.Pad, aug.FlipH), func(t *testing.T) {
			s := numbered(500, 3, 9, 8)
			const batch = 64
			b := NewBatches(s, batch, true, aug, 5)
			x, y := make([]float32, batch*s.Size()), make([]int32, batch)
			seenShift := map[[2]int]int{}
			flips, total := 0, 0
			for {
				n := b.Next(x, y)
				if n == 0 {
					break
				}
				for j := range n {
					out := x[j*s.Size() : (j+1)*s.Size()]
					src := -1
					for _, v := range out {
						if v != 0 {
							src, _, _, _ = decode(v)
							break
						}
					}
					if src < 0 || y[j] != s.Labels[src] {
						t.Fatalf("example %d: cannot tell its source (%d) or wrong label %d", j, src, y[j])
					}
					oy, ox, flipped, ok := match(s, src, out, aug.Pad)
					if !ok {
						t.Fatalf("example %d is not a shift by ≤ %d (and mirror) of example %d", j, aug.Pad, src)
					}
					seenShift[[2]int{oy, ox}]++
					if flipped {
						flips++
					}
					total++
				}
			}
			if total != s.Len() {
				t.Errorf("served %d examples, want %d", total, s.Len())
			}
			// Every shift in [-Pad, Pad]² occurs. The draws are seeded, so this is
			// deterministic; for uniform draws, 500 over ≤ 49 cells miss one with
			// probability < 49·(48/49)^500 ≈ 1.6e-3.
			if want := (2*aug.Pad + 1) * (2*aug.Pad + 1); len(seenShift) != want {
				t.Errorf("saw %d distinct shifts, want %d: %v", len(seenShift), want, seenShift)
			}
			if aug.FlipH && aug.Pad == 0 {
				// Flip with p = 1/2: 500 draws, 250 ± 5σ (σ ≈ 11).
				if flips < 195 || flips > 305 {
					t.Errorf("%d of %d flipped, want about half", flips, total)
				}
			}
			if !aug.FlipH && flips > 0 {
				t.Errorf("%d flipped without FlipH", flips)
			}
		})
	}
}

func TestBatchesFlipIsMirror(t *testing.T) {
	s := numbered(64, 2, 3, 5)
	b := NewBatches(s, 64, false, Augment{FlipH: true}, 9)
	x, y := make([]float32, 64*s.Size()), make([]int32, 64)
	n := b.Next(x, y)
	mirrored := 0
	for i := range n {
		in, out := s.Image(i), x[i*s.Size():(i+1)*s.Size()]
		if slices.Equal(in, out) {
			continue
		}
		mirrored++
		for c := range s.C {
			for r := range s.H {
				row := in[(c*s.H+r)*s.W : (c*s.H+r+1)*s.W]
				got := out[(c*s.H+r)*s.W : (c*s.H+r+1)*s.W]
				want := slices.Clone(row)
				slices.Reverse(want)
				if !slices.Equal(got, want) {
					t.Fatalf("example %d channel %d row %d: got %v, want mirror %v", i, c, r, got, want)
				}
			}
		}
	}
	if mirrored == 0 || mirrored == n {
		t.Errorf("%d of %d mirrored, want some but not all", mirrored, n)
	}
}

func TestBatchesNoAllocs(t *testing.T) {
	s := numbered(50, 3, 8, 8)
	for _, aug := range []Augment{{}, {Pad: 2, FlipH: true}} {
		b := NewBatches(s, 16, true, aug, 1)
		x, y := make([]float32, 16*s.Size()), make([]int32, 16)
		// 100 calls cross many epoch ends, which reshuffle.
		if a := testing.AllocsPerRun(100, func() { b.Next(x, y) }); a != 0 {
			t.Errorf("%+v: %v allocations per Next, want 0", aug, a)
		}
		if b.Epoch() < 10 {
			t.Errorf("only %d epochs crossed", b.Epoch())
		}
	}
}

func TestBatchesStateRestore(t *testing.T) {
	s := numbered(40, 1, 6, 6)
	aug := Augment{Pad: 1, FlipH: true}
	a := NewBatches(s, 8, true, aug, 3)
	x, y := make([]float32, 8*s.Size()), make([]int32, 8)
	for range 9 { // into the second epoch (5 batches + end + 3)
		a.Next(x, y)
	}
	st := a.State()
	if st.Epoch != 1 || st.Pos != 24 {
		t.Fatalf("state %+v, want epoch 1 pos 24", st)
	}
	// Restoring into a fresh Batches with another batch size replays the same
	// examples with the same augmentation.
	b := NewBatches(s, 3, true, aug, 3)
	if err := b.Restore(st); err != nil {
		t.Fatal(err)
	}
	stream := func(bb *Batches, batch, count int) []float32 {
		var all []float32
		xx, yy := make([]float32, batch*s.Size()), make([]int32, batch)
		for len(all) < count*s.Size() {
			n := bb.Next(xx, yy)
			all = append(all, xx[:n*s.Size()]...)
		}
		return all[:count*s.Size()]
	}
	if !slices.Equal(stream(a, 8, 50), stream(b, 3, 50)) {
		t.Error("restored Batches served different examples")
	}

	for _, bad := range []BatchesState{
		{Seed: 4, Len: 40},
		{Seed: 3, Len: 41},
		{Seed: 3, Len: 40, Pos: 41},
		{Seed: 3, Len: 40, Epoch: -1},
	} {
		if err := b.Restore(bad); err == nil {
			t.Errorf("Restore(%+v) succeeded", bad)
		} else {
			wantErr(t, err, "dataset: Batches.Restore")
		}
	}
}

func TestBatchesMisuse(t *testing.T) {
	s := numbered(4, 1, 2, 2)
	for _, f := range []func(){
		func() { NewBatches(s, 0, false, Augment{}, 0) },
		func() { NewBatches(s, 2, false, Augment{Pad: -1}, 0) },
		func() { NewBatches(s, 2, false, Augment{}, 0).Next(make([]float32, 7), make([]int32, 2)) },
	} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.HasPrefix(fmt.Sprint(r), "dataset: ") {
					t.Errorf("recovered %v, want a dataset panic", r)
				}
			}()
			f()
		}()
	}
}

func BenchmarkNext(b *testing.B) {
	for _, batch := range []int{32, 256} {
		for _, aug := range []Augment{{}, {Pad: 2, FlipH: true}} {
			b.Run(fmt.Sprintf("fmnist-batch%d-pad%d-flip%v", batch, aug.Pad, aug.FlipH), func(b *testing.B) {
				s := numbered(10000, 1, 28, 28) // values are not decoded here
				bt := NewBatches(s, batch, true, aug, 1)
				x, y := make([]float32, batch*s.Size()), make([]int32, batch)
				imgs := 0
				for b.Loop() {
					imgs += bt.Next(x, y)
				}
				b.ReportMetric(float64(imgs)/b.Elapsed().Seconds(), "img/s")
			})
		}
	}
}

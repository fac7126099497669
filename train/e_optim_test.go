package train

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// TestApplyOptMatchesDelta: the vectorised update loops give bit-identical
// results to the per-element rule, for every optimizer and both types, on a
// tensor small enough for one thread and on one split across two.
func TestApplyOptMatchesDelta(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	for _, c := range []Config{
		{Optimizer: "sgd", Momentum: 0.9, WeightDecay: 1e-4},
		{Optimizer: "sgd", Momentum: 0.9, Nesterov: true, WeightDecay: 1e-4},
		{Optimizer: "sgd"},
		{Optimizer: "adam", WeightDecay: 1e-3},
	} {
		for _, n := range []int{37, 3*minParallel + 7} {
			if want := min(1+n/minParallel, 2); parts(n, 1) != want {
				t.Fatalf("%d elements run in %d parts, want %d", n, parts(n, 1), want)
			}
			r := rand.New(rand.NewPCG(1, 2))
			o := newOptimizer(c)
			w32, w64 := make([]float32, n), make([]float64, n)
			ref32, ref64 := make([]float32, n), make([]float64, n)
			for i := range n {
				w64[i] = r.NormFloat64()
				w32[i] = float32(w64[i])
				ref64[i], ref32[i] = w64[i], w32[i]
			}
			newState := func() *optState { return &optState{m: make([]float64, n), v: make([]float64, n)} }
			st32, st64, stRef32, stRef64 := newState(), newState(), newState(), newState()
			for range 3 {
				g32, g64 := make([]float32, n), make([]float64, n)
				for i := range g64 {
					g64[i] = r.NormFloat64()
					g32[i] = float32(g64[i])
				}
				applyOpt(o, w64, g64, st64, 0.1)
				applyOpt(o, w32, g32, st32, 0.1)
				c1, c2 := stRef64.begin()
				for i := range ref64 {
					ref64[i] = o.delta(ref64[i], g64[i], stRef64, i, 0.1, c1, c2)
				}
				c1, c2 = stRef32.begin()
				for i := range ref32 {
					ref32[i] = float32(o.delta(float64(ref32[i]), float64(g32[i]), stRef32, i, 0.1, c1, c2))
				}
			}
			for i := range n {
				if w64[i] != ref64[i] || w32[i] != ref32[i] {
					t.Fatalf("%+v, %d elements: element %d: %v and %v, want %v and %v", c, n, i, w64[i], w32[i], ref64[i], ref32[i])
				}
			}
		}
	}
}

// TestEnasMacroDeterministic: two trainings of the ENAS-macro-like net (3×3
// stride-1 max/avg pools, 2×2 pools, batch norm, adds, concat) on two
// threads give bit-identical weights, so no result depends on scheduling.
func TestEnasMacroDeterministic(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	run := func() []float32 {
		cfg := Config{Epochs: 1, BatchSize: 16, Optimizer: "sgd", LR: 0.05, Momentum: 0.9, Nesterov: true,
			WeightDecay: 1e-4, Schedule: "constant"}
		tr := newTrainer(enasMacro(8), cfg.withDefaults(), 7)
		defer tr.close()
		x, y := randomBatch(16, 3*32*32, 10)
		for range 3 {
			if _, _, err := tr.step(x, y, cfg.LR); err != nil {
				t.Fatal(err)
			}
		}
		var out []float32
		for _, name := range tr.w.Names() {
			out = append(out, tr.w.Get(name).Value.Float32s()...)
		}
		return out
	}
	a, b := run(), run()
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("%d and %d weights", len(a), len(b))
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("weight %d: %v vs %v", i, a[i], b[i])
		}
	}
}

// BenchmarkApplyOpt: one Nesterov SGD update of the reference CNN's 431 k
// float32 weights (float64 momentum), split across GOMAXPROCS threads.
//
//	go test -run '^$' -bench ApplyOpt -cpu 1,2 ./train
func BenchmarkApplyOpt(b *testing.B) {
	o := newOptimizer(Config{Optimizer: "sgd", Momentum: 0.9, Nesterov: true, WeightDecay: 1e-4})
	const n = 431_000
	w, g := make([]float32, n), make([]float32, n)
	st := &optState{m: make([]float64, n)}
	for i := range w {
		w[i], g[i] = float32(i%7)*0.01, float32(i%5)*0.001
	}
	applyOpt(o, w, g, st, 0.01) // starts the parallel workers
	b.SetBytes(n * 4)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		applyOpt(o, w, g, st, 0.01)
	}
}

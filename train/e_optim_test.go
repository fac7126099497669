package train

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// TestApplyOptMatchesDelta: the vectorised update loops give bit-identical
// results to the per-element rule, for every optimizer and both types.
func TestApplyOptMatchesDelta(t *testing.T) {
	for _, c := range []Config{
		{Optimizer: "sgd", Momentum: 0.9, WeightDecay: 1e-4},
		{Optimizer: "sgd", Momentum: 0.9, Nesterov: true, WeightDecay: 1e-4},
		{Optimizer: "sgd"},
		{Optimizer: "adam", WeightDecay: 1e-3},
	} {
		r := rand.New(rand.NewPCG(1, 2))
		const n = 37
		o := newOptimizer(c)
		w32, w64 := make([]float32, n), make([]float64, n)
		ref := make([]float64, n)
		for i := range n {
			w64[i] = r.NormFloat64()
			ref[i] = w64[i]
			w32[i] = float32(w64[i])
		}
		st64 := &optState{m: make([]float64, n), v: make([]float64, n)}
		stRef := &optState{m: make([]float64, n), v: make([]float64, n)}
		for range 3 {
			g := make([]float64, n)
			for i := range g {
				g[i] = r.NormFloat64()
			}
			applyOpt(o, w64, g, st64, 0.1)
			c1, c2 := stRef.begin()
			for i := range ref {
				ref[i] = o.delta(ref[i], g[i], stRef, i, 0.1, c1, c2)
			}
		}
		for i := range ref {
			if w64[i] != ref[i] {
				t.Fatalf("%+v: element %d: %v, want %v", c, i, w64[i], ref[i])
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

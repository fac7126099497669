package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"runtime"
	"sync"
	"testing"

	"nasd/arch"
)

// The enas-macro child of the benchmarks: bench/enas-child.json is
// `nasd space -space enas-macro -layers 8 -channels 24 -seed 5 -arch-only
// -format json` (every op of the space: conv 3×3 and 5×5, separable 3×3 and
// 5×5, max and avg pool 3×3; two 2×2 reductions; skip adds, some across
// reductions; batch norm after every layer). bench/enas-child.graph.json is its
// lowered graph, which bench/pytorch_ref.py builds in PyTorch; regenerate it
// with `go run ./bench/lower -o bench/enas-child.graph.json`.
const (
	enasChildArch  = "../bench/enas-child.json"
	enasChildGraph = "../bench/enas-child.graph.json"
)

func enasChild(tb testing.TB) *arch.Graph {
	tb.Helper()
	a, s, err := arch.Load(enasChildArch)
	if err != nil {
		tb.Fatal(err)
	}
	g, err := s.Lower(a)
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// BenchmarkTrainENASChild and BenchmarkEvalENASChild measure the enas-macro
// child exactly as the reference CNN's benchmarks measure it.
func BenchmarkTrainENASChild(b *testing.B) { benchTrain(b, enasChild(b)) }

func BenchmarkEvalENASChild(b *testing.B) { benchEval(b, enasChild(b)) }

// TestENASChildGraphFile keeps the committed lowered graph, which the PyTorch
// peer reads, equal to the lowering of the committed architecture, and checks
// that the built network has the parameters static analysis counts (the
// number the PyTorch peer is checked against).
func TestENASChildGraphFile(t *testing.T) {
	g := enasChild(t)
	data, err := os.ReadFile(enasChildGraph)
	if err != nil {
		t.Fatal(err)
	}
	var got arch.Graph
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("%s: %v", enasChildGraph, err)
	}
	if !reflect.DeepEqual(&got, g) {
		t.Fatalf("%s is stale: regenerate with `go run ./bench/lower -o bench/enas-child.graph.json`", enasChildGraph)
	}
	st, err := g.Infer()
	if err != nil {
		t.Fatal(err)
	}
	static := 0
	for _, s := range st {
		static += s.Params
	}
	w := NewWeights(dtypeOf[float32](), 1)
	n, err := Build(g, w, BuildOptions{Batch: 2, Train: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if w.Count() != static {
		t.Fatalf("built network has %d trainable parameters, static analysis says %d", w.Count(), static)
	}
}

// BenchmarkSgemmPeak is the machine's single-precision gemm rate through the
// package's gemm (OpenBLAS under -tags openblas, else gonum) on square
// matrices: the ceiling for the gemm-bound convolutions and dense layers.
// The rows of C are split across GOMAXPROCS goroutines, each calling a
// single-threaded gemm, as the ops split a batch; so GOMAXPROCS=1 and 2 give
// the one- and two-thread peaks. Metric: GFLOP/s (2·n³ per product).
func BenchmarkSgemmPeak(b *testing.B) {
	for _, n := range []int{512, 1024} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(uint64(n), 5))
			a, bm, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
			for i := range a {
				a[i], bm[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
			}
			workers := runtime.GOMAXPROCS(0)
			mul := func() {
				var wg sync.WaitGroup
				for w := range workers {
					lo, hi := w*n/workers, (w+1)*n/workers
					wg.Go(func() {
						gemm(false, false, hi-lo, n, n, 1, a[lo*n:], n, bm, n, 0, c[lo*n:], n)
					})
				}
				wg.Wait()
			}
			mul()
			b.ResetTimer()
			for range b.N {
				mul()
			}
			b.StopTimer()
			b.ReportMetric(2*float64(n)*float64(n)*float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

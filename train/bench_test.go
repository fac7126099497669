package train

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"nasd/arch"
)

// Training and inference throughput of ReferenceCNN on random 28×28 data:
// SGD, momentum 0.9, learning rate 0.01, as bench/pytorch_ref.py. Building,
// compiling and the first run (which touches every buffer) are outside the
// timer. Metrics: img/s and B/step (bytes allocated per step; -benchmem's
// B/op is the same number).
func BenchmarkTrainReferenceCNN(b *testing.B) { benchTrain(b, ReferenceCNN()) }

func BenchmarkEvalReferenceCNN(b *testing.B) { benchEval(b, ReferenceCNN()) }

// benchBatches are the batch sizes every network is measured at.
var benchBatches = []int{64, 128}

// benchTrain measures SGD training steps of g, one sub-benchmark per batch size.
func benchTrain(b *testing.B, g *arch.Graph) {
	for _, batch := range benchBatches {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			cfg := Config{Epochs: 1, BatchSize: batch, Optimizer: "sgd", LR: 0.01, Momentum: 0.9, Schedule: "constant"}
			t := newTrainer(g, cfg.withDefaults(), 1)
			defer t.close()
			x, y := randomBatch(batch, g.Input.Elems(), g.Classes)
			if _, _, err := t.step(x, y, cfg.LR); err != nil {
				b.Fatal(err)
			}
			measure(b, batch, func() {
				if _, _, err := t.step(x, y, cfg.LR); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// benchEval measures inference (forward pass, batch norm on running
// statistics) of g, one sub-benchmark per batch size.
func benchEval(b *testing.B, g *arch.Graph) {
	for _, batch := range benchBatches {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			n, err := Build(g, NewWeights(dtypeOf[float32](), 1), BuildOptions{Batch: batch})
			if err != nil {
				b.Fatal(err)
			}
			defer n.Close()
			x, y := randomBatch(batch, g.Input.Elems(), g.Classes)
			if _, _, err := n.Run(x, y); err != nil {
				b.Fatal(err)
			}
			measure(b, batch, func() {
				if _, _, err := n.Run(x, y); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

func measure(b *testing.B, batch int, step func()) {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	b.ResetTimer()
	for range b.N {
		step()
	}
	b.StopTimer()
	runtime.ReadMemStats(&m1)
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "img/s")
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/float64(b.N), "B/step")
}

func randomBatch(n, size, classes int) ([]float32, []int32) {
	return randomData(rand.New(rand.NewPCG(uint64(n), 3)), n, size, classes)
}

// randomData returns n random examples of size values and labels below classes.
func randomData(r *rand.Rand, n, size, classes int) ([]float32, []int32) {
	x, y := make([]float32, n*size), make([]int32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	for i := range y {
		y[i] = int32(r.IntN(classes))
	}
	return x, y
}

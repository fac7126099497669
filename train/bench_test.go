package train

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"nasd/arch"
	"nasd/train/dataset"
)

// Training and inference throughput of ReferenceCNN on real Fashion-MNIST
// batches (random data where the data set is not installed): SGD, momentum
// 0.9, learning rate 0.01, as bench/pytorch_ref.py. Each step takes the next
// of benchBatchCount different batches, as training does. Building,
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
			xs, ys := benchData(b, g, batch)
			if _, _, err := t.step(xs[0], ys[0], cfg.LR); err != nil {
				b.Fatal(err)
			}
			k := 0
			measure(b, batch, func() {
				k = (k + 1) % len(xs)
				if _, _, err := t.step(xs[k], ys[k], cfg.LR); err != nil {
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
			xs, ys := benchData(b, g, batch)
			if _, _, err := n.Run(xs[0], ys[0]); err != nil {
				b.Fatal(err)
			}
			k := 0
			measure(b, batch, func() {
				k = (k + 1) % len(xs)
				if _, _, err := n.Run(xs[k], ys[k]); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// measure times b.N steps. Besides img/s it reports img/cpu-s, images per
// second of the process's CPU time: on a machine shared with other work it
// stays near what an idle machine's img/s would be at 1 thread (at more
// threads it is img/s per busy core).
func measure(b *testing.B, batch int, step func()) {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cpu0 := processCPU()
	b.ResetTimer()
	for range b.N {
		step()
	}
	b.StopTimer()
	cpu := processCPU() - cpu0
	runtime.ReadMemStats(&m1)
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "img/s")
	if cpu > 0 {
		b.ReportMetric(float64(batch*b.N)/cpu.Seconds(), "img/cpu-s")
	}
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/float64(b.N), "B/step")
}

// processCPU is the user and system time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchBatchCount is how many different batches a benchmark cycles through.
const benchBatchCount = 16

var benchImages struct {
	once sync.Once
	set  *dataset.Set
}

// benchData returns benchBatchCount batches of real Fashion-MNIST training
// images (normalised as training normalises them) for a 1×28×28, 10-class
// network, else random ones (logged).
func benchData(b *testing.B, g *arch.Graph, batch int) ([][]float32, [][]int32) {
	benchImages.once.Do(func() {
		s, err := dataset.Load(dataset.Spec{Name: "fashion-mnist", Seed: 1, TrainSubset: 8192})
		if err == nil {
			benchImages.set = s.Train
		}
	})
	set := benchImages.set
	var xs [][]float32
	var ys [][]int32
	if set == nil || g.Input.Elems() != set.Size() || g.Classes != 10 || set.Len() < batch*benchBatchCount {
		b.Log("random data: Fashion-MNIST is not installed, or the network's input is not 1×28×28")
		for k := range benchBatchCount {
			x, y := randomData(rand.New(rand.NewPCG(uint64(batch), uint64(k))), batch, g.Input.Elems(), g.Classes)
			xs, ys = append(xs, x), append(ys, y)
		}
		return xs, ys
	}
	size := set.Size()
	for k := range benchBatchCount {
		lo := k * batch
		xs = append(xs, set.Images[lo*size:(lo+batch)*size])
		ys = append(ys, set.Labels[lo:lo+batch])
	}
	return xs, ys
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

package train

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"nasd/arch"
)

// defaultENASChild is a child of the default enas-macro space (12 layers ×
// 36 channels, 28×28×1 input), sampled from a fixed seed.
func defaultENASChild(tb testing.TB) *arch.Graph {
	tb.Helper()
	s, err := arch.New("enas-macro", arch.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	g, err := s.Lower(s.Sample(rand.New(rand.NewPCG(1, 2))))
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// BenchmarkMemory reports the memory a trainer's Buffers hold (MB, after
// building and running its training and evaluation nets) for the default
// enas-macro child and the reference CNN; run one sub-benchmark per process
// under /usr/bin/time -f %M for the peak RSS (docs/performance.md, "Memory
// per child").
func BenchmarkMemory(b *testing.B) {
	for _, net := range []struct {
		name string
		g    func(testing.TB) *arch.Graph
	}{{"enas-default", defaultENASChild}, {"reference-cnn", func(testing.TB) *arch.Graph { return ReferenceCNN() }}} {
		for _, batch := range benchBatches {
			b.Run(fmt.Sprintf("net=%s/batch=%d", net.name, batch), func(b *testing.B) {
				g := net.g(b)
				cfg := Config{Epochs: 1, BatchSize: batch, Optimizer: "sgd", LR: 0.01, Momentum: 0.9, Schedule: "constant"}
				t := newTrainer(g, cfg.withDefaults(), 1)
				defer t.close()
				xs, ys := benchData(b, g, batch)
				ev, err := t.net(batch, false)
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := ev.Run(xs[0], ys[0]); err != nil {
					b.Fatal(err)
				}
				for i := range b.N {
					if _, _, err := t.step(xs[i%len(xs)], ys[i%len(ys)], cfg.LR); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(t.buf.Bytes())/1e6, "MB")
			})
		}
	}
}

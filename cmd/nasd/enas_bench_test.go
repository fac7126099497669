package main

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"nasd/arch"
	"nasd/controller/rl"
)

// BenchmarkENASSample: drawing a shared-weight step's children from the ENAS
// policy. "rank0" is one step's children drawn serially by rank 0, as the
// loop did before the workers sampled their own (and as it still draws the
// controller phase's); "worker" is a worker's own draw from its rl.Sampler,
// the whole per-step sampling cost now, and "policy" rebuilding the sampler
// from the state broadcast once an epoch.
func BenchmarkENASSample(b *testing.B) {
	for _, layers := range []int{6, 12} {
		space, err := arch.New("enas-macro", arch.Options{Layers: layers})
		if err != nil {
			b.Fatal(err)
		}
		_, p, err := enasPolicy(space, 1, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, workers := range []int{8, 511} {
			b.Run(fmt.Sprintf("layers-%d/rank0/workers-%d", layers, workers), func(b *testing.B) {
				for b.Loop() {
					p.Sample(workers)
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*workers), "µs/child")
			})
		}
		state, err := p.SamplerState()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("layers-%d/worker", layers), func(b *testing.B) {
			s, err := rl.NewSampler(space, state)
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; b.Loop(); i++ {
				if _, err := s.Sample(rand.New(rand.NewPCG(uint64(i), 1))); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("layers-%d/policy", layers), func(b *testing.B) {
			for b.Loop() {
				if _, err := rl.NewSampler(space, state); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(state)), "state-bytes")
		})
	}
}

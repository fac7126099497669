package main

import (
	"fmt"
	"testing"

	"nasd/arch"
)

// BenchmarkENASSample: rank 0 sampling one shared-weight step's children
// (one per worker) from the ENAS policy; serial on rank 0 before each step.
func BenchmarkENASSample(b *testing.B) {
	for _, layers := range []int{6, 12} {
		for _, workers := range []int{8, 511} {
			b.Run(fmt.Sprintf("layers-%d/workers-%d", layers, workers), func(b *testing.B) {
				space, err := arch.New("enas-macro", arch.Options{Layers: layers})
				if err != nil {
					b.Fatal(err)
				}
				_, p, err := enasPolicy(space, 1, nil)
				if err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					p.Sample(workers)
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*workers), "µs/child")
			})
		}
	}
}

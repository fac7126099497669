package rl_test

import (
	"fmt"
	"testing"
	"time"

	"nasd/controller"
)

var benchSpaces = []struct {
	space  string
	layers int
}{{"nas", 6}, {"enas-macro", 12}}

// BenchmarkSample measures Propose per architecture: one sample from the
// controller (plain Go, 2×35 LSTM) plus the space's validation.
func BenchmarkSample(b *testing.B) {
	for _, sp := range benchSpaces {
		b.Run(fmt.Sprintf("%s-%d", sp.space, sp.layers), func(b *testing.B) {
			s := newRL(b, "rl", sp.space, sp.layers, 1, nil)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if _, err := s.Propose(1); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N), "µs/arch")
		})
	}
}

// BenchmarkUpdate measures one REINFORCE update on a batch of 512 results
// (the Gorgonia graph's forward and backward pass over 512 sequences, Adam);
// the graph is built before the timer starts.
func BenchmarkUpdate(b *testing.B) {
	const batch = 512
	for _, sp := range benchSpaces {
		b.Run(fmt.Sprintf("%s-%d/batch-%d", sp.space, sp.layers, batch), func(b *testing.B) {
			s := newRL(b, "rl", sp.space, sp.layers, 1, map[string]any{"batch": int64(batch)})
			round := func() controller.Trial { // all but the last result observed
				ts := propose(b, s, batch)
				observe(b, s, ts[:batch-1]...)
				return ts[batch-1]
			}
			observe(b, s, round()) // builds the graph
			var total time.Duration
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				last := round()
				b.StartTimer()
				t0 := time.Now()
				observe(b, s, last)
				total += time.Since(t0)
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/update")
		})
	}
}

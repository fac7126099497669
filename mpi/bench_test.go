//go:build mpi

package mpi

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// Benchmarks run under a launcher with a fixed iteration count, so that every
// rank runs the same b.N (the adaptive count would differ between ranks):
//
//	mpirun -n 2 --bind-to none ./mpi.test -test.run '^$' -test.bench . -test.benchtime 2000x
//
// Rank 0's lines are the result; the metrics are in µs.

// sameN fails b unless every rank runs b.N iterations.
func sameN(b *testing.B) {
	b.Helper()
	x := []float64{float64(b.N)}
	if err := AllreduceFloat64(context.Background(), x); err != nil {
		b.Fatal(err)
	}
	if x[0] != float64(b.N*Size()) {
		b.Fatalf("ranks run different b.N (run with -test.benchtime Nx)")
	}
}

// BenchmarkRoundTrip: rank 0 sends n bytes to rank 1 and waits for them to
// come back (Send + RecvAny on both sides, the nasd dispatch path).
func BenchmarkRoundTrip(b *testing.B) {
	for _, bc := range []struct {
		name string
		n    int
	}{{"1B", 1}, {"64KiB", 64 << 10}} {
		b.Run(bc.name, func(b *testing.B) {
			if Size() < 2 {
				b.Skip("needs 2 ranks")
			}
			sameN(b)
			ctx := context.Background()
			buf := make([]byte, bc.n)
			if err := Barrier(); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(2 * bc.n))
			b.ResetTimer()
			t0 := time.Now()
			for range b.N {
				switch Rank() {
				case 0:
					if err := Send(buf, 1, tagBench); err != nil {
						b.Fatal(err)
					}
					if _, _, err := RecvAny(ctx, tagBench); err != nil {
						b.Fatal(err)
					}
				case 1:
					_, m, err := RecvAny(ctx, tagBench)
					if err != nil {
						b.Fatal(err)
					}
					if err := Send(m, 0, tagBench); err != nil {
						b.Fatal(err)
					}
				}
			}
			el := time.Since(t0)
			b.StopTimer()
			b.ReportMetric(float64(el.Nanoseconds())/1e3/float64(b.N), "µs/roundtrip")
			if err := Barrier(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkGathervFloat64: every rank gathers one float64 (8 bytes) to rank 0:
// the per-round cost of collecting rewards in synchronous mode.
func BenchmarkGathervFloat64(b *testing.B) {
	sameN(b)
	ctx := context.Background()
	v := make([]byte, 8)
	if err := Barrier(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	t0 := time.Now()
	for range b.N {
		if _, err := Gatherv(ctx, 0, v); err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(t0)
	b.StopTimer()
	b.ReportMetric(float64(el.Nanoseconds())/1e3/float64(b.N), "µs/gather")
	if err := Barrier(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAllreduceFloat32Ordered: the ENAS gradient collective over every
// rank, from 1 float (the latency α) to 1 Mi floats (the bandwidth β).
// bytes/rank is what each rank sends (2(p−1)·⌈n/p⌉·4).
func BenchmarkAllreduceFloat32Ordered(b *testing.B) {
	for _, n := range []int{1, 1 << 10, 1 << 14, 1 << 16, 1 << 18, 1 << 20} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			sameN(b)
			ctx := context.Background()
			x := make([]float32, n)
			if err := Barrier(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			t0 := time.Now()
			for range b.N {
				if err := AllreduceFloat32Ordered(ctx, x); err != nil {
					b.Fatal(err)
				}
			}
			el := time.Since(t0)
			b.StopTimer()
			p := Size()
			b.ReportMetric(float64(el.Nanoseconds())/1e3/float64(b.N), "µs/allreduce")
			b.ReportMetric(float64(2*(p-1)*((n+p-1)/p)*4), "bytes/rank")
			if err := Barrier(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

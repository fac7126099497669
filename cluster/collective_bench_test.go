package cluster_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"nasd/cluster"
)

// benchSizes are the weight-vector lengths of the collective benchmarks:
// from a small controller to an ENAS supernet of tens of millions of floats.
var benchSizes = []int{1e4, 1e6, 1e7}

// enasLayout is the bucket layout of the AllreduceBuckets benchmarks: 12
// layers of 8 ops, each op one bucket of n/96 floats (ENAS's macro space has
// 12 layers and 6 ops; 8 makes the mask arithmetic plain).
const benchLayers, benchOps = 12, 8

// rankBench is one rank's part of a collective benchmark: step(i) makes the
// i-th call; wire is the bytes the MPI transport sends per rank for it
// (cluster.AllreduceBytes plus, for buckets, the mask allreduce).
type rankBench struct {
	step func(i int) error
	wire func(i int) int
}

// newRankBench sets up kind ("float32" or "buckets") of n floats on tr's
// rank. In "buckets", rank 0 (the controller) uses nothing and each other
// rank uses one op per layer, chosen by (rank, step, layer), so the union
// changes from step to step as in ENAS's ω phase.
func newRankBench(ctx context.Context, tr cluster.Transport, kind string, n int) (rankBench, error) {
	p, me := tr.Size(), tr.Rank()
	x := make([]float32, n)
	for i := range x {
		x[i] = 1
	}
	if kind == "float32" {
		return rankBench{
			step: func(int) error { return tr.AllreduceFloat32(ctx, x) },
			wire: func(int) int { return cluster.AllreduceBytes(p, n) },
		}, nil
	}
	per := n / (benchLayers * benchOps)
	var list []cluster.Bucket
	for l := range benchLayers {
		for o := range benchOps {
			list = append(list, cluster.Bucket{Name: fmt.Sprintf("layer%d/op%d", l, o), Off: (l*benchOps + o) * per, Len: per})
		}
	}
	bs, err := cluster.NewBuckets(n, list)
	if err != nil {
		return rankBench{}, err
	}
	// pick is the op rank q's child uses in layer l at step i.
	pick := func(q, i, l int) int {
		return rand.New(rand.NewPCG(uint64(q), uint64(i*benchLayers+l))).IntN(benchOps)
	}
	maskFor := func(q, i int) cluster.Mask {
		m := bs.NewMask()
		if q == 0 {
			return m
		}
		for l := range benchLayers {
			m.Set(l*benchOps + pick(q, i, l))
		}
		return m
	}
	return rankBench{
		step: func(i int) error {
			_, err := cluster.AllreduceBuckets(ctx, tr, x, bs, maskFor(me, i))
			return err
		},
		wire: func(i int) int {
			union := bs.NewMask()
			for q := range p {
				for w, v := range maskFor(q, i) {
					union[w] |= v
				}
			}
			mask := 0
			if p > 1 {
				mask = 8 * (len(union) + 2 + (p+63)/64) // ≈: MPI's own algorithm sends it
			}
			return mask + cluster.AllreduceBytes(p, bs.Floats(union))
		},
	}, nil
}

// report sets the metrics of a collective benchmark: MB/s of the weight
// vector (n floats) reduced, and bytes/op, the mean bytes each rank sends
// per call over the MPI transport (in-process, memory is copied instead).
func report(b *testing.B, rb rankBench, iters int) {
	total := 0
	for i := range iters {
		total += rb.wire(i)
	}
	b.ReportMetric(float64(total)/float64(iters), "bytes/op")
}

// BenchmarkCollectives times AllreduceFloat32 and AllreduceBuckets on
// in-process jobs of 2 and 4 ranks (goroutines: every rank's copy-in and
// the one rank-ordered sum share this machine's cores). For the MPI
// transport, see BenchmarkMPICollectives (mpi_test.go).
func BenchmarkCollectives(b *testing.B) {
	for _, kind := range []string{"float32", "buckets"} {
		for _, p := range []int{2, 4} {
			for _, n := range benchSizes {
				b.Run(fmt.Sprintf("%s/P=%d/n=%d", kind, p, n), func(b *testing.B) {
					// A failing rank cancels the others instead of leaving them waiting.
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					ts := cluster.NewInProcess(p)
					rbs := make([]rankBench, p)
					for r, tr := range ts {
						var err error
						if rbs[r], err = newRankBench(ctx, tr, kind, n); err != nil {
							b.Fatal(err)
						}
					}
					b.SetBytes(int64(4 * n))
					errs := make([]error, p)
					var wg sync.WaitGroup
					b.ResetTimer()
					for r := 1; r < p; r++ {
						wg.Go(func() {
							for i := 0; i < b.N && errs[r] == nil; i++ {
								if errs[r] = rbs[r].step(i); errs[r] != nil {
									cancel()
								}
							}
						})
					}
					for i := 0; i < b.N && errs[0] == nil; i++ {
						if errs[0] = rbs[0].step(i); errs[0] != nil {
							cancel()
						}
					}
					wg.Wait()
					b.StopTimer()
					for r, err := range errs {
						if err != nil {
							b.Fatalf("rank %d: %v", r, err)
						}
					}
					report(b, rbs[0], b.N)
				})
			}
		}
	}
}

package cluster_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"nasd/cluster"
)

// TestCollectiveSuite runs collectiveSuite on in-process jobs of 1, 2, 3 and
// 5 ranks, a few times each, since goroutine timing varies between runs.
func TestCollectiveSuite(t *testing.T) {
	for _, p := range []int{1, 2, 3, 5} {
		for run := range 3 {
			ts := cluster.NewInProcess(p)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			errs := make([]error, p)
			var wg sync.WaitGroup
			for r, tr := range ts {
				wg.Go(func() { errs[r] = collectiveSuite(ctx, tr) })
			}
			wg.Wait()
			cancel()
			for r, err := range errs {
				if err != nil {
					t.Errorf("%d ranks, run %d, rank %d: %v", p, run, r, err)
				}
			}
		}
	}
}

// AllreduceBucketsBytes: the packed floats' ring terms plus the mask once.
func TestAllreduceBucketsBytes(t *testing.T) {
	for _, c := range []struct{ p, b, n, want int }{
		{1, 49, 1000, 0},
		{2, 49, 14231, 8*(1+2+1) + 2*1*7116*4},
		{3, 49, 10, 8*(1+2+1) + 2*2*4*4},
		{512, 49, 71930, 8*(1+2+8) + 2*511*141*4},
		{9, 130, 0, 8 * (3 + 2 + 1)},
	} {
		if got := cluster.AllreduceBucketsBytes(c.p, c.b, c.n); got != c.want {
			t.Errorf("AllreduceBucketsBytes(%d, %d, %d) = %d, want %d", c.p, c.b, c.n, got, c.want)
		}
	}
}

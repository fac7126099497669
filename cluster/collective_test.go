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

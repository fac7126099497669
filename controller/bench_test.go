package controller_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"nasd/cluster"
	"nasd/controller"
	"nasd/journal"
	"nasd/surrogate"
	"nasd/worker"
)

// BenchmarkLoop measures the loop's cost per trial: the surrogate at zero
// duration over the in-process transport, so a trial costs only rank 0's
// work (propose, encode, log, decode, observe, checkpoint) and the worker's
// (decode, surrogate, encode). The journal is on the temporary directory's
// file system (fs=tmp, real fsyncs) and on tmpfs when /dev/shm exists
// (fs=shm, where fsync costs nearly nothing), which separates the loop's
// overhead from the disk's.
func BenchmarkLoop(b *testing.B) {
	dirs := map[string]string{"tmp": ""}
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		dirs["shm"] = "/dev/shm"
	}
	for _, mode := range []string{"sync", "async"} {
		for _, workers := range []int{1, 4} {
			for _, fs := range []string{"tmp", "shm"} {
				root, ok := dirs[fs]
				if !ok {
					continue
				}
				b.Run(fmt.Sprintf("%s/workers=%d/fs=%s", mode, workers, fs), func(b *testing.B) {
					benchLoop(b, mode, workers, root)
				})
			}
		}
	}
}

func benchLoop(b *testing.B, mode string, workers int, root string) {
	if root == "" {
		root = b.TempDir()
	} else {
		d, err := os.MkdirTemp(root, "nasd-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(d) })
		root = d
	}
	space := testSpace(b)
	obj := surrogate.New(space, surrogate.Options{Seed: 7})
	ends := cluster.NewInProcess(workers + 1)
	var wg sync.WaitGroup
	for r := 1; r <= workers; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := worker.Run(context.Background(), ends[r], obj, mode, 0, zerolog.Nop()); err != nil {
				b.Error(err)
			}
		}()
	}
	run, err := journal.Create(filepath.Join(root, "run"))
	if err != nil {
		b.Fatal(err)
	}
	defer run.Close()
	log, err := run.NewLog("bench")
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close()
	s, err := controller.New("random", controller.Env{Space: space, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	cfg := controller.Config{Mode: mode, MaxTrials: b.N, Seed: 1, RunID: "bench"}
	b.ResetTimer()
	start := time.Now()
	sum, err := controller.Run(context.Background(), cfg, s, ends[0], run, log, false, nil)
	el := time.Since(start)
	b.StopTimer()
	if err != nil || sum.Trials != b.N {
		b.Fatalf("%+v %v", sum, err)
	}
	wg.Wait()
	b.ReportMetric(float64(el.Microseconds())/float64(b.N), "µs/trial")
	b.ReportMetric(float64(b.N)/el.Seconds(), "trials/s")
}

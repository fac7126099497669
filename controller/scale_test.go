package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"nasd/cluster"
	"nasd/controller"
	_ "nasd/controller/evolution"
	_ "nasd/controller/rl"
	"nasd/journal"
	"nasd/surrogate"
	"nasd/worker"
)

// scaleConfig is one configuration of TestScale.
type scaleConfig struct {
	strategy, stopper string
	trials            int // 0: NASD_SCALE_TRIALS
}

// TestScale measures a whole run at scale (docs/scale.md): the surrogate
// with no training time, in process, 4 workers, async mode, 5 epochs per
// trial, the default checkpoint period (30 s). For each configuration it
// logs one line: checkpoint size on disk (checkpoint.zst) and its JSON
// payload, checkpoint time (Snapshot + SaveCheckpoint of the final state),
// resume time (a resumed Run that loads the checkpoint, replays the log
// after it and, the trial budget being reached, ends), event log bytes per
// trial (zstd segments on disk), and rank 0's heap (HeapInuse: peak sampled
// every 100 ms during the run, and after a GC at its end; the in-process
// workers are included but hold next to nothing).
//
// Skipped unless NASD_SCALE=1. NASD_SCALE_TRIALS sets the trial count
// (default 10^6); NASD_SCALE_RL_TRIALS the count for rl (default 10^4:
// it updates its policy, a Gorgonia graph, once per batch);
// NASD_SCALE_ONLY=name,name,... runs those configurations only (names
// as in the table: "random", "aging-evolution+asha", ...).
func TestScale(t *testing.T) {
	if os.Getenv("NASD_SCALE") != "1" {
		t.Skip("NASD_SCALE=1 runs it (minutes to hours)")
	}
	n := envInt(t, "NASD_SCALE_TRIALS", 1_000_000)
	nrl := envInt(t, "NASD_SCALE_RL_TRIALS", 10_000)
	configs := []scaleConfig{
		{strategy: "random"},
		{strategy: "random-policy"},
		{strategy: "rl", trials: nrl},
		{strategy: "ga"},
		{strategy: "aging-evolution"},
		{strategy: "random", stopper: "median"},
		{strategy: "random", stopper: "asha"},
		{strategy: "aging-evolution", stopper: "median"},
		{strategy: "aging-evolution", stopper: "asha"},
	}
	only := os.Getenv("NASD_SCALE_ONLY")
	t.Logf("%-28s %9s %12s %12s %8s %9s %10s %11s %11s", "configuration", "trials", "ckpt_bytes", "ckpt_json", "ckpt_ms", "resume_s", "log_B/trial", "heap_peak_MB", "heap_end_MB")
	for _, c := range configs {
		name := c.strategy
		if c.stopper != "" {
			name += "+" + c.stopper
		}
		if only != "" && !slices.Contains(strings.Split(only, ","), name) {
			continue
		}
		trials := c.trials
		if trials == 0 {
			trials = n
		}
		scaleRun(t, name, c, trials)
	}
}

func envInt(t *testing.T, key string, def int) int {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64) // 1e6 too
	if err != nil || f < 1 {
		t.Fatalf("%s=%q: want a positive count", key, v)
	}
	return int(f)
}

// scaleRun runs one configuration and logs its line (and, over 200 bytes
// per trial, the events that dominate the log).
func scaleRun(t *testing.T, name string, c scaleConfig, trials int) {
	const workers, epochs = 4, 5
	dir := filepath.Join(t.TempDir(), "run")
	space := testSpace(t)
	obj := surrogate.New(space, surrogate.Options{Seed: 7, Noise: 0.02, Epochs: epochs})

	// one search segment: a fresh run, or a resume of it
	segment := func(resume bool) (controller.Summary, controller.Strategy, *journal.Run, time.Duration) {
		ends := cluster.NewInProcess(workers + 1)
		var wg sync.WaitGroup
		for r := 1; r <= workers; r++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := worker.Run(context.Background(), ends[r], obj, controller.ModeAsync, 0, zerolog.Nop()); err != nil {
					t.Error(err)
				}
			}()
		}
		var run *journal.Run
		var err error
		if resume {
			run, err = journal.Open(dir)
		} else {
			run, err = journal.Create(dir)
		}
		if err != nil {
			t.Fatal(err)
		}
		log, err := run.NewLog(runID)
		if err != nil {
			t.Fatal(err)
		}
		s, err := controller.New(c.strategy, controller.Env{Space: space, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		cfg := controller.Config{Mode: controller.ModeAsync, MaxTrials: trials, Seed: 1, RunID: runID,
			Stopper: c.stopper, Epochs: epochs, Space: space}
		start := time.Now()
		sum, err := controller.Run(context.Background(), cfg, s, ends[0], run, log, resume, nil)
		el := time.Since(start)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		wg.Wait()
		if err := log.Close(); err != nil {
			t.Fatal(err)
		}
		return sum, s, run, el
	}

	runtime.GC()
	var peak uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	sum, _, run, runTime := segment(false)
	close(stop)
	<-sampled
	if sum.Trials != trials {
		t.Fatalf("%s: %d trials, want %d", name, sum.Trials, trials)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapEnd := ms.HeapInuse
	if err := run.Close(); err != nil {
		t.Fatal(err)
	}
	logBytes := int64(0)
	segs, _ := filepath.Glob(filepath.Join(dir, "events-*.jsonl.zst"))
	for _, s := range segs {
		fi, err := os.Stat(s)
		if err != nil {
			t.Fatal(err)
		}
		logBytes += fi.Size()
	}

	// resume: load + replay, nothing left to run
	_, s, run, resumeTime := segment(true)
	ckpt, _, err := run.LoadCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	ckStart := time.Now()
	state, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	ckpt.State = state
	if err := run.SaveCheckpoint(ckpt); err != nil {
		t.Fatal(err)
	}
	ckptTime := time.Since(ckStart)
	fi, err := os.Stat(filepath.Join(dir, "checkpoint.zst"))
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%-28s %9d %12d %12d %8.1f %9.2f %10.1f %11.1f %11.1f   (run %.0f s, %.1f µs/trial)", name, trials, fi.Size(),
		len(ckpt.State)+len(ckpt.Loop), float64(ckptTime.Microseconds())/1e3, resumeTime.Seconds(),
		float64(logBytes)/float64(trials), float64(peak)/(1<<20), float64(heapEnd)/(1<<20),
		runTime.Seconds(), float64(runTime.Microseconds())/float64(trials))
	if float64(logBytes)/float64(trials) > 200 {
		logEventShares(t, name, dir, trials)
	}
}

// logEventShares logs the uncompressed bytes per trial of each event kind
// of the first segment (the fresh run), largest first: what dominates the
// log (compression is assumed to act alike on all kinds).
func logEventShares(t *testing.T, name, dir string, trials int) {
	bytes, counts := map[string]int{}, map[string]int{}
	total := 0
	first := ""
	_, err := journal.ReadEvents(dir, func(e journal.Event) error {
		var ev struct {
			Resumed bool `json:"resumed"`
		}
		if e.Kind == "run_start" && json.Unmarshal(e.Raw, &ev) == nil && ev.Resumed {
			first = "done"
		}
		if first == "done" {
			return nil
		}
		bytes[e.Kind] += len(e.Raw) + 1
		counts[e.Kind]++
		total += len(e.Raw) + 1
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	kinds := make([]string, 0, len(bytes))
	for k := range bytes {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return bytes[kinds[i]] > bytes[kinds[j]] })
	var b strings.Builder
	for _, k := range kinds {
		if float64(bytes[k])/float64(total) < 0.01 {
			continue
		}
		fmt.Fprintf(&b, " %s %.0f%% (%.2f/trial, %d B each)", k, 100*float64(bytes[k])/float64(total),
			float64(counts[k])/float64(trials), bytes[k]/counts[k])
	}
	t.Logf("  %s: uncompressed %.0f B/trial:%s", name, float64(total)/float64(trials), b.String())
}

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"syscall"
	"time"

	"nasd/analyze"
	"nasd/journal"
)

// segmentStats measures one job segment of a search: what rank 0 cost and how
// busy the workers were. It is what `make bench-scale` reads.
type segmentStats struct {
	start   time.Time
	cpu0    time.Duration  // this process's CPU time at the start
	spans   []analyze.Span // the trials finished in this segment
	elapsed time.Duration
	cpu     time.Duration
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startSegmentStats() *segmentStats {
	return &segmentStats{start: time.Now(), cpu0: processCPU()}
}

// finish reads the trial results this segment logged (segment: its file).
func (s *segmentStats) finish(segment string) {
	s.elapsed, s.cpu = time.Since(s.start), processCPU()-s.cpu0
	journal.ReadSegment(segment, func(e journal.Event) error {
		if e.Kind != "trial_result" {
			return nil
		}
		var f struct {
			Rank       int
			Start, End time.Time
		}
		if json.Unmarshal(e.Raw, &f) == nil && !f.Start.IsZero() && f.End.After(f.Start) {
			s.spans = append(s.spans, analyze.Span{Rank: f.Rank, Start: f.Start, End: f.End})
		}
		return nil
	})
}

// print reports the segment; with in-process workers the process CPU time
// includes their training, so it is not called rank 0's.
func (s *segmentStats) print(w io.Writer, workers int, inProcess bool) {
	if len(s.spans) == 0 || s.elapsed <= 0 {
		return
	}
	var busy time.Duration // Σ (end − start)
	for _, sp := range s.spans {
		busy += sp.End.Sub(sp.Start)
	}
	who := "rank 0"
	if inProcess {
		who = "process (rank 0 and workers)"
	}
	perTrial := s.cpu / time.Duration(len(s.spans))
	cpu := fmt.Sprintf("%d µs", perTrial.Microseconds())
	if perTrial >= 10*time.Millisecond {
		cpu = perTrial.Round(time.Millisecond).String()
	}
	rate := float64(len(s.spans)) / s.elapsed.Seconds()
	rateText := fmt.Sprintf("%.1f", rate)
	if rate < 10 {
		rateText = fmt.Sprintf("%.3g", rate)
	}
	steady := ""
	if frac, window, ok := analyze.SteadyBusy(s.spans, workers); ok {
		steady = fmt.Sprintf(", %.1f%% over the %.3gs all had work", 100*frac, window.Seconds())
	}
	fmt.Fprintf(w, "Throughput: %s trials/s; workers busy %.0f%% of %d×%.1fs%s; %s CPU %s per trial\n",
		rateText, 100*busy.Seconds()/(float64(workers)*s.elapsed.Seconds()),
		workers, s.elapsed.Seconds(), steady, who, cpu)
}

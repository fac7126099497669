package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"nasd/journal"
)

// logged is what a run's event log says about its trials, over all segments.
type logged struct {
	results  map[string]int    // trial → trial_result events
	hash     map[string]string // trial → the one architecture hash
	twoArchs []string          // "trial: hash vs hash" for every ID seen with two
	segments []segment
	ends     []map[string]any // run_end events
	starts   []map[string]any // run_start events
}

// segment is one job's part of the log.
type segment struct {
	dispatched []string // trials dispatched, in order
}

func readLogged(t *testing.T, dir string) logged {
	t.Helper()
	lg := logged{results: map[string]int{}, hash: map[string]string{}}
	note := func(id, h string) {
		if h == "" {
			return
		}
		if old, ok := lg.hash[id]; ok && old != h {
			lg.twoArchs = append(lg.twoArchs, fmt.Sprintf("%s: %.12s vs %.12s", id, old, h))
		}
		lg.hash[id] = h
	}
	_, err := journal.ReadEvents(dir, func(e journal.Event) error {
		var ev struct {
			Trial    string   `json:"trial"`
			ArchHash string   `json:"arch_hash"`
			IDs      []string `json:"ids"`
			Hashes   []string `json:"arch_hashes"`
		}
		if err := json.Unmarshal(e.Raw, &ev); err != nil {
			return err
		}
		switch e.Kind {
		case "run_start", "run_end":
			var m map[string]any
			if err := json.Unmarshal(e.Raw, &m); err != nil {
				return err
			}
			if e.Kind == "run_start" {
				lg.starts = append(lg.starts, m)
				lg.segments = append(lg.segments, segment{})
			} else {
				lg.ends = append(lg.ends, m)
			}
		case "strategy_propose":
			for i, id := range ev.IDs {
				note(id, ev.Hashes[i])
			}
		case "trial_dispatched":
			note(ev.Trial, ev.ArchHash)
			s := &lg.segments[len(lg.segments)-1]
			s.dispatched = append(s.dispatched, ev.Trial)
		case "trial_result":
			note(ev.Trial, ev.ArchHash)
			lg.results[ev.Trial]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return lg
}

// check fails unless the log has exactly n trials with one result each,
// and no trial ID with two architectures.
func (lg logged) check(t *testing.T, n int) {
	t.Helper()
	if len(lg.results) != n {
		t.Errorf("%d trials with a result, want %d", len(lg.results), n)
	}
	for id, c := range lg.results {
		if c != 1 {
			t.Errorf("trial %s has %d results", id, c)
		}
	}
	for _, s := range lg.twoArchs {
		t.Errorf("trial ID with two architectures: %s", s)
	}
}

// killAfter runs nasd search with args in a child process and kills it
// with SIGKILL once k trial results are logged (or lets it end); it returns
// the trials with a result at the kill.
func killAfter(t *testing.T, k int, dir string, args ...string) map[string]int {
	t.Helper()
	pr, pw := io.Pipe()
	cmd := nasdProcess(t, pw, args...)
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		pw.Close()
		close(done)
	}()
	go io.Copy(io.Discard, pr)
	if !waitLogged(dir, "trial_result", k, time.Minute, done) {
		select {
		case <-done: // the search ended first
		default:
			t.Fatalf("%s: no %d trial results within a minute", dir, k)
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
	return readLogged(t, dir).results
}

// TestSearchResumeEveryStrategy kills a surrogate search of every strategy,
// in both modes and with every stopper in async mode, with SIGKILL, resumes
// it, and checks the run: every trial once, one architecture per trial ID,
// and no trial with a logged result dispatched again.
func TestSearchResumeEveryStrategy(t *testing.T) {
	const trials = 24
	type tc struct{ mode, strategy, options, stopper string }
	var cases []tc
	for _, mode := range []string{"sync", "async"} {
		cases = append(cases,
			tc{mode, "random", "", ""},
			tc{mode, "random-policy", "", ""},
			tc{mode, "rl", "batch = 3\nhidden = 8", ""},
			tc{mode, "ga", "population = 6", ""},
			tc{mode, "aging-evolution", "population = 6\nsample = 3", ""})
	}
	cases = append(cases, tc{"async", "aging-evolution", "population = 6\nsample = 3", "median"},
		tc{"async", "ga", "population = 6", "asha"})
	for _, c := range cases {
		name := c.mode + "/" + c.strategy
		if c.stopper != "" {
			name += "+" + c.stopper
		}
		t.Run(name, func(t *testing.T) {
			cfgText := fmt.Sprintf(surrogateTOML, c.mode, trials, "40ms") +
				fmt.Sprintf("[strategy]\nname = %q\n[strategy.options]\n%s\n", c.strategy, c.options)
			if c.stopper != "" {
				cfgText += fmt.Sprintf("[early_stopping]\nname = %q\n", c.stopper)
			}
			cfg := writeConfig(t, cfgText)
			dir := filepath.Join(t.TempDir(), "run")
			before := killAfter(t, 4, dir, "search", "-config", cfg, "-run-dir", dir)
			if len(before) == 0 || len(before) >= trials {
				t.Fatalf("%d results at the kill; the test needs a run cut in the middle", len(before))
			}
			if code, out, errOut := nasd(t, "search", "-resume", dir); code != exitOK {
				t.Fatalf("resume: exit %d\n%s\n%s", code, out, errOut)
			}
			lg := readLogged(t, dir)
			lg.check(t, trials)
			if len(lg.segments) != 2 {
				t.Fatalf("%d segments, want 2", len(lg.segments))
			}
			for _, id := range lg.segments[1].dispatched {
				if before[id] > 0 {
					t.Errorf("trial %s had a logged result before the kill and was dispatched again", id)
				}
			}
			t.Logf("%d results logged at the kill; the resumed job dispatched %d trials", len(before), len(lg.segments[1].dispatched))
		})
	}
}

// TestSearchResumeRefusesChanges: flags that would change a resumed run are
// refused, naming the flag, unless -override (then printed, logged in
// run_start and kept for later resumes); -run-dir with -resume is an error.
func TestSearchResumeRefusesChanges(t *testing.T) {
	cfg := writeConfig(t, fmt.Sprintf(surrogateTOML, "sync", 6, "1ms"))
	dir := filepath.Join(t.TempDir(), "run")
	if code, out, errOut := nasd(t, "search", "-config", cfg, "-run-dir", dir); code != exitOK {
		t.Fatalf("search: %d\n%s\n%s", code, out, errOut)
	}
	for _, args := range [][]string{{"-trials", "12"}, {"-mode", "async"}, {"-seed", "9"}, {"-workers", "2"}, {"-trainer", "real"}, {"-time", "1h"}} {
		code, _, errOut := nasd(t, append([]string{"search", "-resume", dir}, args...)...)
		if code != exitError || !strings.Contains(errOut, args[0]+" "+args[1]) || !strings.Contains(errOut, "-override") {
			t.Errorf("resume %v: exit %d, stderr:\n%s\nwant exit 1 naming %s and -override", args, code, errOut, args[0])
		}
	}
	if code, _, errOut := nasd(t, "search", "-resume", dir, "-run-dir", t.TempDir()); code != exitUsage || !strings.Contains(errOut, "-run-dir with -resume") {
		t.Errorf("-run-dir with -resume: exit %d, stderr:\n%s", code, errOut)
	}
	if code, _, errOut := nasd(t, "search", "-config", cfg, "-override"); code != exitUsage || !strings.Contains(errOut, "-override is for -resume") {
		t.Errorf("-override without -resume: exit %d, stderr:\n%s", code, errOut)
	}
	if lg := readLogged(t, dir); len(lg.starts) != 1 {
		t.Fatalf("a refused resume wrote to the log: %d run_start events", len(lg.starts))
	}
	code, out, errOut := nasd(t, "search", "-resume", dir, "-trials", "12", "-override")
	if code != exitOK || !strings.Contains(out, "-override: -trials 12 (was 6)") {
		t.Fatalf("resume -trials 12 -override: exit %d\n%s\n%s", code, out, errOut)
	}
	lg := readLogged(t, dir)
	lg.check(t, 12)
	if ov, _ := lg.starts[1]["overrides"].([]any); len(ov) != 1 || !strings.Contains(fmt.Sprint(ov[0]), "-trials 12") {
		t.Errorf("run_start overrides = %v", lg.starts[1]["overrides"])
	}
	// The override is the run's now: a plain resume finds nothing to do.
	if code, out, errOut := nasd(t, "search", "-resume", dir); code != exitOK || strings.Contains(out, "override") {
		t.Errorf("plain resume after the override: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestSearchDeadlineChain runs a search as a chain of jobs that each end
// at -stop-at: every job but the last exits 3 with reason "deadline" and
// starts no trial in its last -stop-margin; the chain ends with exit 0 and
// every trial once. The last job takes its end from SLURM_JOB_END_TIME.
func TestSearchDeadlineChain(t *testing.T) {
	const trials = 40
	cfg := writeConfig(t, fmt.Sprintf(surrogateTOML, "async", trials, "150ms"))
	dir := filepath.Join(t.TempDir(), "run")
	args := []string{"search", "-config", cfg, "-run-dir", dir, "-stop-margin", "300ms"}
	var codes []int
	for job := 1; ; job++ {
		if job > 20 {
			t.Fatalf("the chain does not end: exit codes %v", codes)
		}
		stopAt := time.Now().Add(time.Second)
		jobArgs := append(append([]string(nil), args...), "-stop-at", stopAt.Format(time.RFC3339Nano))
		code, out, errOut := nasd(t, jobArgs...)
		codes = append(codes, code)
		if code == exitOK {
			break
		}
		if code != exitCheckpointed || !strings.Contains(out, "The job ends at") {
			t.Fatalf("job %d: exit %d\n%s\n%s", job, code, out, errOut)
		}
		lg := readLogged(t, dir)
		if end := lg.ends[len(lg.ends)-1]; end["reason"] != "deadline" || end["interrupted"] != true {
			t.Fatalf("job %d: run_end %v", job, end)
		}
		checkNoDispatchAfter(t, dir, stopAt.Add(-300*time.Millisecond))
		args = []string{"search", "-resume", dir}
		if job == 2 {
			// A Slurm job: its end in whole seconds, from the environment.
			end := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
			t.Setenv("SLURM_JOB_END_TIME", fmt.Sprint(end.Unix()))
			code, out, errOut := nasd(t, "search", "-resume", dir, "-stop-margin", "300ms")
			codes = append(codes, code)
			if code != exitCheckpointed && code != exitOK {
				t.Fatalf("Slurm job: exit %d\n%s\n%s", code, out, errOut)
			}
			os.Unsetenv("SLURM_JOB_END_TIME")
			if code == exitOK {
				break
			}
		}
	}
	if len(codes) < 3 {
		t.Errorf("exit codes %v: the deadline never cut the search", codes)
	}
	readLogged(t, dir).check(t, trials)
	t.Logf("exit codes of the chain: %v", codes)
}

// checkNoDispatchAfter fails if the last segment of dir dispatched a trial
// at or after at.
func checkNoDispatchAfter(t *testing.T, dir string, at time.Time) {
	t.Helper()
	var last []journal.Event
	journal.ReadEvents(dir, func(e journal.Event) error {
		if e.Kind == "run_start" {
			last = nil
		}
		last = append(last, e)
		return nil
	})
	for _, e := range last {
		if e.Kind == "trial_dispatched" && !e.Time.Before(at) {
			t.Errorf("seq %d: a trial dispatched at %s, after stop_at − margin (%s)", e.Seq, e.Time.Format(time.StampMicro), at.Format(time.StampMicro))
		}
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"nasd/arch"
	"nasd/journal"
)

// TestMain lets tests run the command as a child process (signals, kill -9,
// exit codes) by re-executing the test binary.
// testTmp is a directory for files the tests share (built once), removed
// after the run.
var testTmp string

func TestMain(m *testing.M) {
	if os.Getenv("NASD_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	var err error
	if testTmp, err = os.MkdirTemp("", "nasd-cmd-test-"); err != nil {
		panic(err)
	}
	code := m.Run()
	stopSlurm()
	os.RemoveAll(testTmp)
	os.Exit(code)
}

// nasdProcess starts the command in a child process.
func nasdProcess(t *testing.T, stdout io.Writer, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "NASD_TEST_MAIN=1")
	cmd.Stdout = stdout
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stderr of %v:\n%s", args, stderr.String())
		}
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

const surrogateTOML = `
seed = 3
mode = "%s"
workers = 3
[budget]
trials = %d
[space]
name = "nas"
layers = 4
[trainer]
kind = "surrogate"
epochs = 3
[trainer.surrogate]
duration = "%s"
noise = 0.01
`

// trialResults reads the run's trial_result events: trial ID → reward.
func trialResults(t *testing.T, dir string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	_, err := journal.ReadEvents(dir, func(e journal.Event) error {
		if e.Kind != "trial_result" {
			return nil
		}
		var f struct {
			Trial  string  `json:"trial"`
			Reward float64 `json:"reward"`
		}
		if err := json.Unmarshal(e.Raw, &f); err != nil {
			return err
		}
		if _, dup := out[f.Trial]; dup {
			t.Errorf("%s: trial %s has two results", dir, f.Trial)
		}
		out[f.Trial] = f.Reward
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSearchInProcessSurrogate(t *testing.T) {
	for _, mode := range []string{"sync", "async"} {
		t.Run(mode, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			cfg := writeConfig(t, fmt.Sprintf(surrogateTOML, mode, 12, "1ms"))
			code, out, errOut := nasd(t, "search", "-config", cfg, "-run-dir", dir)
			if code != exitOK {
				t.Fatalf("code %d\n%s\n%s", code, out, errOut)
			}
			for _, want := range []string{"strategy random", "3 workers", "Trials: 12", "Best: trial t0000"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if got := trialResults(t, dir); len(got) != 12 {
				t.Errorf("%d trial results in the log, want 12", len(got))
			}
			// Sync rounds give every worker a trial each round, so the
			// steady-state window exists; nasd analyze finds the same.
			if mode == "sync" {
				m := regexp.MustCompile(`workers busy \d+% of 3×[0-9.]+s, ([0-9.]+% over the [0-9.]+s all had work);`).FindStringSubmatch(out)
				if m == nil {
					t.Fatalf("output lacks the steady-state busy figure:\n%s", out)
				}
				if code, report, errOut := nasd(t, "analyze", dir); code != exitOK || !strings.Contains(report, "; "+m[1]+" (") {
					t.Errorf("nasd analyze (exit %d) does not report %q:\n%s\n%s", code, m[1], report, errOut)
				}
			}
			for _, f := range []string{"config.toml", "best.json", "summary.json"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("run directory lacks %s", f)
				}
			}
			if _, _, err := arch.Load(filepath.Join(dir, "best.json")); err != nil {
				t.Errorf("best.json is not a loadable architecture: %v", err)
			}
			// The run directory is not overwritten by a second search.
			if code, _, errOut := nasd(t, "search", "-config", cfg, "-run-dir", dir); code != exitError || !strings.Contains(errOut, dir) {
				t.Errorf("second search into the same directory: code %d, stderr:\n%s", code, errOut)
			}
		})
	}
}

func TestSearchBadConfigExits1(t *testing.T) {
	cfg := writeConfig(t, "mode = \"sideways\"\n[trainer]\nkind = \"oracle\"\n")
	code, _, errOut := nasd(t, "search", "-config", cfg)
	if code != exitError || !strings.Contains(errOut, cfg+":1") || !strings.Contains(errOut, "oracle") {
		t.Errorf("code %d, stderr:\n%s", code, errOut)
	}
	if code, _, _ := nasd(t, "search"); code != exitUsage {
		t.Errorf("search without -config: code %d", code)
	}
	if code, _, errOut := nasd(t, "search", "-resume", filepath.Join(t.TempDir(), "nothing")); code != exitError || !strings.Contains(errOut, "nothing") {
		t.Errorf("resume of a missing run: code %d, stderr:\n%s", code, errOut)
	}
}

// TestSearchSIGTERMCheckpointsAndResumes interrupts a sync search with
// SIGTERM (exit 3), kills another with SIGKILL, resumes both, and checks that
// each ends with exactly the trials and rewards of an uninterrupted run.
func TestSearchSIGTERMCheckpointsAndResumes(t *testing.T) {
	const trials = 30
	cfg := writeConfig(t, fmt.Sprintf(surrogateTOML, "sync", trials, "20ms"))
	base := t.TempDir()

	ref := filepath.Join(base, "reference")
	if code, out, errOut := nasd(t, "search", "-config", cfg, "-run-dir", ref); code != exitOK {
		t.Fatalf("reference run: %d\n%s\n%s", code, out, errOut)
	}
	want := trialResults(t, ref)
	if len(want) != trials {
		t.Fatalf("reference run has %d results", len(want))
	}

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := filepath.Join(base, strings.ReplaceAll(sig.String(), " ", "-"))
			pr, pw := io.Pipe()
			cmd := nasdProcess(t, pw, "search", "-config", cfg, "-run-dir", dir)
			go io.Copy(io.Discard, pr)
			// Interrupt once a few trials are done.
			if !waitLogged(dir, "trial_result", 6, time.Minute, nil) {
				t.Fatalf("%s: no 6 trial results within a minute", dir)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			pw.Close()
			if sig == syscall.SIGTERM && exitCode(err) != exitCheckpointed {
				t.Fatalf("SIGTERM: exit %v, want %d", err, exitCheckpointed)
			}
			got := trialResults(t, dir)
			if len(got) == 0 || len(got) >= trials {
				t.Fatalf("%d results before the interruption; the test needs a run cut in the middle", len(got))
			}
			before := len(got)
			code, out, errOut := nasd(t, "search", "-resume", dir)
			if code != exitOK {
				t.Fatalf("resume: %d\n%s\n%s", code, out, errOut)
			}
			got = trialResults(t, dir)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("resumed run (interrupted after %d results) differs from the uninterrupted one:\n got %v\nwant %v",
					before, sortedKeys(got), sortedKeys(want))
			}
		})
	}
}

// waitLogged reports whether the event log in dir came to hold k events of
// kind within limit; it gives up early, false, when done is closed (the
// search ended). A missing or cut log reads as what it holds.
func waitLogged(dir, kind string, k int, limit time.Duration, done <-chan struct{}) bool {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); {
		n := 0
		journal.ReadEvents(dir, func(e journal.Event) error {
			if e.Kind == kind {
				n++
			}
			return nil
		})
		if n >= k {
			return true
		}
		select {
		case <-done:
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	return false
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestSearchRealTraining(t *testing.T) {
	if _, err := os.Stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"); err != nil {
		t.Skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
	}
	cfg := writeConfig(t, `
mode = "async"
workers = 2
[budget]
trials = 3
[data]
train_subset = 500
val_subset = 200
[space]
name = "enas-macro"
layers = 3
channels = 8
[trainer]
epochs = 1
`)
	dir := filepath.Join(t.TempDir(), "run")
	start := time.Now()
	code, out, errOut := nasd(t, "search", "-config", cfg, "-run-dir", dir)
	if code != exitOK {
		t.Fatalf("code %d\n%s\n%s", code, out, errOut)
	}
	res := trialResults(t, dir)
	if len(res) != 3 {
		t.Fatalf("%d results", len(res))
	}
	for id, r := range res {
		// (accuracy)^3 of a network at chance or better on 10 classes: ≥ 0.1^3
		// (one epoch on 500 images may stay at chance).
		if r < 0.001 || r > 1 {
			t.Errorf("trial %s: reward %v", id, r)
		}
	}
	t.Logf("3 real trials in %.1fs", time.Since(start).Seconds())
}

func TestSearchEarlyStoppingAndConstraints(t *testing.T) {
	for _, stopper := range []string{"median", "asha"} {
		t.Run(stopper, func(t *testing.T) {
			cfg := writeConfig(t, fmt.Sprintf(`
seed = 5
mode = "async"
workers = 3
[budget]
trials = 40
[space]
name = "nas"
layers = 3
[early_stopping]
name = %q
[constraints]
max_params = 20000
[trainer]
kind = "surrogate"
epochs = 8
[trainer.surrogate]
duration = "0s"
`, stopper))
			dir := filepath.Join(t.TempDir(), "run")
			code, out, errOut := nasd(t, "search", "-config", cfg, "-run-dir", dir)
			if code != exitOK {
				t.Fatalf("code %d\n%s\n%s", code, out, errOut)
			}
			var ok, stopped, rejected int
			if _, err := fmt.Sscanf(out[strings.Index(out, "\nTrials: "):], "\nTrials: 40 (%d ok, %d failed, %d stopped early, %d rejected",
				&ok, new(int), &stopped, &rejected); err != nil {
				t.Fatalf("summary line: %v\n%s", err, out)
			}
			if stopped == 0 || rejected == 0 || !strings.Contains(out, "Early stopping saved") {
				t.Errorf("%d stopped, %d rejected:\n%s", stopped, rejected, out)
			}
		})
	}
	cfg := writeConfig(t, "mode = \"sync\"\n[early_stopping]\nname = \"asha\"\n[early_stopping.options]\neta = 0\n")
	code, _, errOut := nasd(t, "search", "-config", cfg)
	if code != exitError || !strings.Contains(errOut, "async") || !strings.Contains(errOut, cfg+":5") {
		t.Errorf("sync + asha with eta 0: code %d\n%s", code, errOut)
	}
}

// TestSearchRLLogsUpdates: the RL controller's updates reach the journal,
// one per sync round of 3 children (Zoph & Le's m children per update).
func TestSearchRLLogsUpdates(t *testing.T) {
	cfg := writeConfig(t, fmt.Sprintf(surrogateTOML, "sync", 12, "0s")+"\n[strategy]\nname = \"rl\"\n[strategy.options]\nlr = 0.01\n")
	dir := filepath.Join(t.TempDir(), "run")
	if code, out, errOut := nasd(t, "search", "-config", cfg, "-run-dir", dir); code != exitOK {
		t.Fatalf("code %d\n%s\n%s", code, out, errOut)
	}
	var updates []int
	_, err := journal.ReadEvents(dir, func(e journal.Event) error {
		if e.Kind != "strategy_update" {
			return nil
		}
		var f struct {
			Updates    *int     `json:"updates"`
			Batch      int      `json:"update_batch"`
			MeanReward *float64 `json:"mean_reward"`
		}
		if err := json.Unmarshal(e.Raw, &f); err != nil {
			return err
		}
		if f.Updates != nil {
			if f.Batch != 3 || f.MeanReward == nil {
				t.Errorf("update event %s", e.Raw)
			}
			updates = append(updates, *f.Updates)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(updates, []int{1, 2, 3, 4}) {
		t.Errorf("logged updates %v, want one per round: [1 2 3 4]", updates)
	}
}

// TestSearchWorkerErrorEndsRun: in-process, a worker's fatal error (here its
// data set is missing) ends the search at once with that error and exit 1,
// as under mpirun, instead of leaving rank 0 waiting for a result.
func TestSearchWorkerErrorEndsRun(t *testing.T) {
	cfg := writeConfig(t, `
mode = "async"
workers = 2
[budget]
trials = 4
[data]
dir = "/nonexistent/fashion-mnist"
[space]
name = "nas"
layers = 2
`)
	dir := filepath.Join(t.TempDir(), "run")
	code, stderr := exitWithin(t, 60*time.Second, "search", "-config", cfg, "-run-dir", dir)
	if code != exitError || !strings.Contains(stderr, "rank ") || !strings.Contains(stderr, "/nonexistent/fashion-mnist") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
}

// exitWithin runs nasd args in a child process and returns its exit code
// and stderr; the test fails if it has not ended within limit.
func exitWithin(t *testing.T, limit time.Duration, args ...string) (int, string) {
	t.Helper()
	var stdout bytes.Buffer
	cmd := nasdProcess(t, &stdout, args...)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return exitCode(err), cmd.Stderr.(*bytes.Buffer).String()
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		t.Fatalf("nasd %v still runs after %v", args, limit)
		return 0, ""
	}
}

// hangTOML is a surrogate search whose trial t000004 never returns.
const hangTOML = `
mode = "async"
workers = 3
[budget]
trials = 12
trial_timeout = "1s"
hang_grace = "1s"
[space]
name = "nas"
layers = 3
[trainer]
kind = "surrogate"
[trainer.surrogate]
duration = "20ms"
hang_on = "t000004"
`

// TestSearchHungWorker: in-process, a worker stuck in a trial (ignoring its
// timeout) is noticed after trial_timeout + hang_grace: exit 1 naming the
// trial, checkpointed.
func TestSearchHungWorker(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	code, stderr := exitWithin(t, 90*time.Second, "search", "-config", writeConfig(t, hangTOML), "-run-dir", dir)
	if code != exitError || !strings.Contains(stderr, "t000004") || !strings.Contains(stderr, "hangs") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "checkpoint.zst")); err != nil {
		t.Errorf("no checkpoint after the hang: %v", err)
	}
}

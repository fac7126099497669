package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mpiEnv lets OpenMPI run as root on an oversubscribed 2-core machine and
// end a job quickly when a rank dies (../shared/reference/mpi/NOTES.md).
var mpiEnv = []string{
	"OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1", "OMPI_MCA_rmaps_base_oversubscribe=1",
	"OMPI_MCA_plm_rsh_agent=", "OMPI_MCA_btl_vader_single_copy_mechanism=none", "OMPI_MCA_odls_base_sigkill_timeout=0",
	"MPIEXEC_TIMEOUT=300",
}

// mpiBinary is the MPI-enabled nasd that `make test-mpi` builds; the tests
// skip without it.
func mpiBinary(t *testing.T) string {
	bin := os.Getenv("NASD_MPI_BIN")
	if bin == "" {
		t.Skip("NASD_MPI_BIN is not set: run through `make test-mpi` (needs openmpi-bin and libopenmpi-dev)")
	}
	if _, err := exec.LookPath("mpirun"); err != nil {
		t.Skip("mpirun not found")
	}
	return bin
}

// mpirun starts `mpirun -n ranks nasd args...` with a hard timeout.
func mpirun(t *testing.T, ctx context.Context, ranks int, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	full := append([]string{"-n", fmt.Sprint(ranks), "--bind-to", "none", mpiBinary(t)}, args...)
	cmd := exec.CommandContext(ctx, "mpirun", full...)
	cmd.Env = append(os.Environ(), mpiEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return cmd, &stdout, &stderr
}

func mpirunWait(t *testing.T, ranks int, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd, stdout, stderr := mpirun(t, ctx, ranks, args...)
	err := cmd.Run()
	return exitCode(err), stdout.String(), stderr.String()
}

// TestMPISearchMatchesInProcess: a sync search under mpirun -n 4 gives
// exactly the trials and rewards of the same search with 3 in-process workers.
func TestMPISearchMatchesInProcess(t *testing.T) {
	mpiBinary(t)
	cfg := writeConfig(t, fmt.Sprintf(surrogateTOML, "sync", 24, "5ms"))
	base := t.TempDir()
	local := filepath.Join(base, "local")
	if code, out, errOut := nasd(t, "search", "-config", cfg, "-run-dir", local, "-workers", "3"); code != exitOK {
		t.Fatalf("in-process: %d\n%s\n%s", code, out, errOut)
	}
	dir := filepath.Join(base, "mpi")
	code, out, errOut := mpirunWait(t, 4, "search", "-config", cfg, "-run-dir", dir)
	if code != exitOK {
		t.Fatalf("mpirun: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "3 workers") {
		t.Errorf("output:\n%s", out)
	}
	if got, want := trialResults(t, dir), trialResults(t, local); !reflect.DeepEqual(got, want) || len(got) != 24 {
		t.Errorf("MPI run differs from the in-process run:\n got %v\nwant %v", got, want)
	}
}

func TestMPISearchAsyncAndRealTraining(t *testing.T) {
	mpiBinary(t)
	dir := filepath.Join(t.TempDir(), "async")
	cfg := writeConfig(t, fmt.Sprintf(surrogateTOML, "async", 40, "2ms"))
	if code, out, errOut := mpirunWait(t, 5, "search", "-config", cfg, "-run-dir", dir); code != exitOK {
		t.Fatalf("async: exit %d\n%s\n%s", code, out, errOut)
	}
	if n := len(trialResults(t, dir)); n != 40 {
		t.Errorf("async: %d results, want 40", n)
	}
	if _, err := os.Stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"); err != nil {
		t.Skip("Fashion-MNIST is not installed")
	}
	cfg = writeConfig(t, `
mode = "sync"
[budget]
trials = 2
[data]
train_subset = 300
val_subset = 100
[space]
name = "enas-macro"
layers = 2
channels = 8
[trainer]
epochs = 1
`)
	dir = filepath.Join(t.TempDir(), "real")
	if code, out, errOut := mpirunWait(t, 3, "search", "-config", cfg, "-run-dir", dir); code != exitOK {
		t.Fatalf("real: exit %d\n%s\n%s", code, out, errOut)
	}
	for id, r := range trialResults(t, dir) {
		if r <= 0 || r > 1 {
			t.Errorf("real trial %s: reward %v", id, r)
		}
	}
}

func TestMPIBadConfigEndsEveryRank(t *testing.T) {
	mpiBinary(t)
	cfg := writeConfig(t, "mode = \"sideways\"\n")
	start := time.Now()
	code, _, errOut := mpirunWait(t, 4, "search", "-config", cfg)
	if code == exitOK || !strings.Contains(errOut, cfg+":1") {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("a bad config took %v to end the job", d)
	}
}

// TestMPISignalsCheckpointAndResume: SIGUSR1 to mpirun (forwarded to every
// rank, as Slurm's --signal=USR1@N does before the wall-time limit) makes rank
// 0 checkpoint and end the job with exit 3; SIGTERM to mpirun kills the job at
// once (OpenMPI does not forward it), which is a crash the journal survives.
// Either way -resume under mpirun ends with the same trials and rewards as an
// uninterrupted run.
func TestMPISignalsCheckpointAndResume(t *testing.T) {
	mpiBinary(t)
	const trials = 30
	cfg := writeConfig(t, fmt.Sprintf(surrogateTOML, "sync", trials, "40ms"))
	base := t.TempDir()
	ref := filepath.Join(base, "ref")
	if code, out, errOut := nasd(t, "search", "-config", cfg, "-run-dir", ref, "-workers", "3"); code != exitOK {
		t.Fatalf("reference: %d\n%s\n%s", code, out, errOut)
	}
	want := trialResults(t, ref)
	for _, sig := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := filepath.Join(base, strings.ReplaceAll(sig.String(), " ", "-"))
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd, stdout, stderr := mpirun(t, ctx, 4, "search", "-config", cfg, "-run-dir", dir)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Signal once a few rounds are checkpointed.
			deadline := time.Now().Add(time.Minute)
			for time.Now().Before(deadline) {
				if _, err := os.Stat(filepath.Join(dir, "checkpoint.prev.zst")); err == nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			cmd.Process.Signal(sig)
			code := exitCode(cmd.Wait())
			if sig == syscall.SIGUSR1 && code != exitCheckpointed || code == exitOK {
				t.Fatalf("%v: exit %d\n%s\n%s", sig, code, stdout, stderr)
			}
			before := len(trialResults(t, dir))
			if before == 0 || before >= trials {
				t.Fatalf("%d results before the signal: the test needs a run cut in the middle", before)
			}
			if code, out, errOut := mpirunWait(t, 4, "search", "-resume", dir); code != exitOK {
				t.Fatalf("resume: exit %d\n%s\n%s", code, out, errOut)
			}
			if got := trialResults(t, dir); !reflect.DeepEqual(got, want) {
				t.Errorf("resumed after %d results; differs from the uninterrupted run:\n got %v\nwant %v", before, got, want)
			}
		})
	}
}

// TestMPIEachStrategyTrainsRealNetworks runs every strategy under mpirun -n 4
// with real training on a tiny Fashion-MNIST subset and checks the journal.
func TestMPIEachStrategyTrainsRealNetworks(t *testing.T) {
	mpiBinary(t)
	if _, err := os.Stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"); err != nil {
		t.Skip("Fashion-MNIST is not installed")
	}
	for _, c := range []struct{ strategy, mode, options string }{
		{"random", "async", ""},
		{"rl", "sync", "lr = 0.01"},
		{"random-policy", "sync", ""},
		{"ga", "sync", "population = 3"},
		{"aging-evolution", "async", "population = 3\nsample = 2"},
	} {
		t.Run(c.strategy, func(t *testing.T) {
			cfg := writeConfig(t, fmt.Sprintf(`
mode = %q
[budget]
trials = 6
[data]
train_subset = 200
val_subset = 100
[space]
name = "enas-macro"
layers = 2
channels = 4
[strategy]
name = %q
[strategy.options]
%s
[trainer]
epochs = 1
`, c.mode, c.strategy, c.options))
			dir := filepath.Join(t.TempDir(), "run")
			code, out, errOut := mpirunWait(t, 4, "search", "-config", cfg, "-run-dir", dir)
			if code != exitOK {
				t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
			}
			if !strings.Contains(out, "strategy "+c.strategy+",") {
				t.Errorf("output does not name the strategy:\n%s", out)
			}
			res := trialResults(t, dir)
			if len(res) != 6 {
				t.Errorf("%d results, want 6", len(res))
			}
			for id, r := range res {
				if r <= 0 || r > 1 {
					t.Errorf("trial %s: reward %v", id, r)
				}
			}
		})
	}
}

// TestMPIEarlyStopping: workers report epochs to rank 0 over MPI and stop when told.
func TestMPIEarlyStopping(t *testing.T) {
	mpiBinary(t)
	cfg := writeConfig(t, `
seed = 5
mode = "async"
[budget]
trials = 30
[space]
name = "nas"
layers = 3
[early_stopping]
name = "asha"
[trainer]
kind = "surrogate"
epochs = 8
[trainer.surrogate]
duration = "0s"
`)
	code, out, errOut := mpirunWait(t, 4, "search", "-config", cfg, "-run-dir", filepath.Join(t.TempDir(), "run"))
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "Early stopping saved") || strings.Contains(out, " 0 stopped early") {
		t.Errorf("no trial stopped early:\n%s", out)
	}
}

// TestMPIDeadlineChain runs an async aging-evolution search under mpirun -n 4
// as a chain of jobs that each end at -stop-at: each job but the last exits 3
// having started no trial in its last -stop-margin, and the chain ends with
// exit 0, every trial once and one architecture per trial ID.
func TestMPIDeadlineChain(t *testing.T) {
	mpiBinary(t)
	const trials = 60
	cfg := writeConfig(t, fmt.Sprintf(surrogateTOML, "async", trials, "250ms")+
		"[strategy]\nname = \"aging-evolution\"\n[strategy.options]\npopulation = 8\nsample = 3\n")
	dir := filepath.Join(t.TempDir(), "run")
	args := []string{"search", "-config", cfg, "-run-dir", dir}
	var codes []int
	for job := 1; ; job++ {
		if job > 12 {
			t.Fatalf("the chain does not end: exit codes %v", codes)
		}
		stopAt := time.Now().Add(4 * time.Second)
		code, out, errOut := mpirunWait(t, 4, append(args, "-stop-at", stopAt.Format(time.RFC3339Nano), "-stop-margin", "1s")...)
		codes = append(codes, code)
		if code == exitOK {
			break
		}
		if code != exitCheckpointed {
			t.Fatalf("job %d: exit %d\n%s\n%s", job, code, out, errOut)
		}
		checkNoDispatchAfter(t, dir, stopAt.Add(-time.Second))
		args = []string{"search", "-resume", dir}
	}
	if len(codes) < 2 {
		t.Errorf("exit codes %v: the deadline never cut the search", codes)
	}
	readLogged(t, dir).check(t, trials)
	t.Logf("exit codes of the chain under mpirun -n 4: %v", codes)
}

// TestMPISIGUSR1RealTraining: SIGUSR1 to mpirun -n 8 while every worker
// trains a real network makes rank 0 checkpoint with those trials in flight
// and the whole job exit 3 within 10 s (the time a batch system's warning
// signal leaves, e.g. Slurm's --signal=USR1@120, with a wide margin).
func TestMPISIGUSR1RealTraining(t *testing.T) {
	mpiBinary(t)
	if _, err := os.Stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"); err != nil {
		t.Skip("Fashion-MNIST is not installed")
	}
	cfg := writeConfig(t, `
mode = "async"
[budget]
trials = 200
[data]
train_subset = 2000
val_subset = 200
[space]
name = "enas-macro"
layers = 3
channels = 8
[trainer]
epochs = 3
`)
	dir := filepath.Join(t.TempDir(), "run")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd, stdout, stderr := mpirun(t, ctx, 8, "search", "-config", cfg, "-run-dir", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until all 7 workers have a trial.
	if !waitLogged(dir, "trial_dispatched", 7, 2*time.Minute, nil) {
		cmd.Process.Kill()
		t.Fatalf("fewer than 7 trials dispatched after 2 minutes\n%s\n%s", stdout, stderr)
	}
	sent := time.Now()
	cmd.Process.Signal(syscall.SIGUSR1)
	code := exitCode(cmd.Wait())
	took := time.Since(sent)
	if code != exitCheckpointed || took > 10*time.Second {
		t.Fatalf("SIGUSR1: exit %d after %v, want %d within 10 s\n%s\n%s", code, took, exitCheckpointed, stdout, stderr)
	}
	lg := readLogged(t, dir)
	end := lg.ends[len(lg.ends)-1]
	if end["interrupted"] != true || end["in_flight"].(float64) < 1 {
		t.Errorf("run_end %v: want interrupted with trials in flight", end)
	}
	t.Logf("SIGUSR1 to exit 3: %v, %v trials in flight checkpointed", took.Round(time.Millisecond), end["in_flight"])
}

// TestMPIHungRank: under mpirun -n 4, a rank stuck in a trial ends the job
// after trial_timeout + hang_grace with exit 1 and an error naming the rank
// and the trial (rank 0 aborts the job, which ends the stuck rank too).
func TestMPIHungRank(t *testing.T) {
	mpiBinary(t)
	dir := filepath.Join(t.TempDir(), "run")
	code, out, errOut := mpirunWait(t, 4, "search", "-config", writeConfig(t, hangTOML), "-run-dir", dir)
	if code != exitError || !strings.Contains(errOut, "trial t000004") || !strings.Contains(errOut, "rank ") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nasd/jobs"
)

// jobsSearchTOML is a surrogate search of a few seconds, sync (so that a
// resumed run ends exactly as an uninterrupted one), with a [job] table.
const jobsSearchTOML = `
seed = 11
workers = 2
mode = "sync"
[budget]
trials = 60
[space]
name = "nas"
layers = 4
[strategy]
name = "rl"
[trainer]
kind = "surrogate"
epochs = 3
[trainer.surrogate]
duration = "100ms"
noise = 0.01
[job]
walltime = "1h"
stop_margin = "2m"
launcher = "none"
nodes = 1
ranks_per_node = 1
max_jobs = 3
`

// nasdWrapper is an executable that runs this test binary as nasd: what a
// job script calls as $NASD.
func nasdWrapper(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nasd")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("#!/bin/sh\nNASD_TEST_MAIN=1 exec %q \"$@\"\n", exe)
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// fakeScheduler puts fake qsub, bsub and flux commands first on PATH. Each
// records its arguments, runs the job script at once as the real system
// would start it (its job-id variable set, LSF's script on stdin), and
// prints a job id in the system's format. The first job gets the system's
// end-of-walltime signal once the search is under way: SIGTERM for PBS
// (which warns with nothing else), SIGUSR1 for LSF and Flux (-wa, --signal).
func fakeScheduler(t *testing.T, runDir string) (calls string) {
	t.Helper()
	bin := t.TempDir()
	state := t.TempDir()
	common := `#!/bin/bash
state=` + state + `
n=$(( $(cat $state/n 2>/dev/null || echo 0) + 1 )); echo $n > $state/n
echo "$(basename $0) $*" >> $state/calls
run() { # $1: the script, $2: the signal for job 1
  bash "$1" > $state/job-$n.out 2>&1 &
  pid=$!
  if [ $n = 1 ]; then
    for i in $(seq 1 600); do ls ` + runDir + `/events-*.jsonl.zst >/dev/null 2>&1 && break; sleep 0.05; done
    sleep 1.5
    kill -$2 $pid
  fi
  wait $pid; echo $? > $state/rc-$n
}
`
	scripts := map[string]string{
		"qsub": common + `script="${@: -1}"
export PBS_JOBID=$((100 + n)).fake PBS_O_WORKDIR=$PWD PBS_ENVIRONMENT=PBS_BATCH
run "$script" TERM
echo "$PBS_JOBID"
`,
		"bsub": common + `script=$state/stdin-$n.sh; cat > $script
export LSB_JOBID=$((200 + n))
run "$script" USR1
echo "Job <$LSB_JOBID> is submitted to queue <normal>."
`,
		"flux": "#!/bin/bash\n" + `[ "$1" = batch ] || exit 1   # flux job info: no answer, the script falls back to its walltime
` + common + `script="${@: -1}"
export FLUX_JOB_ID=f$((300 + n))
run "$script" USR1
echo "$FLUX_JOB_ID"
`,
	}
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	return filepath.Join(state, "calls")
}

// A chain on PBS, Torque, LSF and Flux, with fake submit commands that run
// each job as the system would and deliver its signal to the first: the
// first job checkpoints (exit 3), the second resumes and finishes the
// search with the results of an uninterrupted run, the third finds it done
// and exits at once. The dependencies are each system's.
func TestJobsChainFakeSchedulers(t *testing.T) {
	cfg := writeConfig(t, jobsSearchTOML)
	ref := filepath.Join(t.TempDir(), "ref")
	if code, out, errOut := nasd(t, "search", "-config", cfg, "-run-dir", ref); code != exitOK {
		t.Fatalf("reference: exit %d\n%s\n%s", code, out, errOut)
	}
	want := trialResults(t, ref)
	wrapper := nasdWrapper(t)
	for _, c := range []struct {
		system, dep, signal string
	}{
		{"pbs", "-W depend=afterany:101.fake", "SIGTERM"},
		{"torque", "-W depend=afterany:101.fake", "SIGTERM"},
		{"lsf", "-w ended(201)", "SIGUSR1"},
		{"flux", "--dependency=afterany:f301", "SIGUSR1"},
	} {
		t.Run(c.system, func(t *testing.T) {
			run := filepath.Join(t.TempDir(), "run")
			calls := fakeScheduler(t, run)
			code, out, errOut := nasd(t, "jobs", "submit", "-config", cfg, "-run-dir", run, "-system", c.system, "-nasd", wrapper)
			if code != exitOK {
				t.Fatalf("submit: exit %d\n%s\n%s", code, out, errOut)
			}
			b, _ := os.ReadFile(calls)
			if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) != 3 || !strings.Contains(lines[1], c.dep) {
				t.Errorf("submit commands:\n%s\nwant 3, the second with %q", b, c.dep)
			}
			st, err := jobs.ReadState(run)
			if err != nil {
				t.Fatal(err)
			}
			log := strings.Join(st.LogTail, "\n")
			if st.Done == "" || st.Jobs != 2 || st.Failed != "" || len(st.Chain.Jobs) != 3 {
				t.Fatalf("chain state %+v\n%s", st, log)
			}
			for _, w := range []string{c.signal + ": asking nasd to checkpoint", "checkpointed before the job's end", "the search finished", "nothing to do"} {
				if !strings.Contains(log, w) {
					t.Errorf("chain.log lacks %q:\n%s", w, log)
				}
			}
			if got := trialResults(t, run); !maps.Equal(got, want) {
				t.Errorf("the chained search has %d results, the uninterrupted one %d; they differ", len(got), len(want))
			}
			code, out, _ = nasd(t, "jobs", "status", run)
			if code != exitOK || !strings.Contains(out, "the search finished") || !strings.Contains(out, "segments 2") {
				t.Errorf("status: exit %d\n%s", code, out)
			}
			code, _, errOut = nasd(t, "jobs", "submit", "-resume", run, "-system", c.system, "-nasd", wrapper)
			if code != exitError || !strings.Contains(errOut, "the search finished") {
				t.Errorf("submit after the end: exit %d: %s", code, errOut)
			}
		})
	}
}

// A job whose search fails stops the chain: the failure is recorded, and
// queued jobs exit at once without touching the run.
func TestJobsChainStopsOnError(t *testing.T) {
	cfg := writeConfig(t, strings.Replace(jobsSearchTOML, `name = "rl"`, `name = "rl"
[strategy.options]
lr = -1`, 1))
	// The config is checked before submitting: fix it in the copy the job reads.
	run := filepath.Join(t.TempDir(), "run")
	code, _, errOut := nasd(t, "jobs", "submit", "-config", cfg, "-run-dir", run, "-system", "pbs", "-nasd", nasdWrapper(t))
	if code != exitError || !strings.Contains(errOut, "lr") {
		t.Fatalf("a bad search config was submitted: exit %d: %s", code, errOut)
	}
	good := writeConfig(t, jobsSearchTOML)
	calls := fakeScheduler(t, run)
	wrapper := filepath.Join(t.TempDir(), "nasd-fails")
	os.WriteFile(wrapper, []byte("#!/bin/sh\necho 'nasd: disk full' >&2\nexit 1\n"), 0o755)
	code, out, errOut := nasd(t, "jobs", "submit", "-config", good, "-run-dir", run, "-system", "lsf", "-nasd", wrapper)
	if code != exitOK {
		t.Fatalf("submit: exit %d\n%s\n%s", code, out, errOut)
	}
	st, _ := jobs.ReadState(run)
	log := strings.Join(st.LogTail, "\n")
	if !strings.Contains(st.Failed, "exited with 1") || !strings.Contains(log, "not continuing") || st.Done != "" {
		t.Errorf("state %+v\n%s", st, log)
	}
	b, _ := os.ReadFile(calls)
	if n := strings.Count(string(b), "\n"); n != 3 {
		t.Errorf("%d submits, want 3", n)
	}
	code, out, _ = nasd(t, "jobs", "status", "-json", run)
	var s jobStatus
	if code != exitOK || json.Unmarshal([]byte(out), &s) != nil || !strings.Contains(s.Summary, "the chain stopped") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
}

// [job] errors point at their lines; flags override the table; submitting
// where the system's command is missing says so.
func TestJobsConfigErrors(t *testing.T) {
	cfg := writeConfig(t, strings.Replace(jobsSearchTOML, `walltime = "1h"`, "walltime = \"1h\"\nnodes_per_rank = 3", 1))
	code, _, errOut := nasd(t, "jobs", "script", "-config", cfg, "-system", "slurm")
	if code != exitError || !strings.Contains(errOut, "nodes_per_rank") {
		t.Errorf("unknown key: exit %d: %s", code, errOut)
	}
	cfg = writeConfig(t, strings.Replace(jobsSearchTOML, `stop_margin = "2m"`, `stop_margin = "50m"`, 1))
	code, _, errOut = nasd(t, "jobs", "script", "-config", cfg, "-system", "slurm")
	if code != exitError || !strings.Contains(errOut, "stop_margin = 50m0s") || !strings.Contains(errOut, ".toml:") {
		t.Errorf("margin over half the walltime: exit %d: %s", code, errOut)
	}
	code, out, errOut := nasd(t, "jobs", "script", "-config", cfg, "-system", "slurm", "-stop-margin", "10m", "-walltime", "3h")
	if code != exitOK || !strings.Contains(out, "--time=03:00:00") || !strings.Contains(out, "--signal=B:USR1@300") {
		t.Errorf("flags over [job]: exit %d: %s", code, errOut)
	}
	code, _, errOut = nasd(t, "jobs", "script", "-config", cfg)
	if code != exitError || !strings.Contains(errOut, "system") {
		t.Errorf("no system: exit %d: %s", code, errOut)
	}
	t.Setenv("PATH", t.TempDir())
	code, _, errOut = nasd(t, "jobs", "submit", "-config", cfg, "-run-dir", filepath.Join(t.TempDir(), "r"), "-system", "lsf", "-stop-margin", "5m")
	if code != exitError || !strings.Contains(errOut, "bsub is not installed here") {
		t.Errorf("no bsub: exit %d: %s", code, errOut)
	}
}

// The [job] table of examples/search.toml, uncommented, is a valid job.
func TestJobsExampleTable(t *testing.T) {
	b, err := os.ReadFile("../../examples/search.toml")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		if line == "# [job]" {
			in = true
		}
		if in && strings.HasPrefix(line, "# ") {
			line = strings.TrimPrefix(line, "# ")
		}
		out = append(out, line)
	}
	if !in {
		t.Fatal("examples/search.toml has no [job] table")
	}
	cfg := writeConfig(t, strings.Join(out, "\n"))
	code, script, errOut := nasd(t, "jobs", "script", "-config", cfg)
	if code != exitOK || !strings.Contains(script, "#SBATCH --gpus-per-task=1") || !strings.Contains(script, "module load openmpi/4.1") {
		t.Fatalf("exit %d\n%s\n%s", code, script, errOut)
	}
}

// Without SLURM_JOB_END_TIME (Slurm < 23.02), the job's end comes from
// squeue, asked in Unix seconds.
func TestSlurmJobEndFromSqueue(t *testing.T) {
	bin := t.TempDir()
	script := "#!/bin/sh\n[ \"$SLURM_TIME_FORMAT\" = %s ] && [ \"$*\" = \"-h -j 77 -o %e\" ] && echo 1900000000\n"
	if err := os.WriteFile(filepath.Join(bin, "squeue"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	t.Setenv("SLURM_JOB_END_TIME", "")
	os.Unsetenv("SLURM_JOB_END_TIME")
	t.Setenv("SLURM_JOB_ID", "77")
	if got := querySlurmJobEnd(); got.Unix() != 1900000000 {
		t.Errorf("job end %v, want Unix 1900000000", got)
	}
	t.Setenv("SLURM_JOB_END_TIME", "1800000000")
	if got := querySlurmJobEnd(); got.Unix() != 1800000000 {
		t.Errorf("with SLURM_JOB_END_TIME: %v", got)
	}
	os.Unsetenv("SLURM_JOB_END_TIME")
	t.Setenv("SLURM_JOB_ID", "")
	if got := querySlurmJobEnd(); !got.IsZero() {
		t.Errorf("outside Slurm: %v", got)
	}
}

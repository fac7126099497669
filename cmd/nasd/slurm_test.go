package main

import (
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"nasd/jobs"
)

// The tests below submit jobs to a real single-node Slurm that they start
// (scripts/slurm-ci-up.sh: munged, slurmctld and slurmd without systemd).
// They run under make test-jobs (NASD_SLURM_TESTS=1), as root, where the
// Debian packages slurm-wlm, munge and slurm-wlm-torque are installed.

var slurmCluster struct {
	once sync.Once
	base string
	err  error
}

func needSlurm(t *testing.T) {
	t.Helper()
	if os.Getenv("NASD_SLURM_TESTS") != "1" {
		t.Skip("real Slurm tests run with make test-jobs (NASD_SLURM_TESTS=1)")
	}
	if os.Geteuid() != 0 {
		t.Skip("starting slurmctld and slurmd here needs root")
	}
	for _, c := range []string{"munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "qsub"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("%s is not installed: apt-get install slurm-wlm munge slurm-wlm-torque (make deps)", c)
		}
	}
	slurmCluster.once.Do(func() {
		// munged wants every directory above its socket open to all.
		base, err := os.MkdirTemp("", "nasd-slurm-")
		if err == nil {
			err = os.Chmod(base, 0o755)
		}
		if err != nil {
			slurmCluster.err = err
			return
		}
		ports := freePorts(t, 2)
		cmd := exec.Command("bash", "../../scripts/slurm-ci-up.sh")
		cmd.Env = append(os.Environ(), "BASE="+base, fmt.Sprintf("SLURM_CI_CTLD_PORT=%d", ports[0]), fmt.Sprintf("SLURM_CI_SLURMD_PORT=%d", ports[1]))
		if out, err := cmd.CombinedOutput(); err != nil {
			slurmCluster.err = fmt.Errorf("starting Slurm: %v\n%s", err, out)
			return
		}
		slurmCluster.base = base
	})
	if slurmCluster.err != nil {
		t.Skipf("Slurm cannot start here: %v", slurmCluster.err)
	}
	t.Setenv("SLURM_CONF", filepath.Join(slurmCluster.base, "etc", "slurm.conf"))
	// mpirun refuses root without these; the jobs inherit them (sbatch --export=ALL).
	t.Setenv("OMPI_ALLOW_RUN_AS_ROOT", "1")
	t.Setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
}

// stopSlurm stops the test cluster, if one was started (TestMain).
func stopSlurm() {
	if slurmCluster.base == "" {
		return
	}
	cmd := exec.Command("bash", "../../scripts/slurm-ci-down.sh")
	cmd.Env = append(os.Environ(), "BASE="+slurmCluster.base)
	cmd.Run()
	os.RemoveAll(slurmCluster.base)
}

func freePorts(t *testing.T, n int) []int {
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// slurmSearch is a sync surrogate search: trials of dur each, 2 workers.
func slurmSearch(t *testing.T, trials int, dur time.Duration) (cfg string, want map[string]float64) {
	body := strings.NewReplacer("trials = 60", fmt.Sprintf("trials = %d", trials), `duration = "100ms"`, fmt.Sprintf("duration = %q", dur.String())).
		Replace(jobsSearchTOML)
	cfg = writeConfig(t, body)
	ref := filepath.Join(t.TempDir(), "ref")
	if code, out, errOut := nasd(t, "search", "-config", cfg, "-run-dir", ref); code != exitOK {
		t.Fatalf("reference: exit %d\n%s\n%s", code, out, errOut)
	}
	return cfg, trialResults(t, ref)
}

// launchArgs runs the jobs' search under mpirun with the MPI build where
// make test-jobs made one (NASD_MPI_BIN), else in one process.
func launchArgs(t *testing.T) []string {
	if bin := os.Getenv("NASD_MPI_BIN"); bin != "" {
		return []string{"-nasd", bin, "-launcher", "mpirun", "-ranks-per-node", "3"}
	}
	return []string{"-nasd", nasdWrapper(t), "-launcher", "none"}
}

// waitChain waits until the chain of run is done or failed and Slurm has
// no job of it left; every pending job held back by a requeue's begin-time
// delay (two minutes) is released at once.
func waitChain(t *testing.T, run string, limit time.Duration) jobs.State {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		st, err := jobs.ReadState(run)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		if st.Chain != nil {
			for _, j := range st.Chain.Jobs {
				ids = append(ids, j.ID)
			}
		}
		queued := ""
		if len(ids) > 0 {
			b, _ := exec.Command("squeue", "-h", "-j", strings.Join(ids, ","), "-o", "%i %T %r").Output()
			queued = strings.TrimSpace(string(b))
			for _, line := range strings.Split(queued, "\n") {
				if f := strings.Fields(line); len(f) == 3 && f[1] == "PENDING" && f[2] == "BeginTime" {
					exec.Command("scontrol", "update", "jobid="+f[0], "StartTime=now").Run()
				}
			}
		}
		if (st.Done != "" || st.Failed != "") && queued == "" {
			return st
		}
		if time.Now().After(deadline) {
			var jobs []byte
			for _, id := range ids {
				b, _ := exec.Command("scontrol", "show", "job", id).CombinedOutput()
				jobs = append(jobs, b...)
			}
			t.Fatalf("the chain did not end within %v: %+v\nqueue: %s\n%s\n%s", limit, st, queued, strings.Join(st.LogTail, "\n"), jobs)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func chainLog(t *testing.T, run string) string {
	b, _ := os.ReadFile(filepath.Join(jobs.StateDir(run), "chain.log"))
	return string(b)
}

// A chain whose first job hits its walltime: nasd stops on its own before
// the end Slurm reports (squeue), checkpoints and exits 3; the next job,
// queued afterany, resumes; the search ends with the trials and rewards of
// an uninterrupted run.
func TestSlurmChainAcrossWalltime(t *testing.T) {
	needSlurm(t)
	cfg, want := slurmSearch(t, 240, 400*time.Millisecond) // 48 s of trials: more than a 1-minute job less its margin
	run := filepath.Join(t.TempDir(), "run")
	args := append([]string{"jobs", "submit", "-config", cfg, "-run-dir", run, "-system", "slurm",
		"-walltime", "1m", "-stop-margin", "20s", "-max-jobs", "4"}, launchArgs(t)...)
	if code, out, errOut := nasd(t, args...); code != exitOK {
		t.Fatalf("submit: exit %d\n%s\n%s", code, out, errOut)
	}
	st := waitChain(t, run, 6*time.Minute)
	log := chainLog(t, run)
	t.Logf("chain.log:\n%s", log)
	if st.Done == "" || st.Jobs < 2 || !strings.Contains(log, "checkpointed before the job's end") {
		t.Fatalf("state %+v\n%s", st, log)
	}
	if got := trialResults(t, run); !maps.Equal(got, want) {
		t.Errorf("the chained search has %d results, the uninterrupted one %d; they differ", len(got), len(want))
	}
	code, out, _ := nasd(t, "jobs", "status", run)
	if code != exitOK || !strings.Contains(out, "the search finished") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
}

// The requeue chain: scancel -b -s USR1 signals the batch shell, which
// asks nasd to checkpoint (exit 3); the script requeues its own job, which
// runs again (SLURM_RESTART_COUNT 1) and finishes the search.
func TestSlurmSignalAndRequeue(t *testing.T) {
	needSlurm(t)
	cfg, want := slurmSearch(t, 80, 200*time.Millisecond)
	run := filepath.Join(t.TempDir(), "run")
	args := append([]string{"jobs", "submit", "-config", cfg, "-run-dir", run, "-system", "slurm",
		"-walltime", "10m", "-stop-margin", "1m", "-chain", "requeue", "-max-jobs", "3"}, launchArgs(t)...)
	if code, out, errOut := nasd(t, args...); code != exitOK {
		t.Fatalf("submit: exit %d\n%s\n%s", code, out, errOut)
	}
	st, _ := jobs.ReadState(run)
	id := st.Chain.Jobs[0].ID
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if m, _ := filepath.Glob(filepath.Join(run, "events-*.jsonl.zst")); len(m) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job did not start the search within 2 minutes\n%s", chainLog(t, run))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	if out, err := exec.Command("scancel", "-b", "-s", "USR1", id).CombinedOutput(); err != nil {
		t.Fatalf("scancel: %v %s", err, out)
	}
	st = waitChain(t, run, 4*time.Minute)
	log := chainLog(t, run)
	t.Logf("chain.log:\n%s", log)
	for _, w := range []string{"SIGUSR1: asking nasd to checkpoint", "checkpointed before the job's end", "(restart 1)", "the search finished"} {
		if !strings.Contains(log, w) {
			t.Errorf("chain.log lacks %q:\n%s", w, log)
		}
	}
	if st.Done == "" || len(st.Chain.Jobs) != 1 {
		t.Fatalf("state %+v", st)
	}
	if got := trialResults(t, run); !maps.Equal(got, want) {
		t.Errorf("the requeued search has %d results, the uninterrupted one %d; they differ", len(got), len(want))
	}
}

// srun launches the ranks where srun --mpi=list offers a plugin the
// installed MPI works with (pmix for Debian's OpenMPI).
func TestSlurmSrunLaunch(t *testing.T) {
	needSlurm(t)
	bin := os.Getenv("NASD_MPI_BIN")
	if bin == "" {
		t.Skip("needs the MPI build of nasd (make test-jobs sets NASD_MPI_BIN)")
	}
	out, err := exec.Command("srun", "--mpi=list").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "pmix") {
		t.Skipf("srun --mpi=list offers no pmix plugin (%v): %s", err, out)
	}
	cfg, want := slurmSearch(t, 20, 50*time.Millisecond)
	run := filepath.Join(t.TempDir(), "run")
	code, stdout, errOut := nasd(t, "jobs", "submit", "-config", cfg, "-run-dir", run, "-system", "slurm", "-walltime", "5m",
		"-stop-margin", "1m", "-launcher", "srun", "-ranks-per-node", "3", "-chain", "none", "-nasd", bin)
	if code != exitOK {
		t.Fatalf("submit: exit %d\n%s\n%s", code, stdout, errOut)
	}
	st := waitChain(t, run, 3*time.Minute)
	if st.Done == "" {
		outs, _ := filepath.Glob(filepath.Join(jobs.StateDir(run), "slurm-*.out"))
		var b []byte
		for _, o := range outs {
			c, _ := os.ReadFile(o)
			b = append(b, c...)
		}
		t.Fatalf("state %+v\n%s\n%s", st, chainLog(t, run), b)
	}
	if got := trialResults(t, run); !maps.Equal(got, want) {
		t.Errorf("the srun search differs from the in-process one (%d vs %d results)", len(got), len(want))
	}
}

// The PBS (Torque) script, submitted with Debian's slurm-wlm-torque qsub
// wrapper to the same Slurm: it runs with PBS's variables and finishes the
// search; the queued follow-up job finds it done.
func TestSlurmTorqueQsub(t *testing.T) {
	needSlurm(t)
	cfg, want := slurmSearch(t, 20, 50*time.Millisecond)
	run := filepath.Join(t.TempDir(), "run")
	code, out, errOut := nasd(t, "jobs", "submit", "-config", cfg, "-run-dir", run, "-system", "torque", "-walltime", "5m",
		"-stop-margin", "1m", "-launcher", "none", "-max-jobs", "2", "-nasd", nasdWrapper(t))
	if code != exitOK {
		t.Fatalf("submit: exit %d\n%s\n%s", code, out, errOut)
	}
	st := waitChain(t, run, 3*time.Minute)
	log := chainLog(t, run)
	if st.Done == "" || !strings.Contains(log, "nothing to do") {
		t.Fatalf("state %+v\n%s", st, log)
	}
	if !strings.Contains(log, "job "+st.Chain.Jobs[0].ID+":") {
		t.Errorf("the job did not see its PBS_JOBID %s:\n%s", st.Chain.Jobs[0].ID, log)
	}
	if got := trialResults(t, run); !maps.Equal(got, want) {
		t.Errorf("results differ (%d vs %d)", len(got), len(want))
	}
}

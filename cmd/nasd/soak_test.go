package main

// The soak: kill the whole `mpirun` job with SIGKILL at random (seeded)
// moments, resume it each time until the search ends, then check from the
// event log alone that no logged trial changed its architecture, that every
// trial of the budget has a result, and that a kill made only the trials in
// flight at that moment run again. `make soak` runs it; docs/reliability.md
// says what it checks and what it found.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"nasd/journal"
)

// soakRanks is the job size: rank 0 and four workers.
const soakRanks = 5

// soakParams are the soak's knobs, from the environment.
type soakParams struct {
	kills              int           // NASD_SOAK_KILLS: SIGKILLs per run (8)
	seed               uint64        // NASD_SOAK_SEED: seeds the kill delays (1)
	trials             int           // NASD_SOAK_TRIALS: trial budget of each run (500)
	minDelay, maxDelay time.Duration // NASD_SOAK_DELAY=min-max: a kill comes this long after mpirun starts (1.5s-4s)
	duration           time.Duration // NASD_SOAK_DURATION: the surrogate's time per trial (0: derived, see trialDuration)
	dir                string        // NASD_SOAK_DIR: keep the run directories here instead of a temporary directory
}

func soakSetup(t *testing.T) soakParams {
	t.Helper()
	if os.Getenv("NASD_SOAK") != "1" {
		t.Skip("NASD_SOAK=1 is not set: run through `make soak`")
	}
	mpiBinary(t)
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("the soak finds mpirun's ranks through /proc")
	}
	p := soakParams{kills: 8, seed: 1, trials: 500, minDelay: 1500 * time.Millisecond, maxDelay: 4 * time.Second}
	var errs []string
	atoi := func(name string, dst *int, min int) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < min {
				errs = append(errs, fmt.Sprintf("%s=%q: want an integer ≥ %d", name, v, min))
			}
			*dst = n
		}
	}
	atoi("NASD_SOAK_KILLS", &p.kills, 0)
	atoi("NASD_SOAK_TRIALS", &p.trials, 1)
	if v := os.Getenv("NASD_SOAK_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Sprintf("NASD_SOAK_SEED=%q: %v", v, err))
		}
		p.seed = n
	}
	if v := os.Getenv("NASD_SOAK_DELAY"); v != "" {
		lo, hi, ok := strings.Cut(v, "-")
		a, err1 := time.ParseDuration(lo)
		b, err2 := time.ParseDuration(hi)
		if !ok || err1 != nil || err2 != nil || a <= 0 || b < a {
			errs = append(errs, fmt.Sprintf("NASD_SOAK_DELAY=%q: want min-max, e.g. 1.5s-4s", v))
		}
		p.minDelay, p.maxDelay = a, b
	}
	if v := os.Getenv("NASD_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Sprintf("NASD_SOAK_DURATION=%q: want a duration > 0, e.g. 40ms", v))
		}
		p.duration = d
	}
	p.dir = os.Getenv("NASD_SOAK_DIR")
	if len(errs) > 0 {
		t.Fatal(strings.Join(errs, "\n"))
	}
	return p
}

// soakCase is one configuration of the soak.
type soakCase struct {
	name string
	// config is the search's TOML: %d is the trial budget, %s the
	// surrogate's time per trial.
	config string
	// speed is the share of the surrogate's time a trial takes on average
	// (early stopping ends most trials after an epoch or two).
	speed float64
	// reference: the run is deterministic (sync): run it uninterrupted too
	// and require the same trial IDs, architectures and rewards.
	reference bool
}

const soakSurrogate = `
[space]
name = "nas"
layers = 4
[trainer]
kind = "surrogate"
epochs = 4
[trainer.surrogate]
duration = "%s"
noise = 0.01
`

var (
	soakAging = soakCase{name: "aging-evolution", speed: 1, config: `
seed = 11
mode = "async"
[budget]
trials = %d
checkpoint_every = "1s"
[strategy]
name = "aging-evolution"
[strategy.options]
population = 20
sample = 5
` + soakSurrogate}
	// The GA keeps the default checkpoint period (30 s): every resume replays
	// the results logged since the segment's first checkpoint.
	soakGA = soakCase{name: "ga", speed: 1, config: `
seed = 12
mode = "async"
[budget]
trials = %d
[strategy]
name = "ga"
[strategy.options]
population = 16
steady_state = true
` + soakSurrogate}
	soakASHA = soakCase{name: "random-asha", speed: 0.5, config: `
seed = 13
mode = "async"
[budget]
trials = %d
checkpoint_every = "1s"
[strategy]
name = "random"
[early_stopping]
name = "asha"
[early_stopping.options]
eta = 2
min_epochs = 1
` + soakSurrogate}
	soakRL = soakCase{name: "sync-rl", speed: 1, reference: true, config: `
seed = 14
mode = "sync"
[budget]
trials = %d
[strategy]
name = "rl"
[strategy.options]
lr = 0.01
` + soakSurrogate}
)

func TestSoakAsyncAgingEvolution(t *testing.T) { soak(t, soakAging) }
func TestSoakAsyncGA(t *testing.T)             { soak(t, soakGA) }
func TestSoakAsyncEarlyStopping(t *testing.T)  { soak(t, soakASHA) }
func TestSoakSyncRL(t *testing.T)              { soak(t, soakRL) }

// trialDuration is the surrogate's time per trial: long enough that the
// uninterrupted search would last the kills' mean total delay plus 5 s, so
// every kill lands inside the run (each segment also spends ~1 s starting,
// which only adds margin).
func (p soakParams) trialDuration(c soakCase) time.Duration {
	if p.duration > 0 {
		return p.duration
	}
	span := time.Duration(p.kills)*(p.minDelay+p.maxDelay)/2 + 5*time.Second
	d := time.Duration(float64(span) * (soakRanks - 1) / (float64(p.trials) * c.speed))
	return max(d.Round(time.Millisecond), 20*time.Millisecond)
}

func soak(t *testing.T, c soakCase) {
	p := soakSetup(t)
	bin := mpiBinary(t)
	began := time.Now()
	d := p.trialDuration(c)
	base := t.TempDir()
	if p.dir != "" {
		base = filepath.Join(p.dir, c.name)
		if err := os.RemoveAll(base); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(base, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(base, "search.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(c.config, p.trials, d)), 0o644); err != nil {
		t.Fatal(err)
	}
	h := fnv.New64a()
	h.Write([]byte(c.name))
	rng := rand.New(rand.NewPCG(p.seed, h.Sum64()))
	t.Logf("%s: %d trials, %v per trial, %d kills %v-%v after each start (seed %d), run in %s",
		c.name, p.trials, d, p.kills, p.minDelay, p.maxDelay, p.seed, base)

	dir := filepath.Join(base, "run")
	kills := soakRun(t, bin, cfg, dir, p, rng)
	rep := checkSoak(t, dir, p.trials)
	if c.reference {
		ref := filepath.Join(base, "uninterrupted")
		env := soakEnv(t)
		if code, out := soakLaunch(t, bin, env, 5*time.Minute, "search", "-config", cfg, "-run-dir", ref); code != exitOK {
			t.Fatalf("uninterrupted run: exit %d\n%s", code, out)
		}
		compareSoakRuns(t, rep.final, checkSoak(t, ref, p.trials).final)
	}

	perKill := make([]string, len(rep.kills))
	for i, k := range rep.kills {
		perKill[i] = fmt.Sprintf("%d/%d", k.rerunResults, k.inFlight)
	}
	verdict := "PASS"
	if t.Failed() {
		verdict = "FAIL"
	}
	t.Logf("SOAK %s %s: kills %d/%d, segments %d, trial_result lines %d for %d distinct trials (budget %d), "+
		"results logged again per kill (re-runs/in flight) [%s], re-dispatched after a logged result %d, "+
		"arch_hash conflicts %d, warnings %d, %v per trial, %v",
		c.name, verdict, kills, p.kills, rep.segments, rep.resultLines, len(rep.final), p.trials,
		strings.Join(perKill, " "), rep.redispatched, rep.conflicts, rep.warnings, d, time.Since(began).Round(time.Second))
}

// soakEnv is mpiEnv with OpenMPI's session directory and shared-memory files
// in a temporary directory: a SIGKILLed job leaves them behind.
func soakEnv(t *testing.T) []string {
	tmp, err := os.MkdirTemp("", "nasd-soak-ompi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	env := append(os.Environ(), mpiEnv...)
	return append(env, "OMPI_MCA_orte_tmpdir_base="+tmp, "OMPI_MCA_btl_vader_backing_directory="+tmp)
}

// soakJob is a running mpirun: done is closed when it has exited, with err
// its Wait error.
type soakJob struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan struct{}
	err  error
}

// soakStart starts mpirun in a process group of its own.
func soakStart(t *testing.T, bin string, env []string, args ...string) *soakJob {
	t.Helper()
	full := append([]string{"-n", fmt.Sprint(soakRanks), "--oversubscribe", "--bind-to", "none", bin}, args...)
	j := &soakJob{cmd: exec.Command("mpirun", full...), done: make(chan struct{})}
	j.cmd.Env = env
	j.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	j.cmd.Stdout, j.cmd.Stderr = &j.out, &j.out
	if err := j.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { j.err = j.cmd.Wait(); close(j.done) }()
	t.Cleanup(func() {
		select {
		case <-j.done:
		default:
			killJob(j.cmd.Process.Pid)
			<-j.done
		}
	})
	return j
}

// soakLaunch runs mpirun to the end.
func soakLaunch(t *testing.T, bin string, env []string, limit time.Duration, args ...string) (int, string) {
	t.Helper()
	j := soakStart(t, bin, env, args...)
	select {
	case <-j.done:
		return exitCode(j.err), j.out.String()
	case <-time.After(limit):
		gone(t, killJob(j.cmd.Process.Pid))
		<-j.done
		t.Fatalf("mpirun %v ran past %v\n%s", args, limit, tail(j.out.String()))
	}
	return 0, ""
}

// soakRun runs the search, kills the job p.kills times and resumes it until
// it ends with exit 0. It returns the kills made.
func soakRun(t *testing.T, bin, cfg, dir string, p soakParams, rng *rand.Rand) int {
	t.Helper()
	env := soakEnv(t)
	fresh := []string{"search", "-config", cfg, "-run-dir", dir}
	args := fresh
	kills := 0
	for launch := 1; ; launch++ {
		if launch > p.kills+10 {
			t.Fatalf("%d launches and the search has not finished", launch-1)
		}
		if kills < p.kills {
			delay := p.minDelay + time.Duration(rng.Int64N(int64(p.maxDelay-p.minDelay)+1))
			j := soakStart(t, bin, env, args...)
			select {
			case <-j.done:
			case <-time.After(delay):
				pids := killJob(j.cmd.Process.Pid)
				<-j.done
				gone(t, pids)
				if exitCode(j.err) != exitOK {
					kills++
					t.Logf("kill %d: SIGKILL to mpirun and %d ranks %.2fs after launch %d (%s)",
						kills, len(pids)-1, delay.Seconds(), launch, newestSegment(dir))
					args = []string{"search", "-resume", dir}
					if !resumable(dir) {
						// Killed before the run directory held a segment
						// or a checkpoint: there is nothing to resume.
						t.Logf("launch %d was killed before its run directory held a log: starting afresh", launch)
						if err := os.RemoveAll(dir); err != nil {
							t.Fatal(err)
						}
						args = fresh
					}
					continue
				}
			}
			if code := exitCode(j.err); code != exitOK {
				t.Fatalf("launch %d (%v): exit %d\n%s", launch, args, code, tail(j.out.String()))
			}
			t.Errorf("the search finished during launch %d, before kill %d of %d: "+
				"give it more trials (NASD_SOAK_TRIALS), a longer NASD_SOAK_DURATION or shorter NASD_SOAK_DELAY", launch, kills+1, p.kills)
			return kills
		}
		code, out := soakLaunch(t, bin, env, 5*time.Minute, args...)
		if code != exitOK {
			t.Fatalf("launch %d (%v): exit %d\n%s", launch, args, code, tail(out))
		}
		t.Logf("launch %d (%v) finished the search", launch, args[1])
		return kills
	}
}

func resumable(dir string) bool {
	segs, _ := filepath.Glob(filepath.Join(dir, "events-*.jsonl.zst"))
	_, err := os.Stat(filepath.Join(dir, "checkpoint.zst"))
	return len(segs) > 0 || err == nil
}

func newestSegment(dir string) string {
	segs, _ := filepath.Glob(filepath.Join(dir, "events-*.jsonl.zst"))
	if len(segs) == 0 {
		return "no segment yet"
	}
	sort.Strings(segs)
	fi, err := os.Stat(segs[len(segs)-1])
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%s: %d bytes", filepath.Base(segs[len(segs)-1]), fi.Size())
}

func tail(s string) string {
	if len(s) > 4000 {
		return "…" + s[len(s)-4000:]
	}
	return s
}

// killJob kills the whole job at once: mpirun and every process below it.
// OpenMPI starts each rank in a process group of its own, so SIGKILL to
// mpirun's group alone leaves the ranks running (rank 0 goes on writing the
// log until it notices). The job is first frozen with SIGSTOP, so that it can
// fork nothing while its processes are listed, then every process gets
// SIGKILL. It returns the processes killed, mpirun first.
func killJob(pid int) []int {
	syscall.Kill(-pid, syscall.SIGSTOP)
	stopped := []int{pid}
	seen := map[int]bool{pid: true}
	for range 10 {
		more := false
		for _, p := range descendants(pid) {
			if !seen[p] {
				seen[p], more = true, true
				syscall.Kill(p, syscall.SIGSTOP)
				stopped = append(stopped, p)
			}
		}
		if !more {
			break
		}
	}
	syscall.Kill(-pid, syscall.SIGKILL)
	for _, p := range stopped {
		syscall.Kill(p, syscall.SIGKILL)
	}
	return stopped
}

// descendants lists the processes below pid, from /proc.
func descendants(pid int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, ppid, ok := procStat(p); ok {
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// procStat reads a process's state and parent from /proc/PID/stat.
func procStat(pid int) (state string, ppid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 2 {
		return "", 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return f[0], ppid, err == nil
}

// gone waits until every process has exited (a zombie has).
func gone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range pids {
		for {
			state, _, ok := procStat(p)
			if !ok || state == "Z" || state == "X" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("process %d (state %s) survived SIGKILL", p, state)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// soakEvent is the part of an event the checks read.
type soakEvent struct {
	seg      int
	seq      uint64
	kind     string
	Trial    string  `json:"trial"`
	ArchHash string  `json:"arch_hash"`
	Reward   float64 `json:"reward"`
	Message  string  `json:"message"`
	Reason   string  `json:"reason"`
	Interr   bool    `json:"interrupted"`
	InFlight int     `json:"in_flight"`
}

func (e soakEvent) String() string {
	return fmt.Sprintf("%s seq %d (segment %d)", e.kind, e.seq, e.seg)
}

// soakResult is a trial's final logged result.
type soakResult struct {
	Hash   string
	Reward float64
}

// killReport: the trials in flight when a segment was killed, and those of
// them logged again by the segment after it.
type killReport struct {
	seg           int
	inFlight      int // dispatched, no result logged by the end of the segment
	rerunResults  int // trials whose result the next segment logged although an earlier segment had logged one
	redispatched  int // trials the next segment dispatched that an earlier segment had dispatched
	alreadyLogged int // of those, trials whose result was logged before
}

type soakReport struct {
	segments     int
	resultLines  int
	final        map[string]soakResult // the last result of each trial
	kills        []killReport
	redispatched int // dispatches of trials whose result was already logged
	conflicts    int // trials logged with two architectures
	warnings     int
}

// readSegments reads the run's events segment by segment: each segment is
// read alone (through a link in a temporary directory), so every event knows
// its segment, and the whole run is read once more for the seq order across
// segments.
func readSegments(t *testing.T, dir string) [][]soakEvent {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "events-*.jsonl.zst"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("%s: no event segments (%v)", dir, err)
	}
	sort.Strings(segs)
	out := make([][]soakEvent, len(segs))
	for i, path := range segs {
		tmp := t.TempDir()
		if err := os.Link(path, filepath.Join(tmp, filepath.Base(path))); err != nil {
			t.Fatal(err)
		}
		trunc, err := journal.ReadEvents(tmp, func(e journal.Event) error {
			ev := soakEvent{seg: i + 1, seq: e.Seq, kind: e.Kind}
			if err := json.Unmarshal(e.Raw, &ev); err != nil {
				return fmt.Errorf("seq %d: %w", e.Seq, err)
			}
			out[i] = append(out[i], ev)
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, tr := range trunc {
			t.Logf("segment %d: %s", i+1, tr)
		}
	}
	if _, err := journal.ReadEvents(dir, func(journal.Event) error { return nil }); err != nil {
		t.Errorf("%s: %v", dir, err)
	}
	return out
}

// checkSoak checks a run's event log: (1) no trial ID with two
// architectures, (2) a result for every trial of the budget, (3) a kill
// makes only the trials in flight run again: a trial whose result was logged
// is never dispatched or logged again.
func checkSoak(t *testing.T, dir string, budget int) soakReport {
	t.Helper()
	segs := readSegments(t, dir)
	rep := soakReport{segments: len(segs), final: map[string]soakResult{}}
	const show = 10 // errors of one kind shown in full
	shown := map[string]int{}
	report := func(kind, format string, args ...any) {
		if shown[kind]++; shown[kind] <= show {
			t.Errorf(format, args...)
		}
	}
	firstHash := map[string]soakEvent{}    // trial → the event that first logged its arch_hash
	lastResult := map[string]soakEvent{}   // trial → its latest trial_result
	lastDispatch := map[string]soakEvent{} // trial → its latest trial_dispatched
	pending := map[string]bool{}           // dispatched, no result yet
	conflicted := map[string]bool{}        // trials with two hashes
	var lastRunEnd *soakEvent
	for si, evs := range segs {
		s := si + 1
		// k is the kill that ended the previous segment: what this segment
		// ran again because of it.
		var k *killReport
		if si > 0 {
			k = &rep.kills[len(rep.kills)-1]
		}
		dispatchedHere := map[string]soakEvent{}
		lastRunEnd = nil
		for _, e := range evs {
			switch e.kind {
			case "warning":
				rep.warnings++
				if rep.warnings <= 3 {
					t.Logf("%s: warning: %s %s", e, e.Trial, e.Message)
				}
			case "run_end":
				lastRunEnd = &e
			case "trial_dispatched", "trial_result":
				if e.Trial == "" || e.ArchHash == "" {
					t.Errorf("%s: no trial or arch_hash", e)
					continue
				}
				if f, ok := firstHash[e.Trial]; !ok {
					firstHash[e.Trial] = e
				} else if f.ArchHash != e.ArchHash && !conflicted[e.Trial] {
					conflicted[e.Trial] = true
					rep.conflicts++
					report("hash", "trial %s has two architectures: arch_hash %.16s at %s, %.16s at %s",
						e.Trial, f.ArchHash, f, e.ArchHash, e)
				}
			}
			switch e.kind {
			case "trial_dispatched":
				r, logged := lastResult[e.Trial]
				if logged {
					rep.redispatched++
					report("redispatch", "trial %s dispatched again at %s (arch_hash %.16s) although its result was logged at %s (arch_hash %.16s, reward %.4f)",
						e.Trial, e, e.ArchHash, r, r.ArchHash, r.Reward)
				}
				if d, ok := dispatchedHere[e.Trial]; ok {
					t.Errorf("trial %s dispatched twice in segment %d: %s and %s", e.Trial, s, d, e)
				} else if _, before := lastDispatch[e.Trial]; before && k != nil {
					k.redispatched++
					if logged {
						k.alreadyLogged++
					}
				}
				dispatchedHere[e.Trial] = e
				lastDispatch[e.Trial] = e
				pending[e.Trial] = true
			case "trial_result":
				rep.resultLines++
				if r, ok := lastResult[e.Trial]; ok {
					if r.seg == s {
						t.Errorf("trial %s has two results in segment %d: %s and %s", e.Trial, s, r, e)
					} else if k != nil {
						k.rerunResults++
					}
					report("again", "trial %s: result logged again at %s (arch_hash %.16s, reward %.4f); first at %s (arch_hash %.16s, reward %.4f)",
						e.Trial, e, e.ArchHash, e.Reward, r, r.ArchHash, r.Reward)
				}
				lastResult[e.Trial] = e
				rep.final[e.Trial] = soakResult{e.ArchHash, e.Reward}
				delete(pending, e.Trial)
			}
		}
		if k != nil && (k.rerunResults > k.inFlight || k.redispatched > k.inFlight) {
			report("kill", "kill %d (end of segment %d): %d trials in flight, but segment %d logged %d results again and dispatched %d trials again (%d of them with a logged result)",
				len(rep.kills), k.seg, k.inFlight, s, k.rerunResults, k.redispatched, k.alreadyLogged)
		}
		if s < len(segs) { // every segment but the last was ended by a kill
			rep.kills = append(rep.kills, killReport{seg: s, inFlight: len(pending)})
		}
	}
	for _, kind := range []string{"hash", "redispatch", "again", "kill"} {
		if n := shown[kind]; n > show {
			t.Errorf("… and %d more errors like the %s ones above", n-show, kind)
		}
	}
	if len(rep.final) != budget {
		t.Errorf("%d distinct trials have a result, want the budget, %d", len(rep.final), budget)
	}
	if lastRunEnd == nil || lastRunEnd.Interr || lastRunEnd.Reason != "budget: trials" {
		t.Errorf("the last segment does not end with run_end reason \"budget: trials\": %+v", lastRunEnd)
	} else if len(pending) != lastRunEnd.InFlight {
		var lost []string
		for id := range pending {
			lost = append(lost, id)
		}
		sort.Strings(lost)
		t.Errorf("%d trials were dispatched and never got a result (%.200s), but run_end says %d in flight",
			len(pending), strings.Join(lost, " "), lastRunEnd.InFlight)
	}
	t.Logf("%s: %d segments, %d trial_result lines for %d distinct trials (budget %d), %d trials with two architectures, %d dispatches after a logged result, %d warnings",
		dir, rep.segments, rep.resultLines, len(rep.final), budget, rep.conflicts, rep.redispatched, rep.warnings)
	for i, k := range rep.kills {
		t.Logf("kill %d (end of segment %d): %d in flight; the next segment dispatched %d again (%d with a logged result) and logged %d results again",
			i+1, k.seg, k.inFlight, k.redispatched, k.alreadyLogged, k.rerunResults)
	}
	return rep
}

// compareSoakRuns requires the killed-and-resumed run to have exactly the
// uninterrupted run's trials, architectures and rewards.
func compareSoakRuns(t *testing.T, got, want map[string]soakResult) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		t.Logf("identical to the uninterrupted run: %d trials, architectures and rewards", len(want))
		return
	}
	ids := map[string]bool{}
	for id := range got {
		ids[id] = true
	}
	for id := range want {
		ids[id] = true
	}
	var diffs []string
	for id := range ids {
		g, gok := got[id]
		w, wok := want[id]
		switch {
		case !gok:
			diffs = append(diffs, fmt.Sprintf("trial %s: missing (uninterrupted: arch_hash %.16s, reward %v)", id, w.Hash, w.Reward))
		case !wok:
			diffs = append(diffs, fmt.Sprintf("trial %s: not in the uninterrupted run (arch_hash %.16s, reward %v)", id, g.Hash, g.Reward))
		case g != w:
			diffs = append(diffs, fmt.Sprintf("trial %s: arch_hash %.16s reward %v, uninterrupted arch_hash %.16s reward %v", id, g.Hash, g.Reward, w.Hash, w.Reward))
		}
	}
	sort.Strings(diffs)
	n := len(diffs)
	if n > 10 {
		diffs = append(diffs[:10], fmt.Sprintf("… %d more", n-10))
	}
	t.Errorf("the killed and resumed run differs from the uninterrupted one in %d trials:\n%s", n, strings.Join(diffs, "\n"))
}

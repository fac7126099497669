package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"nasd/jobs"
	"nasd/journal"
)

const jobsSynopsis = `script|submit (-config search.toml | -resume RUNDIR) -system slurm|pbs|torque|lsf|flux -walltime D [flags]
       nasd jobs status RUNDIR

  script  print the batch script
  submit  write it to RUNDIR/jobs/ and queue the chain with the system's command (sbatch, qsub, bsub, flux batch)
  status  what the chain of a run is doing: jobs, segments, trials, finished or not

Flags override the config's [job] table.`

// jobsFlags are nasd jobs' flags; each overrides its [job] key.
type jobsFlags struct {
	config, resume, runDir string
	spec                   jobs.Spec
	modules                stringList
	set                    map[string]bool
	file                   string // the config file, and its source: where [job] errors point
	src                    []byte
}

func (f *jobsFlags) register(fs *flag.FlagSet) {
	s := &f.spec
	fs.StringVar(&f.config, "config", "", "the search's configuration (its [job] table gives defaults for these flags)")
	fs.StringVar(&f.resume, "resume", "", "an existing run directory: the jobs resume it")
	fs.StringVar(&f.runDir, "run-dir", "", "run directory (default: the config's run_dir)")
	fs.StringVar(&s.System, "system", "", "batch system: slurm, pbs (PBS Pro/OpenPBS), torque, lsf, flux")
	fs.StringVar(&s.Name, "name", "", "job name (default nasd)")
	fs.IntVar(&s.Nodes, "nodes", 0, "nodes (default 1)")
	fs.IntVar(&s.RanksPerNode, "ranks-per-node", 0, "MPI ranks per node; rank 0 is the controller (default 1)")
	fs.IntVar(&s.CoresPerRank, "cores-per-rank", 0, "cores per rank (default 1)")
	fs.IntVar(&s.GPUsPerRank, "gpus-per-rank", 0, "GPUs per rank")
	fs.DurationVar(&s.Walltime.Duration, "walltime", 0, "each job's time limit, such as 2h (whole minutes)")
	fs.DurationVar(&s.StopMargin.Duration, "stop-margin", 0, "no trial starts this long before a job's end; the scheduler's warning signal comes then (default 5m)")
	fs.StringVar(&s.Account, "account", "", "account / project to charge")
	fs.StringVar(&s.Queue, "queue", "", "Slurm partition, PBS/LSF/Flux queue")
	fs.Var(&f.modules, "module", "environment modules to load, comma-separated (openmpi/4.1,cuda/12)")
	fs.StringVar(&s.Preamble, "preamble", "", "shell lines to run before the search (e.g. source a venv)")
	fs.StringVar(&s.Launcher, "launcher", "", "mpirun (default), srun (Slurm), flux (Flux's default), none (one process, in-process workers), or a site's launcher command")
	fs.StringVar(&s.SrunMPI, "srun-mpi", "", "srun --mpi plugin (default pmix)")
	fs.StringVar(&s.Chain, "chain", "", "queue (default: pre-queued jobs, each after the last), singleton (Slurm), requeue (Slurm, LSF), none")
	fs.IntVar(&s.MaxJobs, "max-jobs", 0, "jobs in the chain at most (default 5)")
	fs.StringVar(&s.Nasd, "nasd", "", "the nasd binary the jobs run (default: this one)")
}

func runJobs(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		w := stderr
		if len(args) > 0 {
			w = stdout
		}
		fmt.Fprintf(w, "Usage: nasd jobs %s\n", jobsSynopsis)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	switch args[0] {
	case "script", "submit":
		return runJobsScript(args[0], args[1:], stdout, stderr)
	case "status":
		return runJobsStatus(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "nasd jobs: unknown subcommand %q (want script, submit or status)\n", args[0])
	return exitUsage
}

func runJobsScript(sub string, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("jobs "+sub, "(-config search.toml | -resume RUNDIR) -system S -walltime D [flags]", stderr)
	var f jobsFlags
	f.register(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	spec, err := f.resolve()
	if err != nil {
		return fail(stderr, err)
	}
	if sub == "script" {
		text, err := jobs.Render(spec)
		if err != nil {
			return fail(stderr, f.problems(err))
		}
		fmt.Fprint(stdout, text)
		return exitOK
	}
	chain, err := jobs.Submit(context.Background(), spec)
	if chain != nil {
		for _, j := range chain.Jobs {
			after := ""
			if j.After != "" {
				after = " after " + j.After
			}
			fmt.Fprintf(stdout, "submitted %s job %s%s\n", spec.System, j.ID, after)
		}
	}
	if err != nil {
		return fail(stderr, f.problems(err))
	}
	fmt.Fprintf(stdout, "script: %s\nfollow it: nasd jobs status %s\n", chain.Script, spec.RunDir)
	return exitOK
}

// resolve builds the spec: the config's [job] table, then the flags.
func (f *jobsFlags) resolve() (jobs.Spec, error) {
	if (f.config == "") == (f.resume == "") {
		return jobs.Spec{}, errors.New("jobs: give exactly one of -config FILE or -resume RUNDIR")
	}
	if f.resume != "" && f.set["run-dir"] {
		return jobs.Spec{}, fmt.Errorf("jobs: -run-dir with -resume: the run directory is %s", f.resume)
	}
	var spec jobs.Spec
	runDir, config := f.runDir, f.config
	if f.resume != "" {
		runDir, config = f.resume, filepath.Join(f.resume, "config.toml")
		if _, err := os.Stat(filepath.Join(f.resume, "config.json")); err != nil {
			return spec, fmt.Errorf("jobs: -resume %s: not a run directory (%v)", f.resume, err)
		}
	}
	cfg, src, err := loadSearchConfig(config)
	if err != nil {
		return spec, err
	}
	f.src, f.file = src, config
	if f.resume == "" {
		if err := cfg.finish(config, src); err != nil {
			return spec, err
		}
		if runDir == "" {
			runDir = cfg.RunDir
		}
	}
	spec = cfg.Job
	o := f.spec
	for name, apply := range map[string]func(){
		"system": func() { spec.System = o.System }, "name": func() { spec.Name = o.Name },
		"nodes": func() { spec.Nodes = o.Nodes }, "ranks-per-node": func() { spec.RanksPerNode = o.RanksPerNode },
		"cores-per-rank": func() { spec.CoresPerRank = o.CoresPerRank }, "gpus-per-rank": func() { spec.GPUsPerRank = o.GPUsPerRank },
		"walltime": func() { spec.Walltime = o.Walltime }, "stop-margin": func() { spec.StopMargin = o.StopMargin },
		"account": func() { spec.Account = o.Account }, "queue": func() { spec.Queue = o.Queue },
		"module": func() { spec.Modules = f.modules }, "preamble": func() { spec.Preamble = o.Preamble },
		"launcher": func() { spec.Launcher = o.Launcher }, "srun-mpi": func() { spec.SrunMPI = o.SrunMPI },
		"chain": func() { spec.Chain = o.Chain }, "max-jobs": func() { spec.MaxJobs = o.MaxJobs },
		"nasd": func() { spec.Nasd = o.Nasd },
	} {
		if f.set[name] {
			apply()
		}
	}
	if spec.Nasd == "" {
		exe, err := os.Executable()
		if err != nil {
			return spec, fmt.Errorf("jobs: finding this nasd binary: %w (pass -nasd)", err)
		}
		spec.Nasd = exe
	}
	for _, p := range []*string{&runDir, &config, &spec.Nasd} {
		if *p != "" {
			if abs, err := filepath.Abs(*p); err == nil {
				*p = abs
			}
		}
	}
	spec.RunDir, spec.Config = runDir, config
	return spec, nil
}

// problems places [job] errors at their lines in the config file.
func (f *jobsFlags) problems(err error) error {
	lines := keyLines(f.src)
	var out []error
	for _, e := range splitJoined(err) {
		var fe *jobs.FieldError
		if !errors.As(e, &fe) {
			out = append(out, e)
			continue
		}
		line := 0
		if !f.set[strings.ReplaceAll(fe.Field, "_", "-")] {
			line = lines.line([]string{"job", fe.Field})
		}
		out = append(out, configError{file: f.file, section: "job", line: line, msg: fe.Msg})
	}
	return errors.Join(out...)
}

// runJobsStatus reports a run's chain: the jobs submitted (with the
// scheduler's view where it answers), the job segments in the event log,
// the trials done, and whether the search finished.
func runJobsStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("jobs status", "RUNDIR", stderr)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	dirs, code, ok := parseFlagsAndArgs(fs, args)
	if !ok {
		return code
	}
	if len(dirs) != 1 {
		fmt.Fprintln(stderr, "nasd jobs status: give one run directory")
		return exitUsage
	}
	st, err := chainStatus(dirs[0])
	if err != nil {
		return fail(stderr, err)
	}
	if *asJSON {
		b, _ := json.MarshalIndent(st, "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
		return exitOK
	}
	fmt.Fprintf(stdout, "run %s: %s\n", dirs[0], st.Summary)
	fmt.Fprintf(stdout, "  segments %d (jobs that ran the search), trials done %d (ok %d)\n", st.Segments, st.Trials, st.OK)
	if st.System != "" {
		fmt.Fprintf(stdout, "  %s jobs submitted: %d, started: %d\n", st.System, len(st.Jobs), st.Started)
		for _, j := range st.Jobs {
			fmt.Fprintf(stdout, "    %-12s %s\n", j.ID, j.State)
		}
	}
	for _, l := range st.LogTail {
		fmt.Fprintf(stdout, "  %s\n", l)
	}
	return exitOK
}

// jobStatus is nasd jobs status's answer.
type jobStatus struct {
	Summary  string `json:"summary"`
	Finished bool   `json:"finished"`
	Segments int    `json:"segments"`
	Trials   int    `json:"trials"`
	OK       int    `json:"ok"`
	LastEnd  string `json:"last_end,omitempty"` // the last segment's run_end reason
	System   string `json:"system,omitempty"`
	Started  int    `json:"started"`
	Jobs     []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	} `json:"jobs,omitempty"`
	Failed  string   `json:"failed,omitempty"`
	Capped  bool     `json:"capped,omitempty"`
	LogTail []string `json:"log_tail,omitempty"`
}

func chainStatus(dir string) (jobStatus, error) {
	var st jobStatus
	cs, err := jobs.ReadState(dir)
	if err != nil {
		return st, err
	}
	if _, err := os.Stat(dir); err != nil {
		return st, fmt.Errorf("jobs: %w", err)
	}
	_, err = journal.ReadEvents(dir, func(e journal.Event) error {
		switch e.Kind {
		case "run_start":
			st.Segments++
		case "trial_result":
			st.Trials++
			var r struct {
				Status string `json:"status"`
			}
			if json.Unmarshal(e.Raw, &r) == nil && r.Status == "ok" {
				st.OK++
			}
		case "run_end":
			var r struct {
				Reason      string `json:"reason"`
				Interrupted bool   `json:"interrupted"`
			}
			if json.Unmarshal(e.Raw, &r) == nil {
				st.LastEnd = r.Reason
				st.Finished = !r.Interrupted && r.Reason != "error"
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return st, err
	}
	st.Started, st.Failed, st.Capped, st.LogTail = cs.Jobs, cs.Failed, cs.Capped, cs.LogTail
	if cs.Chain != nil {
		st.System = cs.Chain.System
		states := schedulerStates(cs.Chain)
		for _, j := range cs.Chain.Jobs {
			s := states[j.ID]
			if s == "" {
				s = "not in the queue (ended, or the scheduler does not say)"
			}
			st.Jobs = append(st.Jobs, struct {
				ID    string `json:"id"`
				State string `json:"state"`
			}{j.ID, s})
		}
	}
	switch {
	case st.Finished || cs.Done != "":
		st.Summary = "the search finished"
		st.Finished = true
	case cs.Failed != "":
		st.Summary = "the chain stopped: " + cs.Failed
	case cs.Capped:
		st.Summary = "checkpointed at the chain's cap: continue with nasd jobs submit -resume " + dir
	case st.Segments == 0:
		st.Summary = "not started yet"
	default:
		st.Summary = "in progress (last segment: " + orNone(st.LastEnd) + ")"
	}
	return st, nil
}

func orNone(s string) string {
	if s == "" {
		return "running, or killed"
	}
	return s
}

// schedulerStates asks Slurm (squeue) for the chain's jobs' states; other
// systems, and a Slurm that does not answer, give none.
func schedulerStates(c *jobs.Chain) map[string]string {
	out := map[string]string{}
	if c.System != "slurm" || len(c.Jobs) == 0 {
		return out
	}
	ids := make([]string, len(c.Jobs))
	for i, j := range c.Jobs {
		ids[i] = j.ID
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := exec.CommandContext(ctx, "squeue", "-h", "-j", strings.Join(ids, ","), "-o", "%i %T %r").Output()
	if err != nil {
		return out
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if id, state, ok := strings.Cut(line, " "); ok {
			out[id] = state
		}
	}
	return out
}

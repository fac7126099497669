package jobs

import (
	"bytes"
	"embed"
	"fmt"
	"strings"
	"text/template"
	"time"
)

//go:embed templates/script.sh.tmpl
var templates embed.FS

var script = template.Must(template.New("script.sh.tmpl").Funcs(template.FuncMap{"q": shellQuote}).
	ParseFS(templates, "templates/script.sh.tmpl"))

// scriptData is what the template reads.
type scriptData struct {
	Spec
	Directives []string
	JobID      string // the variable holding the scheduler's job id
	RestartVar string // the scheduler's restart counter, if any
	EndCmd     string // prints this job's end in Unix seconds; "" = start + walltime
	Launch     string // launcher prefix, ending in a space (or "")
	Requeue    string // what exit 3 does besides exiting (requeue)
	ChainNote  string
	SignalNote []string // comment lines
	SignalS    int64    // the warning signal's lead: half the margin, so nasd's own stop comes first
	WalltimeS  int64
	MarginS    int64
}

// Render returns the batch script of a valid spec (defaults filled).
func Render(s Spec) (string, error) {
	s.Defaults()
	if err := s.Validate(); err != nil {
		return "", err
	}
	d := scriptData{Spec: s, WalltimeS: int64(s.Walltime.Seconds()), MarginS: int64(s.StopMargin.Seconds())}
	d.SignalS = max(d.MarginS/2, 1)
	switch s.System {
	case "slurm":
		slurm(&d)
	case "pbs", "torque":
		pbs(&d)
	case "lsf":
		lsf(&d)
	case "flux":
		flux(&d)
	}
	switch s.Launcher {
	case LaunchMPIRun:
		d.Launch = fmt.Sprintf("mpirun -n %d ", s.Ranks())
	case LaunchSrun:
		d.Launch = fmt.Sprintf("srun --mpi=%s --ntasks=%d --ntasks-per-node=%d --cpus-per-task=%d ", s.SrunMPI, s.Ranks(), s.RanksPerNode, s.CoresPerRank)
	case LaunchFlux:
		d.Launch = fmt.Sprintf("flux run -N %d -n %d -c %d ", s.Nodes, s.Ranks(), s.CoresPerRank)
		if s.GPUsPerRank > 0 {
			d.Launch += fmt.Sprintf("-g %d ", s.GPUsPerRank)
		}
	case LaunchNone:
	default:
		d.Launch = s.Launcher + " "
	}
	switch s.Chain {
	case ChainQueue:
		d.ChainNote = fmt.Sprintf("pre-queued: up to %d jobs, each after the previous one ended", s.MaxJobs)
	case ChainSingleton:
		d.ChainNote = fmt.Sprintf("pre-queued: up to %d jobs named %s, one at a time (--dependency=singleton)", s.MaxJobs, s.Name)
	case ChainRequeue:
		d.ChainNote = fmt.Sprintf("this job, requeued: up to %d runs", s.MaxJobs)
	case ChainNone:
		d.ChainNote = "none: resubmit by hand, or nasd jobs submit -resume"
	}
	var b bytes.Buffer
	if err := script.Execute(&b, d); err != nil {
		return "", fmt.Errorf("jobs: rendering the %s script: %w", s.System, err)
	}
	return b.String(), nil
}

func slurm(d *scriptData) {
	s := d.Spec
	add := func(f string, a ...any) { d.Directives = append(d.Directives, "#SBATCH "+fmt.Sprintf(f, a...)) }
	add("--job-name=%s", s.Name)
	add("--nodes=%d", s.Nodes)
	add("--ntasks-per-node=%d", s.RanksPerNode)
	add("--cpus-per-task=%d", s.CoresPerRank)
	if s.GPUsPerRank > 0 {
		add("--gpus-per-task=%d", s.GPUsPerRank)
	}
	add("--time=%s", hms(s.Walltime.Duration))
	if s.Account != "" {
		add("--account=%s", s.Account)
	}
	if s.Queue != "" {
		add("--partition=%s", s.Queue)
	}
	add("--output=%s", strings.TrimSuffix(s.RunDir, "/")+"/jobs/slurm-%j.out")
	add("--open-mode=append")
	// Without B: Slurm signals the job steps only: srun's tasks, but not an
	// mpirun started by this script, which the shell passes it to.
	if s.Launcher == LaunchSrun {
		add("--signal=USR1@%d", d.SignalS)
		d.SignalNote = []string{fmt.Sprintf("Signal: Slurm sends srun's tasks SIGUSR1 %ds before the end (--signal without B:", d.SignalS),
			"signals job steps only), and nasd checkpoints: a backup to its own stop at the end."}
	} else {
		add("--signal=B:USR1@%d", d.SignalS)
		d.SignalNote = []string{fmt.Sprintf("Signal: Slurm sends this shell SIGUSR1 %ds before the end (B:, because without it", d.SignalS),
			"only job steps get it, and mpirun is not one); the shell passes it on and nasd",
			"checkpoints: a backup to its own stop at the end."}
	}
	if s.Chain == ChainRequeue {
		add("--requeue")
		d.Requeue = `log "requeueing job $SLURM_JOB_ID"
  scontrol requeue "$SLURM_JOB_ID" || log "scontrol requeue failed: resubmit by hand (nasd jobs submit -resume $RUN_DIR)"`
	}
	d.JobID, d.RestartVar = "${SLURM_JOB_ID:-local}", "SLURM_RESTART_COUNT"
	// SLURM_JOB_END_TIME exists from Slurm 23.02 only; squeue knows the end everywhere.
	d.EndCmd = `SLURM_TIME_FORMAT=%s squeue -h -j "$SLURM_JOB_ID" -o %e`
}

func pbs(d *scriptData) {
	s := d.Spec
	add := func(f string, a ...any) { d.Directives = append(d.Directives, "#PBS "+fmt.Sprintf(f, a...)) }
	add("-N %s", s.Name)
	if s.System == "torque" {
		res := fmt.Sprintf("nodes=%d:ppn=%d", s.Nodes, s.RanksPerNode*s.CoresPerRank)
		if s.GPUsPerRank > 0 {
			res += fmt.Sprintf(":gpus=%d", s.RanksPerNode*s.GPUsPerRank)
		}
		add("-l %s", res)
	} else {
		res := fmt.Sprintf("select=%d:ncpus=%d:mpiprocs=%d:ompthreads=%d", s.Nodes, s.RanksPerNode*s.CoresPerRank, s.RanksPerNode, s.CoresPerRank)
		if s.GPUsPerRank > 0 {
			res += fmt.Sprintf(":ngpus=%d", s.RanksPerNode*s.GPUsPerRank)
		}
		add("-l %s", res)
	}
	add("-l walltime=%s", hms(s.Walltime.Duration))
	if s.Account != "" {
		add("-A %s", s.Account)
	}
	if s.Queue != "" {
		add("-q %s", s.Queue)
	}
	add("-j oe")
	add("-o %s", strings.TrimSuffix(s.RunDir, "/")+"/jobs/")
	d.JobID = "${PBS_JOBID:-local}"
	d.SignalNote = []string{"Signal: PBS sends no warning before the walltime (SIGTERM at the end, then SIGKILL",
		"after the queue's kill_delay): the stop time below is what saves the run. A SIGTERM",
		"is passed on as a request to checkpoint."}
}

func lsf(d *scriptData) {
	s := d.Spec
	add := func(f string, a ...any) { d.Directives = append(d.Directives, "#BSUB "+fmt.Sprintf(f, a...)) }
	add("-J %s", s.Name)
	add("-n %d", s.Ranks())
	add(`-R "span[ptile=%d] affinity[core(%d)]"`, s.RanksPerNode, s.CoresPerRank)
	if s.GPUsPerRank > 0 {
		add(`-gpu "num=%d"`, s.RanksPerNode*s.GPUsPerRank)
	}
	add("-W %s", hm(s.Walltime.Duration))
	if s.Account != "" {
		add("-P %s", s.Account)
	}
	if s.Queue != "" {
		add("-q %s", s.Queue)
	}
	add("-o %s", strings.TrimSuffix(s.RunDir, "/")+"/jobs/lsf-%J.out")
	add("-wa USR1")
	add("-wt %s", hm(time.Duration(d.SignalS)*time.Second))
	if s.Chain == ChainRequeue {
		add(`-Q "3"`)
	}
	d.JobID = "${LSB_JOBID:-local}"
	d.SignalNote = []string{fmt.Sprintf("Signal: LSF sends the job SIGUSR1 %s (h:mm) before the end (-wa, -wt); the shell", hm(time.Duration(d.SignalS)*time.Second)),
		"passes it on and nasd checkpoints: a backup to its own stop at the end."}
	if s.Chain == ChainRequeue {
		d.ChainNote += `; LSF requeues the job on exit 3 (-Q "3")`
	}
}

func flux(d *scriptData) {
	s := d.Spec
	add := func(f string, a ...any) { d.Directives = append(d.Directives, "# flux: "+fmt.Sprintf(f, a...)) }
	add("--job-name=%s", s.Name)
	add("-N %d", s.Nodes)
	add("-n %d", s.Ranks())
	add("-c %d", s.CoresPerRank)
	if s.GPUsPerRank > 0 {
		add("-g %d", s.GPUsPerRank)
	}
	add("-t %dm", int64(s.Walltime.Minutes()))
	if s.Account != "" {
		add("--setattr=system.bank=%s", s.Account)
	}
	if s.Queue != "" {
		add("-q %s", s.Queue)
	}
	add("--output=%s", strings.TrimSuffix(s.RunDir, "/")+"/jobs/flux-{{id}}.out")
	add("--signal=SIGUSR1@%ds", d.SignalS)
	d.JobID = "${FLUX_JOB_ID:-local}"
	d.EndCmd = `flux job info "$FLUX_JOB_ID" R | jq -r '.execution.expiration|floor'`
	d.SignalNote = []string{fmt.Sprintf("Signal: Flux sends the job SIGUSR1 %ds before its expiration (--signal); the shell", d.SignalS),
		"passes it on and nasd checkpoints: a backup to its own stop at the end."}
}

// shellQuote quotes s for bash: single quotes, with ' as '\”.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

package jobs

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Systems are the batch systems a script can be rendered for.
var Systems = []string{"slurm", "pbs", "torque", "lsf", "flux"}

// Chain modes: how a run that checkpointed at the walltime (exit 3) goes on.
const (
	// ChainQueue pre-queues MaxJobs jobs, each starting after the previous
	// one ended (afterany); a job that finds the run finished exits at once.
	ChainQueue = "queue"
	// ChainSingleton (Slurm) pre-queues MaxJobs jobs of one name with
	// --dependency=singleton: Slurm runs one at a time.
	ChainSingleton = "singleton"
	// ChainRequeue puts the same job back in the queue: Slurm with --requeue
	// and scontrol requeue, LSF with -Q "3" (requeue on exit 3).
	ChainRequeue = "requeue"
	// ChainNone submits one job; resubmit by hand.
	ChainNone = "none"
)

var chains = []string{ChainQueue, ChainSingleton, ChainRequeue, ChainNone}

// Launchers with a meaning of their own; any other value is a command
// prefix used as written (a site's launcher: "jsrun -n 8 -a 1 -g 1").
const (
	LaunchMPIRun = "mpirun" // mpirun -n RANKS (OpenMPI or MPICH)
	LaunchSrun   = "srun"   // Slurm: srun --mpi=PLUGIN with the job's task layout
	LaunchFlux   = "flux"   // Flux: flux run with the job's layout
	LaunchNone   = "none"   // no MPI: one process, in-process workers (one node)
)

// Duration is a time.Duration written as "90m", "1h30m" or "2h".
type Duration struct{ time.Duration }

// UnmarshalText reads a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 90m or 2h", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as Go does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// Spec is one batch job of a search and how it chains: from `nasd jobs`
// flags or a search config's [job] table.
type Spec struct {
	System       string   `toml:"system" json:"system"`
	Name         string   `toml:"name" json:"name,omitempty"` // job name; default "nasd"
	Nodes        int      `toml:"nodes" json:"nodes"`
	RanksPerNode int      `toml:"ranks_per_node" json:"ranks_per_node"` // MPI ranks on each node; rank 0 is the controller
	CoresPerRank int      `toml:"cores_per_rank" json:"cores_per_rank"`
	GPUsPerRank  int      `toml:"gpus_per_rank" json:"gpus_per_rank,omitempty"`
	Walltime     Duration `toml:"walltime" json:"walltime"`
	// StopMargin: nasd starts no trial this long before the job's end, and
	// the scheduler's warning signal (where it has one) comes this long
	// before it. Default 5m; at most half the walltime.
	StopMargin Duration `toml:"stop_margin" json:"stop_margin"`
	Account    string   `toml:"account" json:"account,omitempty"`
	Queue      string   `toml:"queue" json:"queue,omitempty"` // Slurm partition, PBS/LSF/Flux queue
	Modules    []string `toml:"modules" json:"modules,omitempty"`
	Preamble   string   `toml:"preamble" json:"preamble,omitempty"` // shell lines run before the search
	Launcher   string   `toml:"launcher" json:"launcher"`
	SrunMPI    string   `toml:"srun_mpi" json:"srun_mpi,omitempty"` // srun --mpi= plugin; default pmix
	Chain      string   `toml:"chain" json:"chain"`
	MaxJobs    int      `toml:"max_jobs" json:"max_jobs"` // jobs in the chain at most
	// Nasd is the nasd binary the job runs; default: the one writing the
	// script. RunDir and Config come from the command line or the search.
	Nasd   string `toml:"nasd" json:"nasd"`
	RunDir string `toml:"-" json:"run_dir"`
	Config string `toml:"-" json:"config"`
}

// Defaults fills what the spec leaves unset.
func (s *Spec) Defaults() {
	if s.Name == "" {
		s.Name = "nasd"
	}
	if s.Nodes == 0 {
		s.Nodes = 1
	}
	if s.RanksPerNode == 0 {
		s.RanksPerNode = 1
	}
	if s.CoresPerRank == 0 {
		s.CoresPerRank = 1
	}
	if s.StopMargin.Duration == 0 {
		s.StopMargin.Duration = 5 * time.Minute
	}
	if s.Launcher == "" {
		s.Launcher = LaunchMPIRun
		if s.System == "flux" {
			s.Launcher = LaunchFlux
		}
	}
	if s.SrunMPI == "" {
		s.SrunMPI = "pmix"
	}
	if s.Chain == "" {
		s.Chain = ChainQueue
	}
	if s.MaxJobs == 0 {
		s.MaxJobs = 5
	}
}

// FieldError is a problem with one field of a spec ([job] key).
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Msg }

// Validate reports every problem at once, each a *FieldError.
func (s *Spec) Validate() error {
	var errs []error
	bad := func(field string, v any, why string) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf("jobs: %s = %v: %s", field, v, why)})
	}
	if !slices.Contains(Systems, s.System) {
		bad("system", fmt.Sprintf("%q", s.System), "must be one of "+strings.Join(Systems, ", "))
	}
	if !validName(s.Name) || strings.Contains(s.Name, "/") {
		bad("name", fmt.Sprintf("%q", s.Name), "must be 1–64 letters, digits, '-', '_' or '.'")
	} else if (s.System == "pbs" || s.System == "torque") && (len(s.Name) > 15 || !unicode.IsLetter(rune(s.Name[0]))) {
		bad("name", fmt.Sprintf("%q", s.Name), "PBS job names start with a letter and have at most 15 characters")
	}
	for _, f := range []struct {
		name string
		v    int
		min  int
	}{{"nodes", s.Nodes, 1}, {"ranks_per_node", s.RanksPerNode, 1}, {"cores_per_rank", s.CoresPerRank, 1}, {"gpus_per_rank", s.GPUsPerRank, 0}, {"max_jobs", s.MaxJobs, 1}} {
		if f.v < f.min || f.v > 1<<20 {
			bad(f.name, f.v, fmt.Sprintf("must be a whole number ≥ %d", f.min))
		}
	}
	w, m := s.Walltime.Duration, s.StopMargin.Duration
	switch {
	case w <= 0:
		bad("walltime", w, "is required: the job's time limit, such as 2h or 90m")
	case w < time.Minute || w%time.Minute != 0:
		bad("walltime", w, "must be whole minutes, at least 1m (batch systems count minutes)")
	}
	switch {
	case m <= 0 || m%time.Second != 0:
		bad("stop_margin", m, "must be whole seconds > 0")
	case w > 0 && m > w/2:
		bad("stop_margin", m, fmt.Sprintf("must be at most half the walltime (%v): the job would end before it could search", w))
	case m > 0xffff*time.Second && s.System == "slurm":
		bad("stop_margin", m, "must be at most 65535s, the most Slurm's --signal takes")
	}
	if s.Nodes*s.RanksPerNode < 2 && s.Launcher != LaunchNone {
		bad("ranks_per_node", s.RanksPerNode, fmt.Sprintf("%d rank in all: MPI needs rank 0 (the controller) and a worker; use 2 or more, or launcher = %q for in-process workers", s.Nodes*s.RanksPerNode, LaunchNone))
	}
	if s.Launcher == LaunchNone && s.Nodes > 1 {
		bad("launcher", fmt.Sprintf("%q", s.Launcher), fmt.Sprintf("runs one process on one node; %d nodes need an MPI launcher", s.Nodes))
	}
	if s.Launcher == LaunchSrun && s.System != "slurm" {
		bad("launcher", `"srun"`, "is Slurm's launcher; this is "+s.System)
	}
	if s.Launcher == LaunchFlux && s.System != "flux" {
		bad("launcher", `"flux"`, "is Flux's launcher; this is "+s.System)
	}
	if strings.ContainsAny(s.Launcher, "\n\r") {
		bad("launcher", fmt.Sprintf("%q", s.Launcher), "must be one line")
	}
	if !validName(s.SrunMPI) {
		bad("srun_mpi", fmt.Sprintf("%q", s.SrunMPI), "must name an srun --mpi plugin (pmix, pmi2, ...)")
	}
	if !slices.Contains(chains, s.Chain) {
		bad("chain", fmt.Sprintf("%q", s.Chain), "must be one of "+strings.Join(chains, ", "))
	}
	if s.Chain == ChainSingleton && s.System != "slurm" {
		bad("chain", `"singleton"`, "is Slurm's (--dependency=singleton); use queue")
	}
	if s.Chain == ChainRequeue && s.System != "slurm" && s.System != "lsf" {
		bad("chain", `"requeue"`, "needs Slurm (--requeue) or LSF (-Q); use queue on "+s.System)
	}
	for _, f := range []struct{ name, v string }{{"account", s.Account}, {"queue", s.Queue}} {
		if f.v != "" && !validName(f.v) {
			bad(f.name, fmt.Sprintf("%q", f.v), "must be letters, digits, '-', '_' or '.'")
		}
	}
	for _, mod := range s.Modules {
		if mod == "" || strings.ContainsAny(mod, " \t\n\r;&|$`'\"\\") {
			bad("modules", fmt.Sprintf("%q", mod), "must be module names such as openmpi/4.1 (no spaces or shell characters)")
		}
	}
	for _, f := range []struct{ name, v string }{{"nasd", s.Nasd}, {"run_dir", s.RunDir}, {"config", s.Config}} {
		switch {
		case f.v == "" && f.name != "nasd":
			bad(f.name, `""`, "is required")
		case f.v != "" && !filepath.IsAbs(f.v):
			bad(f.name, fmt.Sprintf("%q", f.v), "must be an absolute path: the job runs elsewhere")
		case strings.ContainsAny(f.v, "\n\r"):
			bad(f.name, fmt.Sprintf("%q", f.v), "must be one line")
		}
	}
	return errors.Join(errs...)
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == '/') {
			return false
		}
	}
	return true
}

// Ranks is the job's MPI ranks in all.
func (s *Spec) Ranks() int { return s.Nodes * s.RanksPerNode }

// hms writes d as HH:MM:SS (hours may exceed 24).
func hms(d time.Duration) string {
	sec := int64(math.Round(d.Seconds()))
	return fmt.Sprintf("%02d:%02d:%02d", sec/3600, sec/60%60, sec%60)
}

// hm writes d as HH:MM, rounded up to the minute (LSF).
func hm(d time.Duration) string {
	min := int64(math.Ceil(d.Minutes()))
	return fmt.Sprintf("%d:%02d", min/60, min%60)
}

package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Submitted is one job of a chain as Submit queued it.
type Submitted struct {
	ID        string    `json:"id"`
	After     string    `json:"after,omitempty"` // the job it waits for
	Command   []string  `json:"command"`
	Submitted time.Time `json:"submitted"`
}

// Chain is RUNDIR/jobs/submitted.json: every job submitted for a run.
type Chain struct {
	System string      `json:"system"`
	Script string      `json:"script"`
	Jobs   []Submitted `json:"jobs"`
}

// StateDir is where a run's chain keeps its files (scripts, chain.log,
// markers), inside the run directory.
func StateDir(runDir string) string { return filepath.Join(runDir, "jobs") }

// ScriptPath is where Submit writes the script of a system.
func ScriptPath(runDir, system string) string {
	return filepath.Join(StateDir(runDir), "job."+system+".sh")
}

// submitCommand is the system's command that queues script after job
// after ("" = no dependency); the script is given as the last argument
// except for LSF, which reads it on stdin.
func submitCommand(s Spec, script, after string) (argv []string, stdin bool) {
	switch s.System {
	case "slurm":
		argv = []string{"sbatch", "--parsable"}
		switch {
		case s.Chain == ChainSingleton:
			argv = append(argv, "--dependency=singleton")
		case after != "":
			argv = append(argv, "--dependency=afterany:"+after)
		}
		return append(argv, script), false
	case "pbs", "torque":
		argv = []string{"qsub"}
		if after != "" {
			argv = append(argv, "-W", "depend=afterany:"+after)
		}
		return append(argv, script), false
	case "lsf":
		argv = []string{"bsub"}
		if after != "" {
			argv = append(argv, "-w", "ended("+after+")")
		}
		return argv, true
	default: // flux
		argv = []string{"flux", "batch"}
		if after != "" {
			argv = append(argv, "--dependency=afterany:"+after)
		}
		return append(argv, script), false
	}
}

var (
	slurmID = regexp.MustCompile(`^(\d+)(;\S+)?$`)
	lsfID   = regexp.MustCompile(`Job <(\d+)> is submitted`)
	pbsID   = regexp.MustCompile(`^(\d+(\.[\w.-]+)?)$`)
	fluxID  = regexp.MustCompile(`^(ƒ?[0-9A-Za-z]+)$`)
)

// parseID finds the job id in a submit command's output.
func parseID(system, out string) (string, error) {
	out = strings.TrimSpace(out)
	last := out
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		last = strings.TrimSpace(out[i+1:])
	}
	var m []string
	switch system {
	case "slurm":
		m = slurmID.FindStringSubmatch(last)
	case "lsf":
		m = lsfID.FindStringSubmatch(out)
	case "pbs", "torque":
		m = pbsID.FindStringSubmatch(last)
	default:
		m = fluxID.FindStringSubmatch(last)
	}
	if m == nil {
		return "", fmt.Errorf("jobs: no %s job id in the submit command's output %q", system, out)
	}
	return m[1], nil
}

// Submit writes the script into the run's jobs directory and queues the
// chain with the system's own command: MaxJobs jobs for the queue and
// singleton chains, one otherwise. It returns the chain (also written to
// submitted.json, appended to an earlier one of the run). A failed submit
// leaves the jobs queued so far and says which.
func Submit(ctx context.Context, s Spec) (*Chain, error) {
	text, err := Render(s)
	if err != nil {
		return nil, err
	}
	s.Defaults()
	dir := StateDir(s.RunDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return nil, fmt.Errorf("jobs: %s: the search finished (%s): nothing to submit", s.RunDir, filepath.Join(dir, "done"))
	}
	// A new chain: the markers of the last one go (a failure the user has
	// dealt with, a cap reached), and its job count starts over.
	for _, f := range []string{"failed", "capped", "count"} {
		os.Remove(filepath.Join(dir, f))
	}
	path := ScriptPath(s.RunDir, s.System)
	if err := writeAtomic(path, []byte(text), 0o755); err != nil {
		return nil, err
	}
	chain, _ := ReadChain(s.RunDir)
	if chain == nil || chain.System != s.System {
		chain = &Chain{System: s.System}
	}
	chain.Script = path
	n := 1
	if s.Chain == ChainQueue || s.Chain == ChainSingleton {
		n = s.MaxJobs
	}
	after := ""
	for i := range n {
		argv, stdin := submitCommand(s, path, after)
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Dir = dir
		if stdin {
			f, err := os.Open(path)
			if err != nil {
				return chain, fmt.Errorf("jobs: %w", err)
			}
			defer f.Close()
			cmd.Stdin = f
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("jobs: %s (job %d of %d): %w: %s", strings.Join(argv, " "), i+1, n, err, strings.TrimSpace(string(out)))
			if errors.Is(err, exec.ErrNotFound) {
				err = fmt.Errorf("jobs: %s is not installed here: submit from a login node of the %s cluster (the script is %s)", argv[0], s.System, path)
			}
			return chain, errors.Join(err, chain.write(s.RunDir))
		}
		id, err := parseID(s.System, string(out))
		if err != nil {
			return chain, errors.Join(err, chain.write(s.RunDir))
		}
		chain.Jobs = append(chain.Jobs, Submitted{ID: id, After: after, Command: argv, Submitted: time.Now().UTC()})
		after = id
	}
	return chain, chain.write(s.RunDir)
}

func (c *Chain) write(runDir string) error {
	b, _ := json.MarshalIndent(c, "", "  ")
	return writeAtomic(filepath.Join(StateDir(runDir), "submitted.json"), append(b, '\n'), 0o644)
}

// ReadChain reads a run's submitted.json; nil, nil when there is none.
func ReadChain(runDir string) (*Chain, error) {
	b, err := os.ReadFile(filepath.Join(StateDir(runDir), "submitted.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	var c Chain
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("jobs: %s: %w", filepath.Join(StateDir(runDir), "submitted.json"), err)
	}
	return &c, nil
}

// writeAtomic writes a file by rename, so a reader never sees half of it.
func writeAtomic(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return fmt.Errorf("jobs: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("jobs: %w", err)
	}
	return nil
}

// State is what the chain's own files say (see Status for the run's log).
type State struct {
	Chain   *Chain
	Jobs    int    // jobs that started (the count file)
	Done    string // when the search finished, or ""
	Failed  string // why the chain stopped, or ""
	Capped  bool   // the chain reached its cap with the search unfinished
	LogTail []string
}

// ReadState reads a run's chain files.
func ReadState(runDir string) (State, error) {
	var st State
	var err error
	if st.Chain, err = ReadChain(runDir); err != nil {
		return st, err
	}
	dir := StateDir(runDir)
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		return strings.TrimSpace(string(b))
	}
	fmt.Sscan(read("count"), &st.Jobs)
	st.Done, st.Failed = read("done"), read("failed")
	st.Capped = read("capped") != ""
	if log := read("chain.log"); log != "" {
		lines := strings.Split(log, "\n")
		st.LogTail = lines[max(0, len(lines)-5):]
	}
	return st, nil
}

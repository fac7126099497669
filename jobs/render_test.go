package jobs

import (
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden scripts in testdata/")

func spec(system string) Spec {
	return Spec{System: system, Nodes: 2, RanksPerNode: 4, CoresPerRank: 7, Walltime: Duration{2 * time.Hour},
		StopMargin: Duration{10 * time.Minute}, Account: "csc123", Queue: "batch", Modules: []string{"openmpi/4.1"},
		Preamble: "source /opt/venv/bin/activate", Nasd: "/opt/nasd/bin/nasd", RunDir: "/scratch/u/runs/rl-seed1",
		Config: "/home/u/search.toml"}
}

// goldenCases are the scripts kept in testdata: every system, and the
// variants that change directives (GPUs, launchers, chain modes).
func goldenCases() map[string]Spec {
	c := map[string]Spec{}
	for _, sys := range Systems {
		c[sys] = spec(sys)
	}
	gpu := spec("slurm")
	gpu.GPUsPerRank, gpu.Launcher, gpu.Chain = 1, LaunchSrun, ChainRequeue
	c["slurm-srun-gpu-requeue"] = gpu
	single := spec("slurm")
	single.Chain, single.Launcher, single.Nodes, single.RanksPerNode = ChainSingleton, LaunchNone, 1, 1
	c["slurm-singleton-inprocess"] = single
	lsfq := spec("lsf")
	lsfq.Chain, lsfq.GPUsPerRank, lsfq.Launcher = ChainRequeue, 1, "jsrun -n 8 -a 1 -c 7 -g 1"
	c["lsf-requeue-jsrun"] = lsfq
	pbsGPU := spec("pbs")
	pbsGPU.GPUsPerRank = 2
	c["pbs-gpu"] = pbsGPU
	torqueGPU := spec("torque")
	torqueGPU.GPUsPerRank = 1
	c["torque-gpu"] = torqueGPU
	fluxGPU := spec("flux")
	fluxGPU.GPUsPerRank = 1
	c["flux-gpu"] = fluxGPU
	return c
}

// The rendered scripts are the golden files (go test ./jobs -update
// rewrites them), and bash parses every one.
func TestRenderGolden(t *testing.T) {
	for name, s := range goldenCases() {
		got, err := Render(s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		path := filepath.Join("testdata", name+".sh.golden")
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v (run go test ./jobs -update)", name, err)
		}
		if got != string(want) {
			t.Errorf("%s: the script differs from %s (go test ./jobs -update, then review the diff)", name, path)
		}
		out, err := exec.Command("bash", "-n", "-c", got).CombinedOutput()
		if err != nil {
			t.Errorf("%s: bash -n: %v\n%s", name, err, out)
		}
	}
}

// directiveSyntax is each system's documented directive syntax, option by
// option (sbatch(1); PBS Pro Reference Guide, qsub; Torque qsub;
// LSF bsub options; flux-batch(1) and flux-submit(1)). Every directive of
// every rendered script must match one, whole.
var directiveSyntax = map[string]struct {
	prefix string
	opts   []string
}{
	"slurm": {"#SBATCH ", []string{
		`--job-name=[\w.-]+`, `--nodes=\d+`, `--ntasks-per-node=\d+`, `--cpus-per-task=\d+`, `--gpus-per-task=\d+`,
		`--time=\d+:\d{2}:\d{2}`, `--account=[\w.-]+`, `--partition=[\w.-]+`, `--output=/\S+%j\S*`,
		`--open-mode=append`, `--signal=(B:)?USR1@\d{1,5}`, `--requeue`}},
	"pbs": {"#PBS ", []string{
		`-N [A-Za-z][\w.-]{0,14}`, `-l select=\d+:ncpus=\d+:mpiprocs=\d+:ompthreads=\d+(:ngpus=\d+)?`,
		`-l walltime=\d+:\d{2}:\d{2}`, `-A [\w.-]+`, `-q [\w.-]+`, `-j oe`, `-o /\S+/`}},
	"torque": {"#PBS ", []string{
		`-N [A-Za-z][\w.-]{0,14}`, `-l nodes=\d+:ppn=\d+(:gpus=\d+)?`,
		`-l walltime=\d+:\d{2}:\d{2}`, `-A [\w.-]+`, `-q [\w.-]+`, `-j oe`, `-o /\S+/`}},
	"lsf": {"#BSUB ", []string{
		`-J [\w.-]+`, `-n \d+`, `-R "span\[ptile=\d+\] affinity\[core\(\d+\)\]"`, `-gpu "num=\d+"`,
		`-W \d+:\d{2}`, `-P [\w.-]+`, `-q [\w.-]+`, `-o /\S+%J\S*`, `-wa USR1`, `-wt \d+:\d{2}`, `-Q "3"`}},
	"flux": {"# flux: ", []string{
		`--job-name=[\w.-]+`, `-N \d+`, `-n \d+`, `-c \d+`, `-g \d+`, `-t \d+m`, `--setattr=system\.bank=[\w.-]+`,
		`-q [\w.-]+`, `--output=/\S+\{\{id\}\}\S*`, `--signal=SIGUSR1@\d+s`}},
}

func TestDirectivesFollowTheirSyntax(t *testing.T) {
	for name, s := range goldenCases() {
		got, err := Render(s)
		if err != nil {
			t.Fatal(err)
		}
		syn := directiveSyntax[s.System]
		var res []*regexp.Regexp
		for _, o := range syn.opts {
			res = append(res, regexp.MustCompile(`^`+o+`$`))
		}
		n := 0
		for _, line := range strings.Split(got, "\n") {
			for _, p := range []string{"#SBATCH", "#PBS", "#BSUB", "# flux:"} {
				if strings.HasPrefix(line, p) && !strings.HasPrefix(line, syn.prefix) {
					t.Errorf("%s: %q is another system's directive", name, line)
				}
			}
			opt, ok := strings.CutPrefix(line, syn.prefix)
			if !ok {
				continue
			}
			n++
			matched := false
			for _, re := range res {
				matched = matched || re.MatchString(opt)
			}
			if !matched {
				t.Errorf("%s: directive %q matches no documented %s option", name, line, s.System)
			}
		}
		if n < 5 {
			t.Errorf("%s: %d directives", name, n)
		}
		// Directives are read only before the first command.
		first := strings.Index(got, "\nset -uo")
		if last := strings.LastIndex(got, syn.prefix); last > first {
			t.Errorf("%s: a directive after the first command", name)
		}
	}
}

// The numbers in the directives are the spec's.
func TestRenderResources(t *testing.T) {
	s := spec("slurm")
	s.Walltime, s.StopMargin = Duration{26*time.Hour + 30*time.Minute}, Duration{20 * time.Minute}
	got, _ := Render(s)
	for _, want := range []string{"--time=26:30:00", "--nodes=2", "--ntasks-per-node=4", "--cpus-per-task=7",
		"--signal=B:USR1@600", "mpirun -n 8 ", "WALLTIME_S=95400", "STOP_MARGIN_S=1200", "module load openmpi/4.1",
		"source /opt/venv/bin/activate", `squeue -h -j "$SLURM_JOB_ID" -o %e`} {
		if !strings.Contains(got, want) {
			t.Errorf("slurm script lacks %q", want)
		}
	}
	s = spec("pbs")
	got, _ = Render(s)
	if !strings.Contains(got, "select=2:ncpus=28:mpiprocs=4:ompthreads=7") {
		t.Errorf("pbs select:\n%s", got)
	}
	s = spec("lsf")
	s.Walltime = Duration{90 * time.Minute}
	got, _ = Render(s)
	if !strings.Contains(got, "#BSUB -W 1:30") || !strings.Contains(got, "#BSUB -wt 0:05") {
		t.Errorf("lsf times:\n%s", got)
	}
	// A path with a quote stays one word.
	s = spec("slurm")
	s.RunDir = "/scratch/it's here"
	got, _ = Render(s)
	if !strings.Contains(got, `RUN_DIR='/scratch/it'\''s here'`) {
		t.Errorf("quoting: %s", got)
	}
}

// Every bad field is reported, each by name.
func TestValidate(t *testing.T) {
	s := Spec{System: "sge", Nodes: -1, Walltime: Duration{90 * time.Second}, StopMargin: Duration{time.Hour},
		Chain: "forever", Modules: []string{"a; rm -rf /"}, RunDir: "runs/x", Config: "/c.toml", Launcher: "srun"}
	s.Defaults()
	err := s.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	fields := map[string]bool{}
	var fe *FieldError
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		if errors.As(e, &fe) {
			fields[fe.Field] = true
		}
	}
	for _, f := range []string{"system", "nodes", "walltime", "stop_margin", "chain", "modules", "run_dir", "launcher"} {
		if !fields[f] {
			t.Errorf("no error for %s in:\n%v", f, err)
		}
	}
	for _, c := range []struct {
		sys, chain, launcher string
	}{{"pbs", ChainRequeue, ""}, {"flux", ChainSingleton, ""}, {"lsf", "", LaunchSrun}, {"slurm", "", LaunchFlux}} {
		s := spec(c.sys)
		s.Chain, s.Launcher = c.chain, c.launcher
		if _, err := Render(s); err == nil {
			t.Errorf("%s with chain %q, launcher %q: no error", c.sys, c.chain, c.launcher)
		}
	}
	one := spec("slurm")
	one.Nodes, one.RanksPerNode = 1, 1
	if _, err := Render(one); err == nil || !strings.Contains(err.Error(), `launcher = "none"`) {
		t.Errorf("one rank under mpirun: %v", err)
	}
}

// Submit commands chain the jobs with each system's dependency syntax, and
// job ids are read from each system's output.
func TestSubmitCommandsAndIDs(t *testing.T) {
	for _, c := range []struct {
		sys, chain, after string
		want              string
	}{
		{"slurm", ChainQueue, "", "sbatch --parsable S"},
		{"slurm", ChainQueue, "41", "sbatch --parsable --dependency=afterany:41 S"},
		{"slurm", ChainSingleton, "41", "sbatch --parsable --dependency=singleton S"},
		{"pbs", ChainQueue, "7.pbs01", "qsub -W depend=afterany:7.pbs01 S"},
		{"torque", ChainQueue, "", "qsub S"},
		{"lsf", ChainQueue, "12", "bsub -w ended(12)"},
		{"flux", ChainQueue, "ƒ2nW", "flux batch --dependency=afterany:ƒ2nW S"},
	} {
		s := spec(c.sys)
		s.Chain = c.chain
		argv, _ := submitCommand(s, "S", c.after)
		if got := strings.Join(argv, " "); got != c.want {
			t.Errorf("%s %s after %q: %s, want %s", c.sys, c.chain, c.after, got, c.want)
		}
	}
	for _, c := range []struct{ sys, out, id string }{
		{"slurm", "1234\n", "1234"}, {"slurm", "1234;cluster2\n", "1234"},
		{"pbs", "5678.pbs01.example.org\n", "5678.pbs01.example.org"}, {"torque", "99\n", "99"},
		{"lsf", "Job <4321> is submitted to queue <normal>.\n", "4321"}, {"flux", "ƒ2nWx8aQ\n", "ƒ2nWx8aQ"},
	} {
		if got, err := parseID(c.sys, c.out); err != nil || got != c.id {
			t.Errorf("%s %q: %q %v, want %q", c.sys, c.out, got, err, c.id)
		}
	}
	if _, err := parseID("slurm", "sbatch: error: Batch job submission failed"); err == nil {
		t.Error("an error message read as a job id")
	}
}

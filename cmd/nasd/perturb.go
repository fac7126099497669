package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"nasd/arch"
	"nasd/controller/perturb"
	"nasd/journal"
	"nasd/mpi"
)

const perturbSynopsis = "-arch best.json -config search.toml [-repeats 5] [-neighbour-repeats 1] [-sample N] [-run-dir DIR] [-o perturb.toml] [-run]"

const perturbHelp = `Is an architecture a local optimum of its space? nasd perturb writes a search
config whose strategy "perturb" trains the architecture -repeats times (other
trial seeds: the noise floor) and then every architecture one decision away
from it (or a seeded sample of -sample of them), each -neighbour-repeats
times. Neighbours the space rejects are skipped and counted. Everything else
(space, data, trainer, mode, constraints, job) comes from -config, whose space
must be the architecture's; early stopping is dropped, so that every
neighbour is trained as long as the base.

The list is run as an ordinary search: in-process, under mpirun or srun, and
resumed with nasd search -resume. A config file is written, rather than
run under mpirun directly, so that every rank reads the same list from it;
-run starts the search in this process right away (not under mpirun: there,
write the file once and launch 'nasd search -config FILE').

`

// runPerturb writes (and with -run, runs) the search that trains an
// architecture's one-decision neighbours and repeats of it.
func runPerturb(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("perturb", perturbSynopsis, stderr)
	usage := fs.Usage
	fs.Usage = func() { fmt.Fprint(stderr, perturbHelp); usage() }
	var (
		archPath, cfgPath, out, runDir string
		repeats, nRepeats, sample      int
		runNow                         bool
	)
	fs.StringVar(&archPath, "arch", "", "the architecture to perturb (JSON, e.g. a run's best.json)")
	fs.StringVar(&cfgPath, "config", "", "the search config to take the space, data, trainer and launch settings from")
	fs.IntVar(&repeats, "repeats", perturb.DefaultRepeats, "trainings of the architecture itself, each with another seed (the noise floor)")
	fs.IntVar(&nRepeats, "neighbour-repeats", perturb.DefaultNeighbourRepeats, "trainings of each neighbour")
	fs.IntVar(&sample, "sample", 0, "train a random sample of this many neighbours, drawn with the config's seed (0 = all)")
	fs.StringVar(&runDir, "run-dir", "", `the search's run directory (default "runs/perturb-<first 12 hex digits of the architecture's hash>")`)
	fs.StringVar(&out, "o", "perturb.toml", "the search config to write")
	fs.BoolVar(&runNow, "run", false, "run the search in this process once the config is written (nasd search -config FILE)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if archPath == "" || cfgPath == "" {
		fmt.Fprintln(stderr, "nasd perturb: -arch and -config are required")
		fs.Usage()
		return exitUsage
	}
	if out == "" {
		fmt.Fprintln(stderr, "nasd perturb: -o must name the config file to write")
		return exitUsage
	}
	if n, _ := mpi.LauncherSize(); runNow && (n > 0 || os.Getenv("PMIX_RANK") != "") {
		// Every rank would write the file and start its own search.
		fmt.Fprintf(stderr, "nasd perturb: -run under an MPI launcher: write the config once (nasd perturb ... -o %s), then launch 'mpirun nasd search -config %s'\n", out, out)
		return exitUsage
	}

	if fa, err := os.Stat(out); err == nil {
		if fb, err := os.Stat(cfgPath); err == nil && os.SameFile(fa, fb) {
			fmt.Fprintf(stderr, "nasd perturb: -o %s is the -config file: write the perturbation's config to another file\n", out)
			return exitUsage
		}
	}
	cfg, src, err := loadSearchConfig(cfgPath)
	if err != nil {
		return fail(stderr, err)
	}
	a, _, err := arch.Load(archPath)
	if err != nil {
		return fail(stderr, err)
	}
	space, err := arch.New(cfg.Space.Name, cfg.Space.Options)
	if err != nil {
		return fail(stderr, fmt.Errorf("%s: [space]: %w", cfgPath, err))
	}
	if err := sameSpace(a, space, archPath, cfgPath); err != nil {
		return fail(stderr, err)
	}
	opts := map[string]any{"arch": int64s(a.Decisions), "repeats": int64(repeats),
		"neighbour_repeats": int64(nRepeats), "sample": int64(sample)}
	o, err := perturb.ParseOptions(opts)
	if err != nil {
		return fail(stderr, flagErrors(err))
	}
	plan, err := perturb.NewPlan(space, o, cfg.Seed)
	if err != nil {
		return fail(stderr, flagErrors(err))
	}
	if runDir == "" {
		runDir = filepath.Join("runs", "perturb-"+a.Hash()[:12])
	}

	var doc map[string]any
	if err := toml.Unmarshal(src, &doc); err != nil {
		return fail(stderr, fmt.Errorf("%s: %w", cfgPath, err)) // loadSearchConfig read it: not expected
	}
	if doc == nil {
		doc = map[string]any{}
	}
	doc["run_dir"] = runDir
	doc["strategy"] = map[string]any{"name": perturb.Name, "options": opts}
	budget, _ := doc["budget"].(map[string]any)
	if budget == nil {
		budget = map[string]any{}
	}
	budget["trials"] = int64(plan.Len())
	doc["budget"] = budget
	stopping := cfg.Stopping.Name != "" && cfg.Stopping.Name != "none"
	delete(doc, "early_stopping")

	body, err := toml.Marshal(doc)
	if err != nil {
		return fail(stderr, fmt.Errorf("perturb: encoding %s: %w", out, err))
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Written by nasd perturb from %s and %s (architecture %.12s):\n", cfgPath, archPath, a.Hash())
	fmt.Fprintf(&buf, "# %d repeats of it, then %d neighbours one decision away × %d (%d invalid skipped).\n", plan.Repeats, len(plan.Neighbours), plan.NRepeats, plan.Invalid)
	fmt.Fprintf(&buf, "# Run it: nasd search -config %s   (or under mpirun/srun)\n\n", out)
	buf.Write(body)

	// The file must be a search config nasd search accepts as it is.
	check, err := parseSearchConfig(out, buf.Bytes())
	if err == nil {
		err = check.finish(out, buf.Bytes())
	}
	if err != nil {
		return fail(stderr, fmt.Errorf("perturb: the config it would write is not valid (from %s): %w", cfgPath, err))
	}
	if err := journal.WriteFileAtomic(out, buf.Bytes(), 0o644); err != nil {
		return fail(stderr, fmt.Errorf("perturb: %w", err))
	}

	fmt.Fprintf(stdout, "Architecture %.12s (%s), space %s: %d decisions\n", a.Hash(), archPath, space.Name(), len(a.Decisions))
	fmt.Fprintf(stdout, "Neighbours one decision away: %d valid, %d invalid (skipped)", plan.Valid, plan.Invalid)
	if len(plan.Neighbours) < plan.Valid {
		fmt.Fprintf(stdout, ", %d sampled (seed %d)", len(plan.Neighbours), cfg.Seed)
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "Trials: %d repeats of the architecture + %d neighbours × %d = %d\n",
		plan.Repeats, len(plan.Neighbours), plan.NRepeats, plan.Len())
	if stopping {
		fmt.Fprintf(stdout, "Dropped [early_stopping] of %s: every neighbour trains as long as the base.\n", cfgPath)
	}
	fmt.Fprintf(stdout, "Wrote %s (run directory %s). Run it with:\n  nasd search -config %s\n  mpirun -n N nasd search -config %s\n", out, runDir, out, out)
	if !runNow {
		return exitOK
	}
	fmt.Fprintln(stdout)
	return runSearch([]string{"-config", out}, stdout, stderr)
}

// sameSpace checks that a is an architecture of space (name and options,
// defaults filled in), naming both files when it is not.
func sameSpace(a arch.Arch, space arch.Space, archPath, cfgPath string) error {
	if a.Space != space.Name() {
		return fmt.Errorf("perturb: %s is an architecture of space %s, but %s searches space %s: give the config of the search it came from",
			archPath, a.Space, cfgPath, space.Name())
	}
	if c, err := space.Arch(a.Decisions); err != nil || c.Hash() != a.Hash() {
		got, _ := json.Marshal(a.Options)
		want, _ := json.Marshal(space.Options())
		return fmt.Errorf("perturb: %s: space %s with options %s, but %s's [space] has options %s: give the config of the search it came from",
			archPath, a.Space, got, cfgPath, want)
	}
	return nil
}

// flagErrors renames the strategy's option names to the flags that set them.
func flagErrors(err error) error {
	r := strings.NewReplacer("option neighbour_repeats", "-neighbour-repeats", "option repeats", "-repeats", "option sample", "-sample", "option arch", "-arch")
	var msgs []string
	for _, e := range splitJoined(err) {
		msgs = append(msgs, r.Replace(e.Error()))
	}
	return errors.New(strings.Join(msgs, "\n"))
}

func int64s(d []int) []any {
	out := make([]any, len(d))
	for i, v := range d {
		out[i] = int64(v)
	}
	return out
}

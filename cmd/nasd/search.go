package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"nasd/arch"
	"nasd/cluster"
	"nasd/controller"
	_ "nasd/controller/evolution" // registers "ga" and "aging-evolution"
	_ "nasd/controller/perturb"   // registers "perturb"
	_ "nasd/controller/random"    // registers "random"
	_ "nasd/controller/rl"        // registers "rl" and "random-policy"
	"nasd/journal"
	"nasd/surrogate"
	"nasd/train/dataset"
	"nasd/worker"
)

// exitCheckpointed: the search checkpointed before a deadline or signal; resubmit with -resume.
const exitCheckpointed = 3

// exitLocked: another process holds the run's lock; this one left the run alone.
const exitLocked = 4

const searchSynopsis = "(-config search.toml | -resume RUNDIR [-override]) [-workers N] [-trials N] [-time D] [-stop-at T] [-stop-margin D] [-seed N] [-mode sync|async]"

// searchFlags are the flags that override the config file.
type searchFlags struct {
	config, resume, runDir, mode, trainer, stopAt string
	seed                                          uint64
	workers, trials                               int
	time, stopMargin                              time.Duration
	override                                      bool
	set                                           map[string]bool
	original                                      []byte   // the config file as written
	overrides                                     []string // changes -override allowed on resume, "flag: old → new"
}

func (sf *searchFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&sf.config, "config", "", "search configuration (TOML; see examples/)")
	fs.StringVar(&sf.resume, "resume", "", "resume the run in this directory from its checkpoint and event log")
	fs.StringVar(&sf.runDir, "run-dir", "", "run directory (overrides run_dir)")
	fs.StringVar(&sf.mode, "mode", "", "sync (rounds, collectives) or async (dispatch as workers free up)")
	fs.StringVar(&sf.trainer, "trainer", "", "real (train networks) or surrogate (synthetic objective)")
	fs.StringVar(&sf.stopAt, "stop-at", "", "the job's end, an RFC3339 time: start no trial after it minus -stop-margin, checkpoint and exit 3 before it (default: SLURM_JOB_END_TIME)")
	fs.DurationVar(&sf.stopMargin, "stop-margin", 0, "stop starting trials this long before -stop-at (overrides [budget] stop_margin; default trial_timeout + 30s, else 5m)")
	fs.BoolVar(&sf.override, "override", false, "with -resume: let -mode, -workers, -trials, -time, -seed or -trainer change the run (logged in run_start)")
	fs.Uint64Var(&sf.seed, "seed", 0, "run seed (overrides seed)")
	fs.IntVar(&sf.workers, "workers", 0, "in-process workers when not launched by MPI (overrides workers)")
	fs.IntVar(&sf.trials, "trials", 0, "stop after this many finished trials (overrides [budget] trials)")
	fs.DurationVar(&sf.time, "time", 0, "stop after this wall time (overrides [budget] time)")
}

// apply overrides cfg with the flags that were given.
func (sf *searchFlags) apply(cfg *searchConfig) {
	if sf.set["run-dir"] {
		cfg.RunDir = sf.runDir
	}
	if sf.set["mode"] {
		cfg.Mode = sf.mode
	}
	if sf.set["trainer"] {
		cfg.Trainer.Kind = sf.trainer
	}
	if sf.set["stop-at"] {
		cfg.Budget.StopAt = sf.stopAt
	}
	if sf.set["stop-margin"] {
		cfg.Budget.StopMargin = duration{sf.stopMargin}
	}
	if sf.set["seed"] {
		cfg.Seed = sf.seed
	}
	if sf.set["workers"] {
		cfg.Workers = sf.workers
	}
	if sf.set["trials"] {
		cfg.Budget.Trials = sf.trials
	}
	if sf.set["time"] {
		cfg.Budget.Time = duration{sf.time}
	}
}

func runSearch(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("search", searchSynopsis, stderr)
	var sf searchFlags
	sf.register(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	sf.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { sf.set[f.Name] = true })
	if (sf.config == "") == (sf.resume == "") {
		fmt.Fprintln(stderr, "nasd search: give exactly one of -config FILE or -resume RUNDIR")
		fs.Usage()
		return exitUsage
	}
	if sf.resume != "" && sf.set["run-dir"] {
		fmt.Fprintf(stderr, "nasd search: -run-dir with -resume: the run directory is %s itself (copy it first to continue a copy)\n", sf.resume)
		return exitUsage
	}
	if sf.override && sf.resume == "" {
		fmt.Fprintln(stderr, "nasd search: -override is for -resume: a new run takes its settings from -config and the flags")
		return exitUsage
	}

	tr, err := startTransport()
	if err != nil {
		return fail(stderr, err)
	}
	if tr == nil {
		// Not launched by MPI: rank 0 and in-process workers in this process.
		return searchInProcess(&sf, stdout, stderr)
	}
	if tr.Rank() != 0 {
		// mpirun forwards SIGTERM/SIGUSR1 to every rank: workers leave them to
		// rank 0, which checkpoints and then ends the job.
		signal.Ignore(syscall.SIGTERM, syscall.SIGUSR1)
		return workerMain(tr, stderr)
	}
	return controllerMain(tr, &sf, stdout, stderr)
}

// resolveConfig reads the config file, or the resolved copy of the run being
// resumed, and applies the flags.
func resolveConfig(sf *searchFlags) (searchConfig, []byte, error) {
	var cfg searchConfig
	var src, original []byte
	path := sf.config
	if sf.resume != "" {
		path = filepath.Join(sf.resume, "config.json")
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, nil, fmt.Errorf("resume: %w (is %s a run directory?)", err, sf.resume)
		}
		if err := json.Unmarshal(b, &cfg); err != nil {
			return cfg, nil, fmt.Errorf("resume: %s: %w", path, err)
		}
		cfg.RunDir = sf.resume
		// The job's end belongs to the job that ran, not to the run.
		cfg.Budget.StopAt = ""
		stored := cfg
		sf.apply(&cfg)
		changes := runChanges(stored, cfg)
		if len(changes) > 0 && !sf.override {
			return cfg, nil, fmt.Errorf("resume: %s would change the run %s (%s); a resumed run continues as it was: "+
				"leave the flag out, or pass -override to change it anyway", strings.Join(changes, ", "), sf.resume, path)
		}
		sf.overrides = changes
	} else {
		var err error
		if cfg, src, err = loadSearchConfig(path); err != nil {
			return cfg, nil, err
		}
		original = src
	}
	if sf.resume == "" {
		sf.apply(&cfg)
	}
	if err := cfg.finish(path, src); err != nil {
		return cfg, nil, err
	}
	return cfg, original, nil
}

// runChanges lists what the resumed configuration now changes from the
// stored one, as "-flag old → new": the settings that make the run another
// run. The job's end and margin may change; so may the in-process worker
// count in async mode, where it is only parallelism.
func runChanges(stored, now searchConfig) []string {
	var out []string
	diff := func(flag string, old, new any) {
		if old != new {
			out = append(out, fmt.Sprintf("-%s %v (was %v)", flag, new, old))
		}
	}
	diff("mode", stored.Mode, now.Mode)
	if stored.Mode == "sync" || now.Mode == "sync" {
		diff("workers", stored.Workers, now.Workers)
	}
	diff("trials", stored.Budget.Trials, now.Budget.Trials)
	diff("time", stored.Budget.Time.Duration, now.Budget.Time.Duration)
	diff("seed", stored.Seed, now.Seed)
	diff("trainer", stored.Trainer.Kind, now.Trainer.Kind)
	return out
}

// searchInProcess runs the controller and cfg.Workers goroutine workers.
func searchInProcess(sf *searchFlags, stdout, stderr io.Writer) int {
	cfg, original, err := resolveConfig(sf)
	if err != nil {
		return fail(stderr, err)
	}
	sf.original = original
	ends := cluster.NewInProcess(cfg.Workers + 1)
	// Cancelled when rank 0 stops early, so busy workers drop their trials
	// instead of finishing them (under MPI, Abort does this).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A worker's fatal error ends rank 0's search at once, with the error
	// as its cause, as MPI_Abort of that rank would under mpirun.
	lctx, lcancel := context.WithCancelCause(context.Background())
	defer lcancel(nil)
	var wg sync.WaitGroup
	errs := make([]error, len(ends))
	for r := 1; r < len(ends); r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			err := serveTrials(ctx, ends[r], stderr)
			var ab cluster.ErrAborted
			if err != nil && !errors.As(err, &ab) && !errors.Is(err, context.Canceled) {
				lcancel(workerError{rank: r, err: err})
			}
			errs[r] = err
		}(r)
	}
	code := lead(lctx, ends[0], cfg, sf, true, stdout, stderr)
	if code != exitOK {
		cancel()
	}
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(workerStopWait):
		// A hung worker ignores cancellation; under MPI, Abort ends it.
		fmt.Fprintf(stderr, "nasd: a worker did not stop within %v of the end of the search (hung); exiting without it\n", workerStopWait)
		if code == exitOK {
			code = exitError
		}
		return code
	}
	for r, err := range errs[1:] {
		var ab cluster.ErrAborted
		if err != nil && !errors.As(err, &ab) && !errors.Is(err, context.Canceled) && code == exitOK {
			fmt.Fprintf(stderr, "nasd: worker %d: %v\n", r+1, err)
			code = exitError
		}
	}
	return code
}

// controllerMain is rank 0 of an MPI job. It validates the config after MPI
// started, so a bad config ends every rank cleanly (an empty setup tells the
// workers to exit).
func controllerMain(tr cluster.Transport, sf *searchFlags, stdout, stderr io.Writer) int {
	cfg, original, err := resolveConfig(sf)
	sf.original = original
	if err != nil {
		fmt.Fprintf(stderr, "nasd: %v\n", err)
		// An empty setup tells the workers to exit; if they cannot hear
		// it, abort the job rather than leave them waiting.
		if _, berr := tr.Bcast(context.Background(), 0, nil); berr != nil {
			fmt.Fprintf(stderr, "nasd: telling the workers to exit: %v\n", berr)
			abort(tr, exitError, stderr)
		} else if cerr := tr.Close(); cerr != nil {
			fmt.Fprintf(stderr, "nasd: %v\n", cerr)
		}
		return exitError
	}
	return lead(context.Background(), tr, cfg, sf, false, stdout, stderr)
}

// workerStopWait is how long an in-process search waits for its workers
// to stop after rank 0 ended.
const workerStopWait = 5 * time.Second

// workerError is a worker's fatal error: the cause that ends an in-process
// search.
type workerError struct {
	rank int
	err  error
}

func (e workerError) Error() string { return fmt.Sprintf("rank %d: %v", e.rank, e.err) }

// lead sends the config to the workers, runs the search and ends the job:
// cleanly when done, by abort when workers may still be busy.
func lead(ctx context.Context, tr cluster.Transport, cfg searchConfig, sf *searchFlags, inProcess bool, stdout, stderr io.Writer) int {
	setup, err := cfg.marshal()
	if err == nil {
		_, err = tr.Bcast(context.Background(), 0, setup)
	}
	code := exitError
	if err == nil {
		code = runController(ctx, tr, cfg, sf, inProcess, stdout, stderr)
	} else {
		fail(stderr, err)
	}
	if code == exitOK {
		if err := tr.Close(); err != nil {
			// Everything is saved; the job may not end cleanly.
			fmt.Fprintf(stderr, "nasd: %v\n", err)
			code = exitError
		}
	} else {
		abort(tr, code, stderr)
	}
	return code
}

// abort ends the whole job with code; if even that fails, it says so (the
// process then exits on its own, and mpirun ends the others).
func abort(tr cluster.Transport, code int, stderr io.Writer) {
	if err := tr.Abort(code); err != nil {
		fmt.Fprintf(stderr, "nasd: aborting the job: %v\n", err)
	}
}

// workerMain is rank ≥ 1 of an MPI job.
func workerMain(tr cluster.Transport, stderr io.Writer) int {
	if err := serveTrials(context.Background(), tr, stderr); err != nil {
		fmt.Fprintf(stderr, "nasd: rank %d: %v\n", tr.Rank(), err)
		abort(tr, exitError, stderr)
		return exitError
	}
	if err := tr.Close(); err != nil {
		fmt.Fprintf(stderr, "nasd: rank %d: %v\n", tr.Rank(), err)
		return exitError
	}
	return exitOK
}

// serveTrials receives the config from rank 0 and serves trials until stopped.
func serveTrials(ctx context.Context, tr cluster.Transport, stderr io.Writer) error {
	setup, err := tr.Bcast(cluster.LongWait(ctx), 0, nil) // rank 0 may be resuming a run
	if err != nil {
		return err
	}
	if len(setup) == 0 { // rank 0 rejected the config and said why
		return nil
	}
	var cfg searchConfig
	if err := json.Unmarshal(setup, &cfg); err != nil {
		return fmt.Errorf("setup from rank 0: %w", err)
	}
	return workerLoop(ctx, tr, cfg, stderr)
}

// workerLoop builds the trainer the config asks for and serves trials until stopped.
func workerLoop(ctx context.Context, tr cluster.Transport, cfg searchConfig, stderr io.Writer) error {
	if cfg.Strategy.Name == enasName {
		return enasWorkerLoop(ctx, tr, cfg)
	}
	space, err := arch.New(cfg.Space.Name, cfg.Space.Options)
	if err != nil {
		return err
	}
	var trainer worker.Trainer
	switch cfg.Trainer.Kind {
	case "surrogate":
		trainer = surrogate.New(space, surrogate.Options{Seed: cfg.Seed, Duration: cfg.Trainer.Surrogate.Duration.Duration,
			Noise: cfg.Trainer.Surrogate.Noise, Epochs: cfg.Trainer.Epochs, HangOn: cfg.Trainer.Surrogate.HangOn})
	default:
		if cfg.Data.Name == textData {
			text, err := dataset.LoadText(cfg.Data.Dir)
			if err != nil {
				return err
			}
			trainer = worker.NewLMTrainer(space, text, cfg.Trainer.LM)
			break
		}
		spec := cfg.Data
		spec.Seed = cfg.Seed // every rank holds out the same validation images
		data, err := dataset.Load(spec)
		if err != nil {
			return err
		}
		trainer = worker.NewTrainer(space, data, cfg.Trainer.Config)
	}
	log := zerolog.New(stderr).With().Timestamp().Int("rank", tr.Rank()).Logger().Level(zerolog.WarnLevel)
	return worker.Run(ctx, tr, trainer, cfg.Mode, cfg.Budget.TrialTimeout.Duration, log)
}

// runController is rank 0's search: journal, strategy, loop, exit code.
func runController(parent context.Context, tr cluster.Transport, cfg searchConfig, sf *searchFlags, inProcess bool, stdout, stderr io.Writer) int {
	resume := sf.resume != ""
	if tr.Size() < 2 {
		return fail(stderr, errors.New("search: no workers: launch with mpirun -n ≥ 2, or set workers ≥ 1"))
	}
	var run *journal.Run
	var err error
	if resume {
		run, err = journal.Open(cfg.RunDir)
	} else {
		run, err = journal.Create(cfg.RunDir)
	}
	if errors.Is(err, journal.ErrLocked) {
		fail(stderr, err)
		return exitLocked
	}
	if err != nil {
		return fail(stderr, err)
	}
	defer run.Close()
	for _, w := range run.Warnings {
		fmt.Fprintf(stderr, "nasd: warning: %s\n", w)
	}
	if !resume {
		// config.toml is the file as written, for people; config.json is what
		// the run actually used, flags included, and what -resume reads.
		if err := journal.WriteFileAtomic(filepath.Join(cfg.RunDir, "config.toml"), sf.original, 0o644); err != nil {
			return fail(stderr, err)
		}
	}
	if !resume || len(sf.overrides) > 0 {
		// After -override the run goes on with the new settings, and so
		// does every later resume.
		if err := run.WriteJSON("config.json", cfg.withoutJobEnd()); err != nil {
			return fail(stderr, err)
		}
	}
	for _, o := range sf.overrides {
		fmt.Fprintf(stdout, "Resumed with -override: %s\n", o)
	}
	if cfg.Strategy.Name == enasName {
		return runENASController(parent, tr, cfg, sf, run, stdout, stderr)
	}
	space, err := arch.New(cfg.Space.Name, cfg.Space.Options)
	if err != nil {
		return fail(stderr, err)
	}
	strategy, err := controller.New(cfg.Strategy.Name, controller.Env{Space: space, Seed: cfg.Seed, Options: cfg.Strategy.Options})
	if err != nil {
		return fail(stderr, err)
	}
	runID, log, cfgJSON, err := openLog(run, cfg)
	if err != nil {
		return fail(stderr, err)
	}
	defer log.Close()
	ccfg := controller.Config{Mode: cfg.Mode, MaxTrials: cfg.Budget.Trials, MaxTime: cfg.Budget.Time.Duration,
		StopAt: cfg.stopAt(), StopMargin: cfg.stopMargin(), Override: sf.override, Overrides: sf.overrides, Seed: cfg.Seed,
		TrialTimeout: cfg.Budget.TrialTimeout.Duration, HangGrace: cfg.Budget.HangGrace.Duration, RunID: runID, CheckpointEvery: cfg.Budget.CheckpointEvery.Duration,
		ConfigJSON: cfgJSON, Stopper: cfg.Stopping.Name, StopperOptions: cfg.Stopping.Options, Epochs: cfg.epochs(),
		Budget: cfg.Limits.budget(), Space: space, PenaltyTargetFLOPs: cfg.Limits.PenaltyTargetFLOPs,
		PenaltyWeight: cfg.Limits.PenaltyWeight}
	if err := ccfg.Validate(tr.Size()); err != nil {
		return fail(stderr, err)
	}

	ctx, stop := signal.NotifyContext(parent, syscall.SIGTERM, syscall.SIGUSR1, os.Interrupt)
	defer stop()
	fmt.Fprintf(stdout, "Search %s: strategy %s, space %s, %d workers, mode %s, trainer %s, early stopping %s; run directory %s\n",
		runID, cfg.Strategy.Name, cfg.Space.Name, tr.Size()-1, cfg.Mode, cfg.Trainer.Kind, cfg.Stopping.Name, cfg.RunDir)
	if w := cluster.Waiting(tr); w != "" {
		fmt.Fprintf(stdout, "Waiting ranks: %s\n", w)
	}
	bar := newSearchProgress(stdout, stderr)
	stats := startSegmentStats()
	sum, err := controller.Run(ctx, ccfg, strategy, tr, run, log, resume, bar.update)
	bar.finish()
	if err != nil {
		return fail(stderr, err)
	}
	var we workerError
	if errors.As(context.Cause(parent), &we) {
		// Checkpointed; the error is the user's to fix before a resume.
		return fail(stderr, we)
	}
	printSummary(stdout, cfg, sum)
	stats.finish(log.Path())
	stats.print(stdout, tr.Size()-1, inProcess)
	if sum.Interrupted {
		if sum.Reason == "deadline" {
			fmt.Fprintf(stdout, "The job ends at %s: checkpointed %v before it.\n", ccfg.StopAt.Format(time.RFC3339), time.Until(ccfg.StopAt).Round(time.Second))
		}
		fmt.Fprintf(stdout, "Checkpointed; continue with: nasd search -resume %s\n", cfg.RunDir)
		return exitCheckpointed
	}
	return exitOK
}

// openLog starts the job's segment of the event log; it returns the run ID
// and the resolved configuration the log's run_start records.
func openLog(run *journal.Run, cfg searchConfig) (string, *journal.Log, []byte, error) {
	runID := filepath.Base(cfg.RunDir)
	log, err := run.NewLog(runID)
	if err != nil {
		return "", nil, nil, err
	}
	cfgJSON, _ := cfg.marshal()
	return runID, log, cfgJSON, nil
}

func printSummary(w io.Writer, cfg searchConfig, s controller.Summary) {
	fmt.Fprintf(w, "\nTrials: %d (%d ok, %d failed, %d stopped early, %d rejected by the constraints)\n",
		s.Trials, s.OK, s.Failed, s.Stopped, s.Rejected)
	if s.EpochsSaved > 0 {
		fmt.Fprintf(w, "Early stopping saved %d epochs of training\n", s.EpochsSaved)
	}
	if s.Best != nil {
		if ppl := s.Best.ValPPL; len(ppl) > 0 {
			fmt.Fprintf(w, "Best: trial %s, reward %.4f, best validation perplexity %.2f, %d parameters\n",
				s.Best.TrialID, s.Best.Reward, slices.Min(ppl), s.Best.Params)
		} else {
			fmt.Fprintf(w, "Best: trial %s, reward %.4f, best validation accuracy %.4f, %d parameters\n",
				s.Best.TrialID, s.Best.Reward, s.Best.BestValAcc, s.Best.Params)
		}
		fmt.Fprintf(w, "Best architecture: %s\n", filepath.Join(cfg.RunDir, "best.json"))
	}
	fmt.Fprintf(w, "Event log: %s\n", filepath.Join(cfg.RunDir, "events-*.jsonl.zst"))
}

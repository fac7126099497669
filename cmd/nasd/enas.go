package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"nasd/arch"
	"nasd/cluster"
	"nasd/controller"
	"nasd/controller/rl"
	"nasd/journal"
	"nasd/train"
	"nasd/train/dataset"
	"nasd/worker"
)

// enasName is the strategy name of an ENAS search: not a trial strategy of
// the registry, but a search of its own (controller.RunENAS).
const enasName = "enas"

// enasRNN is the recurrent cell space whose weights ENAS shares.
const enasRNN = "enas-rnn"

// enasPolicyDefaults are the ENAS controller's settings (Pham et al. 2018;
// the authors' macro search: one LSTM layer of 64, logits 1.5·tanh(·/1.5),
// entropy bonus 1e-4, Adam 1e-3, baseline decay 0.99, skip penalty 0.8
// toward 0.4); the user's [strategy.options] override them.
var enasPolicyDefaults = map[string]any{"layers": int64(1), "hidden": int64(64), "tanh_constant": 1.5,
	"entropy_weight": 1e-4, "lr": 1e-3, "baseline_decay": 0.99, "skip_weight": 0.8, "skip_target": 0.4}

// enasPolicy splits the strategy options into the schedule and the policy,
// and makes the policy: the rl controller with ENAS's defaults.
func enasPolicy(space arch.Space, seed uint64, options map[string]any) (controller.ENASOptions, controller.ENASPolicy, error) {
	def := controller.ENASDefaults()
	if space.Name() == enasRNN {
		def = controller.ENASDefaultsLM()
	}
	sched, rest, err := controller.ParseENASOptions(options, def)
	opts := maps.Clone(enasPolicyDefaults)
	maps.Copy(opts, rest)
	s, perr := controller.New("rl", controller.Env{Space: space, Seed: seed, Options: opts})
	if err := errors.Join(err, perr); err != nil {
		return sched, nil, err
	}
	p, ok := s.(controller.ENASPolicy)
	if !ok {
		return sched, nil, errors.New("enas: the rl strategy cannot sample children")
	}
	return sched, p, nil
}

// validateENAS is validate's part for an ENAS search.
func (c *searchConfig) validateENAS(space arch.Space, add func(string, error)) {
	if space != nil {
		if _, _, err := enasPolicy(space, c.Seed, c.Strategy.Options); err != nil {
			add("strategy.options", err)
		}
		if n := space.Name(); n != "enas-macro" && n != "enas-micro" && n != enasRNN {
			add("space", &arch.FieldError{Path: []string{"name"},
				Msg: fmt.Sprintf("name = %q: the enas strategy shares weights over the enas-macro, enas-micro and enas-rnn spaces only", n)})
		}
	}
	if c.Trainer.Kind != "real" {
		add("trainer", &arch.FieldError{Path: []string{"kind"},
			Msg: fmt.Sprintf("kind = %q: the enas strategy trains its shared weights on real data", c.Trainer.Kind)})
	}
	if c.Stopping.Name != "" && c.Stopping.Name != "none" {
		add("early_stopping", &arch.FieldError{Path: []string{"name"},
			Msg: fmt.Sprintf("name = %q: the enas strategy has no trials to stop early", c.Stopping.Name)})
	}
}

// enasWorkerLoop is a worker of an ENAS search: the data, a replica of the
// shared weights, and rank 0's plans until it says stop.
func enasWorkerLoop(ctx context.Context, tr cluster.Transport, cfg searchConfig) error {
	space, err := arch.New(cfg.Space.Name, cfg.Space.Options)
	if err != nil {
		return err
	}
	sched, _, err := enasPolicy(space, cfg.Seed, cfg.Strategy.Options)
	if err != nil {
		return err
	}
	wc := enasWorkerConfig(space, sched, cfg.Seed)
	if space.Name() == enasRNN {
		text, err := dataset.LoadText(cfg.Data.Dir)
		if err != nil {
			return err
		}
		lm := cfg.Trainer.LM
		sn, err := train.NewLMSupernet(space, len(text.Vocab), lm, cfg.Seed, train.LMSupernetOptions{Batch: sched.Batch, Rank: tr.Rank()})
		if err != nil {
			return err
		}
		wc.Clip = lm.Clip
		return worker.RunENASLM(ctx, tr, space, sn, text, lm.RewardC, lm.BPTT, wc)
	}
	spec := cfg.Data
	spec.Seed = cfg.Seed
	data, err := dataset.Load(spec)
	if err != nil {
		return err
	}
	sn, err := train.NewSupernet(space, cfg.Seed, train.SupernetOptions{})
	if err != nil {
		return err
	}
	defer sn.Close()
	return worker.RunENAS(ctx, tr, space, sn, data, wc)
}

// enasWorkerConfig is a worker's part of the schedule, with the rl
// package's sampler for the policy plans (every ENAS policy is rl's).
func enasWorkerConfig(space arch.Space, sched controller.ENASOptions, seed uint64) worker.ENASConfig {
	return worker.ENASConfig{Batch: sched.Batch, Momentum: sched.Momentum, L2: sched.L2, Seed: seed,
		NewSampler: func(state []byte) (worker.ChildSampler, error) { return rl.NewSampler(space, state) }}
}

// runENASController is rank 0 of an ENAS search: journal, policy, loop,
// exit code.
func runENASController(parent context.Context, tr cluster.Transport, cfg searchConfig, sf *searchFlags, run *journal.Run, stdout, stderr io.Writer) int {
	resume := sf.resume != ""
	space, err := arch.New(cfg.Space.Name, cfg.Space.Options)
	if err != nil {
		return fail(stderr, err)
	}
	sched, policy, err := enasPolicy(space, cfg.Seed, cfg.Strategy.Options)
	if err != nil {
		return fail(stderr, err)
	}
	runID, log, cfgJSON, err := openLog(run, cfg)
	if err != nil {
		return fail(stderr, err)
	}
	defer log.Close()
	// Signals and the job's end stop the search at a step boundary, with a
	// checkpoint; parent (a worker's failure) ends it at once.
	stopCtx, stop := signal.NotifyContext(parent, syscall.SIGTERM, syscall.SIGUSR1, os.Interrupt)
	defer stop()
	if at := cfg.stopAt(); !at.IsZero() {
		// A step and a checkpoint take far less than the default margin.
		end := at.Add(-cfg.stopMargin())
		if time.Until(end) <= 0 {
			return fail(stderr, fmt.Errorf("search: the job ends at %s, within the stop margin (%v): nothing can run", at.Format(time.RFC3339), cfg.stopMargin()))
		}
		var cancel context.CancelFunc
		stopCtx, cancel = context.WithDeadlineCause(stopCtx, end, controller.ENASDeadline(at))
		defer cancel()
	}
	fmt.Fprintf(stdout, "ENAS search %s: space %s, %d workers, %d epochs, minibatch %d a worker; run directory %s\n",
		runID, cfg.Space.Name, tr.Size()-1, sched.Epochs, sched.Batch, cfg.RunDir)
	bar := newProgress(stdout, stderr)
	sum, err := controller.RunENAS(parent, controller.ENASConfig{RunID: runID, Seed: cfg.Seed, Space: space, Options: sched,
		ConfigJSON: cfgJSON, Stop: stopCtx, Progress: bar.enasUpdate}, policy, tr, run, log, resume)
	bar.finish()
	var we workerError
	if errors.As(context.Cause(parent), &we) {
		return fail(stderr, we) // the cause, not the collective it broke
	}
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "\nShared-weight training: %d epochs, %d steps; %d checkpoints.\n", sum.Epochs, sum.Steps, sum.Checkpoints)
	if sum.Interrupted {
		if sum.Reason == "deadline" {
			fmt.Fprintf(stdout, "The job ends at %s: checkpointed before it.\n", cfg.stopAt().Format(time.RFC3339))
		}
		fmt.Fprintf(stdout, "Checkpointed; continue with: nasd search -resume %s\n", cfg.RunDir)
		return exitCheckpointed
	}
	best := filepath.Join(cfg.RunDir, "best.json")
	switch {
	case sum.Best != nil && sum.BestValPPL > 0:
		fmt.Fprintf(stdout, "Derived: validation perplexity %.2f with the shared weights (%.2f on one window); %s\n",
			sum.BestValPPL, sum.BestBatchPPL, best)
		fmt.Fprintf(stdout, "Retrain it from scratch: nasd train -data ptb -data-dir %s -arch %s\n", cfg.Data.Dir, best)
	case sum.Best != nil:
		fmt.Fprintf(stdout, "Derived: validation accuracy %.4f with the shared weights (%.4f on one minibatch); %s\n",
			sum.BestValAcc, sum.BestBatchAcc, best)
		fmt.Fprintf(stdout, "Retrain it from scratch: nasd train -arch %s\n", best)
	}
	return exitOK
}

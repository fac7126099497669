package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"

	"nasd/arch"
	"nasd/export"
	"nasd/journal"
	"nasd/train"
	"nasd/train/dataset"
)

const trainSynopsis = "(-arch FILE | -space NAME -sample | -net reference-cnn) [-seed N] [-data NAME] [-subset N] [-epochs N] [-o result.json] [-save-weights FILE]\n" +
	"       nasd train -data ptb -data-dir DIR (-cell lstm | -arch CELL.json | -space enas-rnn|nas-rnn -sample) [-hidden N] [-bptt 35] [-epochs N] [-test]"

// dataFlags choose the data set and its splits.
type dataFlags struct {
	spec dataset.Spec
}

func (df *dataFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&df.spec.Name, "data", "fashion-mnist", "data set: fashion-mnist, mnist, cifar10, or ptb (text in the Penn Treebank layout: a language model)")
	fs.StringVar(&df.spec.Dir, "data-dir", "", "directory of the data set files (default: the Debian package's)")
	fs.IntVar(&df.spec.ValSize, "val-size", 5000, "training images held out for validation")
	fs.IntVar(&df.spec.TrainSubset, "subset", 0, "train on a random subset of this many images (0 = all)")
	fs.IntVar(&df.spec.ValSubset, "val-subset", 0, "validate on a random subset of this many held-out images (0 = all)")
	fs.IntVar(&df.spec.TestSubset, "test-subset", 0, "test on a random subset of this many test images (0 = all)")
}

// trainFlags bind training hyper-parameters, starting from train's defaults.
func registerTrainFlags(fs *flag.FlagSet, c *train.Config) {
	fs.IntVar(&c.Epochs, "epochs", c.Epochs, "training epochs (0 = unbounded; then -steps or -time must bound it)")
	fs.IntVar(&c.Steps, "steps", c.Steps, "stop after this many steps (0 = no limit)")
	fs.DurationVar(&c.Deadline, "time", c.Deadline, "stop training after this wall time, e.g. 10m (0 = no limit)")
	fs.IntVar(&c.BatchSize, "batch", c.BatchSize, "minibatch size")
	fs.StringVar(&c.Optimizer, "optimizer", c.Optimizer, "sgd (momentum) or adam")
	fs.Float64Var(&c.LR, "lr", c.LR, "learning rate")
	fs.Float64Var(&c.Momentum, "momentum", c.Momentum, "SGD momentum")
	fs.BoolVar(&c.Nesterov, "nesterov", c.Nesterov, "use Nesterov momentum")
	fs.Float64Var(&c.WeightDecay, "weight-decay", c.WeightDecay, "L2 weight decay")
	fs.StringVar(&c.Schedule, "schedule", c.Schedule, "learning-rate schedule: cosine, step or constant")
	fs.IntVar(&c.StepEvery, "step-every", c.StepEvery, "step schedule: epochs between decays")
	fs.Float64Var(&c.StepGamma, "step-gamma", c.StepGamma, "step schedule: decay factor")
	fs.IntVar(&c.Augment.Pad, "augment-pad", c.Augment.Pad, "random-crop augmentation: zero padding in pixels (0 = off)")
	fs.BoolVar(&c.Augment.FlipH, "flip", c.Augment.FlipH, "random horizontal flips")
	fs.Float64Var(&c.Dropout, "dropout", c.Dropout, "dropout rate on the classifier's input, in training (0 = none)")
	fs.IntVar(&c.RewardEpochs, "reward-epochs", c.RewardEpochs, "reward: best validation accuracy over the last k epochs")
	fs.Float64Var(&c.RewardPower, "reward-power", c.RewardPower, "reward: exponent p of (accuracy)^p")
	fs.StringVar(&c.RewardKind, "reward", c.RewardKind, "reward kind: power or exp")
	fs.BoolVar(&c.EvalTest, "test", c.EvalTest, "evaluate the test set at the end")
}

// trainOutput is the JSON written by -o.
type trainOutput struct {
	Arch    *arch.Arch   `json:"arch,omitempty"` // nil with -net
	Net     string       `json:"net,omitempty"`  // -net's name
	Hash    string       `json:"hash,omitempty"`
	Seed    uint64       `json:"seed"`
	Data    dataset.Spec `json:"data"`
	Config  train.Config `json:"config"`
	Params  int          `json:"params"`
	FLOPs   int64        `json:"flops_per_example"`
	Result  train.Result `json:"result"`
	Written time.Time    `json:"written"`
}

func runTrain(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("train", trainSynopsis, stderr)
	archFile := fs.String("arch", "", "architecture JSON file (from 'nasd space -format json' or a search)")
	sample := fs.Bool("sample", false, "train an architecture sampled uniformly from -space")
	netName := fs.String("net", "", "train a built-in network instead of an architecture: reference-cnn (train.ReferenceCNN, the benchmarks' CNN)")
	seed := fs.Uint64("seed", 1, "seed of sampling, data split, initial weights and minibatch order")
	out := fs.String("o", "", "write the result as JSON to this file")
	saveWeights := fs.String("save-weights", "", "after training, write the weights and batch-norm statistics to this file (safetensors, for 'nasd export -weights')")
	var sf spaceFlags
	sf.register(fs)
	var df dataFlags
	df.register(fs)
	cfg := train.DefaultConfig()
	registerTrainFlags(fs, &cfg)
	fs.BoolVar(&cfg.TestEveryEpoch, "test-every-epoch", false, "also evaluate the test set after every epoch (epochs[].test_acc in -o's JSON, "+
		"epochs[].train_clock the training wall time without evaluations); -val-size -1 then trains on every training image")
	var lf lmFlags
	lf.register(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if df.spec.Name == "ptb" {
		if *netName != "" || cfg.TestEveryEpoch {
			fmt.Fprintln(stderr, "nasd train: -net and -test-every-epoch are for image networks, not -data ptb")
			return exitUsage
		}
		if *saveWeights != "" {
			fmt.Fprintln(stderr, "nasd train: -save-weights with -data ptb: language models cannot be saved yet (only image networks)")
			return exitUsage
		}
		return runTrainLM(stdout, stderr, set, df, sf, lf, cfg, *archFile, *sample, *seed, *out)
	}
	if n := btoi(*archFile != "") + btoi(*sample) + btoi(*netName != ""); n != 1 {
		fmt.Fprintln(stderr, "nasd train: give exactly one of -arch FILE, -sample or -net NAME")
		fs.Usage()
		return exitUsage
	}
	if *archFile != "" || *netName != "" {
		// An architecture's decisions fix its space's shape; only the
		// widths may grow, as for a derived network's final training.
		for _, name := range []string{"space", "layers", "filter-sizes", "filter-counts", "strides", "ops", "reduce-after", "nodes", "stages"} {
			if set[name] {
				fmt.Fprintf(stderr, "nasd train: -%s with -arch or -net: the architecture's decisions fix it (-channels, -cells and -final-network may widen an -arch)\n", name)
				return exitUsage
			}
		}
	}
	var builtin *arch.Graph
	if *netName != "" {
		if *netName != "reference-cnn" {
			fmt.Fprintf(stderr, "nasd train: -net %q: unknown network (known: reference-cnn)\n", *netName)
			return exitUsage
		}
		if sf.channels != 0 || sf.cells != 0 || sf.final {
			fmt.Fprintln(stderr, "nasd train: -channels, -cells and -final-network widen an -arch, not a -net")
			return exitUsage
		}
		builtin = train.ReferenceCNN()
	}
	df.spec.Seed = *seed
	if err := cfg.Validate(); err != nil {
		return fail(stderr, err)
	}

	start := time.Now()
	data, err := dataset.Load(df.spec)
	if err != nil {
		return fail(stderr, err)
	}
	dataShape := arch.Shape{C: data.Train.C, H: data.Train.H, W: data.Train.W}
	fmt.Fprintf(stdout, "Data %s: %d train, %d validation, %d test images of %v (%.1fs)\n",
		df.spec.Name, data.Train.Len(), data.Val.Len(), data.Test.Len(), dataShape, time.Since(start).Seconds())

	g, an, a, err := trainGraph(stdout, builtin, *archFile, sf, df.spec.Name, dataShape, data.Train.Classes, *seed)
	if err != nil {
		return fail(stderr, err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	progress := newProgress(stdout, stderr)
	progress.noVal = data.Val.Len() == 0
	var trained *train.Weights
	res, err := train.TrainHooked(ctx, g, data, cfg, *seed, train.Hooks{Progress: progress.update,
		Trained: func(w *train.Weights) { trained = w }})
	progress.finish()
	if err != nil {
		return fail(stderr, err)
	}
	printResult(stdout, res)
	if *saveWeights != "" && res.Status == train.StatusDiverged {
		fmt.Fprintf(stderr, "nasd train: training diverged: weights not written to %s\n", *saveWeights)
	} else if *saveWeights != "" && trained != nil {
		// The weights as training left them, whatever the status: a run
		// stopped by -time still has a usable network.
		if err := export.SaveWeights(*saveWeights, trained); err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintf(stdout, "Weights written to %s\n", *saveWeights)
	}

	if *out != "" {
		rec := trainOutput{Arch: a, Net: *netName, Seed: *seed, Data: df.spec, Config: cfg,
			Params: an.Params, FLOPs: an.FLOPs, Result: res, Written: time.Now().UTC()}
		if a != nil {
			rec.Hash = a.Hash()
		}
		b, err := json.MarshalIndent(rec, "", "  ")
		if err != nil {
			return fail(stderr, err)
		}
		if err := journal.WriteFileAtomic(*out, append(b, '\n'), 0o644); err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintf(stdout, "Result written to %s\n", *out)
	}
	if res.Status != "ok" {
		return fail(stderr, errors.New("training "+res.Status+": "+res.Reason))
	}
	return exitOK
}

// trainGraph is the network runTrain trains: builtin (-net) if not nil, else
// the architecture in archFile or one sampled from sf's space; it prints its
// table and returns its graph, parameter and FLOP totals, and its
// architecture (nil for a builtin).
func trainGraph(stdout io.Writer, builtin *arch.Graph, archFile string, sf spaceFlags, dataName string, dataShape arch.Shape, classes int, seed uint64) (*arch.Graph, *arch.Analysis, *arch.Arch, error) {
	an := &arch.Analysis{}
	if builtin != nil {
		if builtin.Input != dataShape || builtin.Classes != classes {
			return nil, an, nil, fmt.Errorf("network expects %v inputs and %d classes; data set %s has %v and %d",
				builtin.Input, builtin.Classes, dataName, dataShape, classes)
		}
		stats, err := builtin.Infer()
		if err != nil {
			return nil, an, nil, err
		}
		for _, st := range stats {
			an.Params += st.Params
			an.FLOPs += st.FLOPs
		}
		fmt.Fprintf(stdout, "Network reference-cnn: %d parameters, %d FLOPs per example (forward)\n", an.Params, an.FLOPs)
		return builtin, an, nil, nil
	}
	var space arch.Space
	var a arch.Arch
	var err error
	if archFile != "" {
		if a, space, err = arch.Load(archFile); err != nil {
			return nil, an, nil, err
		}
		if a, space, err = widen(a, space, sf.channels, sf.cells, sf.final); err != nil {
			return nil, an, nil, fmt.Errorf("%s: %w", archFile, err)
		}
	} else {
		if space, err = sf.space(dataShape, classes); err != nil {
			return nil, an, nil, err
		}
		a = space.Sample(rand.New(rand.NewPCG(seed, 0)))
	}
	if opt := space.Options(); opt.Input != dataShape || opt.Classes != classes {
		return nil, an, nil, fmt.Errorf("architecture expects %v inputs and %d classes; data set %s has %v and %d",
			opt.Input, opt.Classes, dataName, dataShape, classes)
	}
	if an, err = arch.Analyze(space, a); err != nil {
		return nil, an, nil, err
	}
	g, err := space.Lower(a)
	if err != nil {
		return nil, an, nil, err
	}
	fmt.Fprintf(stdout, "Architecture %s (space %s):\n", a.Hash(), space.Name())
	if err := arch.WriteTable(stdout, an); err != nil {
		return nil, an, nil, err
	}
	return g, an, &a, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func printResult(w io.Writer, r train.Result) {
	fmt.Fprintf(w, "\nStatus:               %s", r.Status)
	if r.Reason != "" {
		fmt.Fprintf(w, " (%s)", r.Reason)
	}
	fmt.Fprintf(w, "\nBest validation acc:  %.4f\nReward:               %.4f\n", r.BestValAcc, r.Reward)
	if r.TestAcc != nil {
		fmt.Fprintf(w, "Test accuracy:        %.4f\n", *r.TestAcc)
	}
	fmt.Fprintf(w, "Parameters:           %d\nSteps:                %d\nWall time:            %.1fs (%.0f img/s)\n",
		r.Params, r.Steps, r.WallSeconds, r.ExamplesPerSec)
}

// widen gives a with channels and cells (when > 0) in place of its space's,
// and with final the space's final-network shape: the same decisions in the
// network a search's derived child is trained as at the end (ENAS: 36
// channels in search, 96 in the final network, concat joins).
func widen(a arch.Arch, space arch.Space, channels, cells int, final bool) (arch.Arch, arch.Space, error) {
	if channels == 0 && cells == 0 && !final {
		return a, space, nil
	}
	opt := space.Options()
	if channels > 0 {
		opt.Channels = channels
	}
	if cells > 0 {
		opt.Cells = cells
	}
	opt.FinalNetwork = opt.FinalNetwork || final
	wide, err := arch.New(space.Name(), opt)
	if err != nil {
		return a, space, err
	}
	b, err := wide.Arch(a.Decisions)
	if err != nil {
		return a, space, err
	}
	return b, wide, nil
}

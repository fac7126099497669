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
	"nasd/journal"
	"nasd/train"
	"nasd/train/dataset"
)

// lmFlags are the language-model flags of nasd train (-data ptb).
type lmFlags struct {
	cell                string
	bptt, evalBatch     int
	clip, anneal, initR float64
	tie                 bool
	dropEmbed, dropOut  float64
	stateClip           float64
}

func (f *lmFlags) register(fs *flag.FlagSet) {
	d := train.DefaultLMConfig()
	fs.StringVar(&f.cell, "cell", "", "-data ptb: train this standard cell instead of -arch/-sample: lstm")
	fs.IntVar(&f.bptt, "bptt", d.BPTT, "-data ptb: steps of truncated back-propagation through time")
	fs.IntVar(&f.evalBatch, "eval-batch", d.EvalBatch, "-data ptb: streams when evaluating perplexity")
	fs.Float64Var(&f.clip, "clip", d.Clip, "-data ptb: clip the gradient to this global norm (0 = off)")
	fs.Float64Var(&f.anneal, "anneal", d.Anneal, "-data ptb: divide the learning rate by this when validation perplexity stalls")
	fs.Float64Var(&f.initR, "init-range", d.InitRange, "-data ptb: embedding and decoder weights start uniform in ±this")
	fs.BoolVar(&f.tie, "tie", false, "-data ptb: tie the decoder's weights to the embedding (needs -embed = -hidden)")
	fs.Float64Var(&f.dropEmbed, "drop-embed", 0, "-data ptb: dropout rate on the cell's input")
	fs.Float64Var(&f.dropOut, "drop-out", 0, "-data ptb: dropout rate on the cell's output")
	fs.Float64Var(&f.stateClip, "state-clip", 0, "-data ptb: scale each stream's hidden state to at most this norm after every step (0 = off; 25 guards enas-rnn cells with ReLU or identity nodes)")
}

// lmOutput is the JSON written by -o for a language model.
type lmOutput struct {
	Arch    *arch.Arch     `json:"arch,omitempty"` // absent for -cell
	Cell    string         `json:"cell,omitempty"`
	Hash    string         `json:"hash,omitempty"`
	Seed    uint64         `json:"seed"`
	DataDir string         `json:"data_dir"`
	Config  train.LMConfig `json:"config"`
	Result  train.LMResult `json:"result"`
	Written time.Time      `json:"written"`
}

// runTrainLM is nasd train -data ptb: a word-level language model whose
// recurrent cell is -cell lstm, an -arch of a cell space, or -sample of one.
func runTrainLM(stdout, stderr io.Writer, set map[string]bool, df dataFlags, sf spaceFlags, lf lmFlags, tc train.Config,
	archFile string, sample bool, seed uint64, out string) int {
	if df.spec.Dir == "" {
		return fail(stderr, errors.New("train: -data ptb needs -data-dir DIR holding ptb.train.txt, ptb.valid.txt and ptb.test.txt (make corpus builds one)"))
	}
	choices := 0
	for _, c := range []bool{lf.cell != "", archFile != "", sample} {
		if c {
			choices++
		}
	}
	if choices != 1 {
		fmt.Fprintln(stderr, "nasd train: -data ptb: give exactly one of -cell lstm, -arch FILE or -sample")
		return exitUsage
	}
	cfg := train.DefaultLMConfig()
	// The image training flags that mean the same here, when given.
	if set["epochs"] {
		cfg.Epochs = tc.Epochs
	}
	if set["steps"] {
		cfg.Steps = tc.Steps
	}
	if set["batch"] {
		cfg.Batch = tc.BatchSize
	}
	if set["lr"] {
		cfg.LR = tc.LR
	}
	cfg.EvalTest = tc.EvalTest
	cfg.BPTT, cfg.EvalBatch, cfg.Clip, cfg.Anneal, cfg.InitRange = lf.bptt, lf.evalBatch, lf.clip, lf.anneal, lf.initR
	cfg.Tie, cfg.DropEmbed, cfg.DropOut, cfg.StateClip = lf.tie, lf.dropEmbed, lf.dropOut, lf.stateClip
	if err := cfg.Validate(); err != nil {
		return fail(stderr, err)
	}

	start := time.Now()
	text, err := dataset.LoadText(df.spec.Dir)
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "Text %s: %d words in the vocabulary; %d train, %d validation, %d test tokens (%.1fs)\n",
		df.spec.Dir, len(text.Vocab), len(text.Train), len(text.Val), len(text.Test), time.Since(start).Seconds())

	var g *arch.Graph
	var a *arch.Arch
	switch {
	case lf.cell == "lstm":
		hidden, embed := sf.hidden, sf.embed
		if hidden == 0 {
			hidden = 200
		}
		if embed == 0 {
			embed = hidden
		}
		g = train.LSTMCell(embed, hidden)
		fmt.Fprintf(stdout, "Cell: LSTM, %d inputs, %d units\n", embed, hidden)
	case lf.cell != "":
		fmt.Fprintf(stderr, "nasd train: -cell %q: the standard cell is lstm\n", lf.cell)
		return exitUsage
	default:
		var space arch.Space
		var x arch.Arch
		if archFile != "" {
			if x, space, err = arch.Load(archFile); err != nil {
				return fail(stderr, err)
			}
		} else {
			if space, err = sf.space(arch.Shape{}, 0); err != nil {
				return fail(stderr, err)
			}
			x = space.Sample(rand.New(rand.NewPCG(seed, 0)))
		}
		an, err := arch.Analyze(space, x)
		if err != nil {
			return fail(stderr, err)
		}
		if g, err = space.Lower(x); err != nil {
			return fail(stderr, err)
		}
		if g.Hidden == 0 {
			return fail(stderr, fmt.Errorf("train: -data ptb: space %s is not a recurrent cell space (nas-rnn, enas-rnn)", space.Name()))
		}
		fmt.Fprintf(stdout, "Cell %s (space %s):\n", x.Hash(), space.Name())
		if err := arch.WriteTable(stdout, an); err != nil {
			return fail(stderr, err)
		}
		a = &x
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := train.TrainLM(ctx, g, text, cfg, seed, func(p train.LMProgress) {
		if e := p.EpochDone; e != nil {
			fmt.Fprintf(stdout, "epoch %d/%d  train ppl %.2f  val ppl %.2f  lr %g  (%.1fs)\n", e.Epoch, cfg.Epochs, e.TrainPPL, e.ValPPL, e.LR, e.Seconds)
		}
	})
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "\nStatus:               %s", res.Status)
	if res.Reason != "" {
		fmt.Fprintf(stdout, " (%s)", res.Reason)
	}
	fmt.Fprintf(stdout, "\nBest validation ppl:  %.2f\nReward:               %.4f (%g / perplexity)\n", res.BestValPPL, res.Reward, cfg.RewardC)
	if res.TestPPL != nil {
		fmt.Fprintf(stdout, "Test perplexity:      %.2f\n", *res.TestPPL)
	}
	fmt.Fprintf(stdout, "Parameters:           %d\nWindows:              %d\nWall time:            %.1fs (%.0f tokens/s)\n",
		res.Params, res.Steps, res.WallSeconds, res.TokensPerSec)
	if out != "" {
		rec := lmOutput{Arch: a, Cell: lf.cell, Seed: seed, DataDir: df.spec.Dir, Config: cfg, Result: res, Written: time.Now().UTC()}
		if a != nil {
			rec.Hash = a.Hash()
		}
		b, err := json.MarshalIndent(rec, "", "  ")
		if err != nil {
			return fail(stderr, err)
		}
		if err := journal.WriteFileAtomic(out, append(b, '\n'), 0o644); err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintf(stdout, "Result written to %s\n", out)
	}
	if res.Status != train.StatusOK {
		return fail(stderr, errors.New("training "+res.Status+": "+res.Reason))
	}
	return exitOK
}

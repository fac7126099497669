package worker

import (
	"context"

	"nasd/arch"
	"nasd/cluster"
	"nasd/train"
	"nasd/train/dataset"
)

// NewTrainer returns the real trainer: it lowers each trial's architecture
// with space, trains it on data with train.Train (cfg, with Epochs replaced
// by the trial's when it gives one, and the trial's seed) and reports what
// train measured, plus the FLOPs from static analysis. It is an EpochTrainer:
// a stopped run reports status "stopped" (train.StatusStopped) with the
// epochs run. An architecture of
// another space, or of this space with other options, gives status "failed".
func NewTrainer(space arch.Space, data *dataset.Splits, cfg train.Config) Trainer {
	return &trainer{space: space, fit: func(ctx context.Context, g *arch.Graph, trial cluster.Trial, res *cluster.Result, epochEnd epochEndFunc) {
		cfg := cfg
		if trial.Epochs > 0 {
			cfg.Epochs = trial.Epochs
		}
		// train.Train reports training outcomes in Status and puts any error's
		// text in Reason, so the error itself adds nothing here.
		var hooks train.Hooks
		if epochEnd != nil {
			hooks.EpochEnd = func(e train.EpochStats) bool { return epochEnd(e.Epoch, e.ValAcc) }
		}
		tr, _ := train.TrainHooked(ctx, g, data, cfg, trial.Seed, hooks)
		res.Status, res.Reason = tr.Status, tr.Reason
		res.Reward, res.BestValAcc, res.TestAcc = tr.Reward, tr.BestValAcc, tr.TestAcc
		res.Params, res.ImgPerSec = tr.Params, tr.ExamplesPerSec
		if len(tr.Epochs) > 0 {
			res.ValAcc = make([]float64, len(tr.Epochs))
			for i, e := range tr.Epochs {
				res.ValAcc[i] = e.ValAcc
			}
		}
	}}
}

// NewLMTrainer returns the real trainer of recurrent cells (nas-rnn,
// enas-rnn): each trial's cell is trained as a word-level language model on
// text with train.TrainLM (cfg, with Epochs replaced by the trial's when it
// gives one, and the trial's seed). The result's Reward is c/validation
// perplexity; ValAcc holds c/perplexity of each epoch, the scale strategies
// and early stopping compare, ValPPL and TestPPL the perplexities, and
// ImgPerSec the training tokens per second.
func NewLMTrainer(space arch.Space, text *dataset.Text, cfg train.LMConfig) Trainer {
	return &trainer{space: space, fit: func(ctx context.Context, g *arch.Graph, trial cluster.Trial, res *cluster.Result, epochEnd epochEndFunc) {
		cfg := cfg
		if trial.Epochs > 0 {
			cfg.Epochs = trial.Epochs
		}
		var hooks train.LMHooks
		if epochEnd != nil {
			hooks.EpochEnd = func(e train.LMEpoch) bool { return epochEnd(e.Epoch, train.LMReward(cfg.RewardC, e.ValPPL)) }
		}
		tr, err := train.TrainLMHooked(ctx, g, text, cfg, trial.Seed, hooks)
		res.Status, res.Reason = tr.Status, tr.Reason
		if err != nil && tr.Reason == "" {
			res.Reason = err.Error()
		}
		res.Reward, res.BestValAcc, res.Params, res.ImgPerSec = tr.Reward, tr.Reward, tr.Params, tr.TokensPerSec
		res.TestPPL = tr.TestPPL
		for _, e := range tr.Epochs {
			res.ValPPL = append(res.ValPPL, e.ValPPL)
			res.ValAcc = append(res.ValAcc, train.LMReward(cfg.RewardC, e.ValPPL))
		}
	}}
}

// epochEndFunc sees each epoch's validation score; true stops the trial.
type epochEndFunc = func(epoch int, valAcc float64) (stop bool)

// trainer lowers a trial's architecture and hands it to fit.
type trainer struct {
	space arch.Space
	fit   func(ctx context.Context, g *arch.Graph, trial cluster.Trial, res *cluster.Result, epochEnd epochEndFunc)
}

func (t *trainer) Train(ctx context.Context, trial cluster.Trial) cluster.Result {
	return t.TrainEpochs(ctx, trial, nil)
}

// TrainEpochs is Train with epochEnd called after each epoch (nil: none).
func (t *trainer) TrainEpochs(ctx context.Context, trial cluster.Trial, epochEnd epochEndFunc) cluster.Result {
	res := cluster.Result{TrialID: trial.ID}
	g, err := t.space.Lower(trial.Arch)
	if err == nil {
		var stats []arch.Stats
		if stats, err = g.Infer(); err == nil {
			for _, s := range stats {
				res.FLOPs += s.FLOPs
			}
			t.fit(ctx, g, trial, &res, epochEnd)
			return res
		}
	}
	res.Status, res.Reason = cluster.StatusFailed, err.Error()
	return res
}

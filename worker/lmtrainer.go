package worker

import (
	"context"

	"nasd/arch"
	"nasd/cluster"
	"nasd/train"
	"nasd/train/dataset"
)

// NewLMTrainer returns the real trainer of recurrent cells (nas-rnn,
// enas-rnn): each trial's cell is trained as a word-level language model on
// text with train.TrainLM (cfg, with Epochs replaced by the trial's when it
// gives one, and the trial's seed). The result's Reward is c/validation
// perplexity; ValAcc holds c/perplexity of each epoch, the scale strategies
// and early stopping compare, and ValPPL and TestPPL the perplexities.
func NewLMTrainer(space arch.Space, text *dataset.Text, cfg train.LMConfig) Trainer {
	return &lmTrainer{space: space, text: text, cfg: cfg}
}

type lmTrainer struct {
	space arch.Space
	text  *dataset.Text
	cfg   train.LMConfig
}

func (t *lmTrainer) Train(ctx context.Context, trial cluster.Trial) cluster.Result {
	return t.TrainEpochs(ctx, trial, nil)
}

// TrainEpochs is Train with epochEnd called with each epoch's c/perplexity.
func (t *lmTrainer) TrainEpochs(ctx context.Context, trial cluster.Trial, epochEnd func(epoch int, valAcc float64) (stop bool)) cluster.Result {
	res := cluster.Result{TrialID: trial.ID}
	g, err := t.space.Lower(trial.Arch)
	if err != nil {
		res.Status, res.Reason = cluster.StatusFailed, err.Error()
		return res
	}
	stats, err := g.Infer()
	if err != nil {
		res.Status, res.Reason = cluster.StatusFailed, err.Error()
		return res
	}
	for _, s := range stats {
		res.FLOPs += s.FLOPs
	}
	cfg := t.cfg
	if trial.Epochs > 0 {
		cfg.Epochs = trial.Epochs
	}
	var hooks train.LMHooks
	if epochEnd != nil {
		hooks.EpochEnd = func(e train.LMEpoch) bool { return epochEnd(e.Epoch, train.LMReward(cfg.RewardC, e.ValPPL)) }
	}
	tr, err := train.TrainLMHooked(ctx, g, t.text, cfg, trial.Seed, hooks)
	res.Status, res.Reason = tr.Status, tr.Reason
	if err != nil && tr.Reason == "" {
		res.Reason = err.Error()
	}
	res.Reward, res.Params, res.ImgPerSec = tr.Reward, tr.Params, tr.TokensPerSec
	res.TestPPL = tr.TestPPL
	for _, e := range tr.Epochs {
		res.ValPPL = append(res.ValPPL, e.ValPPL)
		res.ValAcc = append(res.ValAcc, train.LMReward(cfg.RewardC, e.ValPPL))
	}
	res.BestValAcc = tr.Reward
	return res
}

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
	return &trainer{space: space, data: data, cfg: cfg}
}

type trainer struct {
	space arch.Space
	data  *dataset.Splits
	cfg   train.Config
}

func (t *trainer) Train(ctx context.Context, trial cluster.Trial) cluster.Result {
	return t.TrainEpochs(ctx, trial, nil)
}

// TrainEpochs is Train with train.Hooks.EpochEnd calling epochEnd (nil: none).
func (t *trainer) TrainEpochs(ctx context.Context, trial cluster.Trial, epochEnd func(epoch int, valAcc float64) (stop bool)) cluster.Result {
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
	// train.Train reports training outcomes in Status and puts any error's
	// text in Reason, so the error itself adds nothing here.
	var hooks train.Hooks
	if epochEnd != nil {
		hooks.EpochEnd = func(e train.EpochStats) bool { return epochEnd(e.Epoch, e.ValAcc) }
	}
	tr, _ := train.TrainHooked(ctx, g, t.data, cfg, trial.Seed, hooks)
	res.Status, res.Reason = tr.Status, tr.Reason
	res.Reward, res.BestValAcc, res.TestAcc = tr.Reward, tr.BestValAcc, tr.TestAcc
	res.Params, res.ImgPerSec = tr.Params, tr.ExamplesPerSec
	if len(tr.Epochs) > 0 {
		res.ValAcc = make([]float64, len(tr.Epochs))
		for i, e := range tr.Epochs {
			res.ValAcc[i] = e.ValAcc
		}
	}
	return res
}

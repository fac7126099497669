package worker_test

import (
	"context"
	"testing"

	"nasd/arch"
	"nasd/cluster"
	"nasd/train"
	"nasd/train/dataset"
	"nasd/worker"
)

func TestNewTrainer(t *testing.T) {
	space, err := arch.New("nas", arch.Options{Layers: 1, Input: arch.Shape{C: 1, H: 6, W: 6}, Classes: 2,
		FilterSizes: []int{3}, FilterCounts: []int{4}, Strides: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	data := &dataset.Splits{Train: dataset.Halves(64, 1), Val: dataset.Halves(32, 2)}
	cfg := train.DefaultConfig()
	cfg.Epochs, cfg.BatchSize, cfg.LR = 1, 16, 0.05
	tr := worker.NewTrainer(space, data, cfg)

	a, _ := space.Arch([]int{0, 0, 0, 0})
	res := tr.Train(context.Background(), cluster.Trial{ID: "t1", Arch: a, Seed: 3, Epochs: 2})
	if res.Status != "ok" || res.TrialID != "t1" {
		t.Fatalf("status %q (%s) for %q", res.Status, res.Reason, res.TrialID)
	}
	an, err := arch.Analyze(space, a)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.ValAcc) != 2 || res.Params != an.Params || res.FLOPs != an.FLOPs || res.ImgPerSec <= 0 {
		t.Fatalf("result %+v: want 2 epochs (the trial's), %d params, %d FLOPs, img/s", res, an.Params, an.FLOPs)
	}
	if again := tr.Train(context.Background(), cluster.Trial{ID: "t1", Arch: a, Seed: 3, Epochs: 2}); again.Reward != res.Reward {
		t.Errorf("same trial: reward %v then %v", res.Reward, again.Reward)
	}

	// Stopped after epoch 1 of 3: the first epoch is that of the full run.
	et := tr.(worker.EpochTrainer)
	var reports []float64
	stopped := et.TrainEpochs(context.Background(), cluster.Trial{ID: "t1", Arch: a, Seed: 3, Epochs: 2},
		func(epoch int, acc float64) bool { reports = append(reports, acc); return true })
	if stopped.Status != cluster.StatusStopped || len(stopped.ValAcc) != 1 || len(reports) != 1 ||
		stopped.ValAcc[0] != res.ValAcc[0] || reports[0] != res.ValAcc[0] || stopped.FLOPs != an.FLOPs {
		t.Fatalf("stopped after epoch 1: %+v (reports %v), want val_acc [%v]", stopped, reports, res.ValAcc[0])
	}

	other, _ := arch.New("nas", arch.Options{Layers: 1, Input: arch.Shape{C: 1, H: 6, W: 6}, Classes: 2})
	b, _ := other.Arch([]int{0, 0, 0, 0})
	if res := tr.Train(context.Background(), cluster.Trial{ID: "t2", Arch: b}); res.Status != cluster.StatusFailed || res.Reason == "" {
		t.Fatalf("arch with other options: status %q reason %q, want failed", res.Status, res.Reason)
	}
}

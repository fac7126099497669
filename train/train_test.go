package train

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"gorgonia.org/tensor"

	"nasd/arch"
	"nasd/train/dataset"
)

const fashionDir = "/usr/share/datasets/fashion-mnist"

// TestTrainFashionMNIST trains an ENAS-macro-like child on a 5,000-image
// Fashion-MNIST subset for 2 epochs (SGD, Nesterov momentum 0.9, weight decay
// 1e-4, cosine schedule from 0.15, batch 32) and requires ≥ 0.80 accuracy on
// 1,000 held-out validation images. A PyTorch 1.13 twin of this network and
// schedule on the same images reached 0.808–0.820 over three seeds.
func TestTrainFashionMNIST(t *testing.T) {
	if _, err := os.Stat(fashionDir); err != nil {
		t.Skipf("Fashion-MNIST not installed at %s (apt-get install dataset-fashion-mnist): %v", fashionDir, err)
	}
	data, err := dataset.Load(dataset.Spec{Name: "fashion-mnist", Dir: fashionDir, TrainSubset: 5000, ValSubset: 1000, TestSubset: 1000, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	g := enasLike(1, 28, 28, 10, 16)
	cfg := DefaultConfig()
	cfg.Epochs, cfg.BatchSize, cfg.LR = 2, 32, 0.15
	cfg.EvalTest = true
	start := time.Now()
	res, err := Train(context.Background(), g, data, cfg, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range res.Epochs {
		t.Logf("epoch %d: train loss %.4f acc %.4f, val acc %.4f (%.1fs)", e.Epoch, e.TrainLoss, e.TrainAcc, e.ValAcc, e.Seconds)
	}
	t.Logf("status %s, best val %.4f, test %.4f, reward %.4f, %d params, %d steps, %.1fs wall (%.1fs in Train), %.0f img/s",
		res.Status, res.BestValAcc, deref(res.TestAcc), res.Reward, res.Params, res.Steps, time.Since(start).Seconds(), res.WallSeconds, res.ExamplesPerSec)
	if res.Status != StatusOK || len(res.Epochs) != 2 || res.Steps != 2*157 {
		t.Fatalf("status %q (%s), %d epochs, %d steps; want ok, 2 epochs, 314 steps", res.Status, res.Reason, len(res.Epochs), res.Steps)
	}
	if res.BestValAcc < 0.80 {
		t.Errorf("best validation accuracy %.4f < 0.80", res.BestValAcc)
	}
	if res.TestAcc == nil || *res.TestAcc < 0.75 {
		t.Errorf("test accuracy %v, want ≥ 0.75", res.TestAcc)
	}
	if want := math.Pow(res.BestValAcc, 3); math.Abs(res.Reward-want) > 1e-12 {
		t.Errorf("reward %v, want best^3 = %v", res.Reward, want)
	}
}

func deref(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// TestTrainSynthetic checks the whole loop on a learnable toy set: accuracy,
// short last batches (37 and 13 are not multiples of 8), progress reports,
// JSON encoding and determinism.
func TestTrainSynthetic(t *testing.T) {
	data := syntheticSplits(37, 13, 11, 1, 9, 7, 3, 0.5)
	g := enasLike(1, 9, 7, 3, 4)
	cfg := Config{Epochs: 10, BatchSize: 8, LR: 0.05, Momentum: 0.9, EvalTest: true}
	var reports []Progress
	res, err := Train(context.Background(), g, data, cfg, 7, func(p Progress) { reports = append(reports, p) })
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusOK || len(res.Epochs) != 10 || res.Steps != 50 {
		t.Fatalf("status %q (%s), %d epochs, %d steps; want ok, 10, 50", res.Status, res.Reason, len(res.Epochs), res.Steps)
	}
	for _, e := range res.Epochs {
		// Every validation example counts: accuracies are multiples of 1/13.
		if k := e.ValAcc * 13; math.Abs(k-math.Round(k)) > 1e-9 {
			t.Errorf("epoch %d: val acc %v is not a multiple of 1/13", e.Epoch, e.ValAcc)
		}
		if k := e.TrainAcc * 37; math.Abs(k-math.Round(k)) > 1e-9 {
			t.Errorf("epoch %d: train acc %v is not a multiple of 1/37", e.Epoch, e.TrainAcc)
		}
	}
	if last := res.Epochs[9]; last.ValAcc < 0.9 || last.TrainLoss >= res.Epochs[0].TrainLoss/2 || res.TestAcc == nil || *res.TestAcc < 0.9 {
		t.Errorf("did not learn the toy set: %+v", res.Epochs)
	}
	if len(reports) != 10*5+10 {
		t.Errorf("%d progress reports, want 60", len(reports))
	}
	for _, p := range reports {
		if p.EpochDone == nil && (p.Step < 1 || p.Step > 5 || p.StepsPerEpoch != 5 || p.Epochs != 10) {
			t.Errorf("bad progress %+v", p)
		}
	}
	if _, err := json.Marshal(res); err != nil {
		t.Errorf("result does not encode as JSON: %v", err)
	}

	res2, err := Train(context.Background(), g, data, cfg, 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !sameMetrics(res, res2) {
		t.Errorf("same seed, different results:\n%+v\n%+v", res.Epochs, res2.Epochs)
	}
	res3, err := Train(context.Background(), g, data, cfg, 8, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sameMetrics(res, res3) {
		t.Errorf("seeds 7 and 8 gave identical results")
	}
}

// sameMetrics compares everything but timings.
func sameMetrics(a, b Result) bool {
	if a.Status != b.Status || a.BestValAcc != b.BestValAcc || a.Reward != b.Reward || a.Steps != b.Steps ||
		len(a.Epochs) != len(b.Epochs) || (a.TestAcc == nil) != (b.TestAcc == nil) || (a.TestAcc != nil && *a.TestAcc != *b.TestAcc) {
		return false
	}
	for i := range a.Epochs {
		x, y := a.Epochs[i], b.Epochs[i]
		if x.TrainLoss != y.TrainLoss || x.TrainAcc != y.TrainAcc || x.ValAcc != y.ValAcc || x.Steps != y.Steps {
			return false
		}
	}
	return true
}

func TestTrainDiverges(t *testing.T) {
	data := syntheticSplits(32, 8, 8, 1, 7, 7, 3, 0.5)
	b := newGraph(1, 7, 7, 3)
	b.add(convOp(3, 4, 1))
	b.add(reluOp)
	b.add(arch.Op{Kind: arch.KindFlatten})
	b.add(denseOp(3))
	res, err := Train(context.Background(), b.g, data, Config{Epochs: 5, BatchSize: 8, LR: 1e6, Momentum: 0.9, Schedule: "constant"}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusDiverged || !strings.Contains(res.Reason, "loss") {
		t.Fatalf("status %q (%s), want diverged", res.Status, res.Reason)
	}
	if _, err := json.Marshal(res); err != nil {
		t.Errorf("diverged result does not encode as JSON (NaN leaked?): %v", err)
	}
	t.Logf("%s after %d steps", res.Reason, res.Steps)
}

func TestTrainCancel(t *testing.T) {
	data := syntheticSplits(64, 8, 8, 1, 7, 7, 3, 0.5)
	g := enasLike(1, 7, 7, 3, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := Train(ctx, g, data, Config{Epochs: 100, BatchSize: 8}, 1, func(p Progress) {
		if p.Epoch == 2 && p.Step == 3 {
			cancel()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusCanceled || res.Steps != 8+3 || len(res.Epochs) != 1 {
		t.Errorf("status %q (%s), %d steps, %d epochs; want canceled after 11 steps, 1 epoch", res.Status, res.Reason, res.Steps, len(res.Epochs))
	}

	ctx, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	res, err = Train(ctx, g, data, Config{Epochs: 100000, BatchSize: 8}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusTimeout || res.WallSeconds > 5 {
		t.Errorf("status %q (%s) after %.1fs; want timeout", res.Status, res.Reason, res.WallSeconds)
	}
}

func TestTrainBudgets(t *testing.T) {
	data := syntheticSplits(40, 8, 8, 1, 7, 7, 3, 0.5)
	g := enasLike(1, 7, 7, 3, 4)
	// 5 steps per epoch; a 7-step budget ends in epoch 2, which is still evaluated.
	res, err := Train(context.Background(), g, data, Config{Steps: 7, BatchSize: 8}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusOK || res.Steps != 7 || len(res.Epochs) != 2 || res.Epochs[1].Steps != 2 || !strings.Contains(res.Reason, "step budget") {
		t.Errorf("steps budget: %+v", res)
	}
	res, err = Train(context.Background(), g, data, Config{Deadline: 300 * time.Millisecond, BatchSize: 8, Schedule: "constant"}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusOK || res.Steps < 1 || !strings.Contains(res.Reason, "time budget") || res.WallSeconds > 5 {
		t.Errorf("time budget: %+v", res)
	}
}

func TestTrainRejects(t *testing.T) {
	data := syntheticSplits(16, 8, 8, 1, 7, 7, 3, 0.5)
	g := enasLike(1, 7, 7, 3, 4)
	ctx := context.Background()
	if _, err := Train(ctx, g, data, Config{Epochs: -1, LR: -2, Optimizer: "rmsprop"}, 1, nil); err == nil ||
		!strings.Contains(err.Error(), "epochs = -1") || !strings.Contains(err.Error(), "lr = -2") || !strings.Contains(err.Error(), `optimizer = "rmsprop"`) {
		t.Errorf("bad config: error %v should name every problem", err)
	}
	wrong := enasLike(1, 9, 9, 3, 4)
	if _, err := Train(ctx, wrong, data, Config{Epochs: 1}, 1, nil); err == nil || !strings.Contains(err.Error(), "expects") {
		t.Errorf("shape mismatch: error %v", err)
	}
	noTest := *data
	noTest.Test = nil
	if _, err := Train(ctx, g, &noTest, Config{Epochs: 1, EvalTest: true}, 1, nil); err == nil {
		t.Errorf("EvalTest without a test set: no error")
	}
	broken := enasLike(1, 7, 7, 3, 4)
	broken.Nodes[3].Inputs = []int{9}
	if _, err := Train(ctx, broken, data, Config{Epochs: 1}, 1, nil); err == nil {
		t.Errorf("invalid graph: no error")
	}
	bad := syntheticSplits(16, 8, 8, 1, 7, 7, 3, 0.5)
	bad.Train.Labels[3] = 7
	res, err := Train(ctx, g, bad, Config{Epochs: 1, BatchSize: 8}, 1, nil)
	if err == nil || res.Status != StatusError || !strings.Contains(err.Error(), "example 3 has label 7") {
		t.Errorf("label out of range: status %q, error %v", res.Status, err)
	}
	// The loss op checks labels too, for nets run directly.
	n, err := Build(g, NewWeights(dtypeOf[float32](), 1), BuildOptions{Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.Run(make([]float32, 2*49), []int32{0, 5}); err == nil || !strings.Contains(err.Error(), "label 5") {
		t.Errorf("Run with label 5 of 3 classes: error %v", err)
	}
}

// TestTrainEpochEnd: the hook sees every epoch but the last of the budget,
// and stopping it ends the run at that boundary with the epochs run and
// their reward; never stopping changes nothing.
func TestTrainEpochEnd(t *testing.T) {
	data := syntheticSplits(16, 8, 8, 1, 7, 7, 3, 0.5)
	g := enasLike(1, 7, 7, 3, 2)
	cfg := Config{Epochs: 4, BatchSize: 8, EvalTest: false}
	var seen []int
	full, err := TrainHooked(context.Background(), g, data, cfg, 1, Hooks{EpochEnd: func(e EpochStats) bool {
		seen = append(seen, e.Epoch)
		return false
	}})
	if err != nil || full.Status != StatusOK || len(full.Epochs) != 4 {
		t.Fatalf("never stopping: %+v, %v", full, err)
	}
	if len(seen) != 3 || seen[0] != 1 || seen[2] != 3 {
		t.Errorf("EpochEnd called for epochs %v, want 1 2 3 (not the last)", seen)
	}
	plain, _ := Train(context.Background(), g, data, cfg, 1, nil)
	if plain.Reward != full.Reward || plain.BestValAcc != full.BestValAcc {
		t.Errorf("a hook that never stops changed the run: reward %v vs %v", full.Reward, plain.Reward)
	}

	var progressed int
	res, err := TrainHooked(context.Background(), g, data, cfg, 1, Hooks{
		Progress: func(p Progress) { progressed++ },
		EpochEnd: func(e EpochStats) bool { return e.Epoch == 2 },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusStopped || len(res.Epochs) != 2 || !strings.Contains(res.Reason, "after epoch 2 of 4") || progressed == 0 {
		t.Fatalf("stopped at 2: status %q (%s), %d epochs, %d progress calls", res.Status, res.Reason, len(res.Epochs), progressed)
	}
	// The first two epochs are those of the full run; the reward is over them.
	want := Reward([]float64{full.Epochs[0].ValAcc, full.Epochs[1].ValAcc}, 5, "power", 3)
	if res.Epochs[1].ValAcc != full.Epochs[1].ValAcc || math.Abs(res.Reward-want) > 1e-15 {
		t.Errorf("stopped run: val acc %v reward %v, want %v and %v", res.Epochs[1].ValAcc, res.Reward, full.Epochs[1].ValAcc, want)
	}
}

// TestTrainMicroFashionMNIST builds a sampled enas-micro network with the
// default 3 stages (so factorized reductions, hence shifts, at 28×28 → 14×14
// → 7×7) and takes SGD steps on one batch of real Fashion-MNIST images: the
// loss stays finite and falls on that batch.
func TestTrainMicroFashionMNIST(t *testing.T) {
	if _, err := os.Stat(fashionDir); err != nil {
		t.Skipf("Fashion-MNIST not installed at %s (apt-get install dataset-fashion-mnist): %v", fashionDir, err)
	}
	data, err := dataset.Load(dataset.Spec{Name: "fashion-mnist", Dir: fashionDir, TrainSubset: 16, ValSubset: 16, TestSubset: 16, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Default stages; fewer nodes and channels than the defaults keep it quick.
	g := microGraph(t, arch.Options{Nodes: 3, Cells: 1, Channels: 8}, 7)
	if g.Input != (arch.Shape{C: 1, H: 28, W: 28}) {
		t.Fatalf("input %v", g.Input)
	}
	const batch, steps = 16, 8
	n, err := Build(g, NewWeights(tensor.Float32, 1), BuildOptions{Batch: batch, Train: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	opt := newOptimizer(Config{Optimizer: "sgd", Momentum: 0.9})
	x, y := data.Train.Images[:batch*data.Train.Size()], data.Train.Labels[:batch]
	var losses []float64
	for range steps {
		loss, _, err := n.Run(x, y)
		if err != nil {
			t.Fatal(err)
		}
		if !finite(loss) {
			t.Fatalf("losses %v: not finite", append(losses, loss))
		}
		losses = append(losses, loss)
		opt.update(n, 0.05)
	}
	t.Logf("%d nodes, losses %.4f", len(g.Nodes), losses)
	// Steps on one batch need not lower the loss every time (momentum), but
	// eight of them must fit it better than the start.
	if last := losses[len(losses)-1]; !(last < 0.8*losses[0]) {
		t.Errorf("losses %v: the last is not below 0.8× the first", losses)
	}
}

// TestTrainTestEveryEpoch: with Config.TestEveryEpoch every epoch carries the
// test accuracy and a training clock that grows from epoch to epoch; the
// validation set may then be empty (skipped, ValAcc 0), which is otherwise an
// error.
func TestTrainTestEveryEpoch(t *testing.T) {
	data := syntheticSplits(37, 13, 11, 1, 9, 7, 3, 0.5)
	data.Val = syntheticSet(0, 1, 9, 7, 3, 0.5, 2)
	g := enasLike(1, 9, 7, 3, 4)
	cfg := Config{Epochs: 4, BatchSize: 8, LR: 0.05, Momentum: 0.9, EvalTest: true}
	if _, err := Train(context.Background(), g, data, cfg, 1, nil); err == nil || !strings.Contains(err.Error(), "validation set") {
		t.Fatalf("empty validation set without TestEveryEpoch: error %v", err)
	}
	cfg.TestEveryEpoch = true
	res, err := Train(context.Background(), g, data, cfg, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusOK || len(res.Epochs) != 4 {
		t.Fatalf("status %q (%s), %d epochs; want ok, 4", res.Status, res.Reason, len(res.Epochs))
	}
	prev := 0.0
	for _, e := range res.Epochs {
		if e.TestAcc == nil || *e.TestAcc < 0 || *e.TestAcc > 1 {
			t.Errorf("epoch %d: test accuracy %v", e.Epoch, e.TestAcc)
		}
		if e.ValAcc != 0 {
			t.Errorf("epoch %d: validation accuracy %v without a validation set", e.Epoch, e.ValAcc)
		}
		if e.TrainClock <= prev || e.TrainClock > res.WallSeconds {
			t.Errorf("epoch %d: train clock %v after %v (wall %v): want increasing, within the wall time", e.Epoch, e.TrainClock, prev, res.WallSeconds)
		}
		prev = e.TrainClock
	}
	// The last epoch's test accuracy is the final one (same weights).
	if last := res.Epochs[3].TestAcc; res.TestAcc == nil || last == nil || *res.TestAcc != *last {
		t.Errorf("final test accuracy %v, last epoch's %v", res.TestAcc, last)
	}
	b, err := json.Marshal(res.Epochs[0])
	if err != nil || !strings.Contains(string(b), `"test_acc":`) || !strings.Contains(string(b), `"train_clock":`) {
		t.Errorf("epoch JSON %s (%v): want test_acc and train_clock", b, err)
	}
}

package surrogate_test

import (
	"context"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"nasd/arch"
	"nasd/cluster"
	"nasd/surrogate"
)

func space(t testing.TB, layers int) arch.Space {
	t.Helper()
	s, err := arch.New("nas", arch.Options{Layers: layers})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSameTrialSameResult(t *testing.T) {
	s := space(t, 4)
	o := surrogate.New(s, surrogate.Options{Seed: 3, Noise: 0.05})
	r := rand.New(rand.NewPCG(1, 1))
	for i := range 20 {
		tr := cluster.Trial{ID: "t", Arch: s.Sample(r), Seed: uint64(i)}
		a, b := o.Train(context.Background(), tr), o.Train(context.Background(), tr)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("same trial, different results:\n%+v\n%+v", a, b)
		}
		if a.Status != "ok" || len(a.ValAcc) != surrogate.DefaultEpochs || a.Params == 0 || a.FLOPs == 0 {
			t.Fatalf("result %+v: want ok, %d epochs, params and FLOPs", a, surrogate.DefaultEpochs)
		}
		if want := math.Pow(a.ValAcc[len(a.ValAcc)-1], 3); math.Abs(a.Reward-want) > 1e-12 {
			t.Fatalf("reward %v, want last val acc cubed %v", a.Reward, want)
		}
		// A different seed gives different noise.
		tr.Seed += 1000
		if c := o.Train(context.Background(), tr); c.Reward == a.Reward {
			t.Fatalf("noise does not depend on the trial seed: reward %v twice", c.Reward)
		}
	}
}

func TestOptimum(t *testing.T) {
	s := space(t, 3)
	o := surrogate.New(s, surrogate.Options{Seed: 9, Epochs: 8})
	best, reward := o.Optimum()
	if want := 0.95 * 0.95 * 0.95; math.Abs(reward-want) > 1e-12 {
		t.Fatalf("Optimum reward %v, want 0.95³ = %v", reward, want)
	}
	res := o.Train(context.Background(), cluster.Trial{ID: "best", Arch: best, Seed: 1})
	if math.Abs(res.Reward-reward) > 1e-12 || len(res.ValAcc) != 8 {
		t.Fatalf("training the optimum: reward %v over %d epochs, want %v over 8", res.Reward, len(res.ValAcc), reward)
	}
	for i := 1; i < len(res.ValAcc); i++ {
		if res.ValAcc[i] < res.ValAcc[i-1] {
			t.Fatalf("validation curve falls: %v", res.ValAcc)
		}
	}
	// Every neighbour of the optimum is worse, so greedy ascent from anywhere
	// reaches it: the objective has one peak and searches can find it.
	for _, n := range s.Neighbours(best) {
		if o.Accuracy(n) >= o.Accuracy(best) {
			t.Fatalf("neighbour %v is not worse than the optimum", n.Decisions)
		}
	}
	a := s.Sample(rand.New(rand.NewPCG(5, 5)))
	for step := 0; ; step++ {
		next := a
		for _, n := range s.Neighbours(a) {
			if o.Accuracy(n) > o.Accuracy(next) {
				next = n
			}
		}
		if next.Hash() == a.Hash() {
			break
		}
		a = next
		if step > len(a.Decisions) {
			t.Fatal("greedy ascent does not converge")
		}
	}
	if a.Hash() != best.Hash() {
		t.Fatalf("greedy ascent ended at %v, not the optimum %v", a.Decisions, best.Decisions)
	}
}

func TestDurationAndContext(t *testing.T) {
	s := space(t, 2)
	o := surrogate.New(s, surrogate.Options{Seed: 1, Duration: 2 * time.Second, Epochs: 4})
	a, _ := o.Optimum()
	tr := cluster.Trial{ID: "slow", Arch: a}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := o.Train(ctx, tr)
	if res.Status != "timeout" || time.Since(start) > time.Second {
		t.Fatalf("status %q after %v, want timeout soon after 30ms", res.Status, time.Since(start))
	}
	if len(res.ValAcc) != 0 || res.Reason == "" {
		t.Fatalf("timed out before the first epoch: got %d epochs, reason %q", len(res.ValAcc), res.Reason)
	}

	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if res := o.Train(ctx, tr); res.Status != "canceled" {
		t.Fatalf("canceled context: status %q", res.Status)
	}

	fast := surrogate.New(s, surrogate.Options{Seed: 1, Duration: 20 * time.Millisecond})
	start = time.Now()
	if res := fast.Train(context.Background(), tr); res.Status != "ok" || time.Since(start) < 20*time.Millisecond {
		t.Fatalf("status %q after %v, want ok after ≥ 20ms", res.Status, time.Since(start))
	}
}

func TestOtherSpaceFails(t *testing.T) {
	o := surrogate.New(space(t, 2), surrogate.Options{Seed: 1})
	other := space(t, 3)
	res := o.Train(context.Background(), cluster.Trial{ID: "x", Arch: other.Sample(rand.New(rand.NewPCG(1, 2)))})
	if res.Status != cluster.StatusFailed || res.Reason == "" {
		t.Fatalf("arch of another space: status %q reason %q, want failed with a reason", res.Status, res.Reason)
	}
}

// TestTrainEpochs: the hook sees each epoch but the last, with the values of
// the full run's curve; stopping gives status "stopped", the epochs run and
// the reward over them.
func TestTrainEpochs(t *testing.T) {
	s := space(t, 3)
	o := surrogate.New(s, surrogate.Options{Seed: 3, Noise: 0.02, Epochs: 4, Duration: 4 * time.Millisecond})
	tr := cluster.Trial{ID: "t", Arch: s.Sample(rand.New(rand.NewPCG(2, 2))), Seed: 5}
	full := o.Train(context.Background(), tr)
	var seen []float64
	same := o.TrainEpochs(context.Background(), tr, func(epoch int, acc float64) bool {
		if epoch != len(seen)+1 {
			t.Errorf("epoch %d after %d calls", epoch, len(seen))
		}
		seen = append(seen, acc)
		return false
	})
	if !reflect.DeepEqual(same, full) || !reflect.DeepEqual(seen, full.ValAcc[:3]) {
		t.Fatalf("never stopping: %+v (hook saw %v), want %+v", same, seen, full)
	}
	stopped := o.TrainEpochs(context.Background(), tr, func(epoch int, acc float64) bool { return epoch == 2 })
	want := math.Pow(full.ValAcc[1], 3) // the curve rises: the best of 2 epochs is the second
	if stopped.Status != cluster.StatusStopped || !reflect.DeepEqual(stopped.ValAcc, full.ValAcc[:2]) ||
		math.Abs(stopped.Reward-want) > 1e-15 || stopped.FLOPs != full.FLOPs {
		t.Fatalf("stopped at epoch 2: %+v, want val_acc %v, reward %v", stopped, full.ValAcc[:2], want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	canceled := o.TrainEpochs(ctx, tr, func(epoch int, acc float64) bool { cancel(); return false })
	if canceled.Status != "canceled" || len(canceled.ValAcc) != 1 {
		t.Fatalf("canceled in the hook of epoch 1: status %q, %d epochs", canceled.Status, len(canceled.ValAcc))
	}
}

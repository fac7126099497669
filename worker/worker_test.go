package worker_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"nasd/arch"
	"nasd/cluster"
	"nasd/surrogate"
	"nasd/train"
	"nasd/worker"
)

func nasSpace(t testing.TB) arch.Space {
	t.Helper()
	s, err := arch.New("nas", arch.Options{Layers: 2})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func encode(t testing.TB, m cluster.Message) []byte {
	t.Helper()
	b, err := cluster.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func task(t testing.TB, space arch.Space, id string) []byte {
	a := space.Sample(rand.New(rand.NewPCG(uint64(len(id)), 7)))
	return encode(t, cluster.Message{Kind: cluster.KindTask, Trial: &cluster.Trial{ID: id, Arch: a, Seed: 1}})
}

// startWorker runs worker.Run on rank 1 of a 2-rank job and returns rank 0's
// end and the worker's error channel.
func startWorker(t *testing.T, tr worker.Trainer, mode string, timeout time.Duration) (cluster.Transport, <-chan error) {
	t.Helper()
	ends := cluster.NewInProcess(2)
	done := make(chan error, 1)
	go func() { done <- worker.Run(context.Background(), ends[1], tr, mode, timeout, zerolog.Nop()) }()
	t.Cleanup(func() { ends[0].Abort(9) })
	return ends[0], done
}

func wait(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("worker did not return")
		return nil
	}
}

// The trainer used by most tests: panics for trial "boom", returns NaN for
// "nan", runs into its deadline for "slow", else the surrogate.
func trickyTrainer(space arch.Space) worker.Trainer {
	obj := surrogate.New(space, surrogate.Options{Seed: 1})
	return worker.TrainerFunc(func(ctx context.Context, t cluster.Trial) cluster.Result {
		switch t.ID {
		case "boom":
			panic("kaboom")
		case "nan":
			r := obj.Train(ctx, t)
			r.Reward, r.ValAcc[0] = math.NaN(), math.Inf(1)
			return r
		case "slow":
			<-ctx.Done()
			return cluster.Result{TrialID: t.ID, Status: "timeout", Reason: ctx.Err().Error()}
		case "ignores-deadline":
			time.Sleep(300 * time.Millisecond)
			return obj.Train(context.Background(), t)
		}
		return obj.Train(ctx, t)
	})
}

func TestAsync(t *testing.T) {
	space := nasSpace(t)
	root, done := startWorker(t, trickyTrainer(space), worker.ModeAsync, 150*time.Millisecond)
	want := map[string]string{"a": "ok", "boom": "failed", "nan": "diverged", "slow": "timeout", "ignores-deadline": "timeout", "b": "ok"}
	for _, id := range []string{"a", "boom", "nan", "slow", "ignores-deadline", "b"} {
		if err := root.Send(1, task(t, space, id)); err != nil {
			t.Fatal(err)
		}
		from, b, err := root.Recv(context.Background())
		if err != nil || from != 1 {
			t.Fatalf("Recv: from %d, %v", from, err)
		}
		m, err := cluster.Decode(from, b)
		if err != nil || m.Kind != cluster.KindResult {
			t.Fatalf("trial %s: %v %v", id, m.Kind, err)
		}
		r := m.Result
		if r.TrialID != id || r.Status != want[id] {
			t.Errorf("trial %s: result for %q with status %q (%s), want %q", id, r.TrialID, r.Status, r.Reason, want[id])
		}
		if r.Rank != 1 || r.Host == "" || r.Start.IsZero() || r.End.Before(r.Start) {
			t.Errorf("trial %s: rank %d host %q start %v end %v", id, r.Rank, r.Host, r.Start, r.End)
		}
		if id == "boom" && !strings.Contains(r.Reason, "kaboom") {
			t.Errorf("panic reason %q does not carry the panic's message", r.Reason)
		}
		if id == "nan" && (r.Reward != 0 || r.ValAcc[0] != 0 || !strings.Contains(r.Reason, "NaN")) {
			t.Errorf("NaN result: reward %v val_acc %v reason %q", r.Reward, r.ValAcc, r.Reason)
		}
	}
	if err := root.Send(1, encode(t, cluster.Message{Kind: cluster.KindStop})); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, done); err != nil {
		t.Fatalf("worker after stop: %v", err)
	}
}

func TestSync(t *testing.T) {
	space := nasSpace(t)
	root, done := startWorker(t, trickyTrainer(space), worker.ModeSync, time.Second)
	ctx := context.Background()
	rounds := []cluster.Message{
		{Kind: cluster.KindIdle},
		{Kind: cluster.KindTask, Trial: &cluster.Trial{ID: "boom", Arch: space.Sample(rand.New(rand.NewPCG(1, 1)))}},
		{Kind: cluster.KindTask, Trial: &cluster.Trial{ID: "a", Arch: space.Sample(rand.New(rand.NewPCG(1, 2)))}},
	}
	for _, m := range rounds {
		if _, err := root.Scatter(ctx, 0, [][]byte{nil, encode(t, m)}); err != nil {
			t.Fatal(err)
		}
		got, err := root.Gather(ctx, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		r, err := cluster.Decode(1, got[1])
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case m.Kind == cluster.KindIdle && r.Kind != cluster.KindIdle:
			t.Errorf("idle round: worker answered %s", r.Kind)
		case m.Kind == cluster.KindTask && (r.Kind != cluster.KindResult || r.Result.TrialID != m.Trial.ID):
			t.Errorf("task %s: worker answered %+v", m.Trial.ID, r)
		case m.Kind == cluster.KindTask && m.Trial.ID == "boom" && r.Result.Status != cluster.StatusFailed:
			t.Errorf("panic: status %q", r.Result.Status)
		}
	}
	if _, err := root.Scatter(ctx, 0, [][]byte{nil, encode(t, cluster.Message{Kind: cluster.KindStop})}); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, done); err != nil {
		t.Fatalf("worker after stop: %v", err)
	}
}

func TestMalformedMessages(t *testing.T) {
	space := nasSpace(t)
	tr := trickyTrainer(space)
	t.Run("garbage", func(t *testing.T) {
		root, done := startWorker(t, tr, worker.ModeAsync, 0)
		root.Send(1, []byte("hello"))
		if err := wait(t, done); err == nil || !strings.Contains(err.Error(), "from rank 0") {
			t.Fatalf("garbage: %v, want an error naming rank 0", err)
		}
	})
	t.Run("wrong kind", func(t *testing.T) {
		root, done := startWorker(t, tr, worker.ModeAsync, 0)
		res := cluster.Result{TrialID: "x", Status: "ok"}
		root.Send(1, encode(t, cluster.Message{Kind: cluster.KindResult, Result: &res}))
		if err := wait(t, done); err == nil || !strings.Contains(err.Error(), "result message") {
			t.Fatalf("result sent to a worker: %v", err)
		}
	})
	t.Run("sync garbage", func(t *testing.T) {
		root, done := startWorker(t, tr, worker.ModeSync, 0)
		root.Scatter(context.Background(), 0, [][]byte{nil, []byte("NASD\x09")})
		if err := wait(t, done); err == nil || !strings.Contains(err.Error(), "version 9") {
			t.Fatalf("bad version: %v", err)
		}
	})
	t.Run("other rank", func(t *testing.T) {
		ends := cluster.NewInProcess(3)
		done := make(chan error, 1)
		go func() { done <- worker.Run(context.Background(), ends[1], tr, worker.ModeAsync, 0, zerolog.Nop()) }()
		defer ends[0].Abort(9)
		ends[2].Send(1, task(t, space, "x"))
		if err := wait(t, done); err == nil || !strings.Contains(err.Error(), "rank 2") {
			t.Fatalf("task from rank 2: %v", err)
		}
	})
	t.Run("bad mode", func(t *testing.T) {
		ends := cluster.NewInProcess(2)
		if err := worker.Run(context.Background(), ends[1], tr, "fast", 0, zerolog.Nop()); err == nil {
			t.Fatal("mode fast accepted")
		}
	})
}

func TestContextEndsWorker(t *testing.T) {
	ends := cluster.NewInProcess(2)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	tr := trickyTrainer(nasSpace(t))
	go func() { done <- worker.Run(ctx, ends[1], tr, worker.ModeSync, 0, zerolog.Nop()) }()
	time.Sleep(5 * time.Millisecond)
	cancel()
	if err := wait(t, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled worker returned %v", err)
	}
}

// Both trainers can stop early.
var (
	_ worker.EpochTrainer = (*surrogate.Objective)(nil)
	_ worker.EpochTrainer = worker.NewTrainer(nil, nil, train.Config{}).(worker.EpochTrainer)
)

func recvMsg(t *testing.T, root cluster.Transport) cluster.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	from, b, err := root.Recv(ctx)
	if err != nil || from != 1 {
		t.Fatalf("Recv: from %d, %v", from, err)
	}
	m, err := cluster.Decode(from, b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func decision(t *testing.T, id string, stop bool) []byte {
	return encode(t, cluster.Message{Kind: cluster.KindDecision, Decision: &cluster.Decision{TrialID: id, Stop: stop}})
}

// TestEarlyStopping plays rank 0 of the early-stopping protocol: a
// reporting trial sends each epoch but the last and waits for the decision.
func TestEarlyStopping(t *testing.T) {
	space := nasSpace(t)
	obj := surrogate.New(space, surrogate.Options{Seed: 1, Epochs: 4})
	a := space.Sample(rand.New(rand.NewPCG(3, 3)))
	full := obj.Train(context.Background(), cluster.Trial{ID: "x", Arch: a, Seed: 1})
	taskOf := func(id string, report bool) []byte {
		return encode(t, cluster.Message{Kind: cluster.KindTask, Trial: &cluster.Trial{ID: id, Arch: a, Seed: 1, Report: report}})
	}

	root, done := startWorker(t, obj, worker.ModeAsync, time.Second)
	// Stopped after epoch 2.
	root.Send(1, taskOf("s", true))
	for epoch := 1; epoch <= 2; epoch++ {
		m := recvMsg(t, root)
		if m.Kind != cluster.KindProgress || m.Progress.TrialID != "s" || m.Progress.Epoch != epoch || m.Progress.ValAcc != full.ValAcc[epoch-1] {
			t.Fatalf("epoch %d: %+v %+v, want progress of s with %v", epoch, m, m.Progress, full.ValAcc[epoch-1])
		}
		root.Send(1, decision(t, "s", epoch == 2))
	}
	if m := recvMsg(t, root); m.Kind != cluster.KindResult || m.Result.Status != cluster.StatusStopped || len(m.Result.ValAcc) != 2 {
		t.Fatalf("after stop: %+v %+v", m, m.Result)
	}
	// Never stopped: three reports (not the last epoch), then the full result.
	root.Send(1, taskOf("g", true))
	for epoch := 1; epoch <= 3; epoch++ {
		if m := recvMsg(t, root); m.Kind != cluster.KindProgress || m.Progress.Epoch != epoch {
			t.Fatalf("epoch %d: %+v", epoch, m)
		}
		root.Send(1, decision(t, "g", false))
	}
	if m := recvMsg(t, root); m.Kind != cluster.KindResult || m.Result.Status != "ok" || m.Result.Reward != full.Reward {
		t.Fatalf("full run: %+v %+v", m, m.Result)
	}
	// Not reporting: the result alone.
	root.Send(1, taskOf("q", false))
	if m := recvMsg(t, root); m.Kind != cluster.KindResult || m.Result.Status != "ok" {
		t.Fatalf("quiet trial: %+v", m)
	}
	// A decision for another trial breaks the protocol.
	root.Send(1, taskOf("b", true))
	recvMsg(t, root)
	root.Send(1, decision(t, "other", true))
	if err := wait(t, done); err == nil || !strings.Contains(err.Error(), "decision for trial other") {
		t.Fatalf("wrong decision: %v", err)
	}

	// A trainer that cannot stop early trains in full without reporting.
	plain := worker.TrainerFunc(func(ctx context.Context, tr cluster.Trial) cluster.Result { return obj.Train(ctx, tr) })
	root, done = startWorker(t, plain, worker.ModeAsync, time.Second)
	root.Send(1, taskOf("p", true))
	if m := recvMsg(t, root); m.Kind != cluster.KindResult || m.Result.Status != "ok" {
		t.Fatalf("plain trainer: %+v", m)
	}
	root.Send(1, encode(t, cluster.Message{Kind: cluster.KindStop}))
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}

	// Sync rounds never report, whatever the trial says.
	root, done = startWorker(t, obj, worker.ModeSync, time.Second)
	ctx := context.Background()
	root.Scatter(ctx, 0, [][]byte{nil, taskOf("r", true)})
	got, err := root.Gather(ctx, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := cluster.Decode(1, got[1]); err != nil || m.Kind != cluster.KindResult || len(m.Result.ValAcc) != 4 {
		t.Fatalf("sync round with report: %+v %v", m, err)
	}
	root.Scatter(ctx, 0, [][]byte{nil, encode(t, cluster.Message{Kind: cluster.KindStop})})
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
}

package controller_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rs/zerolog"

	"nasd/arch"
	"nasd/cluster"
	"nasd/controller"
	_ "nasd/controller/random"
	"nasd/journal"
	"nasd/surrogate"
	"nasd/worker"
)

// A whole search in one process: rank 0 runs the controller, ranks 1–3 are
// goroutine workers training the synthetic objective, in synchronous rounds.
func ExampleRun() {
	dir, _ := os.MkdirTemp("", "nasd-example-")
	defer os.RemoveAll(dir)

	space, _ := arch.New("nas", arch.Options{Layers: 3})
	obj := surrogate.New(space, surrogate.Options{Seed: 7})
	ends := cluster.NewInProcess(4)
	done := make(chan error, 3)
	for r := 1; r < 4; r++ {
		go func() { done <- worker.Run(context.Background(), ends[r], obj, "sync", 0, zerolog.Nop()) }()
	}

	run, _ := journal.Create(filepath.Join(dir, "run"))
	defer run.Close()
	log, _ := run.NewLog("example")
	defer log.Close()
	strategy, _ := controller.New("random", controller.Env{Space: space, Seed: 1})

	cfg := controller.Config{Mode: "sync", MaxTrials: 12, Seed: 1, RunID: "example"}
	sum, err := controller.Run(context.Background(), cfg, strategy, ends[0], run, log, false, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for range 3 {
		<-done // the workers return once rank 0 says stop
	}
	fmt.Printf("%d trials, %d ok; best %s with reward %.4f\n", sum.Trials, sum.OK, sum.Best.TrialID, sum.Best.Reward)
	// Output:
	// 12 trials, 12 ok; best t000004 with reward 0.2653
}

// ASHA as an early stopper (Li et al. 2020): with η = 3 and 10-epoch trials
// the rungs are at epochs 1, 3 and 9; at each, a trial goes on only if it is
// in the top third of the values recorded there so far: with n values, it
// stops when ⌈n/3⌉ or more are higher (t2: 1 of 2; t4: only 1 of 4).
func ExampleNewStopper() {
	s, err := controller.NewStopper("asha", controller.StopperEnv{Epochs: 10, Options: map[string]any{"eta": int64(3)}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range []struct {
		trial string
		acc   float64
	}{{"t1", 0.50}, {"t2", 0.40}, {"t3", 0.70}, {"t4", 0.60}} {
		fmt.Printf("%s at epoch 1 with %.2f: stop %v\n", r.trial, r.acc, s.Report(r.trial, 1, r.acc))
	}
	_, err = controller.NewStopper("median", controller.StopperEnv{Options: map[string]any{"min_trial": 3}})
	fmt.Println(err)
	// Output:
	// t1 at epoch 1 with 0.50: stop false
	// t2 at epoch 1 with 0.40: stop true
	// t3 at epoch 1 with 0.70: stop false
	// t4 at epoch 1 with 0.60: stop false
	// controller: stopper median: unknown option "min_trial" (known: grace_epochs, min_trials, statistic)
}

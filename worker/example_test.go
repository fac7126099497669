package worker_test

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"

	"nasd/arch"
	"nasd/cluster"
	"nasd/surrogate"
	"nasd/worker"
)

// A worker serves rank 0 until told to stop; here rank 0 is played by hand
// over an in-process transport, in async mode.
func ExampleRun() {
	space, _ := arch.New("nas", arch.Options{Layers: 2})
	obj := surrogate.New(space, surrogate.Options{Seed: 1})
	ends := cluster.NewInProcess(2)
	done := make(chan error)
	go func() { done <- worker.Run(context.Background(), ends[1], obj, worker.ModeAsync, 0, zerolog.Nop()) }()

	best, _ := obj.Optimum()
	task, _ := cluster.Encode(cluster.Message{Kind: cluster.KindTask, Trial: &cluster.Trial{ID: "t000001", Arch: best}})
	ends[0].Send(1, task)
	from, b, _ := ends[0].Recv(context.Background())
	m, _ := cluster.Decode(from, b)
	fmt.Printf("rank %d: trial %s %s, reward %.3f\n", from, m.Result.TrialID, m.Result.Status, m.Result.Reward)

	stop, _ := cluster.Encode(cluster.Message{Kind: cluster.KindStop})
	ends[0].Send(1, stop)
	fmt.Println("worker returned", <-done)
	// Output:
	// rank 1: trial t000001 ok, reward 0.857
	// worker returned <nil>
}

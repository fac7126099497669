// Package worker is the loop of ranks ≥ 1: receive a trial from rank 0,
// train the child network, send the result back, until rank 0 says stop.
//
// Run serves both of the controller's modes: "sync" (a Scatter of one task
// or idle message per worker each round, then a Gather of the results) and
// "async" (tasks and results point-to-point). A Trainer does the work:
// NewTrainer trains real networks with package train; package surrogate
// provides a synthetic objective with the same interface for tests and
// benchmarks.
//
// For early stopping, a trial with Trial.Report set and an EpochTrainer
// (both trainers above are) reports each epoch to rank 0 and waits for its
// decision; a stopped trial reports status "stopped" with the epochs run.
//
// A trial never takes the worker down: a timeout, a panic in the trainer or
// NaN in its numbers become a result with status "timeout", "failed" or
// "diverged" and a reason, and the worker goes on. Only a broken protocol
// (a message that does not decode, from the wrong rank or of the wrong kind),
// a transport error or the end of the job's context stop it with an error.
package worker

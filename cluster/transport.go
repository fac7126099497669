package cluster

import (
	"context"

	"nasd/mpi"
)

// Transport moves opaque messages between the ranks of one job. Rank 0 hosts
// the controller; ranks 1..Size()-1 are workers. It mirrors the MPI calls nasd
// needs, so the MPI implementation is a thin layer and the in-process one (ranks
// are goroutines) behaves the same way in tests.
//
// Point-to-point calls serve asynchronous dispatch; the collectives serve
// synchronous rounds and must be called by every rank in the same order, as
// in MPI. A Transport is used by one goroutine per rank.
type Transport interface {
	Rank() int
	Size() int
	// Send delivers b to rank to; it may block until the receiver takes it.
	Send(to int, b []byte) error
	// Recv returns the next message from any rank, waiting until one arrives
	// or ctx is done (then it returns ctx.Err()).
	Recv(ctx context.Context) (from int, b []byte, err error)
	// Bcast returns root's b on every rank.
	Bcast(ctx context.Context, root int, b []byte) ([]byte, error)
	// Scatter gives rank i the part parts[i] of root (parts is read on root only,
	// len(parts) == Size()).
	Scatter(ctx context.Context, root int, parts [][]byte) ([]byte, error)
	// Gather collects every rank's b on root (indexed by rank); other ranks get nil.
	Gather(ctx context.Context, root int, b []byte) ([][]byte, error)
	// AllreduceFloat32 replaces buf on every rank by the element-wise sum of
	// every rank's buf, added in rank order in float32: ((b_0 + b_1) + b_2) + ...
	// So the result is bit-identical on every rank, the same on every run
	// with the same rank count, and the same for both transports. Every rank
	// passes the same length (a mismatch is an error on every rank that
	// reaches the call). On error buf is unchanged.
	AllreduceFloat32(ctx context.Context, buf []float32) error
	// AllreduceOr replaces bits on every rank by the bitwise OR of every
	// rank's bits (a union of masks); like AllreduceFloat32 otherwise.
	AllreduceOr(ctx context.Context, bits []uint64) error
	// Abort ends the whole job with code (MPI_Abort): the way out when a rank
	// must stop while others are busy, e.g. after a checkpoint on SIGTERM.
	Abort(code int) error
	// Close releases the transport; for MPI it finalizes.
	Close() error
}

// LongWait marks ctx for waits expected to last long (a worker waiting for
// its next task, rank 0 for results): the MPI transport then sleep-polls
// after a 20 µs spin instead of spinning 1 ms, seeing a message at most 2 ms
// or 2 % of the time waited late (mpi.LongWait). The in-process transport
// blocks on channels and ignores it.
func LongWait(ctx context.Context) context.Context { return mpi.LongWait(ctx) }

// PromptLongWait is LongWait for rank 0's waits for results, which workers
// wait out: sleeps stay at most 2 ms (mpi.PromptLongWait).
func PromptLongWait(ctx context.Context) context.Context { return mpi.PromptLongWait(ctx) }

// Bells reports whether t's long point-to-point waits block on bells, a TCP
// side channel to rank 0, rather than sleep-poll (doc.go, Waiting).
func Bells(t Transport) bool {
	b, ok := t.(interface{ usesBells() bool })
	return ok && b.usesBells()
}

// Waiting says how t's ranks wait for messages, and on rank 0 why they poll
// when they do; "" for transports where the question does not arise (the
// in-process one blocks on channels).
func Waiting(t Transport) string {
	w, ok := t.(interface{ waiting() string })
	if !ok {
		return ""
	}
	return w.waiting()
}

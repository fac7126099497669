//go:build mpi

package cluster

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"nasd/mpi"
)

// tagMessage is the MPI tag of every point-to-point message of the transport.
const tagMessage = 1

// NewMPI initializes MPI (unless the program already did, with mpi.Init) and
// returns this process's end of the job: rank and size are MPI_COMM_WORLD's.
// It asks for MPI_THREAD_SERIALIZED, so the transport may be used from any
// one goroutine at a time, not only from the main one (package mpi
// serializes its calls). It fails when the process was started by the
// launcher of another MPI library (mpi.CheckLauncher). Close finalizes MPI;
// there is one such transport per process.
//
// Point-to-point messages use Send and RecvAny (any source, polled with
// back-off so a waiting rank does not burn a core; messages from one sender
// keep their order); Bcast, Scatter and Gather are MPI's non-blocking
// collectives with the sizes sent first; the allreduces check first that
// every rank passed the same length. A collective that ctx ends keeps its
// place in this rank's sequence and completes during the next collective, so
// ranks stay aligned when the late peer arrives; Close refuses to finalize
// while one is unfinished, and Abort is the way out. On root, Bcast returns b
// and Scatter parts[root], as the in-process transport does. A message to
// oneself is queued in this process (MPI may make a send to oneself wait for
// its receive, which the one goroutine using the transport cannot post).
func NewMPI() (Transport, error) {
	if !mpi.Initialized() {
		if _, err := mpi.Init(mpi.ThreadSerialized); err != nil {
			return nil, err
		}
	}
	if err := mpi.CheckLauncher(); err != nil {
		_ = mpi.Finalize()
		return nil, err
	}
	return &mpiTransport{rank: mpi.Rank(), size: mpi.Size()}, nil
}

type mpiTransport struct {
	rank, size int
	mu         sync.Mutex
	closed     bool
	self       [][]byte // messages to this rank from itself, in order
}

func (t *mpiTransport) Rank() int { return t.rank }
func (t *mpiTransport) Size() int { return t.size }

// check returns the error for a call after Close.
func (t *mpiTransport) check(op string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fmt.Errorf("cluster: rank %d: %s: %w", t.rank, op, ErrClosed)
	}
	return nil
}

func (t *mpiTransport) Send(to int, b []byte) error {
	if err := t.check("Send"); err != nil {
		return err
	}
	if to == t.rank {
		t.mu.Lock()
		t.self = append(t.self, bytes.Clone(b))
		t.mu.Unlock()
		return nil
	}
	return mpi.Send(b, to, tagMessage)
}

func (t *mpiTransport) Recv(ctx context.Context) (from int, b []byte, err error) {
	if err := t.check("Recv"); err != nil {
		return -1, nil, err
	}
	t.mu.Lock()
	if len(t.self) > 0 {
		b = t.self[0]
		t.self[0] = nil
		t.self = t.self[1:]
		t.mu.Unlock()
		if b == nil {
			b = []byte{}
		}
		return t.rank, b, nil
	}
	t.mu.Unlock()
	return mpi.RecvAny(ctx, tagMessage)
}

func (t *mpiTransport) Bcast(ctx context.Context, root int, b []byte) ([]byte, error) {
	if err := t.check("Bcast"); err != nil {
		return nil, err
	}
	return mpi.Bcast(ctx, root, b)
}

func (t *mpiTransport) Scatter(ctx context.Context, root int, parts [][]byte) ([]byte, error) {
	if err := t.check("Scatter"); err != nil {
		return nil, err
	}
	b, err := mpi.Scatterv(ctx, root, parts)
	if err == nil && t.rank == root {
		b = parts[root] // the in-process transport's contract; Scatterv checked len(parts)
	}
	return b, err
}

func (t *mpiTransport) Gather(ctx context.Context, root int, b []byte) ([][]byte, error) {
	if err := t.check("Gather"); err != nil {
		return nil, err
	}
	return mpi.Gatherv(ctx, root, b)
}

// AllreduceFloat32 is mpi.AllreduceFloat32Ordered: MPI moves the blocks and
// each rank adds one in rank order, so the sums match the in-process
// transport's bit for bit.
func (t *mpiTransport) AllreduceFloat32(ctx context.Context, buf []float32) error {
	if err := t.check("AllreduceFloat32"); err != nil {
		return err
	}
	return mpi.AllreduceFloat32Ordered(ctx, buf)
}

func (t *mpiTransport) AllreduceOr(ctx context.Context, bits []uint64) error {
	if err := t.check("AllreduceOr"); err != nil {
		return err
	}
	return mpi.AllreduceOrUint64(ctx, bits)
}

// Abort ends every rank of the job with code (MPI_Abort); it returns only if
// that failed.
func (t *mpiTransport) Abort(code int) error { return mpi.Abort(code) }

// Close finalizes MPI. Closing twice is not an error. When Finalize refuses
// (a collective abandoned by its context is unfinished), the transport stays
// open: Abort, or Close again once the peers have caught up.
func (t *mpiTransport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	if err := mpi.Finalize(); err != nil {
		return err
	}
	t.closed = true
	return nil
}

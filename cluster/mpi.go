//go:build mpi

package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
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
// keep their order; with bells, setupBells, each worker has a TCP connection
// to rank 0, every Send rings the receiver's, and a long wait blocks until
// its bell rings); Bcast, Scatter and Gather are MPI's non-blocking
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
	t := &mpiTransport{rank: mpi.Rank(), size: mpi.Size()}
	var err error
	if t.bells, t.noBells, err = setupBells(t.rank, t.size); err != nil {
		_ = mpi.Finalize()
		return nil, err
	}
	return t, nil
}

// setupBells connects every worker's bell to rank 0 (bell.go), all or none:
// rank 0 offers its addresses, each worker dials and says whether it got
// through, and rank 0 tells all whether every worker is connected. Without
// them (NASD_BELLS=off on rank 0, no route, a firewall, too few file
// descriptors) waits sleep-poll as before, and on rank 0 why says why. Only
// MPI failing is an error.
func setupBells(rank, size int) (b *bells, why string, err error) {
	if size < 2 {
		return nil, "", nil
	}
	ctx := context.Background()
	var offer []byte
	if rank == 0 {
		if os.Getenv("NASD_BELLS") == "off" {
			why = "NASD_BELLS=off"
		} else if b, offer, err = listenBells(size); err != nil {
			why = "rank 0 cannot take connections: " + err.Error()
		}
	}
	if offer, err = mpi.Bcast(ctx, 0, offer); err != nil || len(offer) == 0 {
		b.close()
		return nil, why, err
	}
	ok := []byte{0}
	if rank != 0 {
		if b, err = dialBells(offer, rank); err == nil {
			ok[0] = 1
		}
	}
	oks, err := mpi.Gatherv(ctx, 0, ok)
	if err != nil {
		b.close()
		return nil, why, err
	}
	verdict := []byte{0}
	if rank == 0 {
		n := 0
		for _, o := range oks[1:] {
			n += int(o[0])
		}
		switch {
		case n < size-1:
			why = fmt.Sprintf("%d of %d workers could not connect to rank 0 over TCP", size-1-n, size-1)
		case !b.await(n, bellAwait):
			why = fmt.Sprintf("rank 0 registered %d of %d workers' connections", b.live.Load(), size-1)
		default:
			verdict[0] = 1
		}
	}
	if verdict, err = mpi.Bcast(ctx, 0, verdict); err != nil || verdict[0] != 1 {
		b.close()
		return nil, why, err
	}
	return b, "", nil
}

type mpiTransport struct {
	rank, size int
	bells      *bells // nil when waits sleep-poll
	noBells    string // why not, on rank 0
	mu         sync.Mutex
	closed     bool
	self       [][]byte // messages to this rank from itself, in order
}

func (t *mpiTransport) Rank() int { return t.rank }
func (t *mpiTransport) Size() int { return t.size }

func (t *mpiTransport) usesBells() bool { return t.bells.complete() }

func (t *mpiTransport) waiting() string {
	switch {
	case t.size < 2:
		return ""
	case t.bells.complete():
		return "blocking on bells (a TCP connection per worker to rank 0)"
	case t.noBells != "":
		return "polling MPI with back-off: " + t.noBells
	}
	return "polling MPI with back-off: a bell connection broke"
}

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
	if len(b) > mpi.DetachMax {
		// Send returns once the receiver has taken it: wake it to take it.
		t.bells.ringPeer(to, ringMessage)
	}
	if err := mpi.Send(b, to, tagMessage); err != nil {
		return err
	}
	t.bells.ringPeer(to, ringMessage)
	return nil
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
	if t.bells.complete() {
		ctx = mpi.WakeOn(ctx, t.bells.ring, bellFallback)
	}
	return mpi.RecvAny(ctx, tagMessage)
}

func (t *mpiTransport) Bcast(ctx context.Context, root int, b []byte) ([]byte, error) {
	if err := t.check("Bcast"); err != nil {
		return nil, err
	}
	t.gateFromRoot(ctx, root)
	return mpi.Bcast(ctx, root, b)
}

func (t *mpiTransport) Scatter(ctx context.Context, root int, parts [][]byte) ([]byte, error) {
	if err := t.check("Scatter"); err != nil {
		return nil, err
	}
	t.gateFromRoot(ctx, root)
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
	t.gateToRoot(ctx, root)
	return mpi.Gatherv(ctx, root, b)
}

// gateFromRoot: before a Bcast or Scatter from rank 0, rank 0 rings every
// worker's gate and a worker blocks until its gate rings (then the
// collective completes in a few polls instead of being polled while rank 0
// is busy). Only the ring is skipped or the wait cut short when bells are
// off or broken, never the collective.
func (t *mpiTransport) gateFromRoot(ctx context.Context, root int) {
	switch {
	case t.bells == nil || root != 0:
	case t.rank == 0:
		for w := 1; w < t.size; w++ {
			t.bells.ringPeer(w, ringGate)
		}
	default:
		t.bells.awaitGates(ctx, 1)
	}
}

// gateToRoot: before a Gather to rank 0, a worker rings rank 0's gate and
// rank 0 blocks until every worker has (the workers finish their trials
// meanwhile).
func (t *mpiTransport) gateToRoot(ctx context.Context, root int) {
	switch {
	case t.bells == nil || root != 0:
	case t.rank == 0:
		t.bells.awaitGates(ctx, t.size-1)
	default:
		t.bells.ringPeer(0, ringGate)
	}
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
	t.bells.close()
	t.closed = true
	return nil
}

package mpi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"
)

// ThreadLevel is an MPI thread-support level (MPI_THREAD_*).
type ThreadLevel int

// Thread levels, in increasing order of support.
const (
	ThreadSingle     ThreadLevel = iota // one thread (for Go, like ThreadFunneled)
	ThreadFunneled                      // only the thread that called Init makes MPI calls
	ThreadSerialized                    // any thread, one at a time
	ThreadMultiple                      // any thread, concurrently
)

func (l ThreadLevel) String() string {
	switch l {
	case ThreadSingle:
		return "SINGLE"
	case ThreadFunneled:
		return "FUNNELED"
	case ThreadSerialized:
		return "SERIALIZED"
	case ThreadMultiple:
		return "MULTIPLE"
	}
	return "ThreadLevel(" + strconv.Itoa(int(l)) + ")"
}

// Wildcards for Improbe and RecvAny (mapped to MPI_ANY_SOURCE, MPI_ANY_TAG,
// whose values differ between libraries).
const (
	AnySource = -1
	AnyTag    = -1
)

// MaxCount is the largest element count one MPI call accepts (a C int).
const MaxCount = math.MaxInt32

// Status describes a matched message.
type Status struct {
	Source int // sender's rank
	Tag    int
	Count  int // bytes
}

// Message is a message matched by Improbe: it has left MPI's matching queue,
// so no other receive can take it. Call Recv exactly once to receive it.
type Message struct {
	m *matched
}

// Errors.
var (
	// ErrNotBuilt is returned by every call of a binary built without the
	// mpi build tag.
	ErrNotBuilt = errors.New("mpi: this binary was built without MPI support; " +
		"rebuild with `make build-mpi` or `go build -tags mpi` (Open MPI; `-tags mpi,mpich` for MPICH, " +
		"`CC=mpicc go build -tags mpi,mpicc` for an MPI wrapper compiler)")
	// ErrNotInitialized is wrapped by calls made before Init or after Finalize.
	ErrNotInitialized = errors.New("MPI is not initialized (call mpi.Init first) or already finalized")
	// ErrCountTooLarge is wrapped by calls given more than MaxCount elements.
	ErrCountTooLarge = errors.New("more elements than MPI's 32-bit count allows")
)

// Error is an error reported by the MPI library.
type Error struct {
	Op    string // the call and its peer, e.g. "Send to rank 7"
	Code  int    // the library's error code
	Class string // the standard error class, e.g. "MPI_ERR_TRUNCATE"
	Text  string // the library's error string
}

func (e *Error) Error() string {
	return "mpi: " + e.Op + ": " + e.Text
}

func countError(op string, n int, unit string) error {
	return fmt.Errorf("mpi: %s: %d %s: %w (%d)", op, n, unit, ErrCountTooLarge, MaxCount)
}

// LauncherSize returns the number of ranks an MPI launcher started this
// process among, and the environment variable that says so
// (OMPI_COMM_WORLD_SIZE from Open MPI's mpirun, PMI_SIZE from MPICH's Hydra
// and Slurm's srun); 0 and "" when no launcher is detected.
func LauncherSize() (n int, env string) {
	for _, v := range []string{"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"} {
		if s := os.Getenv(v); s != "" {
			if k, err := strconv.Atoi(s); err == nil && k > 0 {
				return k, v
			}
		}
	}
	return 0, ""
}

type longWaitKey struct{}

// LongWait returns ctx marked for waits expected to be long, such as a
// worker's wait for its next task: RecvAny and the collectives under it spin
// only 20 µs, then sleep from 50 µs doubling to 2 ms (RecvAny: to 2 % of
// the time waited after 100 ms, at most 20 ms), instead of spinning for
// 1 ms, so a waiting rank costs a few percent of a core or less and a
// message is seen at most 2 ms or 2 % of the wait late. ctx's end ends the
// wait within a sleep. Leave it off where round-trip latency matters (a
// reply, a collective every rank enters at once). A context value rather
// than a parameter, so it passes through cluster.Transport unchanged.
func LongWait(ctx context.Context) context.Context {
	return context.WithValue(ctx, longWaitKey{}, &longPace)
}

// PromptLongWait is LongWait whose sleeps stay at most 2 ms however long the
// wait, for a rank whose lateness others wait out (rank 0 for results: each
// worker whose result came during a sleep is idle until rank 0 wakes).
func PromptLongWait(ctx context.Context) context.Context {
	return context.WithValue(ctx, longWaitKey{}, &steadyPace)
}

type wakeKey struct{}

// wakeup is the bell a long point-to-point wait blocks on (WakeOn).
type wakeup struct {
	ring    <-chan struct{}
	longest time.Duration
}

// WakeOn returns ctx whose point-to-point long waits (RecvAny under LongWait
// or PromptLongWait) block on ring instead of sleep-polling: after a poll
// finds nothing, the wait blocks until ring delivers, longest passes (a
// ring lost or never sent costs that much lateness), or ctx ends. After a
// ring it polls at the pace's sleeps for 2 ms, since the message may land
// just after it, then blocks again. Use it where every sender rings after
// each message it sends to this rank (package cluster's bells, a TCP side
// channel): a waiting rank then wakes once per message rather than every
// few milliseconds. Collectives ignore it.
func WakeOn(ctx context.Context, ring <-chan struct{}, longest time.Duration) context.Context {
	return context.WithValue(ctx, wakeKey{}, &wakeup{ring: ring, longest: longest})
}

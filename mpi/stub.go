//go:build !mpi

package mpi

import (
	"context"
	"fmt"
	"time"
)

// Built reports whether this binary was built with MPI (the mpi build tag).
const Built = false

var start = time.Now()

type matched struct{}

// Init returns ErrNotBuilt: this binary has no MPI.
func Init(ThreadLevel) (ThreadLevel, error) { return ThreadSingle, ErrNotBuilt }

// Finalize returns ErrNotBuilt.
func Finalize() error { return ErrNotBuilt }

// Initialized reports false.
func Initialized() bool { return false }

// Rank returns -1: there is no MPI job.
func Rank() int { return -1 }

// Size returns 0: there is no MPI job.
func Size() int { return 0 }

// TagUB returns 0.
func TagUB() int { return 0 }

// Wtime returns seconds since the program started.
func Wtime() float64 { return time.Since(start).Seconds() }

// LibraryVersion says that there is no MPI library.
func LibraryVersion() string { return "none (built without the mpi tag)" }

// Abort returns ErrNotBuilt.
func Abort(int) error { return ErrNotBuilt }

// CheckLauncher returns an error when an MPI launcher started this process as
// one of several ranks: without MPI every process would run alone.
func CheckLauncher() error {
	if n, env := LauncherSize(); n > 1 {
		return fmt.Errorf("mpi: an MPI launcher started this program as one of %d ranks (%s=%d), "+
			"but without MPI every process would run alone: %w", n, env, n, ErrNotBuilt)
	}
	return nil
}

// Barrier returns ErrNotBuilt.
func Barrier() error { return ErrNotBuilt }

// BarrierContext returns ErrNotBuilt.
func BarrierContext(context.Context) error { return ErrNotBuilt }

// Send returns ErrNotBuilt.
func Send([]byte, int, int) error { return ErrNotBuilt }

// Improbe returns ErrNotBuilt.
func Improbe(int, int) (Message, Status, bool, error) { return Message{}, Status{}, false, ErrNotBuilt }

// Status returns the zero Status.
func (Message) Status() Status { return Status{} }

// Recv returns ErrNotBuilt.
func (Message) Recv() ([]byte, error) { return nil, ErrNotBuilt }

// RecvAny returns ErrNotBuilt.
func RecvAny(context.Context, int) (int, []byte, error) { return -1, nil, ErrNotBuilt }

// Bcast returns ErrNotBuilt.
func Bcast(context.Context, int, []byte) ([]byte, error) { return nil, ErrNotBuilt }

// Scatterv returns ErrNotBuilt.
func Scatterv(context.Context, int, [][]byte) ([]byte, error) { return nil, ErrNotBuilt }

// Gatherv returns ErrNotBuilt.
func Gatherv(context.Context, int, []byte) ([][]byte, error) { return nil, ErrNotBuilt }

// AllreduceFloat32 returns ErrNotBuilt.
func AllreduceFloat32(context.Context, []float32) error { return ErrNotBuilt }

// AllreduceFloat64 returns ErrNotBuilt.
func AllreduceFloat64(context.Context, []float64) error { return ErrNotBuilt }

// AllreduceFloat32Ordered returns ErrNotBuilt.
func AllreduceFloat32Ordered(context.Context, []float32) error { return ErrNotBuilt }

// AllreduceOrUint64 returns ErrNotBuilt.
func AllreduceOrUint64(context.Context, []uint64) error { return ErrNotBuilt }

//go:build !mpi

package cluster

import "nasd/mpi"

// NewMPI returns an error wrapping mpi.ErrNotBuilt, which says how to build
// with MPI: this binary was built without the mpi build tag.
func NewMPI() (Transport, error) { return nil, mpi.ErrNotBuilt }

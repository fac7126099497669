//go:build mpi && !mpich && !mpicc

// Open MPI, the default: flags from pkg-config's ompi.pc (Debian: libopenmpi-dev).

package mpi

// #cgo pkg-config: ompi
import "C"

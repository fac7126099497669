//go:build mpi && mpich && !mpicc

// MPICH: go build -tags mpi,mpich (flags from pkg-config's mpich.pc; Debian: libmpich-dev).

package mpi

// #cgo pkg-config: mpich
import "C"

//go:build mpi && mpicc

// Any MPI through its wrapper compiler, which supplies the flags itself:
// CC=mpicc go build -tags mpi,mpicc (Cray: CC=cc).

package mpi

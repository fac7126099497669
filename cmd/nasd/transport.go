package main

import (
	"os"

	"nasd/cluster"
	"nasd/mpi"
)

// startTransport starts MPI when an MPI launcher (mpirun, mpiexec, srun
// --mpi=pmix) started this process, and returns nil otherwise: the caller then
// runs in-process workers. NewMPI fails loudly when the binary was built
// against another MPI than the launcher's, or without MPI at all.
func startTransport() (cluster.Transport, error) {
	if n, _ := mpi.LauncherSize(); n == 0 && os.Getenv("PMIX_RANK") == "" {
		return nil, nil
	}
	return cluster.NewMPI()
}

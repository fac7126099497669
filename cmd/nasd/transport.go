package main

import (
	"fmt"
	"os"
	"strconv"

	"nasd/cluster"
)

// launcherSize is the world size an MPI launcher announced in the
// environment (OpenMPI, MPICH/Hydra and PMIx/Slurm), or 0 when none did.
func launcherSize() int {
	for _, key := range []string{"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"} {
		if n, err := strconv.Atoi(os.Getenv(key)); err == nil && n > 0 {
			return n
		}
	}
	if os.Getenv("PMIX_RANK") != "" {
		return 1 // a PMIx launch that does not say its size: let MPI tell
	}
	return 0
}

// startTransport starts MPI when an MPI launcher started this process, and
// returns nil otherwise (the caller then runs in-process workers).
func startTransport() (cluster.Transport, error) {
	want := launcherSize()
	if want == 0 {
		return nil, nil
	}
	tr, err := cluster.NewMPI()
	if err != nil {
		return nil, err
	}
	if tr.Size() == 1 && want > 1 {
		// Built against one MPI, launched by another: each rank would run alone.
		tr.Close()
		return nil, fmt.Errorf("launched as one of %d ranks, but MPI reports a world of 1: this binary was built "+
			"against a different MPI than the launcher's (use the mpirun of the MPI it was built with)", want)
	}
	return tr, nil
}

package cluster

import "nasd/mpi"

// CheckMPILaunch returns a loud error when an MPI launcher (mpirun, mpiexec,
// srun) started this process as one of several ranks but the process cannot
// join them: it was built without MPI, or against another MPI library than
// the launcher's, so every process would run as its own one-rank job (NOTES
// pitfall 7). With MPI, call it after NewMPI (which runs it too); without, at
// any time. It returns nil when no launcher or a matching one started the
// process.
func CheckMPILaunch() error { return mpi.CheckLauncher() }

// MPIBuilt reports whether this binary was built with MPI (the mpi build tag).
const MPIBuilt = mpi.Built

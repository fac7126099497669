// Package jobs will render batch scripts (Slurm, PBS, LSF) that launch a
// search under mpirun or srun. Nothing here yet.
package jobs

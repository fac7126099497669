// Package cluster moves trials and results between rank 0 and the workers:
// the Transport interface (MPI or in-process), and the versioned wire
// encoding of its messages.
package cluster

//go:build !mpi

package cluster_test

import (
	"errors"
	"strings"
	"testing"

	"nasd/cluster"
	"nasd/mpi"
)

func TestMPINotBuilt(t *testing.T) {
	if cluster.MPIBuilt {
		t.Fatal("MPIBuilt is true without the mpi build tag")
	}
	tr, err := cluster.NewMPI()
	if tr != nil || !errors.Is(err, mpi.ErrNotBuilt) || !strings.Contains(err.Error(), "-tags mpi") {
		t.Fatalf("NewMPI without MPI: %v, %v", tr, err)
	}
	t.Setenv("OMPI_COMM_WORLD_SIZE", "")
	t.Setenv("PMI_SIZE", "")
	if err := cluster.CheckMPILaunch(); err != nil {
		t.Errorf("no launcher: %v", err)
	}
	t.Setenv("PMI_SIZE", "4")
	if err := cluster.CheckMPILaunch(); !errors.Is(err, mpi.ErrNotBuilt) || !strings.Contains(err.Error(), "one of 4 ranks") {
		t.Errorf("launched as 4 ranks without MPI: %v", err)
	}
}

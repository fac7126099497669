//go:build !mpi

package mpi

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestNotBuilt: without the mpi tag every call fails with ErrNotBuilt, whose
// message says how to build with MPI.
func TestNotBuilt(t *testing.T) {
	if Built {
		t.Fatal("Built is true without the mpi build tag")
	}
	for _, want := range []string{"make build-mpi", "go build -tags mpi", "mpich"} {
		if !strings.Contains(ErrNotBuilt.Error(), want) {
			t.Errorf("ErrNotBuilt does not mention %q: %v", want, ErrNotBuilt)
		}
	}
	ctx := context.Background()
	_, errInit := Init(ThreadFunneled)
	_, _, _, errProbe := Improbe(AnySource, AnyTag)
	_, errRecv := Message{}.Recv()
	_, _, errRecvAny := RecvAny(ctx, 1)
	_, errBcast := Bcast(ctx, 0, nil)
	_, errScatter := Scatterv(ctx, 0, nil)
	_, errGather := Gatherv(ctx, 0, nil)
	for name, err := range map[string]error{
		"Init": errInit, "Finalize": Finalize(), "Abort": Abort(1), "Barrier": Barrier(),
		"BarrierContext": BarrierContext(ctx), "Send": Send(nil, 0, 1), "Improbe": errProbe,
		"Recv": errRecv, "RecvAny": errRecvAny, "Bcast": errBcast, "Scatterv": errScatter, "Gatherv": errGather,
		"AllreduceFloat32": AllreduceFloat32(ctx, []float32{1}), "AllreduceFloat64": AllreduceFloat64(ctx, []float64{1}),
	} {
		if !errors.Is(err, ErrNotBuilt) {
			t.Errorf("%s: %v, want ErrNotBuilt", name, err)
		}
	}
	if Initialized() || Rank() != -1 || Size() != 0 || TagUB() != 0 {
		t.Errorf("Initialized %v, Rank %d, Size %d, TagUB %d", Initialized(), Rank(), Size(), TagUB())
	}
	if w := Wtime(); w < 0 {
		t.Errorf("Wtime() = %v", w)
	}
}

func TestCheckLauncherNotBuilt(t *testing.T) {
	t.Setenv("OMPI_COMM_WORLD_SIZE", "")
	t.Setenv("PMI_SIZE", "1")
	if err := CheckLauncher(); err != nil {
		t.Errorf("one rank: %v", err)
	}
	t.Setenv("OMPI_COMM_WORLD_SIZE", "8")
	err := CheckLauncher()
	if !errors.Is(err, ErrNotBuilt) || !strings.Contains(err.Error(), "one of 8 ranks (OMPI_COMM_WORLD_SIZE=8)") {
		t.Errorf("8 ranks: %v", err)
	}
}

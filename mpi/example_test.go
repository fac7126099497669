package mpi_test

import (
	"context"
	"fmt"
	"log"

	"nasd/mpi"
)

// A rank-0 loop that takes results from any worker as they come. Built
// without the mpi tag, Init returns mpi.ErrNotBuilt.
func Example() {
	if _, err := mpi.Init(mpi.ThreadFunneled); err != nil {
		log.Fatal(err) // e.g. "mpi: this binary was built without MPI support; rebuild with ..."
	}
	defer mpi.Finalize()
	if err := mpi.CheckLauncher(); err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	const tag = 1
	if mpi.Rank() != 0 {
		_ = mpi.Send([]byte(fmt.Sprintf("result of rank %d", mpi.Rank())), 0, tag)
		return
	}
	for i := 1; i < mpi.Size(); i++ {
		from, b, err := mpi.RecvAny(ctx, tag)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%d: %s\n", from, b)
	}
	// Every rank's reward on rank 0, in rank order.
	rewards, err := mpi.Gatherv(ctx, 0, []byte("0.93"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(rewards), "rewards")
}

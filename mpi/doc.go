// Package mpi is nasd's cgo binding to an MPI library: the few calls the
// distributed runtime needs, with every return code checked and turned into a
// Go error that names the call and the peer, e.g.
//
//	mpi: Send to rank 7: MPI_ERR_TRUNCATE: message truncated
//
// # Building
//
// The binding is compiled only with the build tag mpi. Without it, a pure-Go
// stand-in provides the same API and every call returns ErrNotBuilt, whose
// message says how to build with MPI. Compiler and linker flags come from
// pkg-config, or from the MPI wrapper compiler:
//
//	go build -tags mpi ./...                    # Open MPI (pkg-config ompi; Debian: libopenmpi-dev pkgconf), the default
//	go build -tags mpi,mpich ./...              # MPICH (pkg-config mpich; Debian: libmpich-dev)
//	CC=mpicc go build -tags mpi,mpicc ./...     # any MPI through its wrapper compiler, no cgo flags (Cray: CC=cc)
//	CC=mpicc.mpich go build -tags mpi,mpicc ./...
//
// The C shim (shim.h) keeps every MPI handle type and sentinel out of Go,
// since they differ between the libraries (Open MPI's handles are pointers,
// MPICH's ints), so one source builds against both. A binary runs only under
// the launcher of the library it was linked with (mpirun.openmpi, or
// mpirun.mpich); under the other one every process is a one-rank job, which
// CheckLauncher detects. Without a launcher the binary runs as a one-rank
// singleton with either library.
//
// scripts/mpi-test.sh builds the tests and runs them under mpirun with 2, 4
// and 8 ranks, and against MPICH when installed.
//
// # Threads
//
// The package's init locks the main goroutine to the main OS thread, so a
// program that calls Init from main with ThreadFunneled may make MPI calls
// from the main goroutine. With ThreadFunneled (or ThreadSingle) every call
// must come from the goroutine that called Init; a call from elsewhere returns
// an error instead of corrupting MPI's state. With ThreadSerialized or
// ThreadMultiple any goroutine may call; a package mutex serializes the calls
// (each is held only for the duration of one MPI call, never across a wait).
// Tests, whose functions run on their own goroutines, use ThreadSerialized.
//
// # Waiting
//
// MPI's blocking calls busy-poll a core. Here nothing blocks inside MPI for
// long: RecvAny and the collectives post non-blocking operations
// (Improbe, Ibcast, Iscatterv, Igatherv, Iallgather, Ialltoall, Iallreduce,
// Ibarrier) and poll them: back to back for up to 1 ms (yielding the core to
// other processes after 50 µs), then sleeping from 10 µs doubling to 1 ms. A
// reply that comes within a millisecond is seen at once, and a context ends
// a wait within a millisecond. A wait whose context is marked with LongWait
// (a worker waiting for its next task) spins only 20 µs, then sleeps from
// 50 µs doubling to 2 ms, and for RecvAny after 100 ms to 2 % of the time
// waited (at most 20 ms): a 600 ms wait costs 5-17 ms of CPU here, where a
// wake costs 40-150 µs, and a message is seen at most 2 ms or 2 % of the
// wait late. PromptLongWait (rank 0 waiting for results, which workers wait
// out) and collectives under either keep the sleeps at 2 ms at most
// (pace.go has the schedules). Sleep-polling still wakes a rank hundreds of
// times a second; WakeOn lets a point-to-point long wait block on a channel
// instead (package cluster's bells: a TCP byte from each sender), so a
// waiting rank wakes once per message.
//
// Send copies a message of up to 64 KiB to C memory, posts MPI_Isend and
// returns: Open MPI's shared-memory transport completes such a send only
// once the receiver polls, which had rank 0 spin up to 1 ms per task sent
// to a sleeping worker. Later calls complete it; Finalize waits for it (up
// to a minute); an error of one is returned by the next Send. A larger
// message is sent from its buffer, pinned with runtime.Pinner, and Send
// polls until it may be reused. Buffers of collectives live in C memory
// until the call completes. A matched message is received with a blocking
// MPI_Mrecv, which returns as soon as its bytes have arrived.
//
// A send above 64 KiB may wait for its receive, so keep a strict
// request/reply protocol and never send such a message to oneself from the
// goroutine that will receive.
//
// # Collectives and cancellation
//
// Bcast, Scatterv and Gatherv move byte slices of any size up to 2^31-1 bytes
// in total: the sizes travel first, so a receiver needs no prior knowledge.
// AllreduceFloat32Ordered sums in rank order whatever algorithm MPI picks
// (MPI only moves blocks; each rank adds one), so its result is bit-identical
// on every rank and from run to run; AllreduceOrUint64 is MPI_BOR. Both
// check first that every rank passed the same length.
// Every rank must call the collectives in the same order, as in MPI. When a
// context ends a collective, the call returns the context's error but the
// operation stays queued on this rank: the next collective first completes
// it, discarding its result (Send and Improbe advance it too), so the ranks
// stay in step once the slow peer arrives. Likewise a Send whose polling
// fails while MPI still holds its request returns the error but stays
// posted, its buffer pinned, until MPI completes it during later calls.
// Finalize refuses to finalize while such an operation is unfinished; Abort
// is the way out then.
//
// # Errors
//
// A failed MPI_Is_thread_main is an error, not taken for a call from another
// thread. A matched message whose size cannot be read is received and
// dropped, and Improbe's error says so. An Init that fails after
// MPI_Init_thread leaves MPI initialized but unusable: a second Init returns
// an error instead of initializing MPI twice; Abort and Finalize still work.
// The tests provoke these failures through a fault hook in the C shim.
//
// Message counts are 32-bit in MPI; longer slices are rejected with an error
// wrapping ErrCountTooLarge.
package mpi

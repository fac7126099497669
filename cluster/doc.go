// Package cluster moves trials and results between rank 0 and the workers:
// the Transport interface (MPI or in-process), and the versioned wire
// encoding of its messages.
//
// # Messages
//
// A [Message] is one of seven kinds: [KindSetup] (the run's resolved config,
// opaque here), [KindTask] (a [Trial]), [KindIdle] (no trial this round),
// [KindResult] (a [Result]), [KindStop], and for early stopping
// [KindProgress] (a [Progress]: one epoch's validation accuracy of a trial
// with Trial.Report set, worker → rank 0) and [KindDecision] (a [Decision]:
// rank 0's answer, stop or go on; the worker waits for it before the next
// epoch). [Encode] turns one into bytes for
// any Transport and [Decode] back; Decode never panics, and every error it
// returns names the sending rank and what is wrong:
//
//	cluster: message from rank 3: wire version 9, this build speaks 1
//	cluster: message from rank 5: result message: payload checksum 1f2e3d4c, header says 9a8b7c6d (corrupted in transit)
//
// Encode refuses what Decode would: a message whose fields do not fit its
// kind, a trial without an ID or a valid architecture, a result without a
// trial ID or status, and NaN or ±Inf in a result (JSON cannot carry them and
// the event log must not hold them: a diverged trial says so in its status).
//
// [Trial], [Result] and the Status constants are aliases of the types in
// nasd/controller/strategy, the strategy API (which imports only arch): the
// record a strategy proposes or observes is the record on the wire, and its
// struct tags, defined there, are the wire schema.
//
// # Wire format (WireVersion 1)
//
// A 20-byte big-endian header, then the payload:
//
//	offset size field
//	 0     4    magic "NASD"
//	 4     1    wire version
//	 5     1    kind (1 setup, 2 task, 3 idle, 4 result, 5 stop, 6 progress, 7 decision)
//	 6     1    flags: bit 0 = the payload is one zstd frame; other bits 0
//	 7     1    reserved, 0
//	 8     4    payload length on the wire
//	12     4    payload length decoded (the same unless zstd)
//	16     4    CRC-32C (Castagnoli) of the payload as on the wire
//
// The payload is the setup's bytes as given, the trial, result, progress or
// decision as JSON (the struct tags of [Trial], [Result], [Progress] and
// [Decision] are the schema; unknown fields are refused; a task's
// architecture is in its compact form, without "layers"), or nothing. Kinds
// 6 and 7 and the trial's optional "report" field were added to version 1
// without a bump: a run without early stopping sends exactly what earlier
// builds did. Payloads over [CompressAbove] (4 KiB) are zstd
// frames when that makes them smaller. No payload may exceed [MaxPayload]
// (64 MiB) decoded; Decode checks that, the lengths and the checksum before
// it decompresses or parses anything. The magic and the version byte keep
// their offsets in every version, so a build mismatch is always reported as
// one; testdata/result.golden pins one message byte for byte.
//
// # In-process transport
//
// [NewInProcess] runs a job's ranks as goroutines of one process, with the
// semantics of the MPI transport: per-rank mailboxes for point-to-point
// messages (any source, arrival order), collectives matched by their order
// of call, cancellation by context, [ErrAborted] after Abort and [ErrClosed]
// after Close. Every message is copied, so ranks never share buffers. Tests
// and single-process runs use it; the MPI transport lives in mpi.go (build
// tag mpi).
//
// # Waiting: bells
//
// MPI has no wait that does not poll, and a rank that sleep-polls wakes
// hundreds of times a second: rank 0 spent 1-30 ms of CPU per 1 s trial so
// (docs/performance.md). So beside MPI, [NewMPI] connects each worker to
// rank 0 over TCP (bell.go; a random token, sent to the workers over MPI,
// admits them), all or none: every Send then writes one byte on the
// connection to its receiver (before and after a send above
// [mpi.DetachMax], which waits for its receiver), and a Recv under
// [LongWait] or [PromptLongWait] blocks until that byte comes
// ([mpi.WakeOn]). A waiting rank then wakes once per message. Where the
// workers cannot reach rank 0 (no route, a firewall) or NASD_BELLS=off is
// set on rank 0, or once a connection breaks, waits sleep-poll as before;
// a message whose ring never comes is still seen within a second.
// Collectives (synchronous rounds) always sleep-poll.
//
// # Collectives for ENAS
//
// Every rank of ENAS holds a replica of the shared weights; after each step
// the gradients are summed with [Transport.AllreduceFloat32], which adds in
// rank order, ((g_0 + g_1) + g_2) + ..., on both transports: the replicas
// stay bit-identical, and a run repeats exactly with the same rank count.
// [AllreduceBuckets] sends only the [Buckets] (the parameters of one
// (layer, op) pair each) that some rank used this step: an
// [Transport.AllreduceOr] of the used masks, then one AllreduceFloat32 of
// the union's buckets. docs/performance.md has the cost model.
package cluster

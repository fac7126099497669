//go:build mpi

package cluster_test

// TestMPITransport runs as a one-rank singleton (go test -tags mpi ./cluster)
// and under a launcher (scripts/mpi-test.sh):
//
//	go test -c -tags mpi -o cluster.test ./cluster
//	mpirun -n 4 --bind-to none ./cluster.test -test.run '^TestMPI'
//
// MPI can be initialized once per process, so one test function holds every
// MPI check and ends with Close.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"nasd/cluster"
	"nasd/mpi"
)

func TestMPITransport(t *testing.T) {
	tr, err := cluster.NewMPI()
	if err != nil {
		t.Fatal(err)
	}
	rank, size := tr.Rank(), tr.Size()
	if rank != mpi.Rank() || size != mpi.Size() || size < 1 {
		t.Fatalf("transport says rank %d of %d, MPI %d of %d", rank, size, mpi.Rank(), mpi.Size())
	}
	if err := cluster.CheckMPILaunch(); err != nil {
		t.Error(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Synchronous round: setup by Bcast, a part per rank by Scatter, results
	// by Gather, each an encoded cluster.Message.
	t.Run("Round", func(t *testing.T) {
		setup := bytes.Repeat([]byte("[train]\nepochs = 3\n"), 5000) // ~100 KB: zstd
		var in []byte
		if rank == 0 {
			if in, err = cluster.Encode(cluster.Message{Kind: cluster.KindSetup, Setup: setup}); err != nil {
				t.Fatal(err)
			}
		}
		b, err := tr.Bcast(ctx, 0, in)
		if err != nil {
			t.Fatal(err)
		}
		m, err := cluster.Decode(0, b)
		if err != nil || m.Kind != cluster.KindSetup || !bytes.Equal(m.Setup, setup) {
			t.Fatalf("setup: kind %v, %d bytes, %v", m.Kind, len(m.Setup), err)
		}
		var parts [][]byte
		if rank == 0 {
			for i := 0; i < size; i++ {
				k := cluster.KindIdle
				if i%2 == 1 {
					k = cluster.KindStop
				}
				p, err := cluster.Encode(cluster.Message{Kind: k})
				if err != nil {
					t.Fatal(err)
				}
				parts = append(parts, p)
			}
		}
		part, err := tr.Scatter(ctx, 0, parts)
		if err != nil {
			t.Fatal(err)
		}
		if m, err := cluster.Decode(0, part); err != nil || (m.Kind == cluster.KindStop) != (rank%2 == 1) {
			t.Errorf("rank %d's part: %v, %v", rank, m.Kind, err)
		}
		res, err := cluster.Encode(cluster.Message{Kind: cluster.KindResult, Result: &cluster.Result{
			TrialID: fmt.Sprintf("t%06d", rank), Status: "ok", Reward: float64(rank) / 10, Rank: rank,
		}})
		if err != nil {
			t.Fatal(err)
		}
		all, err := tr.Gather(ctx, 0, res)
		if err != nil {
			t.Fatal(err)
		}
		if rank != 0 {
			if all != nil {
				t.Errorf("Gather on rank %d returned %d parts, want nil", rank, len(all))
			}
			return
		}
		if len(all) != size {
			t.Fatalf("Gather: %d parts for %d ranks", len(all), size)
		}
		for i, b := range all {
			m, err := cluster.Decode(i, b)
			if err != nil || m.Result == nil || m.Result.Rank != i || m.Result.Reward != float64(i)/10 {
				t.Errorf("result of rank %d: %+v, %v", i, m.Result, err)
			}
		}
	})

	// Asynchronous dispatch: every worker sends rank 0 a few results; rank 0
	// takes them from any source and answers each, the last with Stop.
	t.Run("Dispatch", func(t *testing.T) {
		const each = 5
		if rank != 0 {
			for i := 0; i < each; i++ {
				b, err := cluster.Encode(cluster.Message{Kind: cluster.KindResult, Result: &cluster.Result{
					TrialID: fmt.Sprintf("r%d-%d", rank, i), Status: "ok", Rank: rank,
				}})
				if err != nil {
					t.Fatal(err)
				}
				if err := tr.Send(0, b); err != nil {
					t.Fatal(err)
				}
				from, reply, err := tr.Recv(ctx)
				if err != nil || from != 0 {
					t.Fatalf("reply: from %d, %v", from, err)
				}
				m, err := cluster.Decode(from, reply)
				if want := map[bool]cluster.Kind{true: cluster.KindStop, false: cluster.KindIdle}[i == each-1]; err != nil || m.Kind != want {
					t.Fatalf("reply %d: %v, %v; want %v", i, m.Kind, err, want)
				}
			}
			return
		}
		next := make([]int, size)
		for k := 0; k < (size-1)*each; k++ {
			from, b, err := tr.Recv(ctx)
			if err != nil {
				t.Fatal(err)
			}
			m, err := cluster.Decode(from, b)
			if err != nil || m.Result == nil || m.Result.TrialID != fmt.Sprintf("r%d-%d", from, next[from]) {
				t.Fatalf("message from %d: %+v, %v", from, m.Result, err)
			}
			next[from]++
			kind := cluster.KindIdle
			if next[from] == each {
				kind = cluster.KindStop
			}
			reply, _ := cluster.Encode(cluster.Message{Kind: kind})
			if err := tr.Send(from, reply); err != nil {
				t.Fatal(err)
			}
		}
	})

	// Bells: on unless NASD_BELLS=off; a worker's long wait blocked on its
	// bell wakes when rank 0's message comes, not at the 1 s fallback.
	t.Run("Bells", func(t *testing.T) {
		want := size > 1 && os.Getenv("NASD_BELLS") != "off"
		if got := cluster.Bells(tr); got != want {
			t.Errorf("rank %d: Bells = %v, want %v (size %d, NASD_BELLS=%q)", rank, got, want, size, os.Getenv("NASD_BELLS"))
		}
		if w := cluster.Waiting(tr); size > 1 && rank == 0 && !want && !strings.Contains(w, "NASD_BELLS=off") {
			t.Errorf("rank 0: Waiting = %q, want the reason NASD_BELLS=off", w)
		}
		if rank == 0 {
			time.Sleep(200 * time.Millisecond)
			for w := 1; w < size; w++ {
				if err := tr.Send(w, []byte("wake")); err != nil {
					t.Fatal(err)
				}
			}
			for w := 1; w < size; w++ {
				if _, b, err := tr.Recv(cluster.PromptLongWait(ctx)); err != nil || string(b) != "awake" {
					t.Fatalf("rank 0: %q, %v", b, err)
				}
			}
			return
		}
		wctx, cancel := context.WithTimeout(cluster.LongWait(ctx), 700*time.Millisecond)
		defer cancel()
		t0 := time.Now()
		if from, b, err := tr.Recv(wctx); err != nil || from != 0 || string(b) != "wake" {
			t.Fatalf("rank %d: from %d: %q, %v after %v", rank, from, b, err, time.Since(t0))
		}
		if err := tr.Send(0, []byte("awake")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("SelfAndCancel", func(t *testing.T) {
		if err := tr.Send(rank, []byte("me")); err != nil {
			t.Fatal(err)
		}
		if from, b, err := tr.Recv(ctx); err != nil || from != rank || string(b) != "me" {
			t.Errorf("self message: %d %q %v", from, b, err)
		}
		short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		if from, _, err := tr.Recv(short); err != context.DeadlineExceeded || from != -1 {
			t.Errorf("Recv with nothing sent: %d, %v; want -1, context.DeadlineExceeded", from, err)
		}
		if err := tr.Send(size, nil); err == nil {
			t.Errorf("Send to rank %d (size %d): no error", size, size)
		}
	})

	// The ENAS collectives, as the in-process transport checks them.
	t.Run("Collectives", func(t *testing.T) {
		if err := collectiveSuite(ctx, tr); err != nil {
			t.Error(err)
		}
	})

	// One failing rank fails the test on every rank.
	f := []float64{0}
	if t.Failed() {
		f[0] = 1
	}
	if err := mpi.AllreduceFloat64(ctx, f); err != nil {
		t.Fatal(err)
	}
	if f[0] > 0 && !t.Failed() {
		t.Errorf("rank %d: failed on %v other rank(s)", rank, f[0])
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := tr.Send(0, nil); !errors.Is(err, cluster.ErrClosed) {
		t.Errorf("Send after Close: %v", err)
	}
	if _, err := tr.Gather(ctx, 0, nil); !errors.Is(err, cluster.ErrClosed) {
		t.Errorf("Gather after Close: %v", err)
	}
}

// BenchmarkMPICollectives times the cases of BenchmarkCollectives over MPI.
// Every rank must make the same number of calls, so give a fixed count, and
// skip the tests (TestMPITransport finalizes MPI):
//
//	go test -c -tags mpi -o cluster.test ./cluster
//	mpirun -n 4 --bind-to none --output-filename /tmp/b ./cluster.test \
//	    -test.run '^$' -test.bench MPICollectives -test.benchtime 20x
//	grep ^Benchmark /tmp/b/1/rank.0/stdout
//
// scripts/mpi-test.sh -bench does that for 2 and 4 ranks.
func BenchmarkMPICollectives(b *testing.B) {
	if n, _ := mpi.LauncherSize(); n > 1 && !strings.HasSuffix(flag.Lookup("test.benchtime").Value.String(), "x") {
		b.Skip("under a launcher, give -test.benchtime Nx: every rank must make the same number of calls")
	}
	tr, err := cluster.NewMPI()
	if err != nil {
		b.Skipf("%v (run the benchmark alone: -test.run '^$')", err)
	}
	defer func() {
		if err := tr.Close(); err != nil {
			b.Error(err)
		}
	}()
	ctx := context.Background()
	for _, kind := range []string{"float32", "buckets"} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/P=%d/n=%d", kind, tr.Size(), n), func(b *testing.B) {
				rb, err := newRankBench(ctx, tr, kind, n)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(4 * n))
				if err := mpi.Barrier(); err != nil { // start together
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := range b.N {
					if err := rb.step(i); err != nil {
						b.Error(err)
						_ = tr.Abort(1) // the other ranks would wait for this one
					}
				}
				b.StopTimer()
				report(b, rb, b.N)
			})
		}
	}
}

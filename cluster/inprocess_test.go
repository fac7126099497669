package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// runRanks runs f on every rank of a fresh in-process job, each in its own
// goroutine, and returns their errors by rank. A job that has not finished
// after 10 s fails the test.
func runRanks(t *testing.T, size int, f func(tr Transport) error) []error {
	t.Helper()
	return runOn(t, NewInProcess(size), f)
}

func runOn(t *testing.T, ts []Transport, f func(tr Transport) error) []error {
	t.Helper()
	errs := make([]error, len(ts))
	var wg sync.WaitGroup
	for i, tr := range ts {
		wg.Go(func() { errs[i] = f(tr) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ranks still running after 10 s: deadlock")
	}
	return errs
}

func noErrors(t *testing.T, errs []error) {
	t.Helper()
	for r, err := range errs {
		if err != nil {
			t.Errorf("rank %d: %v", r, err)
		}
	}
}

// waitJoined waits until tr's rank has taken part in collective call #seq.
func waitJoined(t *testing.T, tr Transport, seq uint64) {
	t.Helper()
	p := tr.(*inProcess)
	for range 5000 {
		p.h.mu.Lock()
		r := p.h.rounds[seq]
		joined := r != nil && r.arrived[p.rank]
		p.h.mu.Unlock()
		if joined {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("rank %d did not join collective call #%d", p.rank, seq)
}

func TestRankSize(t *testing.T) {
	ts := NewInProcess(3)
	for i, tr := range ts {
		if tr.Rank() != i || tr.Size() != 3 {
			t.Errorf("element %d: Rank %d, Size %d", i, tr.Rank(), tr.Size())
		}
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "NewInProcess(0): size must be ≥ 1") {
			t.Errorf("NewInProcess(0): panic %v", r)
		}
	}()
	NewInProcess(0)
}

func TestPingPong(t *testing.T) {
	const rounds = 1000
	ctx := context.Background()
	noErrors(t, runRanks(t, 2, func(tr Transport) error {
		buf := make([]byte, 8)
		peer := 1 - tr.Rank()
		for i := range rounds {
			if tr.Rank() == 0 {
				buf[0], buf[1] = byte(i), byte(i>>8)
				if err := tr.Send(peer, buf); err != nil {
					return err
				}
				buf[0] = 0xff // the message was copied: this must not reach rank 1
			}
			from, b, err := tr.Recv(ctx)
			if err != nil {
				return err
			}
			if from != peer || b[0] != byte(i) || b[1] != byte(i>>8) {
				return fmt.Errorf("round %d: from %d, % x", i, from, b[:2])
			}
			b[0]++
			if tr.Rank() == 1 {
				b[0]--
				if err := tr.Send(peer, b); err != nil {
					return err
				}
				b[0] = 0xfe
			}
		}
		return nil
	}))
}

// TestAnySource: many senders, one receiver; every message arrives, each
// sender's in its order.
func TestAnySource(t *testing.T) {
	const size, each = 8, 200
	ctx := context.Background()
	noErrors(t, runRanks(t, size, func(tr Transport) error {
		if tr.Rank() != 0 {
			for i := range each {
				if err := tr.Send(0, fmt.Appendf(nil, "%d/%d", tr.Rank(), i)); err != nil {
					return err
				}
			}
			return nil
		}
		next := make([]int, size)
		for range (size - 1) * each {
			from, b, err := tr.Recv(ctx)
			if err != nil {
				return err
			}
			if want := fmt.Sprintf("%d/%d", from, next[from]); string(b) != want {
				return fmt.Errorf("got %q from rank %d, want %q", b, from, want)
			}
			next[from]++
		}
		return nil
	}))
}

// TestArrivalOrder: Recv returns messages in the order they were sent, whoever
// sent them; sending to oneself works.
func TestArrivalOrder(t *testing.T) {
	ts := NewInProcess(4)
	order := []int{2, 0, 3, 1, 3, 2}
	for i, r := range order {
		if err := ts[r].Send(0, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range order {
		from, b, err := ts[0].Recv(context.Background())
		if err != nil || from != r || !bytes.Equal(b, []byte{byte(i)}) {
			t.Fatalf("message %d: from %d, %v, %v; want from %d", i, from, b, err, r)
		}
	}
}

func TestSendErrors(t *testing.T) {
	ts := NewInProcess(3)
	for _, tc := range []struct {
		to   int
		want string
	}{
		{3, "cluster: rank 1: Send: to rank 3: no such rank (size 3)"},
		{-1, "cluster: rank 1: Send: to rank -1: no such rank (size 3)"},
	} {
		if err := ts[1].Send(tc.to, nil); err == nil || err.Error() != tc.want {
			t.Errorf("Send to %d: %v, want %q", tc.to, err, tc.want)
		}
	}
	ts[2].Close()
	if err := ts[1].Send(2, []byte("x")); err == nil || err.Error() != "cluster: rank 1: Send: rank 2 has closed" {
		t.Errorf("Send to a closed rank: %v", err)
	}
	if err := ts[2].Send(0, []byte("x")); !errors.Is(err, ErrClosed) || err.Error() != "cluster: rank 2: Send: transport closed" {
		t.Errorf("Send from a closed rank: %v", err)
	}
	if _, err := ts[0].Bcast(context.Background(), 5, nil); err == nil || err.Error() != "cluster: rank 0: Bcast: root 5: no such rank (size 3)" {
		t.Errorf("Bcast with a bad root: %v", err)
	}
}

// TestCollectives runs Bcast, Scatter and Gather from every root on 1, 2 and
// 8 ranks, with parts of uneven sizes (empty ones included), several rounds
// in a row, and checks that no rank's result shares memory with another's.
func TestCollectives(t *testing.T) {
	for _, size := range []int{1, 2, 8} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			ctx := context.Background()
			part := func(root, rank, round int) []byte {
				return bytes.Repeat([]byte{byte(10*root + rank)}, (rank*7+round)%5*3)
			}
			noErrors(t, runRanks(t, size, func(tr Transport) error {
				me := tr.Rank()
				for round := range 3 {
					for root := range size {
						// Bcast
						msg := fmt.Appendf(nil, "round %d from %d", round, root)
						var in []byte
						if me == root {
							in = bytes.Clone(msg)
						}
						got, err := tr.Bcast(ctx, root, in)
						if err != nil {
							return err
						}
						if !bytes.Equal(got, msg) {
							return fmt.Errorf("Bcast root %d: got %q", root, got)
						}
						if me == root {
							in[0] = 'X' // after the call: the others' copies must not see it
						}
						got[1] = 'Y' // nor this rank's edits to its own result

						// Scatter
						var parts [][]byte
						if me == root {
							for r := range size {
								parts = append(parts, part(root, r, round))
							}
						}
						mine, err := tr.Scatter(ctx, root, parts)
						if err != nil {
							return err
						}
						if want := part(root, me, round); !bytes.Equal(mine, want) {
							return fmt.Errorf("Scatter root %d: got % x, want % x", root, mine, want)
						}
						for _, p := range parts {
							for i := range p {
								p[i] = 0xee
							}
						}

						// Gather
						all, err := tr.Gather(ctx, root, part(root, me, round+1))
						if err != nil {
							return err
						}
						if me != root {
							if all != nil {
								return fmt.Errorf("Gather root %d: non-root got %d parts", root, len(all))
							}
							continue
						}
						if len(all) != size {
							return fmt.Errorf("Gather root %d: %d parts, want %d", root, len(all), size)
						}
						for r, p := range all {
							if want := part(root, r, round+1); !bytes.Equal(p, want) {
								return fmt.Errorf("Gather root %d: part %d is % x, want % x", root, r, p, want)
							}
						}
					}
				}
				return nil
			}))
		})
	}
}

func TestScatterWrongParts(t *testing.T) {
	errs := runRanks(t, 3, func(tr Transport) error {
		var parts [][]byte
		if tr.Rank() == 1 {
			parts = [][]byte{{1}, {2}}
		}
		_, err := tr.Scatter(context.Background(), 1, parts)
		return err
	})
	for r, err := range errs {
		if err == nil || err.Error() != "cluster: rank 1: Scatter: root 1 gave 2 parts for 3 ranks" {
			t.Errorf("rank %d: %v", r, err)
		}
	}
}

func TestCollectiveMismatch(t *testing.T) {
	ts := NewInProcess(2)
	ctx := context.Background()
	if _, err := ts[0].Bcast(ctx, 0, []byte("x")); err != nil {
		t.Fatal(err)
	}
	_, err := ts[1].Gather(ctx, 0, nil)
	want := "cluster: rank 1: Gather: Gather(root 0) is collective call #0 of this rank, where rank 0 called Bcast(root 0): every rank must call the same collectives in the same order"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestRecvCancel(t *testing.T) {
	ts := NewInProcess(2)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if from, b, err := ts[0].Recv(ctx); !errors.Is(err, context.Canceled) || b != nil || from != -1 {
		t.Errorf("cancelled Recv: %d, %v, %v", from, b, err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, _, err := ts[0].Recv(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Recv past its deadline: %v", err)
	}
	// A done context wins even over a queued message, which stays queued.
	if err := ts[1].Send(0, []byte("late")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ts[0].Recv(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Recv with a done context: %v", err)
	}
	if _, b, err := ts[0].Recv(context.Background()); err != nil || string(b) != "late" {
		t.Errorf("queued message: %q, %v", b, err)
	}
}

// TestCollectiveCancel: a rank waiting in a collective returns ctx.Err()
// when cancelled, has still taken part, and the next collective works.
func TestCollectiveCancel(t *testing.T) {
	for _, op := range []string{"Bcast", "Scatter", "Gather"} {
		t.Run(op, func(t *testing.T) {
			ts := NewInProcess(3)
			call := func(ctx context.Context, tr Transport) error {
				var err error
				switch op {
				case "Bcast":
					_, err = tr.Bcast(ctx, 0, []byte("b"))
				case "Scatter":
					_, err = tr.Scatter(ctx, 0, [][]byte{{0}, {1}, {2}})
				case "Gather":
					_, err = tr.Gather(ctx, 0, []byte{byte(tr.Rank())})
				}
				return err
			}
			// The waiting rank: non-root for Bcast and Scatter, root for Gather.
			waiter, late := 1, 0
			if op == "Gather" {
				waiter, late = 0, 1
			}
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error)
			go func() { errc <- call(ctx, ts[waiter]) }()
			other := make(chan error, 1) // rank 2 takes part normally
			go func() { other <- call(context.Background(), ts[2]) }()
			waitJoined(t, ts[waiter], 0)
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled %s: %v", op, err)
			}
			if err := call(context.Background(), ts[late]); err != nil {
				t.Fatal(err)
			}
			if err := <-other; err != nil {
				t.Fatal(err)
			}
			// Everyone is aligned at the next collective.
			noErrors(t, runOn(t, ts, func(tr Transport) error {
				all, err := tr.Gather(context.Background(), 2, []byte{byte(tr.Rank())})
				if err == nil && tr.Rank() == 2 && !bytes.Equal(bytes.Join(all, nil), []byte{0, 1, 2}) {
					err = fmt.Errorf("gathered %v", all)
				}
				return err
			}))
			ctx, cancel = context.WithCancel(context.Background())
			cancel()
			if _, err := ts[0].Bcast(ctx, 0, nil); !errors.Is(err, context.Canceled) {
				t.Errorf("Bcast with a done context: %v", err)
			}
		})
	}
}

// TestAbort: ranks blocked in Recv and in collectives, and every later call,
// end with ErrAborted carrying the code.
func TestAbort(t *testing.T) {
	ts := NewInProcess(4)
	ctx := context.Background()
	blocked := make(chan error, 4)
	go func() { _, _, err := ts[0].Recv(ctx); blocked <- err }()
	go func() { _, err := ts[0].Bcast(ctx, 3, nil); blocked <- err }() // the root's Bcast never comes
	go func() { _, err := ts[1].Bcast(ctx, 3, nil); blocked <- err }()
	go func() { _, err := ts[2].Bcast(ctx, 3, nil); blocked <- err }()
	time.Sleep(20 * time.Millisecond)
	if err := ts[3].Abort(7); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		select {
		case err := <-blocked:
			if err != (ErrAborted{Code: 7}) {
				t.Errorf("pending call: %v, want ErrAborted{7}", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a pending call did not end after Abort")
		}
	}
	if err := ts[0].Abort(9); err != nil {
		t.Fatal(err)
	}
	for _, tr := range ts {
		_, _, recvErr := tr.Recv(ctx)
		_, bcastErr := tr.Bcast(ctx, 0, nil)
		_, scatterErr := tr.Scatter(ctx, 0, make([][]byte, 4))
		_, gatherErr := tr.Gather(ctx, 0, nil)
		for _, err := range []error{tr.Send(0, nil), recvErr, bcastErr, scatterErr, gatherErr} {
			var ab ErrAborted
			if !errors.As(err, &ab) || ab.Code != 7 || err.Error() != "cluster: job aborted with code 7" {
				t.Errorf("rank %d after Abort: %v", tr.Rank(), err)
			}
		}
		if err := tr.Close(); err != nil {
			t.Errorf("Close after Abort: %v", err)
		}
	}
}

func TestClose(t *testing.T) {
	ctx := context.Background()
	t.Run("wakes own Recv", func(t *testing.T) {
		ts := NewInProcess(2)
		errc := make(chan error)
		go func() { _, _, err := ts[0].Recv(ctx); errc <- err }()
		time.Sleep(10 * time.Millisecond)
		ts[0].Close()
		if err := <-errc; !errors.Is(err, ErrClosed) || err.Error() != "cluster: rank 0: Recv: transport closed" {
			t.Errorf("Recv: %v", err)
		}
		if err := ts[0].Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
	t.Run("Recv with nobody left", func(t *testing.T) {
		ts := NewInProcess(3)
		ts[1].Send(0, []byte("last words"))
		errc := make(chan error)
		go func() { _, _, err := ts[0].Recv(ctx); _, _, err = ts[0].Recv(ctx); errc <- err }()
		ts[1].Close()
		time.Sleep(10 * time.Millisecond)
		ts[2].Close()
		if err := <-errc; err == nil || err.Error() != "cluster: rank 0: Recv: nothing queued, and every other rank has closed" {
			t.Errorf("Recv: %v", err)
		}
	})
	t.Run("collective needing a closed rank", func(t *testing.T) {
		ts := NewInProcess(3)
		errc := make(chan error, 2)
		go func() { _, err := ts[1].Bcast(ctx, 0, nil); errc <- err }()
		go func() { _, err := ts[2].Bcast(ctx, 0, nil); errc <- err }()
		time.Sleep(10 * time.Millisecond)
		ts[0].Close()
		for range 2 {
			if err := <-errc; err == nil || err.Error() != "cluster: Bcast(root 0), collective call #0: rank 0 closed before taking part" {
				t.Errorf("Bcast: %v", err)
			}
		}
		// Later collectives that need rank 0 fail at once.
		if _, err := ts[1].Scatter(ctx, 0, nil); err == nil || err.Error() != "cluster: Scatter(root 0), collective call #1: rank 0 closed before taking part" {
			t.Errorf("Scatter from a closed root: %v", err)
		}
		if _, err := ts[2].Scatter(ctx, 0, nil); err == nil || err.Error() != "cluster: Scatter(root 0), collective call #1: rank 0 closed before taking part" {
			t.Errorf("Scatter from a closed root: %v", err)
		}
		if _, err := ts[2].Gather(ctx, 2, nil); err == nil || err.Error() != "cluster: Gather(root 2), collective call #2: rank 0 closed before taking part" {
			t.Errorf("Gather with a closed rank: %v", err)
		}
	})
}

// TestConcurrentJob drives a little dispatcher: rank 0 scatters and receives
// while workers gather and send, across many rounds, for the race detector.
func TestConcurrentJob(t *testing.T) {
	const size, rounds = 6, 50
	ctx := context.Background()
	noErrors(t, runRanks(t, size, func(tr Transport) error {
		defer tr.Close()
		for round := range rounds {
			var parts [][]byte
			if tr.Rank() == 0 {
				for r := range size {
					parts = append(parts, fmt.Appendf(nil, "task %d.%d", round, r))
				}
			}
			task, err := tr.Scatter(ctx, 0, parts)
			if err != nil {
				return err
			}
			if tr.Rank() != 0 {
				if err := tr.Send(0, append(task, " done"...)); err != nil {
					return err
				}
			} else {
				for range size - 1 {
					from, b, err := tr.Recv(ctx)
					if err != nil {
						return err
					}
					if want := fmt.Sprintf("task %d.%d done", round, from); string(b) != want {
						return fmt.Errorf("got %q, want %q", b, want)
					}
				}
			}
			if _, err := tr.Gather(ctx, 0, []byte{byte(round)}); err != nil {
				return err
			}
		}
		return nil
	}))
}

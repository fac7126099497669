//go:build mpi

package mpi

// These tests run as a one-rank singleton (go test -tags mpi ./mpi) and under
// a launcher, where every rank runs the same tests in the same order:
//
//	go test -c -tags mpi -o mpi.test ./mpi && mpirun -n 4 --bind-to none ./mpi.test -test.v
//
// scripts/mpi-test.sh does that for 2, 4 and 8 ranks. Each cross-rank test
// ends by agreeing with the other ranks on failure, and TestMain combines the
// ranks' exit codes, so one failing rank fails the whole run on every rank.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

func TestMain(m *testing.M) {
	if os.Getenv("NASD_MPI_TEST_FUNNELED") == "1" {
		os.Exit(funneledChild())
	}
	if os.Getenv("NASD_MPI_TEST_ABORT") == "1" {
		abortChild()
	}
	if os.Getenv("NASD_MPI_TEST_INIT_FAIL") == "1" {
		os.Exit(initFailChild())
	}
	// Test functions run on their own goroutines, so the main thread cannot
	// make every call: ask for SERIALIZED (the package mutex serializes).
	provided, err := Init(ThreadSerialized)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if provided < ThreadSerialized {
		fmt.Fprintf(os.Stderr, "mpi: asked for MPI_THREAD_SERIALIZED, got %v\n", provided)
		_ = Abort(1)
	}
	if err := CheckLauncher(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = Abort(1)
	}
	code := m.Run()
	// One failing rank fails every rank, so mpirun's exit code and each
	// rank's PASS/FAIL line agree.
	failed := []float64{0}
	if code != 0 {
		failed[0] = 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := AllreduceFloat64(ctx, failed); err != nil {
		fmt.Fprintf(os.Stderr, "rank %d: combining the ranks' results: %v\n", Rank(), err)
		_ = Abort(1)
	}
	if failed[0] > 0 {
		if Rank() == 0 {
			fmt.Fprintf(os.Stderr, "mpi tests: %v of %d ranks failed\n", failed[0], Size())
		}
		code = 1
	}
	if err := Finalize(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// Tags: one per test, so that a stray message never lands in another test.
const (
	tagPingPong = iota + 1
	tagAnySource
	tagProbe
	tagCancel
	tagErrors
	tagGoroutines
	tagBench
	tagFault
	tagLongWait
	tagWakeOn
)

// tctx bounds a test's waits, so a lost peer fails the test instead of hanging it.
func tctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// agree makes t fail on every rank when it fails on one (run it last, or defer it).
func agree(t *testing.T) {
	t.Helper()
	f := []float64{0}
	if t.Failed() {
		f[0] = 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := AllreduceFloat64(ctx, f); err != nil {
		t.Fatalf("rank %d: agreeing on the result: %v", Rank(), err)
	}
	if f[0] > 0 && !t.Failed() {
		t.Errorf("rank %d: failed on %v other rank(s)", Rank(), f[0])
	}
}

// pattern returns n bytes that depend on (seed, n), to check contents.
func pattern(seed, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed*2654435761 + n + 1)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func TestInitState(t *testing.T) {
	defer agree(t)
	if !Initialized() {
		t.Fatal("Initialized() = false after Init")
	}
	r, n := Rank(), Size()
	if n < 1 || r < 0 || r >= n {
		t.Fatalf("rank %d of %d", r, n)
	}
	if k, _ := LauncherSize(); k > 0 && k != n {
		t.Errorf("launcher says %d ranks, MPI %d", k, n)
	}
	if TagUB() < 32767 {
		t.Errorf("TagUB() = %d, MPI guarantees at least 32767", TagUB())
	}
	if v := LibraryVersion(); v == "" {
		t.Error("LibraryVersion() is empty")
	} else if r == 0 {
		first, _, _ := strings.Cut(v, "\n")
		t.Logf("library: %s; %d ranks", first, n)
	}
	w0 := Wtime()
	time.Sleep(2 * time.Millisecond)
	if d := Wtime() - w0; d < 0.0015 || d > 1 {
		t.Errorf("Wtime advanced %.6f s over a 2 ms sleep", d)
	}
	if _, err := Init(ThreadSerialized); err == nil || !strings.Contains(err.Error(), "already initialized") {
		t.Errorf("second Init: %v", err)
	}
	if err := CheckLauncher(); err != nil {
		t.Error(err)
	}
	if err := Barrier(); err != nil {
		t.Error(err)
	}
}

// TestSendSelf: messages to oneself of every small size, received by RecvAny
// and by Improbe with the exact source; works in a singleton too.
func TestSendSelf(t *testing.T) {
	defer agree(t)
	ctx := tctx(t)
	me := Rank()
	// A send to oneself may wait for the receive, as MPI_Send may (Open MPI
	// above its self transport's eager limit of about 1 KiB, MPICH's
	// singleton always): send from another goroutine.
	for _, n := range []int{0, 1, 7, 100, 1000, 1 << 20} {
		want := pattern(me, n)
		sent := make(chan error, 1)
		go func() { sent <- Send(want, me, tagProbe) }()
		from, got, err := RecvAny(ctx, tagProbe)
		if err != nil || from != me || !bytes.Equal(got, want) {
			t.Fatalf("n=%d: RecvAny = %d, %d bytes, %v; want %d, %d bytes", n, from, len(got), err, me, n)
		}
		if got == nil {
			t.Errorf("n=%d: received nil, want a non-nil slice", n)
		}
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
	}
	// Improbe for a given source and tag, then Recv; a second Recv fails.
	sent := make(chan error, 1)
	go func() { sent <- Send([]byte("abc"), me, tagProbe) }()
	defer func() {
		if err := <-sent; err != nil {
			t.Error(err)
		}
	}()
	var m Message
	var st Status
	for ok := false; !ok; {
		var err error
		if m, st, ok, err = Improbe(me, tagProbe); err != nil {
			t.Fatal(err)
		}
	}
	if st != (Status{Source: me, Tag: tagProbe, Count: 3}) || m.Status() != st {
		t.Errorf("status %+v (message %+v)", st, m.Status())
	}
	if b, err := m.Recv(); err != nil || string(b) != "abc" {
		t.Errorf("Recv = %q, %v", b, err)
	}
	if _, err := m.Recv(); err == nil || !strings.Contains(err.Error(), "received already") {
		t.Errorf("second Recv: %v", err)
	}
	if _, err := (Message{}).Recv(); err == nil {
		t.Error("Recv of a zero Message: no error")
	}
	// Nothing waiting: not ok, no error.
	if _, _, ok, err := Improbe(AnySource, tagProbe); ok || err != nil {
		t.Errorf("Improbe with nothing sent: ok=%v err=%v", ok, err)
	}
	if _, _, _, err := Improbe(-7, tagProbe); err == nil {
		t.Error("Improbe from rank -7: no error")
	}
}

// TestPingPong: ranks 0 and 1 bounce messages of growing size, including
// empty and 1 MiB (above every eager limit).
func TestPingPong(t *testing.T) {
	defer agree(t)
	if Size() < 2 {
		t.Skip("needs 2 ranks")
	}
	ctx := tctx(t)
	sizes := []int{0, 1, 100, 4095, 4096, 4097, 65536, 1 << 20}
	switch Rank() {
	case 0:
		for i, n := range sizes {
			want := pattern(i, n)
			if err := Send(want, 1, tagPingPong); err != nil {
				t.Fatal(err)
			}
			from, got, err := RecvAny(ctx, tagPingPong)
			if err != nil {
				t.Fatal(err)
			}
			if from != 1 || !bytes.Equal(got, want) {
				t.Fatalf("size %d: echo from %d has %d bytes, equal=%v", n, from, len(got), bytes.Equal(got, want))
			}
		}
	case 1:
		for range sizes {
			from, b, err := RecvAny(ctx, tagPingPong)
			if err != nil {
				t.Fatal(err)
			}
			if err := Send(b, from, tagPingPong); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestAnySource: every rank but 0 sends rank 0 messages of varied sizes;
// rank 0 takes them as they come, from any source, alternately by RecvAny
// and by Improbe+Recv, and checks per-sender order and contents.
func TestAnySource(t *testing.T) {
	defer agree(t)
	if Size() < 2 {
		t.Skip("needs 2 ranks")
	}
	ctx := tctx(t)
	sizes := []int{0, 1, 7, 4097, 70000, 0, 1 << 20, 3}
	if Rank() != 0 {
		for i, n := range sizes {
			if err := Send(pattern(Rank()*100+i, n), 0, tagAnySource); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	next := make([]int, Size()) // next message index expected from each rank
	for k := 0; k < (Size()-1)*len(sizes); k++ {
		var from int
		var b []byte
		var err error
		if k%2 == 0 {
			from, b, err = RecvAny(ctx, tagAnySource)
		} else {
			var m Message
			var st Status
			for ok := false; !ok && err == nil; {
				if m, st, ok, err = Improbe(AnySource, tagAnySource); !ok && err == nil {
					time.Sleep(20 * time.Microsecond)
				}
			}
			if err == nil {
				from = st.Source
				b, err = m.Recv()
				if err == nil && len(b) != st.Count {
					t.Errorf("Improbe said %d bytes, Recv gave %d", st.Count, len(b))
				}
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		if from < 1 || from >= Size() || next[from] >= len(sizes) {
			t.Fatalf("message %d from rank %d, unexpected", k, from)
		}
		i := next[from]
		next[from]++
		if want := pattern(from*100+i, sizes[i]); !bytes.Equal(b, want) {
			t.Fatalf("message %d from rank %d: %d bytes, want %d (order or contents wrong)", i, from, len(b), len(want))
		}
	}
}

func TestBcast(t *testing.T) {
	defer agree(t)
	ctx := tctx(t)
	for i, n := range []int{0, 1, 1000, 4097, 1 << 20} {
		root := i % Size()
		want := pattern(i, n)
		var in []byte
		if Rank() == root {
			in = want
		}
		got, err := Bcast(ctx, root, in)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("Bcast of %d bytes from root %d: got %d bytes", n, root, len(got))
		}
	}
}

func TestScatterv(t *testing.T) {
	defer agree(t)
	ctx := tctx(t)
	p := Size()
	root := p - 1
	partLen := func(i int) int { return []int{3, 0, 70000, 1, 4096, 0, 1 << 20, 17}[i%8] }
	var parts [][]byte
	if Rank() == root {
		for i := 0; i < p; i++ {
			parts = append(parts, pattern(1000+i, partLen(i)))
		}
	}
	got, err := Scatterv(ctx, root, parts)
	if err != nil {
		t.Fatal(err)
	}
	if want := pattern(1000+Rank(), partLen(Rank())); !bytes.Equal(got, want) || got == nil {
		t.Errorf("rank %d: got %d bytes, want %d", Rank(), len(got), len(want))
	}
	// All parts empty.
	if Rank() == root {
		parts = make([][]byte, p)
	}
	if got, err := Scatterv(ctx, root, parts); err != nil || len(got) != 0 {
		t.Errorf("empty parts: %d bytes, %v", len(got), err)
	}
	// A wrong number of parts fails on every rank, and the ranks stay in step.
	if Rank() == root {
		parts = make([][]byte, p+1)
	}
	_, err = Scatterv(ctx, root, parts)
	switch {
	case err == nil:
		t.Error("Scatterv with Size()+1 parts: no error")
	case Rank() == root && !strings.Contains(err.Error(), fmt.Sprintf("%d parts for %d ranks", p+1, p)):
		t.Errorf("root: %v", err)
	case Rank() != root && !strings.Contains(err.Error(), "root rejected"):
		t.Errorf("rank %d: %v", Rank(), err)
	}
	if err := Barrier(); err != nil {
		t.Fatal(err)
	}
}

func TestGatherv(t *testing.T) {
	defer agree(t)
	ctx := tctx(t)
	p := Size()
	partLen := func(i int) int { return []int{0, 1000, 5, 70000, 0, 1 << 20, 2, 4097}[i%8] }
	for _, root := range []int{0, p - 1} {
		got, err := Gatherv(ctx, root, pattern(2000+Rank(), partLen(Rank())))
		if err != nil {
			t.Fatal(err)
		}
		if Rank() != root {
			if got != nil {
				t.Errorf("rank %d (not root): got %d parts, want nil", Rank(), len(got))
			}
			continue
		}
		if len(got) != p {
			t.Fatalf("root %d: %d parts, want %d", root, len(got), p)
		}
		for i, b := range got {
			if want := pattern(2000+i, partLen(i)); !bytes.Equal(b, want) {
				t.Errorf("root %d: part %d has %d bytes, want %d", root, i, len(b), len(want))
			}
		}
	}
	// Every part empty: no data phase, p empty parts on root.
	got, err := Gatherv(ctx, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if Rank() == 0 {
		if len(got) != p {
			t.Fatalf("empty gather: %d parts, want %d", len(got), p)
		}
		for i, b := range got {
			if len(b) != 0 {
				t.Errorf("empty gather: part %d has %d bytes", i, len(b))
			}
		}
	}
}

func TestAllreduce(t *testing.T) {
	defer agree(t)
	ctx := tctx(t)
	p, r := float64(Size()), float64(Rank())
	x := []float64{r, 1, r * r, 0.5, -r}
	if err := AllreduceFloat64(ctx, x); err != nil {
		t.Fatal(err)
	}
	// Sums of small integers and halves are exact in float64.
	want := []float64{p * (p - 1) / 2, p, (p - 1) * p * (2*p - 1) / 6, p / 2, -p * (p - 1) / 2}
	for i := range want {
		if x[i] != want[i] {
			t.Errorf("float64 sum[%d] = %v, want %v", i, x[i], want[i])
		}
	}
	y := make([]float32, 100003)
	for i := range y {
		y[i] = float32(Rank()+1) * float32(i%7)
	}
	if err := AllreduceFloat32(ctx, y); err != nil {
		t.Fatal(err)
	}
	for i := range y {
		if w := float32(p*(p+1)/2) * float32(i%7); y[i] != w {
			t.Fatalf("float32 sum[%d] = %v, want %v", i, y[i], w)
		}
	}
	if err := AllreduceFloat64(ctx, nil); err != nil {
		t.Error(err)
	}
	if err := AllreduceFloat32(ctx, []float32{}); err != nil {
		t.Error(err)
	}
}

// TestAllreduceOrdered: the sum is rank-ordered (((x_0 + x_1) + x_2) + ...,
// checked bit for bit on values whose order shows in the low bits), for
// lengths that do and do not divide into Size() blocks; a length that
// differs between ranks is an error on every rank; OR is exact.
func TestAllreduceOrdered(t *testing.T) {
	defer agree(t)
	ctx := tctx(t)
	p := Size()
	v := func(q, i int) float32 {
		return float32(1+(i*7+q*13)%97) / float32(1+(q*5+i)%31) * float32(int(1)<<((q+i)%20))
	}
	for _, n := range []int{0, 1, p - 1, p + 1, 4096, 100003} {
		x := make([]float32, n)
		for i := range x {
			x[i] = v(Rank(), i)
		}
		if err := AllreduceFloat32Ordered(ctx, x); err != nil {
			t.Fatal(err)
		}
		for i := range x {
			w := v(0, i)
			for q := 1; q < p; q++ {
				w += v(q, i)
			}
			if math.Float32bits(x[i]) != math.Float32bits(w) {
				t.Fatalf("n = %d: sum[%d] = %v, rank-ordered sum %v", n, i, x[i], w)
			}
		}
	}
	if p > 1 {
		x := make([]float32, 10+Rank())
		err := AllreduceFloat32Ordered(ctx, x)
		want := fmt.Sprintf("mpi: AllreduceFloat32Ordered of %d floats: rank ", 10+Rank())
		if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "every rank must pass the same count") {
			t.Errorf("lengths 10..%d: %v", 9+p, err)
		}
		if err := AllreduceOrUint64(ctx, make([]uint64, Rank())); err == nil {
			t.Errorf("AllreduceOrUint64 of lengths 0..%d: no error", p-1)
		}
	}
	b := []uint64{1 << Rank(), 0, 1 << 63}
	if err := AllreduceOrUint64(ctx, b); err != nil {
		t.Fatal(err)
	}
	if want := []uint64{1<<p - 1, 0, 1 << 63}; fmt.Sprint(b) != fmt.Sprint(want) {
		t.Errorf("OR: %x, want %x", b, want)
	}
	if err := AllreduceOrUint64(ctx, nil); err != nil {
		t.Error(err)
	}
}

// cpuTime returns the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestRecvAnyCancel: RecvAny honours its context, and waiting costs little CPU.
func TestRecvAnyCancel(t *testing.T) {
	defer agree(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := RecvAny(ctx, tagCancel); err != context.Canceled {
		t.Errorf("canceled context: %v, want context.Canceled", err)
	}
	const wait = 300 * time.Millisecond
	ctx, cancel = context.WithTimeout(context.Background(), wait)
	defer cancel()
	t0, c0 := time.Now(), cpuTime()
	_, _, err := RecvAny(ctx, tagCancel)
	wall, cpu := time.Since(t0), cpuTime()-c0
	if err != context.DeadlineExceeded {
		t.Errorf("RecvAny: %v, want context.DeadlineExceeded itself", err)
	}
	// The context's timer and this clock may disagree by well under a
	// millisecond (seen: 299.5 ms for 300 ms under MPICH on a loaded machine).
	if wall < wait-5*time.Millisecond || wall > wait+2*time.Second {
		t.Errorf("RecvAny returned after %v, deadline %v", wall, wait)
	}
	t.Logf("rank %d: waited %v using %v CPU", Rank(), wall.Round(time.Millisecond), cpu.Round(time.Millisecond))
	if cpu > wall/2 {
		t.Errorf("waiting %v cost %v of CPU: the back-off does not work", wall, cpu)
	}
}

// TestLongWait: a wait marked with LongWait costs little CPU, and a message
// that comes after a second is still seen within a bound (longPace: 20 ms;
// the bound here is generous, for a loaded machine: doubling sleeps without
// a cap would see it ~0.6 s late). Small sends return without waiting for
// their receive, even to oneself from the receiving goroutine.
func TestLongWait(t *testing.T) {
	defer agree(t)
	const wait = 600 * time.Millisecond
	ctx, cancel := context.WithTimeout(LongWait(context.Background()), wait)
	defer cancel()
	t0, c0 := time.Now(), cpuTime()
	_, _, err := RecvAny(ctx, tagLongWait)
	wall, cpu := time.Since(t0), cpuTime()-c0
	if err != context.DeadlineExceeded {
		t.Errorf("RecvAny: %v, want context.DeadlineExceeded", err)
	}
	t.Logf("rank %d: a long wait of %v used %v CPU", Rank(), wall.Round(time.Millisecond), cpu.Round(time.Microsecond))
	// ~110 wakes (TestPaceSchedule) at 40-150 µs each in this VM: 5-17 ms.
	// Spinning, or polling every 10 µs, would take most of a core.
	if cpu > wall/10 {
		t.Errorf("a long wait of %v cost %v of CPU, more than 10%% of a core", wall, cpu)
	}

	me := Rank()
	base := liveHandles()
	const delay = time.Second
	sentAt, sendErr := make(chan time.Time, 1), make(chan error, 1)
	go func() {
		time.Sleep(delay)
		sentAt <- time.Now()
		sendErr <- Send(pattern(me, 100), me, tagLongWait)
	}()
	from, got, err := RecvAny(LongWait(tctx(t)), tagLongWait)
	late := time.Since(<-sentAt)
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
	if err != nil || from != me || !bytes.Equal(got, pattern(me, 100)) {
		t.Fatalf("RecvAny = %d, %d bytes, %v", from, len(got), err)
	}
	t.Logf("rank %d: a message after %v waiting was seen %v late", me, delay, late.Round(10*time.Microsecond))
	if late > 250*time.Millisecond {
		t.Errorf("a message sent after %v of a long wait was seen %v late", delay, late)
	}

	// A small send returns at once, before its receive is posted.
	b := pattern(me+1, 10<<10)
	if err := Send(b, me, tagLongWait); err != nil {
		t.Fatal(err)
	}
	clear(b) // Send copied it
	ctx = tctx(t)
	recvIntact(t, ctx, tagLongWait, pattern(me+1, 10<<10))
	awaitFreed(t, ctx, tagLongWait, base) // later calls complete and free it
}

// TestWakeOn: a long wait with a bell blocks on it. With no ring it polls
// once per longest wait (sleep-polling polls ~110 times in 600 ms); a ring
// after a message wakes it at once however long its longest wait; and a
// message that no ring announces is still seen after the longest wait.
func TestWakeOn(t *testing.T) {
	defer agree(t)
	me := Rank()
	ring := make(chan struct{}, 1)
	ctx, cancel := context.WithTimeout(WakeOn(LongWait(context.Background()), ring, 200*time.Millisecond), 600*time.Millisecond)
	defer cancel()
	p0 := polls.Load()
	if _, _, err := RecvAny(ctx, tagWakeOn); err != context.DeadlineExceeded {
		t.Errorf("RecvAny: %v, want context.DeadlineExceeded", err)
	}
	if n := polls.Load() - p0; n > 5 {
		t.Errorf("a wait of 600 ms blocked on a silent bell polled %d times, want at most 5 (one per 200 ms)", n)
	}

	sentAt, sendErr := make(chan time.Time, 1), make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		sentAt <- time.Now()
		sendErr <- Send(pattern(me, 100), me, tagWakeOn)
		ring <- struct{}{}
	}()
	p0 = polls.Load()
	from, got, err := RecvAny(WakeOn(LongWait(tctx(t)), ring, time.Hour), tagWakeOn)
	late, n := time.Since(<-sentAt), polls.Load()-p0
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
	if err != nil || from != me || !bytes.Equal(got, pattern(me, 100)) {
		t.Fatalf("RecvAny = %d, %d bytes, %v", from, len(got), err)
	}
	t.Logf("rank %d: a rung message was seen %v late after %d polls", me, late.Round(10*time.Microsecond), n)
	if n > 3 {
		t.Errorf("a wait woken by one ring polled %d times, want at most 3", n)
	}

	go func() {
		time.Sleep(50 * time.Millisecond)
		sendErr <- Send(pattern(me, 7), me, tagWakeOn)
	}()
	from, got, err = RecvAny(WakeOn(LongWait(tctx(t)), make(chan struct{}), 150*time.Millisecond), tagWakeOn)
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
	if err != nil || from != me || !bytes.Equal(got, pattern(me, 7)) {
		t.Fatalf("RecvAny without a ring = %d, %d bytes, %v", from, len(got), err)
	}
}

// TestCollectiveCancel: the last rank comes late to a collective; the others'
// calls end with their contexts, and the next collective still lines up.
func TestCollectiveCancel(t *testing.T) {
	defer agree(t)
	if Size() < 2 {
		t.Skip("needs 2 ranks")
	}
	ctx := tctx(t)
	late := Rank() == Size()-1
	const delay = 500 * time.Millisecond
	short := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 50*time.Millisecond)
	}

	// Allreduce: nobody can finish before the late rank contributes.
	x := []float64{1}
	if late {
		time.Sleep(delay)
		if err := AllreduceFloat64(ctx, x); err != nil || x[0] != float64(Size()) {
			t.Fatalf("late rank: %v, sum %v", err, x[0])
		}
	} else {
		c, cancel := short()
		err := AllreduceFloat64(c, x)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "mpi: AllreduceFloat64: ") {
			t.Fatalf("early rank: %v, want a deadline error", err)
		}
		if x[0] != 1 {
			t.Errorf("abandoned Allreduce changed x to %v", x[0])
		}
	}
	// The next collective first completes the abandoned one, then runs.
	y := []float64{float64(Rank())}
	if err := AllreduceFloat64(ctx, y); err != nil {
		t.Fatal(err)
	}
	if p := float64(Size()); y[0] != p*(p-1)/2 {
		t.Errorf("allreduce after a canceled one: %v, want %v", y[0], p*(p-1)/2)
	}

	// Gatherv to rank 0, which gives up; the rest finish when the late rank comes.
	if late {
		time.Sleep(delay)
	}
	c, cancel := short()
	_, err := Gatherv(c, 0, []byte{byte(Rank())})
	cancel()
	if Rank() == 0 && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("root of a delayed Gatherv: %v, want a deadline error", err)
	}
	got, err := Gatherv(ctx, 0, []byte{byte(Rank() + 1)})
	if err != nil {
		t.Fatal(err)
	}
	if Rank() == 0 {
		for i, b := range got {
			if len(b) != 1 || b[0] != byte(i+1) {
				t.Errorf("Gatherv after a canceled one: part %d = %v", i, b)
			}
		}
	}

	// Finalize refuses while an abandoned collective is unfinished.
	if Rank() == 0 {
		c, cancel := context.WithCancel(context.Background())
		cancel()
		if err := BarrierContext(c); !errors.Is(err, context.Canceled) {
			t.Errorf("Barrier with a canceled context: %v", err)
		}
		err := Finalize()
		if err == nil || !strings.Contains(err.Error(), "abandoned") || !strings.Contains(err.Error(), "Barrier") {
			t.Fatalf("Finalize with a Barrier pending: %v", err)
		}
		if !Initialized() {
			t.Fatal("Finalize finalized with a Barrier pending")
		}
	} else {
		time.Sleep(delay)
		if err := Barrier(); err != nil {
			t.Fatal(err)
		}
	}
	if err := Barrier(); err != nil {
		t.Fatal(err)
	}
}

// TestErrors: library errors come back as values naming the call and peer.
func TestErrors(t *testing.T) {
	defer agree(t)
	ctx := tctx(t)
	p := Size()
	err := Send([]byte("x"), p, tagErrors)
	var me *Error
	if !errors.As(err, &me) || me.Class != "MPI_ERR_RANK" ||
		!strings.HasPrefix(err.Error(), fmt.Sprintf("mpi: Send to rank %d: MPI_ERR_RANK", p)) {
		t.Errorf("Send to rank %d: %v", p, err)
	}
	if err := Send(nil, 0, -5); !errors.As(err, &me) || me.Class != "MPI_ERR_TAG" {
		t.Errorf("Send with tag -5: %v", err)
	}
	if _, err := Bcast(ctx, p, nil); !errors.As(err, &me) || me.Class != "MPI_ERR_ROOT" ||
		!strings.HasPrefix(err.Error(), fmt.Sprintf("mpi: Bcast from root %d: MPI_ERR_ROOT", p)) {
		t.Errorf("Bcast from root %d: %v", p, err)
	}
	err = truncateError(op{"Send", "to rank", 7})
	if !strings.HasPrefix(err.Error(), "mpi: Send to rank 7: MPI_ERR_TRUNCATE: ") || strings.Contains(err.Error(), "\n") {
		t.Errorf("truncate error reads %q", err)
	} else {
		t.Logf("%v", err)
	}
	if err := Barrier(); err != nil {
		t.Fatal(err)
	}
}

// TestCountTooLarge: slices longer than a C int are refused, and a refusal
// by one rank fails a collective on every rank. The long slices lie on an
// address range reserved with no access: nothing may read them.
func TestCountTooLarge(t *testing.T) {
	defer agree(t)
	ctx := tctx(t)
	const n = MaxCount + 1
	mem, err := syscall.Mmap(-1, 0, 8*n, syscall.PROT_NONE, syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
	if err != nil {
		t.Skipf("cannot reserve %d bytes of address space: %v", 8*n, err)
	}
	t.Cleanup(func() { _ = syscall.Munmap(mem) })
	huge := mem[:n]
	err = Send(huge, 0, tagErrors)
	if !errors.Is(err, ErrCountTooLarge) || !strings.HasPrefix(err.Error(), "mpi: Send to rank 0: 2147483648 bytes") {
		t.Errorf("Send: %v", err)
	}
	if err := AllreduceFloat64(ctx, unsafe.Slice((*float64)(unsafe.Pointer(&mem[0])), n)); !errors.Is(err, ErrCountTooLarge) {
		t.Errorf("AllreduceFloat64: %v", err)
	}
	var in []byte
	if Rank() == 0 {
		in = huge
	}
	if _, err := Bcast(ctx, 0, in); !errors.Is(err, ErrCountTooLarge) {
		t.Errorf("Bcast: %v", err)
	}
	var parts [][]byte
	if Rank() == 0 {
		parts = make([][]byte, Size())
		parts[Size()-1] = huge
	}
	if _, err := Scatterv(ctx, 0, parts); err == nil ||
		(Rank() == 0 && !errors.Is(err, ErrCountTooLarge)) {
		t.Errorf("Scatterv: %v", err)
	}
	in = nil
	if Rank() == Size()-1 {
		in = huge
	}
	if _, err := Gatherv(ctx, 0, in); !errors.Is(err, ErrCountTooLarge) {
		t.Errorf("Gatherv: %v", err)
	}
	// Parts that fit alone but not together (root only decides).
	if Size() >= 2 {
		half := mem[:MaxCount/2+1]
		if Rank() == 0 {
			parts = make([][]byte, Size())
			parts[0], parts[1] = half, half
		}
		if _, err := Scatterv(ctx, 0, parts); err == nil {
			t.Error("Scatterv of parts over 2^31-1 bytes in all: no error")
		}
	}
	// The ranks are still in step.
	x := []float64{1}
	if err := AllreduceFloat64(ctx, x); err != nil || x[0] != float64(Size()) {
		t.Errorf("after refusals: %v, %v", x, err)
	}
}

// TestGoroutines: with MPI_THREAD_SERIALIZED, goroutines share MPI safely;
// one waits in RecvAny while others send to it.
func TestGoroutines(t *testing.T) {
	defer agree(t)
	ctx := tctx(t)
	const senders, each = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := Send(pattern(g, i), Rank(), tagGoroutines); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	got := 0
	for got < senders*each {
		_, b, err := RecvAny(ctx, tagGoroutines)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) >= each {
			t.Fatalf("message of %d bytes", len(b))
		}
		got++
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestInjectedFailure fails on the rank named by NASD_MPI_TEST_FAIL_RANK, so
// that scripts/mpi-test.sh can check that one failing rank fails the run.
func TestInjectedFailure(t *testing.T) {
	defer agree(t)
	if s := os.Getenv("NASD_MPI_TEST_FAIL_RANK"); s != "" && s == fmt.Sprint(Rank()) {
		t.Errorf("rank %d: failure injected by NASD_MPI_TEST_FAIL_RANK", Rank())
	}
}

// funneledChild runs in a child process started by TestFunneled, on the main
// goroutine (TestMain's), which the package's init locked to the main thread.
func funneledChild() int {
	p, err := Init(ThreadFunneled)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	if p >= ThreadSerialized {
		fmt.Printf("funneled: MPI provided %v; nothing to check\n", p)
		return boolCode(Finalize() != nil)
	}
	code := 0
	if err := Barrier(); err != nil {
		fmt.Println("main goroutine:", err)
		code = 1
	}
	// A failing MPI_Is_thread_main is an error of its own, not taken for
	// "another thread".
	injectFault(faultIsThreadMain, 1)
	err = Barrier()
	var me *Error
	if !errors.As(err, &me) || me.Class != "MPI_ERR_INTERN" ||
		!strings.HasPrefix(err.Error(), "mpi: Barrier: MPI_Is_thread_main: MPI_ERR_INTERN") {
		fmt.Println("failing MPI_Is_thread_main:", err)
		code = 1
	}
	if err := Barrier(); err != nil {
		fmt.Println("main goroutine, after the injected failure:", err)
		code = 1
	}
	errc := make(chan error)
	go func() { errc <- Barrier() }()
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "mpi: Barrier: called from a thread other than the one that called Init") {
		fmt.Println("other goroutine:", err)
		code = 1
	}
	if err := Finalize(); err != nil {
		fmt.Println(err)
		code = 1
	}
	if code == 0 {
		fmt.Println("funneled: ok")
	}
	return code
}

func boolCode(failed bool) int {
	if failed {
		return 1
	}
	return 0
}

// abortChild runs in a child process started by TestAbort: Abort from a
// goroutine other than main's must end the process with the code.
func abortChild() {
	if _, err := Init(ThreadFunneled); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	done := make(chan error)
	go func() { done <- Abort(3) }()
	fmt.Println("Abort returned:", <-done)
	os.Exit(1)
}

// TestAbort: Abort ends the process with its code, even when called off the
// Init goroutine under MPI_THREAD_FUNNELED.
func TestAbort(t *testing.T) {
	defer agree(t)
	out, err := runChild(t, "NASD_MPI_TEST_ABORT=1")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("child: %v, want exit status 3\n%s", err, out)
	}
}

// runChild runs this test binary again as a one-rank singleton, without the
// launcher's environment, with env added; TestMain acts on env.
func runChild(t *testing.T, env string) ([]byte, error) {
	t.Helper()
	if n, _ := LauncherSize(); n > 0 {
		t.Skip("runs in the singleton pass (a child of an MPI rank would join its job)")
	}
	var clean []string
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, "OMPI_") && !strings.HasPrefix(e, "OMPI_ALLOW_RUN_AS_ROOT") ||
			strings.HasPrefix(e, "PMI") || strings.HasPrefix(e, "HYDRA") {
			continue
		}
		clean = append(clean, e)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(clean, env)
	return cmd.CombinedOutput()
}

// TestFunneled: with MPI_THREAD_FUNNELED, calls from the goroutine that
// called Init work and calls from others are refused. MPI cannot be
// initialized twice, so a child process (a singleton) checks it.
func TestFunneled(t *testing.T) {
	defer agree(t)
	out, err := runChild(t, "NASD_MPI_TEST_FUNNELED=1")
	if err != nil || !strings.Contains(string(out), "funneled: ") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out))
}

// initFailChild runs in a child process started by TestInitFailure: a step
// of Init after MPI_Init_thread fails (injected), so MPI is initialized but
// unusable; a second Init must say so instead of initializing MPI again.
func initFailChild() int {
	injectFault(faultInit, 1)
	_, err := Init(ThreadSerialized)
	var me *Error
	if !errors.As(err, &me) || me.Class != "MPI_ERR_INTERN" || !strings.HasPrefix(err.Error(), "mpi: Init: MPI_ERR_INTERN") {
		fmt.Println("first Init:", err)
		return 1
	}
	if Initialized() || Rank() != -1 {
		fmt.Printf("after a failed Init: Initialized() = %v, Rank() = %d\n", Initialized(), Rank())
		return 1
	}
	if err := Barrier(); !errors.Is(err, ErrNotInitialized) {
		fmt.Println("Barrier after a failed Init:", err)
		return 1
	}
	_, err = Init(ThreadSerialized)
	if err == nil || !strings.Contains(err.Error(), "mpi: Init: an earlier Init failed after MPI_Init_thread had succeeded (mpi: Init: MPI_ERR_INTERN") ||
		!strings.Contains(err.Error(), "cannot be initialized twice") {
		fmt.Println("second Init:", err)
		return 1
	}
	if err := Finalize(); err != nil {
		fmt.Println("Finalize after a failed Init:", err)
		return 1
	}
	if _, err := Init(ThreadSerialized); err == nil || !strings.Contains(err.Error(), "was finalized") {
		fmt.Println("Init after Finalize:", err)
		return 1
	}
	fmt.Println("init-fail: ok")
	return 0
}

// TestInitFailure: Init that fails after MPI_Init_thread records it, so a
// retry returns a clear error instead of calling MPI_Init_thread twice;
// Finalize still shuts MPI down. A child process (a singleton) checks it.
func TestInitFailure(t *testing.T) {
	defer agree(t)
	out, err := runChild(t, "NASD_MPI_TEST_INIT_FAIL=1")
	if err != nil || !strings.Contains(string(out), "init-fail: ok") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// TestGetCountFailure: when MPI_Get_count fails for a matched message (an
// injected fault), Improbe returns the error naming the message, which it
// received and dropped: its handle is freed, nothing is left matched, and a
// sender waiting for the receive (1 MiB, above every eager limit) completes.
// When MPI_Get_elements_x fails as well, a truncating receive drops it (a
// small message only: Open MPI's self transport crashes on a truncated
// message to oneself above about 1 KiB).
func TestGetCountFailure(t *testing.T) {
	defer agree(t)
	ctx := tctx(t)
	me := Rank()
	base := liveHandles()
	for _, tc := range []struct {
		n        int
		elements bool // MPI_Get_elements_x fails too
	}{{3, false}, {1 << 20, false}, {0, true}, {3, true}} {
		sent := make(chan error, 1)
		go func() { sent <- Send(pattern(me, tc.n), me, tagFault) }()
		injectFault(faultGetCount, 1)
		if tc.elements {
			injectFault(faultGetElements, 1)
		}
		var err error
		for err == nil {
			var ok bool
			if _, _, ok, err = Improbe(me, tagFault); ok {
				t.Fatalf("%+v: matched without the injected failure", tc)
			}
			if err == nil && ctx.Err() != nil {
				t.Fatalf("%+v: no message: %v", tc, ctx.Err())
			}
		}
		injectFault(faultGetCount, 0)
		injectFault(faultGetElements, 0)
		var e *Error
		want := fmt.Sprintf("(the message it matched, from rank %d with tag %d, was received and discarded)", me, tagFault)
		if !errors.As(err, &e) || e.Class != "MPI_ERR_INTERN" || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: Improbe: %v, want MPI_ERR_INTERN and %q", tc, err, want)
		}
		select {
		case err := <-sent:
			if err != nil {
				t.Errorf("%+v: Send: %v", tc, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%+v: Send still waits for its receive: the matched message was left unreceived", tc)
		}
		if _, _, ok, err := Improbe(me, tagFault); ok || err != nil {
			t.Errorf("%+v: after the failure, Improbe: ok=%v err=%v; want nothing left", tc, ok, err)
		}
		if d := liveHandles() - base; d != 0 {
			t.Errorf("%+v: %d handle(s) leaked", tc, d)
		}
	}
}

// TestDetachedSendFailure: when MPI_Test of a send that Send returned from
// fails (an injected fault) with its request still active, the next Send
// returns that error and sends nothing; the first message still arrives
// intact from its C copy, and its request is freed afterwards.
func TestDetachedSendFailure(t *testing.T) {
	defer agree(t)
	ctx := tctx(t)
	me := Rank()
	base := liveHandles()
	want := pattern(me+9, DetachMax) // above the eager limit to oneself
	b := bytes.Clone(want)
	if err := Send(b, me, tagFault); err != nil {
		t.Fatal(err)
	}
	clear(b)
	if d := liveHandles() - base; d != 1 {
		t.Skipf("a %d-byte send to oneself completed at once (%d live handles more): nothing detached to fail", len(want), d)
	}
	injectFault(faultTest, 1)
	_, _, ok, err := Improbe(me, tagLongWait) // its progress polls the send
	injectFault(faultTest, 0)
	if ok || err != nil {
		t.Fatalf("Improbe: ok=%v, %v", ok, err)
	}
	err = Send([]byte{1}, me, tagFault)
	var e *Error
	if !errors.As(err, &e) || e.Class != "MPI_ERR_INTERN" || !strings.Contains(err.Error(), "not sent: an earlier send failed") {
		t.Fatalf("the Send after: %v, want MPI_ERR_INTERN of the earlier send, and not sent", err)
	}
	if err := Send(nil, me, tagLongWait); err != nil {
		t.Errorf("a second Send: %v; the error was reported already", err)
	}
	if _, _, err := RecvAny(ctx, tagLongWait); err != nil {
		t.Fatal(err)
	}
	recvIntact(t, ctx, tagFault, want)
	awaitFreed(t, ctx, tagFault, base) // later calls complete the send and free its request
	if _, _, ok, err := Improbe(me, tagFault); ok || err != nil {
		t.Errorf("Improbe: ok=%v, %v; want nothing: the Send that returned the error sent nothing", ok, err)
	}
}

// TestSendTestFailure: when MPI_Test of a posted send fails (an injected
// fault) while its request is still active, Send returns the error, and the
// request and the pin on the buffer stay until MPI completes the send: the
// message (1 MiB, so MPI reads the buffer during the receive) arrives
// intact, then the request is freed.
func TestSendTestFailure(t *testing.T) {
	defer agree(t)
	ctx := tctx(t)
	me := Rank()
	base := liveHandles()
	want := pattern(me+7, 1<<20)
	b := bytes.Clone(want)
	injectFault(faultTest, 1)
	err := Send(b, me, tagFault)
	injectFault(faultTest, 0)
	var e *Error
	if !errors.As(err, &e) || e.Class != "MPI_ERR_INTERN" || !strings.Contains(err.Error(), "the send stays posted") {
		t.Fatalf("Send: %v, want MPI_ERR_INTERN and that the send stays posted", err)
	}
	if d := liveHandles() - base; d != 1 {
		t.Errorf("after the failed Send: %d live handles more than before, want 1 (its request, still active)", d)
	}
	b = nil
	runtime.GC() // the buffer is reachable only through its pin now
	recvIntact(t, ctx, tagFault, want)
	awaitFreed(t, ctx, tagFault, base) // later calls complete the send and free its request
}

// recvIntact receives the next message with tag and requires it to come from
// this rank with the bytes want.
func recvIntact(t *testing.T, ctx context.Context, tag int, want []byte) {
	t.Helper()
	from, got, err := RecvAny(ctx, tag)
	if err != nil || from != Rank() || !bytes.Equal(got, want) {
		t.Fatalf("RecvAny = %d, %d bytes (intact: %v), %v; want %d, the %d bytes sent", from, len(got), bytes.Equal(got, want), err, Rank(), len(want))
	}
}

// awaitFreed polls MPI (Improbe with tag) until the live handles are back to
// base: a completed send's request is freed by later calls.
func awaitFreed(t *testing.T, ctx context.Context, tag, base int) {
	t.Helper()
	for liveHandles() != base {
		if ctx.Err() != nil {
			t.Fatalf("a send's request was never freed: %d live handles more than before", liveHandles()-base)
		}
		if _, _, _, err := Improbe(Rank(), tag); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
}

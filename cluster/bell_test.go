package cluster

import (
	"context"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rung reports whether b's bell rings within d.
func rung(b *bells, d time.Duration) bool {
	select {
	case <-b.ring:
		return true
	case <-time.After(d):
		return false
	}
}

// TestBells: workers that present the offer's token connect, each ring
// reaches only its peer, a stranger (wrong token) and a second claim to a
// rank are turned away, and a broken connection leaves both ends incomplete
// with their waiters woken.
func TestBells(t *testing.T) {
	const size = 3
	srv, offer, err := listenBells(size)
	if err != nil {
		t.Skip("no TCP here:", err)
	}
	defer srv.close()
	addrs := strings.Split(string(offer[bellTokenLen:]), "\n")
	if len(addrs) == 0 || addrs[0] == "" {
		t.Fatalf("offer without addresses: %q", offer)
	}

	// A stranger: the right rank, a wrong token.
	c, err := net.Dial("tcp", addrs[len(addrs)-1])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(append(make([]byte, bellTokenLen), 0, 0, 0, 1))

	w1, err := dialBells(offer, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer w1.close()
	w2, err := dialBells(offer, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.close()
	if !srv.await(size-1, 5*time.Second) {
		t.Fatalf("rank 0: %d of %d workers connected", srv.live.Load(), size-1)
	}
	if !w1.complete() || !w2.complete() {
		t.Fatal("a worker's bell is not complete")
	}
	// The stranger was closed: its read ends.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("a connection with a wrong token was kept")
	}
	// Too late: set-up has ended, so even a right token is turned away.
	if late, err := dialBells(offer, 1); err == nil {
		if rung(late, 5*time.Second) && late.complete() {
			t.Error("a connection after set-up was kept")
		}
		late.close()
	}

	w1.ringPeer(0, ringMessage)
	if !rung(srv, 5*time.Second) {
		t.Fatal("worker 1's ring did not reach rank 0")
	}
	srv.ringPeer(2, ringMessage)
	if !rung(w2, 5*time.Second) {
		t.Fatal("rank 0's ring did not reach worker 2")
	}
	if rung(w1, 50*time.Millisecond) {
		t.Error("rank 0's ring to worker 2 woke worker 1")
	}
	if rung(srv, 50*time.Millisecond) {
		t.Error("rank 0's bell rang with no ring sent")
	}

	// Gates: rank 0 waits for both workers' gate rings, not for message rings.
	done := make(chan struct{})
	go func() {
		srv.awaitGates(context.Background(), 2)
		close(done)
	}()
	w1.ringPeer(0, ringMessage)
	w1.ringPeer(0, ringGate)
	select {
	case <-done:
		t.Fatal("awaitGates(2) returned after one gate ring")
	case <-time.After(100 * time.Millisecond):
	}
	w2.ringPeer(0, ringGate)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("awaitGates(2) did not return after two gate rings")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	srv.awaitGates(ctx, 1) // none comes: ctx ends it
	cancel()
	w1.ringPeer(0, ringGate) // the late ring counts for that call
	w2.ringPeer(0, ringGate)
	w1.ringPeer(0, ringGate)
	deadline := time.Now().Add(5 * time.Second)
	for srv.gates.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	t0 := time.Now()
	srv.awaitGates(context.Background(), 2)
	if time.Since(t0) > 500*time.Millisecond {
		t.Error("awaitGates(2) waited with two gate rings already in")
	}

	for rung(srv, 50*time.Millisecond) { // drain the tokens of the rings above
	}
	w2.close()
	if !rung(srv, 5*time.Second) {
		t.Fatal("a broken connection did not wake rank 0")
	}
	if srv.complete() {
		t.Error("rank 0 still relies on its bells after worker 2's connection broke")
	}
	srv.ringPeer(1, ringMessage) // still works for the others
	if !rung(w1, 5*time.Second) {
		t.Error("rank 0's ring did not reach worker 1 after worker 2 left")
	}
}

// TestBellsDuplicateRank: of two connections claiming one rank, one is kept.
func TestBellsDuplicateRank(t *testing.T) {
	srv, offer, err := listenBells(2)
	if err != nil {
		t.Skip("no TCP here:", err)
	}
	defer srv.close()
	a, err := dialBells(offer, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	b, err := dialBells(offer, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	if !srv.await(1, 5*time.Second) {
		t.Fatal("worker 1 did not connect")
	}
	select { // the other one is closed
	case <-a.ring:
	case <-b.ring:
	case <-time.After(5 * time.Second):
		t.Fatal("both connections for rank 1 were kept")
	}
	if a.complete() == b.complete() {
		t.Errorf("connections for rank 1 complete: %v and %v, want exactly one", a.complete(), b.complete())
	}
	if !srv.complete() {
		t.Error("rank 0 lost worker 1")
	}
}

// TestBellsDescriptorLimit: rank 0 refuses bells when its workers would use
// up the descriptor limit.
func TestBellsDescriptorLimit(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skip(err)
	}
	if b, _, err := listenBells(int(lim.Cur)); err == nil {
		b.close()
		t.Fatalf("bells for %d ranks under a limit of %d descriptors", lim.Cur, lim.Cur)
	} else if !strings.Contains(err.Error(), "file descriptors") {
		t.Errorf("error %q does not name the descriptor limit", err)
	}
}

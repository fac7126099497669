package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// bells is a TCP side channel beside MPI that lets a waiting rank block in
// the kernel instead of polling: MPI offers no blocking wait that does not
// busy-poll a core, and sleep-polling rank 0 cost it 1-30 ms of CPU per 1 s
// trial (docs/performance.md). Each worker holds one connection to rank 0;
// whoever sends a message to the other end writes one byte on it (a ring),
// and the reader of a connection signals ring, which mpi.WakeOn waits on.
// TCP keeps rings in order and loses none while the connection lives; when
// a connection breaks, its end stops relying on rings (complete is false)
// and its waits fall back to sleep-polling.
type bells struct {
	ring  chan struct{} // capacity 1: a pending ring is one token
	want  int           // connections of a complete set: Size()-1 on rank 0, 1 on a worker
	live  atomic.Int32  // connections up
	conns []net.Conn    // by peer rank; fixed once set-up ends

	// Gate rings, for collectives: a worker rings rank 0 when it enters a
	// Gather, rank 0 rings every worker when it enters a Scatter or Bcast.
	gates     atomic.Int64 // gate rings received
	gatesSeen int64        // gate rings awaitGates has consumed (the transport's goroutine)

	// rank 0 during set-up
	ln    net.Listener
	token []byte
	mu    sync.Mutex
	added chan struct{} // a worker's connection was registered
}

const (
	bellTokenLen = 16
	// bellDial bounds each connection attempt and the greeting: long enough
	// for a dropped SYN's retransmissions (1 s, then 3 s) when thousands of
	// workers connect at once and the listen backlog overflows.
	bellDial = 5 * time.Second
	// bellAwait bounds how long rank 0 waits for the workers that got
	// through to be registered.
	bellAwait = 30 * time.Second
	// bellSpareFDs is how many descriptors rank 0 keeps for everything else.
	bellSpareFDs = 512
	// bellWrite bounds a ring's write, so a stuck peer cannot stall a sender.
	bellWrite = time.Second
	// bellFallback is how late a wait sees a message whose ring never came.
	bellFallback = time.Second

	// Ring bytes: a message was sent; a collective was entered.
	ringMessage = 1
	ringGate    = 2
)

// listenBells opens rank 0's end for a job of size ranks and returns the
// offer every worker needs to connect: a random token, then the addresses
// rank 0 may be reached at, one per line.
func listenBells(size int) (*bells, []byte, error) {
	// One descriptor per worker: leave rank 0 room for its run directory,
	// MPI's own sockets and the rest (Go raises the soft limit to the hard
	// one at start).
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && uint64(size)+bellSpareFDs > lim.Cur {
		return nil, nil, fmt.Errorf("%d workers need more file descriptors than the limit of %d leaves", size-1, lim.Cur)
	}
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		return nil, nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	addrs, err := bellAddrs(port)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	b := &bells{ring: make(chan struct{}, 1), want: size - 1, conns: make([]net.Conn, size), ln: ln,
		token: make([]byte, bellTokenLen), added: make(chan struct{}, size)}
	rand.Read(b.token)
	go b.accept()
	offer := append(bytes.Clone(b.token), strings.Join(addrs, "\n")...)
	return b, offer, nil
}

// bellAddrs lists this host's addresses with port: routable ones first,
// loopback last (workers on this node).
func bellAddrs(port int) ([]string, error) {
	ifs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out, loop []string
	for _, a := range ifs {
		ip, ok := a.(*net.IPNet)
		if !ok || ip.IP.IsLinkLocalUnicast() || ip.IP.IsMulticast() {
			continue
		}
		hp := net.JoinHostPort(ip.IP.String(), fmt.Sprint(port))
		if ip.IP.IsLoopback() {
			loop = append(loop, hp)
		} else {
			out = append(out, hp)
		}
	}
	if out = append(out, loop...); len(out) == 0 {
		return nil, errors.New("no network address")
	}
	return out, nil
}

// accept registers workers' connections until the listener closes: a
// connection counts once it has sent the token and a rank not yet taken.
func (b *bells) accept() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		go b.greet(c)
	}
}

func (b *bells) greet(c net.Conn) {
	var hello [bellTokenLen + 4]byte
	c.SetDeadline(time.Now().Add(bellDial))
	if _, err := io.ReadFull(c, hello[:]); err != nil ||
		subtle.ConstantTimeCompare(hello[:bellTokenLen], b.token) != 1 {
		c.Close()
		return
	}
	rank := int(binary.BigEndian.Uint32(hello[bellTokenLen:]))
	c.SetDeadline(time.Time{})
	b.mu.Lock()
	if rank < 1 || rank >= len(b.conns) || b.conns[rank] != nil || b.ln == nil {
		b.mu.Unlock()
		c.Close()
		return
	}
	b.conns[rank] = c
	b.live.Add(1)
	b.mu.Unlock()
	go b.read(c)
	b.added <- struct{}{}
}

// await waits until n workers have registered or timeout passes, then stops
// accepting; it reports whether all Size()-1 workers are connected.
func (b *bells) await(n int, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for got := 0; got < n; got++ {
		select {
		case <-b.added:
		case <-deadline:
			got = n
		}
	}
	b.mu.Lock()
	b.ln.Close()
	b.ln = nil
	b.mu.Unlock()
	return b.complete()
}

// dialBells connects worker rank to rank 0's offer, trying its addresses in
// order.
func dialBells(offer []byte, rank int) (*bells, error) {
	if len(offer) <= bellTokenLen {
		return nil, errors.New("empty offer")
	}
	var hello [bellTokenLen + 4]byte
	copy(hello[:], offer[:bellTokenLen])
	binary.BigEndian.PutUint32(hello[bellTokenLen:], uint32(rank))
	var errs []error
	for _, addr := range strings.Split(string(offer[bellTokenLen:]), "\n") {
		c, err := net.DialTimeout("tcp", addr, bellDial)
		if err == nil {
			c.SetWriteDeadline(time.Now().Add(bellDial))
			if _, err = c.Write(hello[:]); err == nil {
				c.SetWriteDeadline(time.Time{})
				b := &bells{ring: make(chan struct{}, 1), want: 1, conns: []net.Conn{c}}
				b.live.Add(1)
				go b.read(c)
				return b, nil
			}
			c.Close()
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// read signals ring for every read that brings rings, and once more when the
// connection ends (the waiter then finds complete false).
func (b *bells) read(c net.Conn) {
	var buf [64]byte
	for {
		n, err := c.Read(buf[:])
		if g := bytes.Count(buf[:n], []byte{ringGate}); g > 0 {
			b.gates.Add(int64(g))
		}
		if err != nil {
			b.live.Add(-1)
			c.Close()
		}
		if n > 0 || err != nil {
			select {
			case b.ring <- struct{}{}:
			default:
			}
		}
		if err != nil {
			return
		}
	}
}

// complete reports whether every connection of the set is up: only then may
// a wait rely on rings.
func (b *bells) complete() bool { return b != nil && int(b.live.Load()) == b.want }

// conn returns the connection to peer, or nil (a worker has one, to rank 0).
func (b *bells) conn(peer int) net.Conn {
	if b == nil || peer < 0 || peer >= len(b.conns) {
		return nil
	}
	return b.conns[peer]
}

// ringPeer rings peer's bell with what (ringMessage, ringGate); a failed
// write closes the connection, which both ends then see as broken.
func (b *bells) ringPeer(peer int, what byte) {
	c := b.conn(peer)
	if c == nil {
		return
	}
	c.SetWriteDeadline(time.Now().Add(bellWrite))
	if _, err := c.Write([]byte{what}); err != nil {
		c.Close()
	}
}

// awaitGates blocks until n more gate rings have come than earlier calls
// consumed, then consumes them: rank 0 waits for every worker to enter a
// Gather, a worker for rank 0 to enter a Scatter or Bcast, before posting
// its part, so nobody polls a collective for the length of a trial. It
// gives up (and the caller polls MPI as without bells) when the set breaks,
// after bellFallback without a ring, or when ctx ends.
func (b *bells) awaitGates(ctx context.Context, n int) {
	b.gatesSeen += int64(n)
	var timer *time.Timer
	for b.gates.Load() < b.gatesSeen && b.complete() {
		if timer == nil {
			timer = time.NewTimer(bellFallback)
			defer timer.Stop()
		} else {
			timer.Reset(bellFallback)
		}
		select {
		case <-b.ring:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// close closes the listener and every connection.
func (b *bells) close() {
	if b == nil {
		return
	}
	b.mu.Lock()
	if b.ln != nil {
		b.ln.Close()
		b.ln = nil
	}
	conns := b.conns
	b.mu.Unlock()
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

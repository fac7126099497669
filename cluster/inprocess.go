package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
)

// ErrAborted is the error every pending and later call of every rank returns
// once one rank called Abort(Code) on an in-process transport.
type ErrAborted struct{ Code int }

func (e ErrAborted) Error() string {
	return "cluster: job aborted with code " + strconv.Itoa(e.Code)
}

// ErrClosed is wrapped by the error a rank's calls return after its transport
// was closed; errors.Is(err, ErrClosed) tells.
var ErrClosed = errors.New("transport closed")

// NewInProcess returns a job of size ranks that are goroutines of this
// process: element i is rank i's end, to be used by one goroutine (Close and
// Abort may come from any goroutine). It behaves like the MPI transport:
//
//   - Send copies b into rank to's mailbox and returns at once (an unbounded
//     buffer, like MPI's eager protocol without its size limit); Recv takes
//     messages from any rank in the order they arrived, so two messages from
//     one sender keep their order (on error it returns from = -1). Sending
//     to oneself is allowed.
//   - Collectives are matched by their position in each rank's sequence of
//     collective calls, as in MPI; a rank calling a different collective or
//     root at the same position gets an error, as do those waiting with it.
//     Bcast and Scatter return on root at once and wait on the others for
//     root; Gather returns at once on the others and waits on root for all;
//     AllreduceFloat32 and AllreduceOr wait on every rank for all.
//   - ctx ends a rank's wait with ctx.Err(). A collective cancelled while
//     waiting has still taken part (its contribution counts and its place in
//     the sequence is used), so the ranks stay aligned; MPI cannot cancel a
//     collective, so portable code treats a cancelled collective as fatal.
//   - Abort(code) makes every pending and later call of every rank return
//     ErrAborted{code}. Close ends one rank: its calls return an error
//     wrapping ErrClosed, sending to it fails, a collective that still needs
//     it fails, and a Recv fails once every other rank has closed and nothing
//     is queued.
//
// Every message is copied: a slice a call returns shares memory with no
// other rank, and a rank may reuse what it passed in once the call returns.
// On root, Bcast and Scatter return root's own b and parts[root].
//
// NewInProcess panics if size < 1.
func NewInProcess(size int) []Transport {
	if size < 1 {
		panic(fmt.Sprintf("cluster: NewInProcess(%d): size must be ≥ 1", size))
	}
	h := &hub{
		size:     size,
		boxes:    make([]mailbox, size),
		closed:   make([]bool, size),
		closedCh: make([]chan struct{}, size),
		rounds:   make(map[uint64]*round),
		abortCh:  make(chan struct{}),
	}
	ts := make([]Transport, size)
	for i := range size {
		h.boxes[i].wake = make(chan struct{}, 1)
		h.closedCh[i] = make(chan struct{})
		ts[i] = &inProcess{h: h, rank: i}
	}
	return ts
}

// hub is the state the ranks of one in-process job share; mu guards all of
// it. Waiting happens on channels outside mu.
type hub struct {
	size int

	mu        sync.Mutex
	boxes     []mailbox
	closed    []bool
	closedCh  []chan struct{} // closed when the rank closes
	rounds    map[uint64]*round
	aborted   bool
	abortCode int
	abortCh   chan struct{} // closed by the first Abort
}

type mailbox struct {
	queue []envelope
	wake  chan struct{} // capacity 1: "look again"
}

type envelope struct {
	from int
	b    []byte
}

// round is one collective call, shared by the ranks at the same position of
// their collective sequences.
type round struct {
	op, root int
	first    int    // the rank that opened the round, for mismatch errors
	arrived  []bool // ranks that have called it
	n        int    // how many have
	data     []byte // Bcast: root's b
	parts    [][]byte
	count    int         // Allreduce*: the length every rank must pass
	acc      []float32   // AllreduceFloat32: sum of ranks 0..folded-1
	pending  [][]float32 // AllreduceFloat32: copies of ranks ≥ folded that came early
	folded   int
	bits     []uint64      // AllreduceOr: OR of the ranks so far
	done     bool          // ready is closed
	ready    chan struct{} // closed when waiters can take their result, or err is set
	err      error
}

const (
	opBcast = iota
	opScatter
	opGather
	opAllreduceFloat32
	opAllreduceOr
)

var opNames = [...]string{opBcast: "Bcast", opScatter: "Scatter", opGather: "Gather",
	opAllreduceFloat32: "AllreduceFloat32", opAllreduceOr: "AllreduceOr"}

// callName names a collective call for errors: "Bcast(root 0)", "AllreduceOr".
func callName(op, root int) string {
	if op >= opAllreduceFloat32 {
		return opNames[op]
	}
	return opNames[op] + "(root " + strconv.Itoa(root) + ")"
}

// needsAll reports whether every rank's arrival is needed to finish a round
// of op (Gather's root and every rank of an allreduce wait for all).
func needsAll(op int) bool { return op == opGather || op >= opAllreduceFloat32 }

type inProcess struct {
	h    *hub
	rank int
	seq  uint64 // position in this rank's collective sequence; its goroutine's own
}

func (t *inProcess) Rank() int { return t.rank }
func (t *inProcess) Size() int { return t.h.size }

func (t *inProcess) errorf(op, format string, args ...any) error {
	return fmt.Errorf("cluster: rank %d: %s: %s", t.rank, op, fmt.Sprintf(format, args...))
}

// stateErr is the error for any call once the job is aborted or this rank
// closed. h.mu must be held.
func (t *inProcess) stateErr(op string) error {
	if t.h.aborted {
		return ErrAborted{t.h.abortCode}
	}
	if t.h.closed[t.rank] {
		return fmt.Errorf("cluster: rank %d: %s: %w", t.rank, op, ErrClosed)
	}
	return nil
}

func (t *inProcess) checkRank(op, what string, r int) error {
	if r < 0 || r >= t.h.size {
		return t.errorf(op, "%s %d: no such rank (size %d)", what, r, t.h.size)
	}
	return nil
}

func (t *inProcess) Send(to int, b []byte) error {
	h := t.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := t.stateErr("Send"); err != nil {
		return err
	}
	if err := t.checkRank("Send", "to rank", to); err != nil {
		return err
	}
	if h.closed[to] {
		return t.errorf("Send", "rank %d has closed", to)
	}
	box := &h.boxes[to]
	box.queue = append(box.queue, envelope{from: t.rank, b: bytes.Clone(b)})
	wake(box.wake)
	return nil
}

func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (t *inProcess) Recv(ctx context.Context) (from int, b []byte, err error) {
	h := t.h
	box := &h.boxes[t.rank]
	for {
		h.mu.Lock()
		if err := t.stateErr("Recv"); err != nil {
			h.mu.Unlock()
			return -1, nil, err
		}
		if err := ctx.Err(); err != nil {
			h.mu.Unlock()
			return -1, nil, err
		}
		if len(box.queue) > 0 {
			e := box.queue[0]
			box.queue[0] = envelope{}
			box.queue = box.queue[1:]
			h.mu.Unlock()
			return e.from, e.b, nil
		}
		if h.othersClosed(t.rank) {
			h.mu.Unlock()
			return -1, nil, t.errorf("Recv", "nothing queued, and every other rank has closed")
		}
		h.mu.Unlock()
		select {
		case <-box.wake:
		case <-ctx.Done():
		case <-h.abortCh:
		case <-h.closedCh[t.rank]:
		}
	}
}

// othersClosed reports whether no rank but r can still send. h.mu must be held.
func (h *hub) othersClosed(r int) bool {
	for q, c := range h.closed {
		if q != r && !c {
			return false
		}
	}
	return true
}

func (t *inProcess) Bcast(ctx context.Context, root int, b []byte) ([]byte, error) {
	r, err := t.collective(ctx, opBcast, root, func(r *round) error {
		r.data = bytes.Clone(b)
		return nil
	}, b)
	if err != nil {
		return nil, err
	}
	if t.rank == root {
		return b, nil
	}
	return bytes.Clone(r.data), nil // several ranks read r.data
}

func (t *inProcess) Scatter(ctx context.Context, root int, parts [][]byte) ([]byte, error) {
	r, err := t.collective(ctx, opScatter, root, func(r *round) error {
		if len(parts) != t.h.size {
			return t.errorf("Scatter", "root %d gave %d parts for %d ranks", root, len(parts), t.h.size)
		}
		r.parts = make([][]byte, len(parts))
		for i, p := range parts {
			if i != root {
				r.parts[i] = bytes.Clone(p)
			}
		}
		return nil
	}, nil)
	if err != nil {
		return nil, err
	}
	if t.rank == root {
		return parts[root], nil
	}
	return r.parts[t.rank], nil // only this rank reads its part
}

func (t *inProcess) Gather(ctx context.Context, root int, b []byte) ([][]byte, error) {
	r, err := t.collective(ctx, opGather, root, nil, b)
	if err != nil || t.rank != root {
		return nil, err
	}
	return r.parts, nil // only root reads them
}

// collective takes part in this rank's next collective call and, where the
// rank needs others (non-root of Bcast and Scatter, root of Gather), waits
// for the round to be ready. rootPart, run on root under h.mu, deposits
// root's data (Bcast, Scatter); mine is this rank's contribution to Gather.
func (t *inProcess) collective(ctx context.Context, op, root int, rootPart func(*round) error, mine []byte) (*round, error) {
	h := t.h
	name := opNames[op]
	h.mu.Lock()
	if err := t.stateErr(name); err != nil {
		h.mu.Unlock()
		return nil, err
	}
	if err := t.checkRank(name, "root", root); err != nil {
		h.mu.Unlock()
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		h.mu.Unlock()
		return nil, err
	}
	seq := t.seq
	t.seq++
	r := h.rounds[seq]
	if r == nil {
		r = &round{op: op, root: root, first: t.rank, arrived: make([]bool, h.size), ready: make(chan struct{})}
		if op == opGather {
			r.parts = make([][]byte, h.size)
		}
		h.rounds[seq] = r
	}
	r.arrived[t.rank] = true
	r.n++
	err := t.join(seq, r, op, root, rootPart, mine)
	h.settle(seq, r)
	h.mu.Unlock()
	if err != nil {
		return nil, err
	}

	waits := (op == opGather) == (t.rank == root)
	if !waits {
		return r, nil
	}
	select {
	case <-r.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-h.abortCh:
		return nil, t.abortErr()
	case <-h.closedCh[t.rank]:
		return nil, fmt.Errorf("cluster: rank %d: %s: %w", t.rank, name, ErrClosed)
	}
	if r.err != nil { // written before ready was closed
		return nil, r.err
	}
	return r, nil
}

func (t *inProcess) abortErr() error {
	t.h.mu.Lock()
	defer t.h.mu.Unlock()
	return ErrAborted{t.h.abortCode}
}

// join records this rank's part in round r. h.mu must be held.
func (t *inProcess) join(seq uint64, r *round, op, root int, rootPart func(*round) error, mine []byte) error {
	name := opNames[op]
	if r.op != op || r.root != root {
		err := t.errorf(name, "%s is collective call #%d of this rank, where rank %d called %s: every rank must call the same collectives in the same order",
			callName(op, root), seq, r.first, callName(r.op, r.root))
		r.fail(err)
		return err
	}
	if r.done && r.err != nil {
		return r.err
	}
	switch {
	case op == opGather:
		r.parts[t.rank] = bytes.Clone(mine)
		if r.n == t.h.size && !r.done {
			r.done = true
			close(r.ready)
		}
	case t.rank == root:
		if err := rootPart(r); err != nil {
			r.fail(err)
			return err
		}
		if !r.done {
			r.done = true
			close(r.ready)
		}
	}
	return nil
}

func (r *round) fail(err error) {
	if r.done {
		return
	}
	r.err = err
	r.done = true
	close(r.ready)
}

// settle fails round r if a rank it waits for has closed, and forgets it once
// every rank has called it or closed. h.mu must be held.
func (h *hub) settle(seq uint64, r *round) {
	if !r.done {
		for q := range h.size {
			needed := needsAll(r.op) || q == r.root
			if needed && !r.arrived[q] && h.closed[q] {
				r.fail(fmt.Errorf("cluster: %s, collective call #%d: rank %d closed before taking part", callName(r.op, r.root), seq, q))
				break
			}
		}
	}
	for q := range h.size {
		if !r.arrived[q] && !h.closed[q] {
			return
		}
	}
	delete(h.rounds, seq)
}

// AllreduceFloat32 sums in rank order: rank q's buf is added once ranks
// 0..q-1 are in, so a rank that comes early is copied and one that comes in
// turn is added straight from its buf. The sum is made once and copied to
// every rank, which makes it bit-identical everywhere.
func (t *inProcess) AllreduceFloat32(ctx context.Context, buf []float32) error {
	return t.allreduce(ctx, opAllreduceFloat32, len(buf), func(r *round) {
		if len(buf) == 0 {
			return
		}
		if t.rank != r.folded {
			r.pending[t.rank] = slices.Clone(buf)
			return
		}
		r.fold(buf)
		for r.folded < t.h.size && r.pending[r.folded] != nil {
			x := r.pending[r.folded]
			r.pending[r.folded] = nil
			r.fold(x)
		}
	}, func(r *round) { copy(buf, r.acc) })
}

// fold adds the next rank's x to the sum. h.mu must be held.
func (r *round) fold(x []float32) {
	if r.folded == 0 {
		r.acc = slices.Clone(x)
	} else {
		for i, v := range x {
			r.acc[i] += v
		}
	}
	r.folded++
}

// AllreduceOr ORs in arrival order: OR is exact in any order.
func (t *inProcess) AllreduceOr(ctx context.Context, bits []uint64) error {
	return t.allreduce(ctx, opAllreduceOr, len(bits), func(r *round) {
		if r.bits == nil {
			r.bits = slices.Clone(bits)
			return
		}
		for i, w := range bits {
			r.bits[i] |= w
		}
	}, func(r *round) { copy(bits, r.bits) })
}

// allreduce takes part in this rank's next collective call, an allreduce of
// n elements: add deposits this rank's part under h.mu, and once every rank
// has, out copies the result (read-only by then) back.
func (t *inProcess) allreduce(ctx context.Context, op, n int, add, out func(*round)) error {
	h := t.h
	name := opNames[op]
	h.mu.Lock()
	if err := t.stateErr(name); err != nil {
		h.mu.Unlock()
		return err
	}
	if err := ctx.Err(); err != nil {
		h.mu.Unlock()
		return err
	}
	seq := t.seq
	t.seq++
	r := h.rounds[seq]
	if r == nil {
		r = &round{op: op, root: -1, first: t.rank, count: n, arrived: make([]bool, h.size), ready: make(chan struct{})}
		if op == opAllreduceFloat32 {
			r.pending = make([][]float32, h.size)
		}
		h.rounds[seq] = r
	}
	r.arrived[t.rank] = true
	r.n++
	err := t.joinReduce(seq, r, op, n, add)
	h.settle(seq, r)
	h.mu.Unlock()
	if err != nil {
		return err
	}
	select {
	case <-r.ready:
	case <-ctx.Done():
		return ctx.Err()
	case <-h.abortCh:
		return t.abortErr()
	case <-h.closedCh[t.rank]:
		return fmt.Errorf("cluster: rank %d: %s: %w", t.rank, name, ErrClosed)
	}
	if r.err != nil {
		return r.err
	}
	out(r)
	return nil
}

// joinReduce records this rank's part in allreduce round r. h.mu must be held.
func (t *inProcess) joinReduce(seq uint64, r *round, op, n int, add func(*round)) error {
	name := opNames[op]
	if r.op != op {
		err := t.errorf(name, "%s is collective call #%d of this rank, where rank %d called %s: every rank must call the same collectives in the same order",
			name, seq, r.first, callName(r.op, r.root))
		r.fail(err)
		return err
	}
	if r.done && r.err != nil {
		return r.err
	}
	if n != r.count {
		err := t.errorf(name, "%d elements, where rank %d passed %d: every rank must pass the same length", n, r.first, r.count)
		r.fail(err)
		return err
	}
	add(r)
	if r.n == t.h.size && !r.done {
		r.done = true
		close(r.ready)
	}
	return nil
}

// Abort ends the job: every pending and later call of every rank returns
// ErrAborted{code}. The first code sticks; Abort itself returns nil.
func (t *inProcess) Abort(code int) error {
	h := t.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.aborted {
		h.aborted = true
		h.abortCode = code
		close(h.abortCh)
	}
	return nil
}

// Close ends this rank. Closing twice is not an error.
func (t *inProcess) Close() error {
	h := t.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed[t.rank] {
		return nil
	}
	h.closed[t.rank] = true
	close(h.closedCh[t.rank])
	h.boxes[t.rank].queue = nil
	for seq, r := range h.rounds {
		h.settle(seq, r)
	}
	for i := range h.boxes {
		wake(h.boxes[i].wake) // a Recv may now have nobody left to hear from
	}
	return nil
}

//go:build mpi

package mpi

/*
#include "shim.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Built reports whether this binary was built with MPI (the mpi build tag).
const Built = true

// init locks the main goroutine to the main thread: with ThreadFunneled only
// the thread that called MPI_Init_thread may call MPI, and without the lock
// the Go scheduler moves the main goroutine between threads (NOTES pitfall 2).
func init() { runtime.LockOSThread() }

const (
	stateNew int32 = iota
	stateUp
	stateDown
	// stateBroken: MPI_Init_thread succeeded but a later step of Init
	// failed. MPI may not be initialized again; Abort and Finalize still work.
	stateBroken
)

var (
	// mu serializes MPI calls and guards level and queue.
	mu    sync.Mutex
	level ThreadLevel
	// queue holds this rank's collectives in call order until they complete,
	// including those whose caller gave up (see runColl).
	queue []*coll
	// sends holds the sends that failed while their request was still
	// active: MPI may read their buffers until it completes them (progress).
	sends []*pendingSend
	// detached holds the small sends Send returned from before MPI
	// completed them; detachedErr is the first error of one completed since
	// the last Send, for the next Send to return.
	detached    []*pendingSend
	detachedErr error
	// initErr is why Init failed after MPI_Init_thread (stateBroken).
	initErr error

	state atomic.Int32
	rank  atomic.Int64
	size  atomic.Int64
	tagUB atomic.Int64

	start = time.Now()
)

func init() { rank.Store(-1) }

// op names a call and its peer for error messages, without allocating on the
// paths that succeed.
type op struct {
	name string
	peer string // "to rank", "from rank", "from root", "to root" or ""
	rank int
}

func (o op) String() string {
	switch {
	case o.peer == "":
		return o.name
	case o.rank == AnySource && o.peer == "from rank":
		return o.name + " from any source"
	}
	return o.name + " " + o.peer + " " + strconv.Itoa(o.rank)
}

// enter locks mu for a call of o, or returns why MPI may not be called here.
func enter(o op) error {
	mu.Lock()
	if state.Load() != stateUp {
		mu.Unlock()
		return fmt.Errorf("mpi: %s: %w", o, ErrNotInitialized)
	}
	if level < ThreadSerialized {
		return checkThread(o)
	}
	return nil
}

// checkThread returns why a call of o may not be made from this thread at
// level, after MPI_Is_thread_main (whose own failure is an error too). mu is
// held; it is unlocked when the call may not go on.
func checkThread(o op) error {
	var isMain C.int
	if rc := C.nasd_is_thread_main(&isMain); rc != 0 {
		err := mpiError(op{name: o.String() + ": MPI_Is_thread_main"}, rc)
		mu.Unlock()
		return err
	}
	if isMain == 0 {
		l := level
		mu.Unlock()
		return fmt.Errorf("mpi: %s: called from a thread other than the one that called Init, which MPI_THREAD_%s forbids: "+
			"make MPI calls from the goroutine that called Init, or Init with ThreadSerialized", o, l)
	}
	return nil
}

// mpiError turns an MPI return code into an *Error.
func mpiError(o op, rc C.int) error {
	var buf [1024]C.char
	C.nasd_error_string(rc, &buf[0], C.int(len(buf)))
	text := strings.TrimSpace(C.GoString(&buf[0]))
	text = strings.Join(strings.FieldsFunc(text, func(r rune) bool { return r == '\n' || r == '\r' }), "; ")
	class := C.GoString(C.nasd_error_class(rc))
	if !strings.HasPrefix(text, "MPI_ERR") {
		text = class + ": " + text
	}
	return &Error{Op: o.String(), Code: int(rc), Class: class, Text: text}
}

// Init initializes MPI, asking for thread support level l, and returns the
// level provided. Errors on MPI_COMM_WORLD are returned, not fatal. With a
// provided level below ThreadSerialized the calling goroutine stays locked to
// its thread and must make every later MPI call.
func Init(l ThreadLevel) (provided ThreadLevel, err error) {
	mu.Lock()
	defer mu.Unlock()
	switch state.Load() {
	case stateUp:
		return level, errors.New("mpi: Init: already initialized")
	case stateDown:
		return ThreadSingle, errors.New("mpi: Init: MPI was finalized and cannot be initialized again")
	case stateBroken:
		return ThreadSingle, fmt.Errorf("mpi: Init: an earlier Init failed after MPI_Init_thread had succeeded (%v), "+
			"and MPI cannot be initialized twice: call Abort (or Finalize)", initErr)
	}
	if l < ThreadSingle || l > ThreadMultiple {
		return ThreadSingle, fmt.Errorf("mpi: Init: unknown thread level %d", int(l))
	}
	// Stay on this thread through MPI_Init_thread; keep the lock if MPI
	// will insist on this thread.
	runtime.LockOSThread()
	var p, r, s, ub, inited C.int
	if rc := C.nasd_init(C.int(l), &p, &r, &s, &ub, &inited); rc != 0 {
		runtime.UnlockOSThread()
		err := mpiError(op{name: "Init"}, rc)
		if inited != 0 {
			// MPI is initialized, just not usable: a retry must not call
			// MPI_Init_thread again.
			level, initErr = ThreadLevel(p), err
			state.Store(stateBroken)
		}
		return ThreadSingle, err
	}
	level = ThreadLevel(p)
	if level >= ThreadSerialized {
		runtime.UnlockOSThread()
	}
	rank.Store(int64(r))
	size.Store(int64(s))
	tagUB.Store(int64(ub))
	state.Store(stateUp)
	return level, nil
}

// Finalize shuts MPI down. It refuses while a collective abandoned by its
// context is unfinished on this rank, since MPI_Finalize would then wait for
// peers that may never come; call Abort then.
// A send that failed while MPI still held its buffer blocks Finalize the same
// way. Sends Send returned from before they completed are waited for, up to
// finalizeWait, then block it too; the error of one that failed unreported is
// returned after MPI_Finalize. After an Init that failed past
// MPI_Init_thread, Finalize just calls MPI_Finalize.
func Finalize() error {
	o := op{name: "Finalize"}
	mu.Lock()
	if state.Load() == stateBroken {
		defer mu.Unlock()
		return finalize(o)
	}
	mu.Unlock()
	if err := enter(o); err != nil {
		return err
	}
	// MPI_Finalize needs every send complete: wait for the receivers of
	// the detached ones, as a blocking MPI_Send would have, unless Finalize
	// refuses anyway (below).
	var bo backoff
	t0 := time.Now()
	for progress(nil) && len(sends) == 0 && len(detached) > 0 && time.Since(t0) < finalizeWait {
		mu.Unlock()
		_ = bo.wait(context.Background())
		if err := enter(o); err != nil {
			return err
		}
	}
	defer mu.Unlock()
	if len(queue) > 0 {
		names := make([]string, len(queue))
		for i, c := range queue {
			names[i] = c.op.String()
		}
		return fmt.Errorf("mpi: Finalize: %d collective(s) abandoned by a context still unfinished (%s): "+
			"not finalizing, as this rank would wait for its peers; call Abort", len(queue), strings.Join(names, ", "))
	}
	if len(sends) > 0 {
		names := make([]string, len(sends))
		for i, ps := range sends {
			names[i] = ps.op.String()
		}
		return fmt.Errorf("mpi: Finalize: %d failed send(s) still posted (%s): not finalizing while MPI may use "+
			"their buffers; call Abort", len(sends), strings.Join(names, ", "))
	}
	if len(detached) > 0 {
		names := make([]string, len(detached))
		for i, ps := range detached {
			names[i] = ps.op.String()
		}
		return fmt.Errorf("mpi: Finalize: %d send(s) not received after %v (%s): not finalizing, as this rank "+
			"would wait for their receivers; call Abort", len(detached), time.Since(t0).Round(time.Millisecond),
			strings.Join(names, ", "))
	}
	if err := finalize(o); err != nil {
		return err
	}
	if err := detachedErr; err != nil {
		detachedErr = nil
		return fmt.Errorf("mpi: Finalize: an earlier send failed after Send had returned: %w", err)
	}
	return nil
}

// finalize calls MPI_Finalize; mu is held.
func finalize(o op) error {
	rc := C.nasd_finalize()
	state.Store(stateDown)
	rank.Store(-1)
	size.Store(0)
	if rc != 0 {
		return mpiError(o, rc)
	}
	return nil
}

// Initialized reports whether Init succeeded and Finalize has not been called.
func Initialized() bool { return state.Load() == stateUp }

// Rank returns this process's rank in MPI_COMM_WORLD, or -1 outside Init..Finalize.
func Rank() int { return int(rank.Load()) }

// Size returns the number of ranks in MPI_COMM_WORLD, or 0 outside Init..Finalize.
func Size() int { return int(size.Load()) }

// TagUB returns the largest tag MPI accepts (at least 32767), or 0 outside Init..Finalize.
func TagUB() int {
	if !Initialized() {
		return 0
	}
	return int(tagUB.Load())
}

// Wtime returns MPI_Wtime, seconds since an arbitrary time in the past; outside
// Init..Finalize, seconds since the program started.
func Wtime() float64 {
	if state.Load() == stateUp {
		return float64(C.nasd_wtime())
	}
	return time.Since(start).Seconds()
}

// LibraryVersion returns the MPI library's version string (MPI_Get_library_version).
func LibraryVersion() string {
	var buf [512]C.char
	C.nasd_library_version(&buf[0], C.int(len(buf)))
	return strings.TrimSpace(C.GoString(&buf[0]))
}

// Abort ends every rank of the job with code (MPI_Abort). It does not return
// when it works. Being the way out, it may be called from any goroutine,
// whatever the thread level.
func Abort(code int) error {
	o := op{name: "Abort"}
	// Wait a little for a call in progress on another goroutine, but not
	// forever: a job that must end should end.
	for i := 0; !mu.TryLock(); i++ {
		if i == 1000 {
			if !mpiInitialized() {
				return fmt.Errorf("mpi: %s: %w", o, ErrNotInitialized)
			}
			return mpiError(o, C.nasd_abort(C.int(code)))
		}
		time.Sleep(time.Millisecond)
	}
	defer mu.Unlock()
	if !mpiInitialized() {
		return fmt.Errorf("mpi: %s: %w", o, ErrNotInitialized)
	}
	return mpiError(o, C.nasd_abort(C.int(code)))
}

// mpiInitialized reports whether MPI_Init_thread succeeded and MPI_Finalize
// has not run, whether or not Init completed.
func mpiInitialized() bool {
	s := state.Load()
	return s == stateUp || s == stateBroken
}

// CheckLauncher returns an error when an MPI launcher started this process as
// one of several ranks but MPI_COMM_WORLD has a different size: the binary is
// linked against another MPI library than the launcher's, and every process
// would run as its own one-rank job (NOTES pitfall 7). Call it after Init.
func CheckLauncher() error {
	n, env := LauncherSize()
	if n <= 1 {
		return nil
	}
	if !Initialized() {
		return fmt.Errorf("mpi: CheckLauncher: %w", ErrNotInitialized)
	}
	if Size() == n {
		return nil
	}
	lib, _, _ := strings.Cut(LibraryVersion(), "\n")
	lib = strings.Join(strings.Fields(lib), " ")
	return fmt.Errorf("mpi: the launcher started %d ranks (%s=%d) but MPI_COMM_WORLD here has %d: "+
		"this binary is linked against %q, not the launcher's MPI, so every process runs alone; "+
		"rebuild for the launcher's library (`go build -tags mpi` for Open MPI, `-tags mpi,mpich` for MPICH) "+
		"or start it with that library's mpirun (mpirun.openmpi, mpirun.mpich)", n, env, n, Size(), lib)
}

// backoff paces a polling loop (NOTES pitfall 3) by its pace (pace.go). The
// sleeps are the C library's nanosleep, not time.Sleep: Go's timers here wake
// no sooner than about 1 ms (measured: time.Sleep(10µs) took 0.76 ms). The
// context is checked between polls, so it ends a wait within one sleep.
// With a wakeup (WakeOn) it blocks on the bell instead of sleeping.
type backoff struct {
	p     *pace
	w     *wakeup
	start time.Time
	d     time.Duration
	rung  time.Time // when the bell last woke this wait
	timer *time.Timer
}

// newBackoff returns the back-off for a wait under ctx: fastPace, or the
// pace LongWait or PromptLongWait marked it with, steadyPace for a collective;
// a point-to-point long wait takes ctx's wakeup too.
func newBackoff(ctx context.Context, coll bool) backoff {
	p, _ := ctx.Value(longWaitKey{}).(*pace)
	switch {
	case p == nil:
		return backoff{p: &fastPace}
	case coll:
		return backoff{p: &steadyPace}
	}
	w, _ := ctx.Value(wakeKey{}).(*wakeup)
	return backoff{p: p, w: w}
}

// afterRing is how long a wait woken by its bell polls at its pace's sleeps
// before it blocks again: a message may land a little after its ring (a
// send above DetachMax rings before it is posted).
const afterRing = 2 * time.Millisecond

// polls counts the waits between polls (tests).
var polls atomic.Int64

// wait pauses before the next poll; it returns ctx's error when ctx is done.
func (b *backoff) wait(ctx context.Context) error {
	polls.Add(1)
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.p == nil {
		b.p = &fastPace
	}
	now := time.Now()
	if b.start.IsZero() {
		b.start = now
	}
	if b.w != nil {
		return b.bell(ctx, now)
	}
	waited := now.Sub(b.start)
	b.d = b.p.next(waited, b.d)
	if b.d == 0 {
		runtime.Gosched()
		if waited > b.p.yieldAfter {
			C.nasd_yield()
		}
		return nil
	}
	C.nasd_sleep(C.long(b.d))
	return ctx.Err()
}

// bell waits for the next poll of a wait with a wakeup: no spin (the bell
// rings for every message), sleeps for a while after a ring, else it blocks
// until the bell rings, the wakeup's longest wait passes, or ctx ends.
func (b *backoff) bell(ctx context.Context, now time.Time) error {
	if !b.rung.IsZero() && now.Sub(b.rung) < afterRing {
		b.d = min(max(b.p.minSleep, 2*b.d), b.p.maxSleep)
		C.nasd_sleep(C.long(b.d))
		return ctx.Err()
	}
	if b.timer == nil {
		b.timer = time.NewTimer(b.w.longest)
	} else {
		b.timer.Reset(b.w.longest)
	}
	select {
	case <-b.w.ring:
		b.timer.Stop()
		b.rung, b.d = time.Now(), 0
		return nil
	case <-b.timer.C:
		return nil
	case <-ctx.Done():
		b.timer.Stop()
		return ctx.Err()
	}
}

// Send sends b to rank to with tag (0..TagUB()). A message of at most
// DetachMax bytes is copied to C memory and Send returns once it is posted:
// MPI completes it when the receiver takes it (Open MPI's shared-memory
// transport held sends of 760 bytes until then), and later calls poll it
// (Finalize waits for it). A larger one is sent from b, pinned, and Send
// returns when b may be reused, polling MPI_Isend's request so that a
// waiting sender does not burn a core. An error of a send that failed after
// Send returned is returned by the next Send, which then sends nothing (or by
// Finalize).
//
// When polling fails while MPI still holds the request, Send returns the
// error but the send stays posted: b stays pinned and the request allocated
// until MPI completes it (later calls poll it; Finalize refuses until then),
// so do not change b after such an error.
func Send(b []byte, to, tag int) error {
	o := op{"Send", "to rank", to}
	if len(b) > MaxCount {
		return countError(o.String(), len(b), "bytes")
	}
	if err := enter(o); err != nil {
		return err
	}
	if err := detachedErr; err != nil {
		// Reported here, as Send's own error would have been; the caller
		// must not assume this message went either.
		detachedErr = nil
		mu.Unlock()
		return fmt.Errorf("mpi: %s: not sent: an earlier send failed after Send had returned: %w", o, err)
	}
	ps := &pendingSend{op: o, req: newReq()}
	var p unsafe.Pointer
	switch {
	case len(b) > DetachMax:
		ps.pin.Pin(&b[0])
		p = unsafe.Pointer(&b[0])
	case len(b) > 0:
		ps.mem = C.malloc(C.size_t(len(b)))
		copy(cbytes(ps.mem, len(b)), b)
		p = ps.mem
	}
	if rc := C.nasd_isend(p, C.int(len(b)), C.int(to), C.int(tag), ps.req); rc != 0 {
		// Nothing was posted: MPI holds neither the request nor b.
		err := mpiError(o, rc)
		ps.release()
		mu.Unlock()
		return err
	}
	var bo backoff
	for {
		done, err := ps.poll()
		if err != nil {
			if !done {
				sends = append(sends, ps)
				err = fmt.Errorf("%w (the send stays posted: its buffer stays in use until MPI completes it)", err)
			}
			mu.Unlock()
			return err
		}
		if done {
			mu.Unlock()
			return nil
		}
		if ps.mem != nil || len(b) == 0 {
			detached = append(detached, ps)
			mu.Unlock()
			return nil
		}
		progress(nil)
		mu.Unlock()
		_ = bo.wait(context.Background())
		if err := enter(o); err != nil {
			mu.Lock()
			if mpiInitialized() {
				// MPI is up but refused this call here (MPI_Is_thread_main
				// failed): MPI may still read b.
				sends = append(sends, ps)
			} else {
				// Finalized meanwhile: MPI uses neither b nor the request now.
				ps.release()
			}
			mu.Unlock()
			return err
		}
	}
}

// DetachMax is the largest message Send copies and leaves to complete later;
// larger ones are sent from the caller's memory, without a copy, and Send
// returns once the receiver has taken them.
const DetachMax = 64 << 10

// finalizeWait bounds how long Finalize waits for detached sends' receivers.
const finalizeWait = time.Minute

// pendingSend is a posted MPI_Isend: its request and the pin of its buffer
// (or its copy in C memory), released only once MPI has completed the request.
type pendingSend struct {
	op  op
	req unsafe.Pointer
	pin runtime.Pinner
	mem unsafe.Pointer
}

// poll tests ps's request; done means it is complete and ps released. An
// error with done is the request's own (MPI completed and freed it); an error
// without done leaves the request active, and ps must be kept. mu is held.
func (ps *pendingSend) poll() (done bool, err error) {
	var flag C.int
	if rc := C.nasd_test(ps.req, &flag); rc != 0 {
		err = mpiError(ps.op, rc)
		if C.nasd_req_null(ps.req) == 0 {
			return false, err
		}
		flag = 1
	}
	if flag != 0 {
		ps.release()
		return true, err
	}
	return false, nil
}

func (ps *pendingSend) release() {
	freeReq(ps.req)
	ps.req = nil
	ps.pin.Unpin()
	if ps.mem != nil {
		C.free(ps.mem)
		ps.mem = nil
	}
}

// newReq returns C storage for one MPI_Request, set to MPI_REQUEST_NULL.
func newReq() unsafe.Pointer {
	req := C.malloc(C.nasd_req_size())
	C.nasd_req_init(req)
	return req
}

func freeReq(req unsafe.Pointer) { C.nasd_req_free(req) }

// matched is a Message's state: the C storage of its MPI_Message.
type matched struct {
	h  unsafe.Pointer
	st Status
}

// Status returns the status of the matched message.
func (m Message) Status() Status {
	if m.m == nil {
		return Status{}
	}
	return m.m.st
}

// Improbe looks for a message from source (a rank or AnySource) with tag (or
// AnyTag) without waiting. When one is there (ok), it is matched: no other
// receive can take it, and msg.Recv receives it.
func Improbe(source, tag int) (msg Message, st Status, ok bool, err error) {
	o := op{"Improbe", "from rank", source}
	if source < AnySource || tag < AnyTag {
		return Message{}, Status{}, false, fmt.Errorf("mpi: %s: invalid source %d or tag %d", o, source, tag)
	}
	if err := enter(o); err != nil {
		return Message{}, Status{}, false, err
	}
	var cs C.nasd_status
	var rc, discarded C.int
	h := C.nasd_improbe(C.int(source), C.int(tag), &rc, &cs, &discarded)
	if rc != 0 {
		err := mpiError(o, rc)
		if discarded != 0 {
			err = fmt.Errorf("%w (the message it matched, from rank %d with tag %d, was received and discarded)",
				err, int(cs.source), int(cs.tag))
		}
		mu.Unlock()
		return Message{}, Status{}, false, err
	}
	progress(nil)
	mu.Unlock()
	if h == nil {
		return Message{}, Status{}, false, nil
	}
	st = Status{Source: int(cs.source), Tag: int(cs.tag), Count: int(cs.count)}
	return Message{&matched{h: h, st: st}}, st, true, nil
}

// Recv receives the matched message (MPI_Mrecv). A message is received once;
// a second call returns an error.
func (m Message) Recv() ([]byte, error) {
	if m.m == nil {
		return nil, errors.New("mpi: Recv: zero Message (use the one Improbe returned with ok)")
	}
	o := op{"Recv", "from rank", m.m.st.Source}
	b := make([]byte, m.m.st.Count)
	if err := enter(o); err != nil {
		return nil, err
	}
	defer mu.Unlock()
	if m.m.h == nil {
		return nil, fmt.Errorf("mpi: %s: message received already", o)
	}
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	rc := C.nasd_mrecv(p, C.int(len(b)), m.m.h)
	m.m.h = nil
	if rc != 0 {
		return nil, mpiError(o, rc)
	}
	return b, nil
}

// RecvAny waits for the next message with tag (or AnyTag) from any rank and
// returns its sender and bytes. It polls with MPI_Improbe, backing off from
// 10 µs to 1 ms (from 50 µs to 2 ms under LongWait), and returns ctx.Err()
// itself when ctx ends first.
func RecvAny(ctx context.Context, tag int) (from int, b []byte, err error) {
	bo := newBackoff(ctx, false)
	for {
		m, st, ok, err := Improbe(AnySource, tag)
		if err != nil {
			return -1, nil, err
		}
		if ok {
			b, err := m.Recv()
			return st.Source, b, err
		}
		if err := bo.wait(ctx); err != nil {
			return -1, nil, err
		}
	}
}

// coll is one collective call on this rank: a chain of stages, each posting
// at most one non-blocking MPI call on req, with its buffers in C memory.
type coll struct {
	op        op
	req       unsafe.Pointer // C storage for the MPI_Request
	stages    []func() (posted bool, err error)
	deliver   func() // copies the result out to Go memory, unless abandoned
	next      int    // next stage to run
	posted    bool   // req is outstanding
	abandoned bool   // the caller's context ended; the result is discarded
	// hot: every rank has entered c, so what is left needs only progress,
	// which MPI makes in MPI_Test: poll without sleeping (see runColl).
	hot   bool
	done  bool // finished and off the queue
	mem   []unsafe.Pointer
	reuse []cbuf // from the scratch pool: back to it, not freed
	err   error
}

// alloc returns n bytes of C memory owned by c until it completes.
// (cgo's C.malloc never returns nil: it crashes like Go's own allocator.)
func (c *coll) alloc(n int) unsafe.Pointer {
	p := C.malloc(C.size_t(max(n, 1)))
	c.mem = append(c.mem, p)
	return p
}

// post turns the return code of a posting call into a stage's result.
func (c *coll) post(rc C.int) (bool, error) {
	if rc != 0 {
		return false, mpiError(c.op, rc)
	}
	return true, nil
}

// cbuf is a buffer of C memory and its capacity.
type cbuf struct {
	p unsafe.Pointer
	n int
}

// scratch keeps the large buffers of finished collectives for the next ones:
// a fresh malloc of tens of MB is fresh mmap'd pages whose faults, in this
// VM, made an Ialltoall of 40 MB 2 to 5 times slower than into used pages
// (measured in C, on a busy 2-core machine).
var scratch struct {
	sync.Mutex
	free []cbuf
}

const scratchKeep = 6 // buffers kept: three for each of two sizes in use

// allocReuse is alloc from the scratch pool: the smallest free buffer of at
// least n bytes, else a new one.
func (c *coll) allocReuse(n int) unsafe.Pointer {
	n = max(n, 1)
	scratch.Lock()
	best := -1
	for i, b := range scratch.free {
		if b.n >= n && (best < 0 || b.n < scratch.free[best].n) {
			best = i
		}
	}
	var b cbuf
	if best >= 0 {
		b = scratch.free[best]
		scratch.free = slices.Delete(scratch.free, best, best+1)
	}
	scratch.Unlock()
	if b.p == nil {
		b = cbuf{C.malloc(C.size_t(n)), n}
	}
	c.reuse = append(c.reuse, b)
	return b.p
}

func (c *coll) release() {
	for _, p := range c.mem {
		C.free(p)
	}
	c.mem = nil
	if len(c.reuse) > 0 {
		scratch.Lock()
		scratch.free = append(scratch.free, c.reuse...)
		// Keep the largest: they serve any smaller call too.
		slices.SortFunc(scratch.free, func(a, b cbuf) int { return b.n - a.n })
		for _, b := range scratch.free[min(len(scratch.free), scratchKeep):] {
			C.free(b.p)
		}
		scratch.free = scratch.free[:min(len(scratch.free), scratchKeep)]
		scratch.Unlock()
		c.reuse = nil
	}
	if c.req != nil {
		freeReq(c.req)
		c.req = nil
	}
}

// poll advances c as far as it can without waiting; it reports whether c is
// finished (with c.err set on failure). mu is held.
func (c *coll) poll() bool {
	for {
		if c.posted {
			var flag C.int
			if rc := C.nasd_test(c.req, &flag); rc != 0 {
				c.err = mpiError(c.op, rc)
				// MPI may still own the buffers: leak them rather than risk reuse.
				c.mem, c.reuse, c.req, c.posted = nil, nil, nil, false
				return true
			}
			if flag == 0 {
				return false
			}
			c.posted = false
		}
		if c.next == len(c.stages) {
			if !c.abandoned && c.deliver != nil {
				c.deliver()
			}
			c.release()
			return true
		}
		s := c.stages[c.next]
		c.next++
		posted, err := s()
		if err != nil {
			c.err = err
			c.release()
			return true
		}
		c.posted = posted
	}
}

// progress advances the queued collectives in order, removing finished ones,
// completes failed sends MPI has finished with, and reports whether c is
// finished (c == nil: whether the queue is empty). mu is held.
func progress(c *coll) bool {
	if len(detached) > 0 {
		kept := detached[:0]
		for _, ps := range detached {
			done, err := ps.poll()
			switch {
			case err != nil && !done:
				sends = append(sends, ps)
			case !done:
				kept = append(kept, ps)
			}
			if err != nil && detachedErr == nil {
				detachedErr = err
			}
		}
		clear(detached[len(kept):])
		detached = kept
	}
	if len(sends) > 0 {
		kept := sends[:0]
		for _, ps := range sends {
			// An error here leaves the send kept or released as poll says;
			// its caller already had its error.
			if done, _ := ps.poll(); !done {
				kept = append(kept, ps)
			}
		}
		clear(sends[len(kept):])
		sends = kept
	}
	for len(queue) > 0 && queue[0].poll() {
		queue[0].done = true
		queue[0] = nil
		queue = queue[1:]
	}
	if c == nil {
		return len(queue) == 0
	}
	return c.done
}

// runColl queues c behind this rank's unfinished collectives and drives the
// queue until c is finished or ctx ends. Collectives start in call order on
// every rank, as MPI requires, even when an earlier one was abandoned: it
// still completes, during later calls, once its peers take part.
func runColl(ctx context.Context, c *coll) error {
	if err := enter(c.op); err != nil {
		c.release()
		return err
	}
	c.req = newReq()
	queue = append(queue, c)
	mu.Unlock()
	bo := newBackoff(ctx, true)
	for {
		if err := enter(c.op); err != nil {
			return err
		}
		if progress(c) {
			mu.Unlock()
			return c.err
		}
		if err := ctx.Err(); err != nil {
			c.abandoned = true
			var behind string
			if queue[0] != c {
				behind = " (still finishing an earlier abandoned " + queue[0].op.String() + ")"
			}
			mu.Unlock()
			return fmt.Errorf("mpi: %s: %w%s", c.op, err, behind)
		}
		hot := c.hot && queue[0] == c
		mu.Unlock()
		if hot {
			// Large messages move in fragments as MPI_Test makes progress:
			// the back-off's sleeps would stall them (once measured: an
			// AllreduceBuckets of 5 MB, 129 ms with them, 47 ms without).
			runtime.Gosched()
			C.nasd_yield()
			continue
		}
		_ = bo.wait(ctx) // on ctx's end, the next round polls once more and gives up
	}
}

// Barrier waits until every rank has called it.
func Barrier() error { return BarrierContext(context.Background()) }

// BarrierContext is Barrier that gives up when ctx ends.
func BarrierContext(ctx context.Context) error {
	c := &coll{op: op{name: "Barrier"}}
	c.stages = []func() (bool, error){
		func() (bool, error) { return c.post(C.nasd_ibarrier(c.req)) },
	}
	return runColl(ctx, c)
}

// intSize is the size of a C int, the type of MPI's counts and displacements.
const intSize = int(unsafe.Sizeof(C.int(0)))

// cbytes views n bytes of C memory as a slice.
func cbytes(p unsafe.Pointer, n int) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(p), n)
}

// Bcast returns root's b on every rank (root gets b itself). The size travels
// first, so other ranks pass nil. Every rank must call it.
func Bcast(ctx context.Context, root int, b []byte) ([]byte, error) {
	c := &coll{op: op{"Bcast", "from root", root}}
	isRoot := Rank() == root
	n := (*int64)(c.alloc(8))
	*n = -1
	var data unsafe.Pointer
	var rootErr error
	if isRoot {
		if len(b) > MaxCount {
			rootErr = countError(c.op.String(), len(b), "bytes")
		} else {
			*n = int64(len(b))
			data = c.alloc(len(b))
			copy(cbytes(data, len(b)), b)
		}
	}
	var out []byte
	c.stages = []func() (bool, error){
		func() (bool, error) {
			return c.post(C.nasd_ibcast(unsafe.Pointer(n), 1, C.NASD_I64, C.int(root), c.req))
		},
		func() (bool, error) {
			switch {
			case *n < 0 && isRoot:
				return false, rootErr
			case *n < 0:
				return false, fmt.Errorf("mpi: %s: the root's message is too long: %w", c.op, ErrCountTooLarge)
			case *n == 0:
				return false, nil
			}
			if !isRoot {
				data = c.alloc(int(*n))
			}
			return c.post(C.nasd_ibcast(data, C.int(*n), C.NASD_BYTE, C.int(root), c.req))
		},
	}
	c.deliver = func() {
		if isRoot {
			out = b
			return
		}
		out = make([]byte, *n)
		copy(out, cbytes(data, int(*n)))
	}
	if err := runColl(ctx, c); err != nil {
		return nil, err
	}
	return out, nil
}

// Scatterv gives rank i the bytes parts[i] of root; parts is read on root
// only, where len(parts) must be Size(). Parts may differ in length and be
// empty; their total must fit MaxCount.
func Scatterv(ctx context.Context, root int, parts [][]byte) ([]byte, error) {
	c := &coll{op: op{"Scatterv", "from root", root}}
	p := Size()
	isRoot := Rank() == root
	var sizes, send, counts, displs unsafe.Pointer
	var rootErr error
	if isRoot {
		sizes = c.alloc(8 * p)
		s := unsafe.Slice((*int64)(sizes), p)
		total := 0
		if len(parts) != p {
			rootErr = fmt.Errorf("mpi: %s: %d parts for %d ranks", c.op, len(parts), p)
		} else {
			for i, b := range parts {
				if len(b) > MaxCount {
					rootErr = countError(c.op.String()+" (part for rank "+strconv.Itoa(i)+")", len(b), "bytes")
					break
				}
				total += len(b)
			}
			if rootErr == nil && total > MaxCount {
				rootErr = countError(c.op.String(), total, "bytes in all parts")
			}
		}
		if rootErr != nil {
			for i := range s {
				s[i] = -1
			}
		} else {
			send = c.alloc(total)
			counts, displs = c.alloc(intSize*p), c.alloc(intSize*p)
			cs, ds := unsafe.Slice((*C.int)(counts), p), unsafe.Slice((*C.int)(displs), p)
			buf := cbytes(send, total)
			off := 0
			for i, b := range parts {
				s[i], cs[i], ds[i] = int64(len(b)), C.int(len(b)), C.int(off)
				off += copy(buf[off:], b)
			}
		}
	}
	mine := (*int64)(c.alloc(8))
	var recv unsafe.Pointer
	var out []byte
	c.stages = []func() (bool, error){
		func() (bool, error) {
			return c.post(C.nasd_iscatter(sizes, 1, C.NASD_I64, unsafe.Pointer(mine), C.int(root), c.req))
		},
		func() (bool, error) {
			switch {
			case *mine < 0 && isRoot:
				return false, rootErr
			case *mine < 0:
				return false, fmt.Errorf("mpi: %s: the root rejected its parts (its error says why)", c.op)
			}
			recv = c.alloc(int(*mine))
			return c.post(C.nasd_iscatterv(send, (*C.int)(counts), (*C.int)(displs), recv, C.int(*mine), C.int(root), c.req))
		},
	}
	c.deliver = func() {
		out = make([]byte, *mine)
		copy(out, cbytes(recv, int(*mine)))
	}
	if err := runColl(ctx, c); err != nil {
		return nil, err
	}
	return out, nil
}

// Gatherv collects every rank's b on root, indexed by rank; other ranks get
// nil. Lengths may differ and be zero; their total must fit MaxCount. Every
// rank learns all lengths first, so a part that is too long fails the call on
// every rank alike.
func Gatherv(ctx context.Context, root int, b []byte) ([][]byte, error) {
	c := &coll{op: op{"Gatherv", "to root", root}}
	p := Size()
	isRoot := Rank() == root
	mine := (*int64)(c.alloc(8))
	*mine = -1
	var send unsafe.Pointer
	var localErr error
	if len(b) > MaxCount {
		localErr = countError(c.op.String(), len(b), "bytes")
	} else {
		*mine = int64(len(b))
		send = c.alloc(len(b))
		copy(cbytes(send, len(b)), b)
	}
	sizes := c.alloc(8 * p)
	var recv unsafe.Pointer
	total := 0
	var out [][]byte
	c.stages = []func() (bool, error){
		func() (bool, error) {
			return c.post(C.nasd_iallgather(unsafe.Pointer(mine), 1, C.NASD_I64, sizes, c.req))
		},
		func() (bool, error) {
			s := unsafe.Slice((*int64)(sizes), p)
			for i, n := range s {
				if n < 0 {
					if i == Rank() {
						return false, localErr
					}
					return false, fmt.Errorf("mpi: %s: rank %d's part is too long: %w", c.op, i, ErrCountTooLarge)
				}
				total += int(n)
			}
			if total > MaxCount {
				return false, countError(c.op.String(), total, "bytes in all parts")
			}
			if total == 0 {
				return false, nil
			}
			var counts, displs unsafe.Pointer
			if isRoot {
				recv = c.alloc(total)
				counts, displs = c.alloc(intSize*p), c.alloc(intSize*p)
				cs, ds := unsafe.Slice((*C.int)(counts), p), unsafe.Slice((*C.int)(displs), p)
				off := 0
				for i, n := range s {
					cs[i], ds[i] = C.int(n), C.int(off)
					off += int(n)
				}
			}
			return c.post(C.nasd_igatherv(send, C.int(*mine), recv, (*C.int)(counts), (*C.int)(displs), C.int(root), c.req))
		},
	}
	c.deliver = func() {
		if !isRoot {
			return
		}
		all := make([]byte, total)
		copy(all, cbytes(recv, total))
		out = make([][]byte, p)
		off := 0
		for i, n := range unsafe.Slice((*int64)(sizes), p) {
			out[i] = all[off : off+int(n) : off+int(n)]
			off += int(n)
		}
	}
	if err := runColl(ctx, c); err != nil {
		return nil, err
	}
	return out, nil
}

// AllreduceFloat32 replaces x on every rank by the element-wise sum of all
// ranks' x; every rank passes the same length. On error x is unchanged.
func AllreduceFloat32(ctx context.Context, x []float32) error {
	return allreduceSum(ctx, "AllreduceFloat32", x, C.NASD_F32)
}

// AllreduceFloat64 replaces x on every rank by the element-wise sum of all
// ranks' x; every rank passes the same length. On error x is unchanged.
func AllreduceFloat64(ctx context.Context, x []float64) error {
	return allreduceSum(ctx, "AllreduceFloat64", x, C.NASD_F64)
}

func allreduceSum[T float32 | float64](ctx context.Context, name string, x []T, t C.int) error {
	c := &coll{op: op{name: name}}
	if len(x) > MaxCount {
		return countError(name, len(x), "elements")
	}
	var zero T
	buf := c.alloc(len(x) * int(unsafe.Sizeof(zero)))
	var cx []T
	if len(x) > 0 {
		cx = unsafe.Slice((*T)(buf), len(x))
		copy(cx, x)
	}
	c.stages = []func() (bool, error){
		func() (bool, error) { return c.post(C.nasd_iallreduce_sum(buf, C.int(len(x)), t, c.req)) },
	}
	c.deliver = func() { copy(x, cx) }
	return runColl(ctx, c)
}

// sameCount returns the stages that start a collective whose ranks must all
// pass n elements: every rank learns every count, so a mismatch fails every
// rank alike instead of truncating or hanging inside MPI.
func (c *coll) sameCount(n int, unit string) []func() (bool, error) {
	p := Size()
	mine := (*int64)(c.alloc(8))
	*mine = int64(n)
	counts := c.alloc(8 * p)
	return []func() (bool, error){
		func() (bool, error) {
			return c.post(C.nasd_iallgather(unsafe.Pointer(mine), 1, C.NASD_I64, counts, c.req))
		},
		func() (bool, error) {
			for i, k := range unsafe.Slice((*int64)(counts), p) {
				if k != int64(n) {
					return false, fmt.Errorf("mpi: %s: rank %d passed %d %s: every rank must pass the same count", c.op, i, k, unit)
				}
			}
			c.hot = true // every rank has entered: no peer to wait for
			return false, nil
		},
	}
}

// AllreduceFloat32Ordered replaces x on every rank by the element-wise sum of
// all ranks' x, added in rank order in float32: ((x_0 + x_1) + x_2) + ...
// MPI only moves data (Ialltoall hands rank j block j of every rank's x,
// Iallgather spreads the sums), and rank j adds block j, so the result is
// bit-identical on every rank and depends only on the inputs and Size(),
// not on which algorithm MPI picks: MPI_Allreduce's order is unspecified (the
// standard only recommends reproducibility). Each rank sends
// 2(P-1)·ceil(n/P)·4 bytes, as in a ring allreduce. Every rank must pass the
// same length; a mismatch is an error on every rank. On error x is unchanged.
func AllreduceFloat32Ordered(ctx context.Context, x []float32) error {
	n := len(x)
	c := &coll{op: op{name: "AllreduceFloat32Ordered of " + strconv.Itoa(n) + " floats"}}
	if n > MaxCount {
		return countError(c.op.name, n, "elements")
	}
	p := Size()
	blk := (n + p - 1) / max(p, 1)
	var send, recv, sum unsafe.Pointer
	c.stages = append(c.sameCount(n, "floats"),
		func() (bool, error) {
			if n == 0 {
				return false, nil
			}
			send, recv = c.allocReuse(4*p*blk), c.allocReuse(4*p*blk)
			s := unsafe.Slice((*float32)(send), p*blk)
			clear(s[copy(s, x):]) // the last block's padding
			return c.post(C.nasd_ialltoall(send, C.int(blk), C.NASD_F32, recv, c.req))
		},
		func() (bool, error) {
			if n == 0 {
				return false, nil
			}
			r := unsafe.Slice((*float32)(recv), p*blk)
			sum = c.allocReuse(4 * blk)
			acc := unsafe.Slice((*float32)(sum), blk)
			copy(acc, r[:blk])
			for q := 1; q < p; q++ { // rank order, whatever order the blocks arrived in
				for i, v := range r[q*blk : (q+1)*blk] {
					acc[i] += v
				}
			}
			return c.post(C.nasd_iallgather(sum, C.int(blk), C.NASD_F32, send, c.req))
		},
	)
	c.deliver = func() {
		if n > 0 {
			copy(x, unsafe.Slice((*float32)(send), n))
		}
	}
	return runColl(ctx, c)
}

// AllreduceOrUint64 replaces x on every rank by the bitwise OR of all ranks'
// x (MPI_BOR, exact in any order). Every rank must pass the same length; a
// mismatch is an error on every rank. On error x is unchanged.
func AllreduceOrUint64(ctx context.Context, x []uint64) error {
	n := len(x)
	c := &coll{op: op{name: "AllreduceOrUint64 of " + strconv.Itoa(n) + " words"}}
	if n > MaxCount {
		return countError(c.op.name, n, "elements")
	}
	buf := c.alloc(8 * n)
	if n > 0 {
		copy(unsafe.Slice((*uint64)(buf), n), x)
	}
	c.stages = append(c.sameCount(n, "words"),
		func() (bool, error) {
			if n == 0 {
				return false, nil
			}
			return c.post(C.nasd_iallreduce_bor(buf, C.int(n), C.NASD_U64, c.req))
		},
	)
	c.deliver = func() {
		if n > 0 {
			copy(x, unsafe.Slice((*uint64)(buf), n))
		}
	}
	return runColl(ctx, c)
}

// truncateError formats the error of MPI_ERR_TRUNCATE for o, which no call of
// this package can provoke (receive buffers are sized from the probe); the
// tests use it to check the formatting of library errors.
func truncateError(o op) error { return mpiError(o, C.MPI_ERR_TRUNCATE) }

// fault names a step of the C shim that injectFault can make fail.
type fault int

const (
	faultInit         fault = C.NASD_FAULT_INIT           // after MPI_Init_thread succeeded
	faultIsThreadMain fault = C.NASD_FAULT_IS_THREAD_MAIN // MPI_Is_thread_main
	faultGetCount     fault = C.NASD_FAULT_GET_COUNT      // MPI_Get_count of a matched message
	faultGetElements  fault = C.NASD_FAULT_GET_ELEMENTS   // MPI_Get_elements_x of a message being discarded
	faultTest         fault = C.NASD_FAULT_TEST           // MPI_Test of a request
)

// injectFault makes the next n calls of step f fail with MPI_ERR_INTERN
// without calling MPI (n = 0 clears it). For the tests: the error paths
// around those calls cannot be reached otherwise.
func injectFault(f fault, n int) {
	mu.Lock()
	defer mu.Unlock()
	C.nasd_inject(C.int(f), C.int(n))
}

// liveHandles is the number of requests and matched messages whose C storage
// is not freed, for the tests to see leaks.
func liveHandles() int {
	mu.Lock()
	defer mu.Unlock()
	return int(C.nasd_live_handles())
}

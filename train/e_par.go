package train

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// Allocation-free parallel loops for every op and the optimizer: a kernel
// implements ranger (a method on a struct the op owns, whose fields carry the
// call's arguments) and runs on persistent workers fed through a channel, so
// a step allocates nothing.
//
// Determinism: parRange splits [0, n) into p = min(GOMAXPROCS, n) contiguous
// ranges, and every user writes each output element (or each per-channel
// reduction) from exactly one range, summing sequentially inside it; results
// therefore do not depend on the thread count or scheduling. parPartsRange
// splits [0, n) into a fixed number of parts instead, taken dynamically by
// the threads: parts, not threads, own scratch and partial sums.

// ranger is a loop body over [lo, hi); part is the range's index (< p), for
// per-part scratch.
type ranger interface{ runRange(part, lo, hi int) }

// parDone is the completion state of one parallel call; each op embeds one
// (an op never runs concurrently with itself).
type parDone struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	err  any
	next atomic.Int64 // parPartsRange: the next part to take
}

// parJob runs r over [lo, hi) as part; or, when parts > 0, takes parts of
// [0, n) from done.next until none is left.
type parJob struct {
	r            ranger
	part, lo, hi int
	n, parts     int
	done         *parDone
}

var (
	parJobs    = make(chan parJob, 256)
	parMu      sync.Mutex
	parWorkers int
)

func parWorker() {
	for j := range parJobs {
		runJob(j)
	}
}

func runJob(j parJob) {
	defer func() {
		if r := recover(); r != nil {
			j.done.mu.Lock()
			if j.done.err == nil {
				// The kernel's stack, which the re-panic on the caller loses.
				j.done.err = fmt.Sprintf("%v\n%s", r, debug.Stack())
			}
			j.done.mu.Unlock()
		}
		j.done.wg.Done()
	}()
	if j.parts == 0 {
		j.r.runRange(j.part, j.lo, j.hi)
		return
	}
	for {
		k := int(j.done.next.Add(1) - 1)
		if k >= j.parts {
			return
		}
		j.r.runRange(k, k*j.n/j.parts, (k+1)*j.n/j.parts)
	}
}

// startWorkers makes sure at least w persistent workers exist.
func startWorkers(w int) {
	parMu.Lock()
	for parWorkers < w {
		go parWorker()
		parWorkers++
	}
	parMu.Unlock()
}

// parts returns the number of ranges parRange will use for n items of the
// given cost each.
func parts(n, cost int) int {
	p := min(runtime.GOMAXPROCS(0), n)
	if p <= 1 || n*cost < minParallel {
		return 1
	}
	return p
}

// parRange runs r over [0, n) split into parts(n, cost) ranges; the calling
// goroutine runs range 0. A panic in r is re-raised on the caller.
func parRange(n, cost int, r ranger, d *parDone) { parRangeIn(n, parts(n, cost), r, d) }

// parRangeIn runs r over [0, n) split into p ranges (p from parts): for an op
// that sized per-part scratch for p, since GOMAXPROCS may change between two
// calls of parts.
func parRangeIn(n, p int, r ranger, d *parDone) {
	if p <= 1 {
		r.runRange(0, 0, n)
		return
	}
	startWorkers(p - 1)
	d.err = nil
	d.wg.Add(p - 1)
	for w := 1; w < p; w++ {
		parJobs <- parJob{r: r, part: w, lo: w * n / p, hi: (w + 1) * n / p, done: d}
	}
	d.wg.Add(1)
	runJob(parJob{r: r, part: 0, lo: 0, hi: n / p, done: d})
	d.wg.Wait()
	if d.err != nil {
		panic(fmt.Sprint(d.err))
	}
}

// parPartsRange runs r over [0, n) split into min(parts, n) contiguous parts
// (part k is [k·n/parts, (k+1)·n/parts)), at most GOMAXPROCS at a time, the
// calling goroutine included. A panic in r is re-raised on the caller.
func parPartsRange(n, parts int, r ranger, d *parDone) {
	parts = min(parts, n)
	p := min(runtime.GOMAXPROCS(0), parts)
	if p <= 1 {
		for k := range parts {
			r.runRange(k, k*n/parts, (k+1)*n/parts)
		}
		return
	}
	startWorkers(p - 1)
	d.err = nil
	d.next.Store(0)
	d.wg.Add(p)
	for range p - 1 {
		parJobs <- parJob{r: r, n: n, parts: parts, done: d}
	}
	runJob(parJob{r: r, n: n, parts: parts, done: d})
	d.wg.Wait()
	if d.err != nil {
		panic(fmt.Sprint(d.err))
	}
}

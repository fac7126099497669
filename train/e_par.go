package train

import (
	"fmt"
	"runtime"
	"sync"
)

// Allocation-free parallel loops for the element-wise ops, pooling, batch
// norm and the optimizer. parFor allocates a closure and goroutines per call;
// these kernels instead implement ranger (a method on a struct the op owns,
// whose fields carry the call's arguments) and run on persistent workers fed
// through a channel, so a step allocates nothing.
//
// Determinism: [0, n) is split into p = min(GOMAXPROCS, n) contiguous ranges
// as parFor does, and every user writes each output element (or each
// per-channel reduction) from exactly one range, summing sequentially inside
// it; results therefore do not depend on the thread count or scheduling.

// ranger is a loop body over [lo, hi); part is the range's index (< p), for
// per-part scratch.
type ranger interface{ runRange(part, lo, hi int) }

// parDone is the completion state of one parallel call; each op embeds one
// (an op never runs concurrently with itself).
type parDone struct {
	wg  sync.WaitGroup
	mu  sync.Mutex
	err any
}

type parJob struct {
	r            ranger
	part, lo, hi int
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
				j.done.err = r
			}
			j.done.mu.Unlock()
		}
		j.done.wg.Done()
	}()
	j.r.runRange(j.part, j.lo, j.hi)
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
func parRange(n, cost int, r ranger, d *parDone) {
	p := parts(n, cost)
	if p == 1 {
		r.runRange(0, 0, n)
		return
	}
	parMu.Lock()
	for parWorkers < p-1 {
		go parWorker()
		parWorkers++
	}
	parMu.Unlock()
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

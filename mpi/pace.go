package mpi

import "time"

// pace is a back-off profile for polling: for the first spin the poller
// polls back to back (yielding to other goroutines and, after yieldAfter,
// to other processes on the core: oversubscribed ranks; yielding at once
// cost 40 µs per round trip on a busy machine), then it sleeps from minSleep
// doubling to maxSleep, or to 1/stretch of the time waited so far when that
// is longer, up to longest.
type pace struct {
	spin, yieldAfter   time.Duration
	minSleep, maxSleep time.Duration
	stretch            time.Duration // 0: sleeps stay at most maxSleep
	longest            time.Duration
}

var (
	// fastPace, for request/reply and collectives: the spin is as long as
	// the longest sleep so that two ranks bouncing messages do not fall into
	// sleeping in turn (with a 50 µs spin a 1-byte round trip took 0.5-0.9 ms
	// instead of 3 µs).
	fastPace = pace{spin: time.Millisecond, yieldAfter: 50 * time.Microsecond,
		minSleep: 10 * time.Microsecond, maxSleep: time.Millisecond}
	// longPace, for waits marked with LongWait (a worker waiting for its next
	// task, rank 0 for results): a 1 ms spin per trial was most of rank 0's
	// cost per trial (docs/performance.md), so spin only briefly. A wake
	// costs 40-60 µs of CPU in this VM (nanosleep plus Go's cgo handoff), and
	// 63 idle ranks waking every 2 ms took both cores, so after 100 ms the
	// sleeps grow with the wait: a message is seen at most 2 ms or 2 % of the
	// time waited late (≤ 20 ms), noise next to trials of seconds or minutes.
	longPace = pace{spin: 20 * time.Microsecond, yieldAfter: 20 * time.Microsecond,
		minSleep: 50 * time.Microsecond, maxSleep: 2 * time.Millisecond,
		stretch: 50, longest: 20 * time.Millisecond}
	// steadyPace is longPace without the growth, for collectives (their
	// steps need every rank's polls in turn: an allgather of 64 ranks has 6,
	// so long sleeps add up) and PromptLongWait (rank 0 for results: with 1 s
	// trials the growth had it see a burst of 63 results up to 20 ms late,
	// and workers 96 % busy instead of 98 %).
	steadyPace = pace{spin: longPace.spin, yieldAfter: longPace.yieldAfter,
		minSleep: longPace.minSleep, maxSleep: longPace.maxSleep}
)

// next returns the sleep before the next poll of a wait that began waited
// ago, whose last sleep was d (0: none yet); 0 means poll again at once.
func (p *pace) next(waited, d time.Duration) time.Duration {
	if waited < p.spin {
		return 0
	}
	if d == 0 {
		return p.minSleep
	}
	return min(2*d, p.limit(waited))
}

// limit is the longest sleep after waiting for waited.
func (p *pace) limit(waited time.Duration) time.Duration {
	if p.stretch == 0 {
		return p.maxSleep
	}
	return max(p.maxSleep, min(waited/p.stretch, p.longest))
}

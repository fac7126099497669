package mpi

import (
	"testing"
	"time"
)

// simulate runs p's schedule on a clock where a poll takes poll, until
// until; it returns the polls' times.
func simulate(p *pace, poll, until time.Duration) []time.Duration {
	var at []time.Duration
	var d time.Duration
	for t := time.Duration(0); t < until; {
		at = append(at, t)
		t += poll
		d = p.next(t, d)
		t += d
	}
	return at
}

// TestPaceSchedule: a long wait spins briefly, then polls rarely, and a
// message is still seen within max(2 ms, 2 % of the wait) (≤ 20 ms), as
// longPace's comment and LongWait promise; steadyPace (PromptLongWait)
// within 2 ms however long the wait; the fast pace keeps its 1 ms spin.
func TestPaceSchedule(t *testing.T) {
	const poll = time.Microsecond
	for _, tc := range []struct {
		name     string
		p        *pace
		wait     time.Duration
		maxPolls int // over wait
		late     func(at time.Duration) time.Duration
	}{
		{"long", &longPace, 300 * time.Millisecond, 150,
			func(at time.Duration) time.Duration { return max(2*time.Millisecond, min(at/50, 20*time.Millisecond)) }},
		{"long, a minute", &longPace, time.Minute, 3200,
			func(at time.Duration) time.Duration { return max(2*time.Millisecond, min(at/50, 20*time.Millisecond)) }},
		{"steady, a minute", &steadyPace, time.Minute, 30100,
			func(time.Duration) time.Duration { return 2 * time.Millisecond }},
		{"fast", &fastPace, 300 * time.Millisecond, 1 << 30,
			func(time.Duration) time.Duration { return time.Millisecond }},
	} {
		at := simulate(tc.p, poll, tc.wait)
		spins := 0
		for _, a := range at {
			if a < tc.p.spin {
				spins++
			}
		}
		if last := at[len(at)-1]; tc.wait-last > tc.late(tc.wait)+poll {
			t.Errorf("%s: last poll at %v of %v", tc.name, last, tc.wait)
		}
		for i := 1; i < len(at); i++ {
			// A message that arrives just after poll i-1 is seen at poll i.
			if gap, bound := at[i]-at[i-1], tc.late(at[i-1]+poll)+poll; gap > bound {
				t.Fatalf("%s: polls at %v and %v: a message is seen %v late, more than %v", tc.name, at[i-1], at[i], gap, bound)
			}
		}
		if sleeps := len(at) - spins; sleeps > tc.maxPolls {
			t.Errorf("%s: %d sleeping polls in %v, want at most %d", tc.name, sleeps, tc.wait, tc.maxPolls)
		}
		t.Logf("%s: %d polls spinning, %d after sleeps in %v", tc.name, spins, len(at)-spins, tc.wait)
	}
	if longPace.spin > 50*time.Microsecond {
		t.Errorf("longPace spins %v: a long wait should spin only a few µs", longPace.spin)
	}
	if fastPace.spin < fastPace.maxSleep {
		t.Errorf("fastPace spins %v, less than its longest sleep %v: request/reply would fall into sleeping in turn",
			fastPace.spin, fastPace.maxSleep)
	}
}

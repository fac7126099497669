package main

import (
	"math"
	"testing"
	"time"
)

func TestSteadyBusy(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	span := func(rank int, a, b float64) trialSpan { return trialSpan{rank, at(a), at(b)} }
	spans := []trialSpan{
		span(1, 0, 1), span(1, 1.1, 2.1), span(1, 2.2, 3.0),
		span(2, 0.5, 1.5), span(2, 1.5, 2.5),
	}
	// Window [0.5, 2.5]: rank 1 busy 0.5 + 1.0 + 0.3, rank 2 the whole 2 s.
	frac, window, ok := steadyBusy(spans, 2)
	if !ok || window != 2*time.Second || math.Abs(frac-3.8/4) > 1e-9 {
		t.Fatalf("steadyBusy = %v, %v, %v; want 0.95 over 2s", frac, window, ok)
	}
	if _, _, ok := steadyBusy(spans, 3); ok {
		t.Error("a worker without trials: want no steady figure")
	}
	if _, _, ok := steadyBusy([]trialSpan{span(1, 0, 1), span(2, 1, 2)}, 2); ok {
		t.Error("no moment when both had work: want no steady figure")
	}
	if _, _, ok := steadyBusy(nil, 0); ok {
		t.Error("no workers: want no steady figure")
	}
}

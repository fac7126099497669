package controller

import (
	"context"

	"nasd/cluster"
	"nasd/journal"
)

// RunHooked is Run with a function called after every commit or flush of
// the event log (n counts them from 1), where tests copy the run directory
// to simulate a kill -9 at that point, and one called after every fsync.
func RunHooked(ctx context.Context, cfg Config, s Strategy, t cluster.Transport, run *journal.Run, log *journal.Log,
	resume bool, progress func(Progress), afterWrite func(n int), afterSync func()) (Summary, error) {
	return runLoop(ctx, cfg, s, t, run, log, resume, progress, hooks{afterWrite: afterWrite, afterSync: afterSync})
}

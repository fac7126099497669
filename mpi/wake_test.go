package mpi

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// BenchmarkWakeCPU measures what waking costs this machine in CPU: the
// floor under rank 0's cost per trial when results come apart
// (docs/performance.md, "What one wake costs"). Each iteration sleeps gap,
// then wakes: a raw nanosleep (a thread waking, as the back-off's sleeps),
// Go's time.Sleep (a timer, Go's scheduler), and a read of a pipe that
// another process writes a byte to every gap (a bell: Go's netpoller, then
// the reading goroutine). cpu-µs/wake is this process's CPU (getrusage)
// per wake; on an idle physical core it is a few µs.
//
//	go test -run '^$' -bench WakeCPU -benchtime 50x ./mpi
func BenchmarkWakeCPU(b *testing.B) {
	for _, gap := range []time.Duration{time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond} {
		b.Run("nanosleep/"+gap.String(), func(b *testing.B) {
			ts := syscall.NsecToTimespec(gap.Nanoseconds())
			wakeCPU(b, func() { syscall.Nanosleep(&ts, nil) })
		})
		b.Run("time.Sleep/"+gap.String(), func(b *testing.B) {
			wakeCPU(b, func() { time.Sleep(gap) })
		})
		b.Run("pipe/"+gap.String(), func(b *testing.B) {
			r, w, err := os.Pipe()
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			// The writer is another process, so its CPU is not counted.
			ringer := exec.Command("sh", "-c", fmt.Sprintf("while :; do sleep %g; printf x || exit; done", gap.Seconds()))
			ringer.Stdout = w
			if err := ringer.Start(); err != nil {
				b.Skip("no sh:", err)
			}
			w.Close()
			defer func() { ringer.Process.Kill(); ringer.Wait() }()
			var one [1]byte
			wakeCPU(b, func() {
				if _, err := r.Read(one[:]); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// wakeCPU runs wake b.N times and reports this process's CPU per wake.
func wakeCPU(b *testing.B, wake func()) {
	wake() // the first wake may find a ring that came before
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	for range b.N {
		wake()
	}
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() - ru0.Utime.Nano() + ru1.Stime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/wake")
}

package journal

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkEvent logs typical trial_result events (~420 bytes of JSON each):
// without flushing (the encoder's throughput and its compression over a long
// stream), with a Commit (zstd block + write) after every event, what an
// async search does per result, and with a Flush (Commit + fsync) after every
// event or every 10.
func BenchmarkEvent(b *testing.B) {
	for _, bc := range []struct {
		name  string
		every int
		sync  bool
	}{{"flush=none", 0, false}, {"commit=each", 1, false}, {"flush=each", 1, true}, {"flush=every10", 10, true}} {
		b.Run(bc.name, func(b *testing.B) {
			r, err := Create(filepath.Join(b.TempDir(), "run"))
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			l, err := r.NewLog("bench")
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			for i := 1; i <= b.N; i++ {
				trialResult(l, i)
				if bc.every > 0 && i%bc.every == 0 {
					durable := l.Commit
					if bc.sync {
						durable = l.Flush
					}
					if err := durable(); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			fi, err := os.Stat(l.Path())
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(fi.Size())/float64(b.N), "B/event")
		})
	}
}

// BenchmarkFlush is the latency of Flush after one trial_result event: a
// compressed block written and the file fsynced.
func BenchmarkFlush(b *testing.B) {
	r, err := Create(filepath.Join(b.TempDir(), "run"))
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	l, err := r.NewLog("bench")
	if err != nil {
		b.Fatal(err)
	}
	for i := 1; i <= 100; i++ { // a warm encoder, as in a running search
		trialResult(l, i)
	}
	l.Flush()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		trialResult(l, 101+i)
		b.StartTimer()
		if err := l.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadEvents reads back a 20,000-event log (flushed every 10).
func BenchmarkReadEvents(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "run")
	r, err := Create(dir)
	if err != nil {
		b.Fatal(err)
	}
	l, _ := r.NewLog("bench")
	const n = 20000
	for i := 1; i <= n; i++ {
		trialResult(l, i)
		if i%10 == 0 {
			l.Flush()
		}
	}
	r.Close()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		count := 0
		if _, err := ReadEvents(dir, func(Event) error { count++; return nil }); err != nil || count != n {
			b.Fatal(count, err)
		}
	}
	b.ReportMetric(float64(b.N*n)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkCheckpoint saves and loads a checkpoint with a 1 MiB JSON state.
func BenchmarkCheckpoint(b *testing.B) {
	state := make([]byte, 0, 1<<20)
	state = append(state, '[')
	for i := 0; len(state) < 1<<20-32; i++ {
		if i > 0 {
			state = append(state, ',')
		}
		state = append(state, []byte(`{"id":"t`+string(rune('0'+i%10))+`","w":0.`+string(rune('1'+i%9))+`123}`)...)
	}
	state = append(state, ']')
	c := sampleCheckpoint(1)
	c.State = state
	r, err := Create(filepath.Join(b.TempDir(), "run"))
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.Run("save", func(b *testing.B) {
		b.SetBytes(int64(len(state)))
		for i := 0; i < b.N; i++ {
			c.Seq = uint64(i)
			if err := r.SaveCheckpoint(c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("load", func(b *testing.B) {
		b.SetBytes(int64(len(state)))
		for i := 0; i < b.N; i++ {
			if _, _, err := r.LoadCheckpoint(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

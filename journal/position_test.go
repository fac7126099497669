package journal

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// writeCheckpointed writes n trial results into a fresh run, saving a
// checkpoint every every events, and returns the run (log still open).
func writeCheckpointed(t *testing.T, dir string, n, every int) (*Run, *Log, []Checkpoint) {
	t.Helper()
	r, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	l, err := r.NewLog("pos")
	if err != nil {
		t.Fatal(err)
	}
	var saved []Checkpoint
	for i := 1; i <= n; i++ {
		trialResult(l, i)
		if i%every == 0 {
			if err := r.SaveCheckpoint(sampleCheckpoint(l.Seq())); err != nil {
				t.Fatal(err)
			}
			c, _, err := r.LoadCheckpoint()
			if err != nil {
				t.Fatal(err)
			}
			saved = append(saved, c)
		}
	}
	return r, l, saved
}

// readFrom reads the events of dir from pos.
func readFrom(t *testing.T, dir string, pos Position) ([]Event, []string, error) {
	t.Helper()
	var evs []Event
	tr, err := ReadEventsFrom(dir, pos, func(ev Event) error {
		evs = append(evs, ev)
		return nil
	})
	return evs, tr, err
}

// A checkpoint records where the events after it start: reading from there
// gives exactly what a whole read gives after the position, and the first
// event follows the position's seq. Checkpoints restart the zstd frame only
// once a frame holds frameRestart bytes, and the segment stays one stream
// for zstdcat.
func TestCheckpointPosition(t *testing.T) {
	dir := t.TempDir()
	const n = 12000 // ~400 B each: ~4.7 MiB, so several frame restarts
	_, l, saved := writeCheckpointed(t, dir, n, 500)
	all, _ := readAll(t, dir)
	if len(all) != n {
		t.Fatalf("%d events, want %d", len(all), n)
	}
	restarts := 0
	for i, c := range saved {
		if c.EventsFrom == nil {
			t.Fatalf("checkpoint %d: no events_from", i)
		}
		p := *c.EventsFrom
		if p.Segment != 1 || p.Seq > c.Seq {
			t.Fatalf("checkpoint %d (seq %d): position %+v", i, c.Seq, p)
		}
		if p.Offset > 0 {
			restarts++
		}
		if i > 0 && p != *saved[i-1].EventsFrom && p.Seq != c.Seq {
			t.Fatalf("checkpoint %d: a new frame starts at seq %d, not at the checkpoint's %d", i, p.Seq, c.Seq)
		}
		evs, tr, err := readFrom(t, dir, p)
		if err != nil || len(tr) != 1 { // the log is open: a "not closed" report
			t.Fatalf("from %+v: %v %q", p, err, tr)
		}
		if want := all[p.Seq:]; len(evs) != len(want) || !bytes.Equal(evs[0].Raw, want[0].Raw) || evs[len(evs)-1].Seq != n {
			t.Fatalf("from %+v: %d events from seq %d, want %d from %d", p, len(evs), evs[0].Seq, len(want), want[0].Seq)
		}
	}
	// ~4.7 MiB over 1 MiB frames; each checkpoint interval is ~190 KiB.
	if restarts < 3 || saved[len(saved)-1].Seq-saved[len(saved)-1].EventsFrom.Seq > 4000 {
		t.Fatalf("%d frame restarts; the last checkpoint (seq %d) reads from seq %d", restarts,
			saved[len(saved)-1].Seq, saved[len(saved)-1].EventsFrom.Seq)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("zstd"); err == nil {
		if out, err := exec.Command("zstd", "-t", "-q", l.Path()).CombinedOutput(); err != nil {
			t.Fatalf("zstd -t of a segment of several frames: %v\n%s", err, out)
		}
	}
}

// A position that is not a frame start of the log on disk is ErrPosition,
// with nothing delivered, so that a caller can read the whole log instead.
func TestReadEventsFromBadPosition(t *testing.T) {
	dir := t.TempDir()
	_, l, saved := writeCheckpointed(t, dir, 6000, 3000)
	l.Close()
	good := *saved[0].EventsFrom // events follow it
	if good.Offset == 0 {
		t.Fatalf("no frame restart in %+v", good)
	}
	for name, p := range map[string]Position{
		"mid-frame":       {Segment: 1, Offset: good.Offset + 7, Seq: good.Seq},
		"past the end":    {Segment: 1, Offset: 1 << 40, Seq: good.Seq},
		"wrong seq":       {Segment: 1, Offset: good.Offset, Seq: good.Seq - 1},
		"missing segment": {Segment: 9, Offset: 0, Seq: good.Seq},
		"negative":        {Segment: 1, Offset: -1},
	} {
		evs, _, err := readFrom(t, dir, p)
		if !errors.Is(err, ErrPosition) || len(evs) != 0 {
			t.Errorf("%s (%+v): %d events, %v; want ErrPosition and none", name, p, len(evs), err)
		}
	}
}

// A writer killed at any point after a frame restart: the events from the
// position are every flushed one, Open finds the last seq from the last
// frame alone, and a segment cut right after a restart (its frames all
// complete) still gives the last seq of the frame before.
func TestFrameRestartCuts(t *testing.T) {
	src := t.TempDir()
	_, l, saved := writeCheckpointed(t, src, 3000, 3000) // one restart, at seq 3000
	p := *saved[0].EventsFrom
	if p.Seq != 3000 || p.Offset == 0 {
		t.Fatalf("position %+v, want a frame restart at seq 3000", p)
	}
	for i := 3001; i <= 3040; i++ {
		trialResult(l, i)
		if i%10 == 0 {
			l.Flush()
		}
	}
	seg, err := os.ReadFile(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []int64{p.Offset, p.Offset + 3, p.Offset + 40, int64(len(seg)) - 5, int64(len(seg))} {
		dir := t.TempDir()
		writeFresh(t, filepath.Join(dir, filepath.Base(l.Path())), seg[:c])
		evs, _, err := readFrom(t, dir, p)
		if err != nil {
			t.Fatalf("cut at %d: %v", c, err)
		}
		r, err := Open(dir)
		if err != nil {
			t.Fatalf("cut at %d: Open: %v", c, err)
		}
		want := uint64(3000)
		if len(evs) > 0 {
			want = evs[len(evs)-1].Seq
		}
		if r.lastSeq != want {
			t.Errorf("cut at %d: Open's last seq %d, want %d", c, r.lastSeq, want)
		}
		r.Close()
	}
}

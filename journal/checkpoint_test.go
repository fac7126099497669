package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleCheckpoint(seq uint64) Checkpoint {
	return Checkpoint{
		Version:  2,
		Run:      "run-7",
		Seq:      seq,
		Strategy: "evolution",
		State:    []byte(`{"population":[{"id":"t000001","reward":0.61}],"rng":"AAECAwQ="}`),
		Loop:     json.RawMessage(`{"in_flight":["t000002"],"round":4}`),
		Written:  time.Date(2025, 11, 29, 13, 45, 1, 123456789, time.UTC),
	}
}

func newRun(t *testing.T) *Run {
	t.Helper()
	r, err := Create(filepath.Join(t.TempDir(), "run"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestCheckpointRoundTrip(t *testing.T) {
	binary := make([]byte, 3000)
	for i := range binary {
		binary[i] = byte(i * 7)
	}
	states := map[string][]byte{
		"json object":         []byte(`{"a":[1,2,3],"b":"<&>"}`),
		"json with spaces":    []byte(`{ "a" : [ 1, 2 ] }`),
		"json padded":         []byte(" {\"a\":1}\n"), // not kept raw: surrounding space would be lost
		"json null":           []byte(`null`),
		"json string":         []byte(`"x"`),
		"binary":              binary,
		"invalid utf8 binary": {0xff, 0xfe, '{', '}'},
		"empty":               nil,
		"large":               bytes.Repeat([]byte(`{"w":0.123456789}`), 200000)[:3400000],
	}
	for name, state := range states {
		t.Run(name, func(t *testing.T) {
			r := newRun(t)
			c := sampleCheckpoint(123456)
			c.State = state
			if err := r.SaveCheckpoint(c); err != nil {
				t.Fatal(err)
			}
			got, warn, err := r.LoadCheckpoint()
			if err != nil || len(warn) != 0 {
				t.Fatalf("load: %v %q", err, warn)
			}
			if !bytes.Equal(got.State, c.State) {
				t.Fatalf("State changed: %.80q → %.80q", c.State, got.State)
			}
			got.State, c.State = nil, nil
			if !reflect.DeepEqual(got, c) {
				t.Fatalf("got  %+v\nwant %+v", got, c)
			}
		})
	}
	// Written is filled in when zero, and comes back in UTC.
	r := newRun(t)
	c := sampleCheckpoint(1)
	c.Written = time.Time{}
	c.Loop = json.RawMessage(" \n{\"round\":1}\n")
	before := time.Now()
	if err := r.SaveCheckpoint(c); err != nil {
		t.Fatal(err)
	}
	got, _, err := r.LoadCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	if got.Written.Before(before.Add(-time.Second)) || got.Written.After(time.Now()) || got.Written.Location() != time.UTC {
		t.Fatalf("Written = %v", got.Written)
	}
	if string(got.Loop) != `{"round":1}` {
		t.Fatalf("Loop = %q", got.Loop)
	}
	c.Loop = json.RawMessage(`{"round":`)
	if err := r.SaveCheckpoint(c); err == nil || !strings.Contains(err.Error(), "Loop is not valid JSON") {
		t.Fatalf("bad Loop: %v", err)
	}
}

// The newest checkpoint damaged: the previous one is used and the damage named.
func TestCheckpointFallback(t *testing.T) {
	damage := map[string]struct {
		f    func([]byte) []byte
		want string
	}{
		"flipped byte": {func(b []byte) []byte { b[len(b)/2] ^= 1; return b }, "checksum mismatch"},
		"truncated":    {func(b []byte) []byte { return b[:len(b)-9] }, "truncated ("},
		"header cut":   {func(b []byte) []byte { return b[:40] }, "truncated (40 bytes"},
		"empty":        {func(b []byte) []byte { return nil }, "truncated (0 bytes"},
		"garbage":      {func(b []byte) []byte { return []byte("hello world, not a checkpoint at all") }, "not a nasd checkpoint"},
		"appended":     {func(b []byte) []byte { return append(b, 0) }, "1 bytes of garbage after the checkpoint"},
		"new format": {func(b []byte) []byte {
			b[16] = 9
			return b
		}, "checkpoint format 9 (this nasd reads 1)"},
	}
	for name, d := range damage {
		t.Run(name, func(t *testing.T) {
			r := newRun(t)
			if err := r.SaveCheckpoint(sampleCheckpoint(10)); err != nil {
				t.Fatal(err)
			}
			if err := r.SaveCheckpoint(sampleCheckpoint(20)); err != nil {
				t.Fatal(err)
			}
			cur := filepath.Join(r.Dir, "checkpoint.zst")
			b, _ := os.ReadFile(cur)
			os.WriteFile(cur, d.f(b), 0o644)
			c, warn, err := r.LoadCheckpoint()
			if err != nil {
				t.Fatal(err)
			}
			if c.Seq != 10 {
				t.Fatalf("loaded seq %d, want the previous (10)", c.Seq)
			}
			want := "journal: " + cur + ": " + d.want
			if len(warn) != 1 || !strings.HasPrefix(warn[0], want) || !strings.HasSuffix(warn[0], "; using checkpoint.prev.zst") {
				t.Fatalf("warnings %q, want %q...; using checkpoint.prev.zst", warn, want)
			}
			// The damaged newest is replaced by the next save without
			// pushing the good previous one out.
			if err := r.SaveCheckpoint(sampleCheckpoint(30)); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(cur, []byte("x"), 0o644)
			if c, _, err := r.LoadCheckpoint(); err != nil || c.Seq != 10 {
				t.Fatalf("after another save: seq %d, %v; want the good previous (10)", c.Seq, err)
			}
		})
	}
	// The exact message, for a run directory given as "run".
	t.Chdir(t.TempDir())
	r, err := Create("run")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.SaveCheckpoint(sampleCheckpoint(1))
	r.SaveCheckpoint(sampleCheckpoint(2))
	b, _ := os.ReadFile("run/checkpoint.zst")
	b[100] ^= 0x10
	os.WriteFile("run/checkpoint.zst", b, 0o644)
	_, warn, err := r.LoadCheckpoint()
	if err != nil || len(warn) != 1 || warn[0] != "journal: run/checkpoint.zst: checksum mismatch; using checkpoint.prev.zst" {
		t.Fatalf("%q %v", warn, err)
	}
}

func TestCheckpointNoneGood(t *testing.T) {
	r := newRun(t)
	cur := filepath.Join(r.Dir, "checkpoint.zst")
	prev := filepath.Join(r.Dir, "checkpoint.prev.zst")

	// Nothing at all: wraps os.ErrNotExist.
	_, _, err := r.LoadCheckpoint()
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), r.Dir) {
		t.Fatalf("no checkpoint: %v", err)
	}

	// Only the previous one (a crash between the two renames).
	r.SaveCheckpoint(sampleCheckpoint(5))
	r.SaveCheckpoint(sampleCheckpoint(6))
	os.Remove(cur)
	c, warn, err := r.LoadCheckpoint()
	if err != nil || c.Seq != 5 || len(warn) != 1 || warn[0] != "journal: "+cur+": missing; using checkpoint.prev.zst" {
		t.Fatalf("only previous: %d %q %v", c.Seq, warn, err)
	}

	// Both damaged: an error naming both, not ErrNotExist.
	os.WriteFile(cur, []byte("junk"), 0o644)
	b, _ := os.ReadFile(prev)
	os.WriteFile(prev, b[:len(b)-1], 0o644)
	_, _, err = r.LoadCheckpoint()
	if err == nil || errors.Is(err, os.ErrNotExist) ||
		!strings.Contains(err.Error(), cur+": not a nasd checkpoint") || !strings.Contains(err.Error(), prev+": truncated") {
		t.Fatalf("both damaged: %v", err)
	}

	// Damaged newest, no previous.
	os.Remove(prev)
	_, _, err = r.LoadCheckpoint()
	if err == nil || !strings.Contains(err.Error(), prev+": missing") || !strings.Contains(err.Error(), cur+": not a nasd checkpoint") {
		t.Fatalf("damaged, no previous: %v", err)
	}
}

// A checkpoint's size depends on what is passed in, not on how far the run
// is: Seq and Written live in a fixed-size header.
func TestCheckpointSizeConstant(t *testing.T) {
	r := newRun(t)
	path := filepath.Join(r.Dir, "checkpoint.zst")
	var size int64 = -1
	for _, seq := range []uint64{0, 1, 9, 10, 999, 123456, 1 << 40, math.MaxUint64} {
		c := sampleCheckpoint(seq)
		c.Written = c.Written.Add(time.Duration(seq%1000) * time.Hour)
		if err := r.SaveCheckpoint(c); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if size >= 0 && fi.Size() != size {
			t.Fatalf("seq %d: %d bytes, seq 0: %d", seq, fi.Size(), size)
		}
		size = fi.Size()
		got, _, err := r.LoadCheckpoint()
		if err != nil || got.Seq != seq {
			t.Fatalf("seq %d: loaded %d, %v", seq, got.Seq, err)
		}
	}
	t.Logf("checkpoint: %d bytes", size)
}

// SaveCheckpoint leaves only checkpoint.zst and checkpoint.prev.zst behind.
func TestCheckpointFiles(t *testing.T) {
	r := newRun(t)
	for i := uint64(1); i <= 5; i++ {
		if err := r.SaveCheckpoint(sampleCheckpoint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(listDir(t, r.Dir), " "); got != "checkpoint.prev.zst checkpoint.zst run.lock" {
		t.Fatalf("files: %s", got)
	}
	prev, err := readCheckpoint(filepath.Join(r.Dir, "checkpoint.prev.zst"))
	if err != nil || prev.Seq != 4 {
		t.Fatalf("previous: %d %v", prev.Seq, err)
	}
}

// A checkpoint never refers to events that are not on disk: saving one
// flushes the open log up to its Seq.
func TestSaveCheckpointFlushesLog(t *testing.T) {
	r := newRun(t)
	l, err := r.NewLog("w")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 25; i++ {
		trialResult(l, i)
	}
	if err := r.SaveCheckpoint(sampleCheckpoint(l.Seq())); err != nil {
		t.Fatal(err)
	}
	snap := t.TempDir()
	copyFile(t, l.Path(), filepath.Join(snap, filepath.Base(l.Path())))
	if evs, _ := readAll(t, snap); len(evs) != 25 {
		t.Fatalf("%d events on disk after SaveCheckpoint, want 25", len(evs))
	}
}

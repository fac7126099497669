package journal

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// Three job segments (create, resume, resume): seqs run on without a gap,
// fields survive, each segment is its own file.
func TestRoundTripThreeSegments(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	const per = 700
	before := time.Now().UTC().Add(-time.Second)
	n := 0
	for seg := 1; seg <= 3; seg++ {
		var r *Run
		var err error
		if seg == 1 {
			r, err = Create(dir)
		} else {
			r, err = Open(dir)
		}
		if err != nil {
			t.Fatal(err)
		}
		l, err := r.NewLog("run-abc")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := filepath.Base(l.Path()), fmt.Sprintf("events-%04d.jsonl.zst", seg); got != want {
			t.Fatalf("segment %d is %s, want %s", seg, got, want)
		}
		if got := l.Seq(); got != uint64(n) {
			t.Fatalf("segment %d: Seq before the first event = %d, want %d", seg, got, n)
		}
		for i := 0; i < per; i++ {
			n++
			l.Event(fmt.Sprintf("kind%d", n%3)).Int("n", n).Str("text", strings.Repeat("x", n%50)).Send()
			if i%100 == 99 {
				if err := l.Flush(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if got := l.Seq(); got != uint64(n) {
			t.Fatalf("Seq = %d, want %d", got, n)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	evs, tr := readAll(t, dir)
	if len(tr) != 0 {
		t.Fatalf("truncated = %q", tr)
	}
	if len(evs) != n {
		t.Fatalf("read %d events, want %d", len(evs), n)
	}
	for i, ev := range evs {
		want := i + 1
		if ev.Seq != uint64(want) || ev.Kind != fmt.Sprintf("kind%d", want%3) || ev.Run != "run-abc" {
			t.Fatalf("event %d: seq %d kind %q run %q", i, ev.Seq, ev.Kind, ev.Run)
		}
		if got := field(t, ev, "n"); got != float64(want) {
			t.Fatalf("seq %d: n = %v", ev.Seq, got)
		}
		if got := field(t, ev, "text"); got != strings.Repeat("x", want%50) {
			t.Fatalf("seq %d: text = %v", ev.Seq, got)
		}
		if ev.Time.Before(before) || ev.Time.After(time.Now().Add(time.Second)) || ev.Time.Location() != time.UTC {
			t.Fatalf("seq %d: time %v", ev.Seq, ev.Time)
		}
		if i > 0 && ev.Time.Before(evs[i-1].Time) {
			t.Fatalf("seq %d: time goes back", ev.Seq)
		}
	}
	// The line itself: seq first, then time, event, run, then the fields.
	var first map[string]json.RawMessage
	if err := json.Unmarshal(evs[0].Raw, &first); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(evs[0].Raw), `{"seq":1,"time":"`) || !strings.Contains(string(evs[0].Raw), `,"event":"kind1","run":"run-abc","n":1,`) {
		t.Fatalf("line = %s", evs[0].Raw)
	}
	if _, err := time.Parse(time.RFC3339Nano, strings.Trim(string(first["time"]), `"`)); err != nil || !strings.HasSuffix(string(first["time"]), `Z"`) {
		t.Fatalf("time %s: %v", first["time"], err)
	}
}

// Events built on several goroutines get distinct seqs in file order.
func TestConcurrentEvents(t *testing.T) {
	dir := t.TempDir()
	r, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	l, err := r.NewLog("c")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				l.Event("e").Int("g", g).Int("i", i).Send()
				if i%50 == 0 {
					if err := l.Flush(); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	evs, _ := readAll(t, dir)
	if len(evs) != 1600 {
		t.Fatalf("%d events", len(evs))
	}
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i, ev.Seq)
		}
	}
}

// After Flush or Commit the file on disk decodes completely even though the
// writer is still open (a copy taken then is what a kill -9 leaves).
func TestFlushThenCopy(t *testing.T) {
	dir := t.TempDir()
	r, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	l, err := r.NewLog("flush")
	if err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 5; round++ {
		for i := 0; i < 37*round; i++ {
			trialResult(l, int(l.Seq())+1)
		}
		// Commit (odd rounds) leaves a file as decodable as Flush does.
		durable := l.Flush
		if round%2 == 1 {
			durable = l.Commit
		}
		if err := durable(); err != nil {
			t.Fatal(err)
		}
		flushed := l.Seq()
		for i := 0; i < 3; i++ { // written, neither committed nor flushed: need not survive
			trialResult(l, int(l.Seq())+1)
		}
		snap := filepath.Join(t.TempDir(), "snap")
		copyFile(t, l.Path(), filepath.Join(snap, filepath.Base(l.Path())))
		evs, tr := readAll(t, snap)
		if uint64(len(evs)) < flushed {
			t.Fatalf("round %d: %d events survive, %d were flushed", round, len(evs), flushed)
		}
		for i, ev := range evs {
			if ev.Seq != uint64(i+1) || ev.Kind != "trial_result" {
				t.Fatalf("round %d: event %d: seq %d kind %s", round, i, ev.Seq, ev.Kind)
			}
		}
		if len(tr) != 1 || !strings.Contains(tr[0], "events-0001.jsonl.zst: not closed") {
			t.Fatalf("round %d: truncated = %q", round, tr)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, tr := readAll(t, dir); len(tr) != 0 {
		t.Fatalf("closed log: truncated = %q", tr)
	}
}

// A Flush after a Commit only fsyncs: the block is in the file already, so
// a group commit (a Commit per result, a Flush now and then) writes each
// event once. Commit on a closed log is an error.
func TestCommitThenFlush(t *testing.T) {
	r, err := Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	l, err := r.NewLog("commit")
	if err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		fi, err := os.Stat(l.Path())
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	for i := 1; i <= 5; i++ {
		trialResult(l, i)
	}
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	committed := size()
	if committed == 0 {
		t.Fatal("Commit wrote nothing")
	}
	if err := l.Commit(); err != nil { // nothing new: no empty block
		t.Fatal(err)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if s := size(); s != committed {
		t.Fatalf("Flush after Commit wrote %d more bytes", s-committed)
	}
	trialResult(l, 6)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if size() <= committed {
		t.Fatal("Flush of a new event wrote nothing")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Commit after Close: %v", err)
	}
}

// A real kill -9 of a writer: every event it flushed or committed is read back, and Open
// continues the seqs after the last surviving event.
func TestKill9(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	cmd, out, _ := startHelper(t, "kill", dir)
	var flushed uint64
	for out.Scan() {
		line := out.Text()
		if v, ok := strings.CutPrefix(line, "flushed "); ok {
			flushed, _ = strconv.ParseUint(v, 10, 64)
		} else if line == "ready" {
			break
		} else {
			t.Fatalf("helper: %s", line)
		}
	}
	if flushed == 0 {
		t.Fatal("helper flushed nothing")
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	cmd.Wait()
	evs, tr := readAll(t, dir)
	if uint64(len(evs)) < flushed {
		t.Fatalf("%d events survive, %d were flushed", len(evs), flushed)
	}
	if len(tr) != 1 {
		t.Fatalf("truncated = %q", tr)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(r.Warnings) != 1 || r.Warnings[0] != tr[0] {
		t.Fatalf("Open warnings = %q, want %q", r.Warnings, tr)
	}
	l, err := r.NewLog("kill")
	if err != nil {
		t.Fatal(err)
	}
	if l.Seq() != evs[len(evs)-1].Seq {
		t.Fatalf("resumed log at seq %d, last on disk %d", l.Seq(), evs[len(evs)-1].Seq)
	}
	l.Event("resumed").Send()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	again, _ := readAll(t, dir)
	if len(again) != len(evs)+1 || again[len(evs)].Kind != "resumed" {
		t.Fatalf("after resume: %d events", len(again))
	}
}

func TestFloatNonFinite(t *testing.T) {
	dir := t.TempDir()
	r, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	l, err := r.NewLog("nan")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []float64{0.25, math.NaN(), math.Inf(1), math.Inf(-1), 0, -1e-9, 1e300} {
		Float(l.Event("f"), "loss", v).Send()
	}
	Floats(l.Event("fs"), "acc", []float64{0.5, math.NaN(), 0.75, math.Inf(-1)}).Send()
	Floats(l.Event("fs"), "acc", []float64{0.5, 0.75}).Send()
	Floats(l.Event("fs"), "acc", nil).Send()
	if Float(nil, "x", math.NaN()) != nil || Floats(nil, "x", []float64{math.NaN()}) != nil {
		t.Fatal("nil event not passed through")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	evs, _ := readAll(t, dir)
	if len(evs) != 10 {
		t.Fatalf("%d events", len(evs))
	}
	for _, ev := range evs {
		if s := string(ev.Raw); strings.Contains(s, "NaN,") || strings.Contains(s, ":NaN") || strings.Contains(s, "Inf,") {
			t.Fatalf("non-JSON number in %s", s)
		}
	}
	want := []struct {
		v   any
		tag any
	}{{0.25, nil}, {nil, "NaN"}, {nil, "+Inf"}, {nil, "-Inf"}, {0.0, nil}, {-1e-9, nil}, {1e300, nil}}
	for i, w := range want {
		ev := evs[i]
		var m map[string]any
		json.Unmarshal(ev.Raw, &m)
		v, ok := m["loss"]
		if !ok || v != w.v || m["loss_nonfinite"] != w.tag {
			t.Errorf("%s: loss = %v (present %v), loss_nonfinite = %v; want %v, %v", ev.Raw, v, ok, m["loss_nonfinite"], w.v, w.tag)
		}
	}
	var m struct {
		Acc []*float64        `json:"acc"`
		Tag map[string]string `json:"acc_nonfinite"`
	}
	json.Unmarshal(evs[7].Raw, &m)
	if len(m.Acc) != 4 || *m.Acc[0] != 0.5 || m.Acc[1] != nil || *m.Acc[2] != 0.75 || m.Acc[3] != nil ||
		len(m.Tag) != 2 || m.Tag["1"] != "NaN" || m.Tag["3"] != "-Inf" {
		t.Errorf("Floats: %s", evs[7].Raw)
	}
	if !strings.Contains(string(evs[8].Raw), `"acc":[0.5,0.75]}`) || strings.Contains(string(evs[8].Raw), "nonfinite") {
		t.Errorf("finite Floats: %s", evs[8].Raw)
	}
}

func TestLogMisuse(t *testing.T) {
	dir := t.TempDir()
	r, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	l, err := r.NewLog("m")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.NewLog("m"); err == nil || !strings.Contains(err.Error(), "events-0001.jsonl.zst is still open") {
		t.Fatalf("second NewLog: %v", err)
	}
	l.Event("a").Send()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := l.Flush(); err == nil {
		t.Fatal("Flush after Close succeeded")
	}
	zerologErr := zerolog.ErrorHandler
	zerolog.ErrorHandler = func(error) {}
	l.Event("late").Send() // must not panic; zerolog reports the write error
	zerolog.ErrorHandler = zerologErr

	// The next log continues the seqs in a new segment.
	l2, err := r.NewLog("m")
	if err != nil {
		t.Fatal(err)
	}
	if l2.Seq() != 1 || filepath.Base(l2.Path()) != "events-0002.jsonl.zst" {
		t.Fatalf("second log: seq %d, %s", l2.Seq(), l2.Path())
	}
	l2.Event("b").Send()
	// Run.Close closes the open log.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	evs, tr := readAll(t, dir)
	if len(evs) != 2 || evs[1].Seq != 2 || len(tr) != 0 {
		t.Fatalf("events %v, truncated %q", evs, tr)
	}
	if _, err := r.NewLog("m"); err == nil {
		t.Fatal("NewLog on a closed run succeeded")
	}
}

// zerolog's global Disabled level would silently drop events: the log says so.
func TestGlobalLevelDisabled(t *testing.T) {
	dir := t.TempDir()
	r, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	l, err := r.NewLog("d")
	if err != nil {
		t.Fatal(err)
	}
	old := zerolog.GlobalLevel()
	zerolog.SetGlobalLevel(zerolog.ErrorLevel) // any real level still logs
	l.Event("kept").Send()
	zerolog.SetGlobalLevel(zerolog.Disabled)
	e := l.Event("lost")
	zerolog.SetGlobalLevel(old)
	if e != nil {
		t.Fatal("event while disabled is not nil")
	}
	Float(e, "x", 1).Send()
	if err := l.Flush(); err == nil || !strings.Contains(err.Error(), "Disabled") {
		t.Fatalf("Flush = %v", err)
	}
	if err := l.Close(); err == nil {
		t.Fatal("Close hid the error")
	}
	evs, _ := readAll(t, dir)
	if len(evs) != 1 || evs[0].Kind != "kept" {
		t.Fatalf("events = %v", evs)
	}
}

// An empty segment (created, nothing flushed, or closed with no events)
// reads as no events and no truncation.
func TestEmptySegment(t *testing.T) {
	dir := t.TempDir()
	r, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	l, err := r.NewLog("e")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	evs, tr := readAll(t, dir)
	if len(evs) != 0 || len(tr) != 0 {
		t.Fatalf("open empty: %v %q", evs, tr)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	evs, tr = readAll(t, dir)
	if len(evs) != 0 || len(tr) != 0 {
		t.Fatalf("closed empty: %v %q", evs, tr)
	}
	fi, err := os.Stat(filepath.Join(dir, "events-0001.jsonl.zst"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("empty segment: %d bytes", fi.Size())
}

package journal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// flushPoint: after Flush, the file had size bytes and held events 1..seq.
type flushPoint struct {
	size int64
	seq  uint64
}

// writeLog writes n trial_result events into a new run, flushing after every
// flushEvery events (0: never), and returns the segment's bytes, the flush
// points and every event line as written (read back from the closed log).
func writeLog(t *testing.T, n, flushEvery int, closeIt bool) (seg []byte, points []flushPoint, lines [][]byte) {
	t.Helper()
	dir := t.TempDir()
	r, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	l, err := r.NewLog("cut")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		trialResult(l, i)
		if flushEvery > 0 && i%flushEvery == 0 {
			if err := l.Flush(); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(l.Path())
			if err != nil {
				t.Fatal(err)
			}
			points = append(points, flushPoint{fi.Size(), l.Seq()})
		}
	}
	if closeIt {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	} else if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	seg, err = os.ReadFile(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	// The reference lines: decode the whole stream with the plain decoder.
	dec, err := zstd.NewReader(bytes.NewReader(seg))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var all bytes.Buffer
	all.ReadFrom(dec) // an unclosed frame ends in an error after all data
	for _, ln := range bytes.SplitAfter(all.Bytes(), []byte("\n")) {
		if len(ln) > 0 {
			lines = append(lines, bytes.TrimSuffix(ln, []byte("\n")))
		}
	}
	if len(lines) != n {
		t.Fatalf("reference decode: %d lines, want %d", len(lines), n)
	}
	return seg, points, lines
}

// checkCut reads seg cut to c bytes and checks: no error, the events are a
// prefix of the original lines, every event flushed by c is there, and the
// cut is reported unless the file is whole and closed.
func checkCut(t *testing.T, dir string, seg []byte, c int, points []flushPoint, lines [][]byte, closed bool) {
	t.Helper()
	path := filepath.Join(dir, "events-0001.jsonl.zst")
	writeFresh(t, path, seg[:c])
	var got int
	tr, err := ReadEvents(dir, func(ev Event) error {
		if got >= len(lines) || !bytes.Equal(ev.Raw, lines[got]) {
			return fmt.Errorf("event %d differs: %s", got, ev.Raw)
		}
		got++
		return nil
	})
	if err != nil {
		t.Fatalf("cut at %d of %d: %v", c, len(seg), err)
	}
	var need uint64
	for _, p := range points {
		if p.size <= int64(c) {
			need = p.seq
		}
	}
	if uint64(got) < need {
		t.Fatalf("cut at %d of %d: %d events, %d were flushed before it", c, len(seg), got, need)
	}
	// A whole closed file has nothing to report, and neither has an empty
	// one (a segment created by a writer that never flushed).
	whole := c == len(seg) && closed || c == 0
	if whole != (len(tr) == 0) {
		t.Fatalf("cut at %d of %d: truncated = %q", c, len(seg), tr)
	}
	if len(tr) == 1 && !strings.Contains(tr[0], path+": ") {
		t.Fatalf("cut at %d: report does not name the file: %q", c, tr[0])
	}
}

// A log with a flush every few events, cut at every byte offset.
func TestTruncateEveryOffset(t *testing.T) {
	for _, closed := range []bool{true, false} {
		t.Run(fmt.Sprintf("closed=%v", closed), func(t *testing.T) {
			seg, points, lines := writeLog(t, 60, 2, closed)
			dir := t.TempDir()
			step := 1
			if testing.Short() || raceEnabled {
				step = 5 // the race detector makes every offset take a minute
			}
			for c := 0; c <= len(seg); c += step {
				checkCut(t, dir, seg, c, points, lines, closed)
			}
			checkCut(t, dir, seg, len(seg), points, lines, closed)
			t.Logf("%d events, %d bytes, %d cuts", len(lines), len(seg), len(seg)/step+1)
		})
	}
}

// A log big enough that the encoder emits full 128 KiB blocks on its own,
// cutting lines between blocks: every offset of the last block and the bytes
// around every block boundary, and a dense sample elsewhere.
func TestTruncateLargeLog(t *testing.T) {
	seg, points, lines := writeLog(t, 1500, 400, true)
	lay, err := scanLayout(bytes.NewReader(seg), 0, int64(len(seg)))
	if err != nil || lay.tail != "" || lay.open {
		t.Fatalf("layout %+v, %v", lay, err)
	}
	bounds := blockStarts(t, seg)
	if len(bounds) < 4 {
		t.Fatalf("only %d blocks", len(bounds))
	}
	dir := t.TempDir()
	cuts := map[int]bool{}
	lastBlock := bounds[len(bounds)-1]
	for c := lastBlock; c <= len(seg); c++ {
		cuts[c] = true
	}
	for _, b := range bounds {
		for d := -4; d <= 4; d++ {
			if c := b + d; c >= 0 && c <= len(seg) {
				cuts[c] = true
			}
		}
	}
	for c := 0; c < len(seg); c += 101 {
		cuts[c] = true
	}
	for c := range cuts {
		checkCut(t, dir, seg, c, points, lines, true)
	}
	t.Logf("%d events, %d bytes, %d blocks, %d cuts", len(lines), len(seg), len(bounds), len(cuts))
}

// blockStarts lists the offsets of the block headers of a one-frame segment.
func blockStarts(t *testing.T, seg []byte) []int {
	t.Helper()
	fhd := seg[4]
	pos := 5 + []int{0, 1, 2, 4}[fhd&3] + []int{0, 2, 4, 8}[fhd>>6] + 1
	var starts []int
	for pos+3 <= len(seg) {
		starts = append(starts, pos)
		h := int(seg[pos]) | int(seg[pos+1])<<8 | int(seg[pos+2])<<16
		size := h >> 3
		if (h>>1)&3 == 1 {
			size = 1
		}
		pos += 3 + size
		if h&1 != 0 {
			break
		}
	}
	return starts
}

// Damage in the middle of a closed segment is an error naming the file; a
// flipped byte is never silently accepted.
func TestCorruptionMidSegment(t *testing.T) {
	seg, _, lines := writeLog(t, 800, 50, true)
	dir := t.TempDir()
	path := filepath.Join(dir, "events-0001.jsonl.zst")
	flips := 2000
	if testing.Short() || raceEnabled {
		flips = 400
	}
	step := max(1, len(seg)/flips)
	errs, reported, harmless := 0, 0, 0
	for off := 0; off < len(seg); off += step {
		bad := bytes.Clone(seg)
		bad[off] ^= 0x5a
		writeFresh(t, path, bad)
		got := 0
		tr, err := ReadEvents(dir, func(ev Event) error {
			if got < len(lines) && bytes.Equal(ev.Raw, lines[got]) {
				got++
				return nil
			}
			got++
			return errChanged
		})
		switch {
		case errors.Is(err, errChanged):
			// Delivered a changed event before the damage was found: allowed
			// only if the reader then fails; it cannot know earlier in a
			// checksummed frame. Check it does fail when fn lets it go on.
			if _, err2 := ReadEvents(dir, func(Event) error { return nil }); err2 == nil {
				t.Fatalf("byte %d flipped: a changed event was accepted", off)
			}
			errs++
		case err != nil:
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("byte %d flipped: error does not name the file: %v", off, err)
			}
			errs++
		case len(tr) > 0:
			reported++ // read as a cut (a block header's size or last flag); events so far are intact
		default:
			// No error and no report: only acceptable when every event came
			// back unchanged (a flip in, say, the window size field).
			if got != len(lines) {
				t.Fatalf("byte %d flipped: %d of %d events, no error, no report", off, got, len(lines))
			}
			harmless++
		}
	}
	t.Logf("%d bytes, %d flips: %d errors, %d read as cuts, %d harmless", len(seg), len(seg)/step, errs, reported, harmless)

	// One flip well inside the data: a plain error naming the file.
	bad := bytes.Clone(seg)
	bad[len(seg)/2] ^= 0xff
	os.WriteFile(path, bad, 0o644)
	if _, err := ReadEvents(dir, func(Event) error { return nil }); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("mid-file flip: %v", err)
	}
}

var errChanged = errors.New("event changed")

// raceEnabled is set by race_test.go under -race.
var raceEnabled bool

// writeFresh writes a new file at path. Removing the old one first matters:
// ext4 flushes a file that is truncated and rewritten when it is closed,
// which made these loops take a minute.
func writeFresh(t *testing.T, path string, b []byte) {
	t.Helper()
	os.Remove(path)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeRawSegment writes lines as a closed zstd segment.
func writeRawSegment(t *testing.T, path string, lines ...string) {
	t.Helper()
	var b bytes.Buffer
	enc, _ := zstd.NewWriter(&b)
	for _, l := range lines {
		enc.Write([]byte(l + "\n"))
	}
	enc.Close()
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

const ev1 = `{"seq":1,"time":"2025-11-29T13:00:00Z","event":"a","run":"r"}`

func TestReadErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		segs  [][]string
		want  string
		valid int
	}{
		{"bad JSON", [][]string{{ev1, `{"seq":2,"time":"2025-11-29T13:00:00Z","event":"a"`, `{}`}}, "events-0001.jsonl.zst: line 2: not a JSON event", 1},
		{"no seq", [][]string{{ev1, `{"time":"2025-11-29T13:00:00Z","event":"a","run":"r"}`}}, "line 2: event without seq", 1},
		{"bad time", [][]string{{ev1, `{"seq":2,"time":"yesterday","event":"a","run":"r"}`}}, `line 2: seq 2: bad time "yesterday"`, 1},
		{"seq repeats", [][]string{{ev1, ev1}}, "line 2: seq 1 does not follow 1", 1},
		{"seq goes back across segments", [][]string{{ev1, strings.Replace(ev1, `"seq":1`, `"seq":5`, 1)}, {strings.Replace(ev1, `"seq":1`, `"seq":4`, 1)}},
			"events-0002.jsonl.zst: line 1: seq 4 does not follow 5", 2},
		{"no newline at the end of a closed segment", [][]string{{ev1 + "\n" + ev1[:20] + "\x00"}}, "has no newline in a closed segment", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for i, lines := range tc.segs {
				path := filepath.Join(dir, segmentName(i+1))
				if strings.HasSuffix(lines[0], "\x00") { // write without the final newline
					var b bytes.Buffer
					enc, _ := zstd.NewWriter(&b)
					enc.Write([]byte(strings.TrimSuffix(lines[0], "\x00")))
					enc.Close()
					os.WriteFile(path, b.Bytes(), 0o644)
					continue
				}
				writeRawSegment(t, path, lines...)
			}
			n := 0
			_, err := ReadEvents(dir, func(Event) error { n++; return nil })
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if n != tc.valid {
				t.Fatalf("%d events delivered before the error, want %d", n, tc.valid)
			}
		})
	}

	// Not zstd at all.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, segmentName(1)), []byte(ev1+"\n"), 0o644)
	if _, err := ReadEvents(dir, func(Event) error { return nil }); err == nil || !strings.Contains(err.Error(), "not a zstd frame") {
		t.Fatalf("plain text: %v", err)
	}
	// fn's own error comes back unchanged.
	writeRawSegment(t, filepath.Join(dir, segmentName(1)), ev1)
	stop := errors.New("stop")
	if _, err := ReadEvents(dir, func(Event) error { return stop }); err != stop {
		t.Fatalf("fn error: %v", err)
	}
	// A directory without segments has no events; a missing one is an error.
	if tr, err := ReadEvents(t.TempDir(), func(Event) error { return nil }); err != nil || tr != nil {
		t.Fatalf("empty dir: %v %v", tr, err)
	}
	if _, err := ReadEvents(filepath.Join(dir, "nope"), func(Event) error { return nil }); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing dir: %v", err)
	}
}

// Segments are read in numeric order, also past 9999.
func TestSegmentOrder(t *testing.T) {
	dir := t.TempDir()
	for i, n := range []int{9, 10, 10000, 99999} {
		writeRawSegment(t, filepath.Join(dir, segmentName(n)), strings.Replace(ev1, `"seq":1`, `"seq":`+strconv.Itoa(i+1), 1))
	}
	os.WriteFile(filepath.Join(dir, "events-x.jsonl.zst"), []byte("junk"), 0o644) // not a segment name: ignored
	evs, _ := readAll(t, dir)
	if len(evs) != 4 || evs[3].Seq != 4 {
		t.Fatalf("events %v", evs)
	}
}

// The zstd command-line tool and jq read what the log writes.
func TestZstdCLI(t *testing.T) {
	for _, tool := range []string{"zstd", "jq", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	dir := t.TempDir()
	r, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	for seg := 0; seg < 2; seg++ {
		l, err := r.NewLog("cli")
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 300; i++ {
			trialResult(l, int(l.Seq())+1)
			if i%7 == 0 {
				l.Flush()
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.SaveCheckpoint(Checkpoint{Version: 1, Run: "cli", Seq: 600, Strategy: "random",
		State: []byte(`{"rng":[1,2]}`), Loop: []byte(`{"round":3}`)}); err != nil {
		t.Fatal(err)
	}
	r.Close()
	out, err := exec.Command("sh", "-c", "cd "+dir+" && zstdcat events-*.jsonl.zst | jq -c .seq | tail -n 1; zstdcat events-*.jsonl.zst | jq -r .event | sort | uniq -c").CombinedOutput()
	if err != nil {
		t.Fatalf("zstdcat | jq: %v\n%s", err, out)
	}
	if got := strings.Fields(string(out)); len(got) != 3 || got[0] != "600" || got[1] != "600" || got[2] != "trial_result" {
		t.Fatalf("zstdcat | jq: %q", out)
	}
	out, err = exec.Command("sh", "-c", "cd "+dir+" && zstd -t -q events-*.jsonl.zst && zstdcat checkpoint.zst | jq -c '[.version,.run,.strategy,.state.rng[1],.loop.round]'").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != `[1,"cli","random",2,3]` {
		t.Fatalf("checkpoint: %v\n%s", err, out)
	}
	// An unclosed (killed) segment: zstdcat prints every flushed event and then complains.
	seg, points, _ := writeLog(t, 50, 10, false)
	os.WriteFile(filepath.Join(dir, "killed.zst"), seg, 0o644)
	out, _ = exec.Command("sh", "-c", "cd "+dir+" && zstdcat killed.zst 2>/dev/null | jq -c .seq | tail -n 1").Output()
	if strings.TrimSpace(string(out)) != strconv.FormatUint(points[len(points)-1].seq, 10) {
		t.Fatalf("zstdcat of an unclosed segment: last seq %q", out)
	}
}

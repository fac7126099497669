package journal

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/rs/zerolog"
)

// Log writes one segment of a run's event log: JSON lines in a zstd stream,
// events-NNNN.jsonl.zst. Event, Seq, Flush and Close are safe for concurrent
// use; events are numbered in the order their Msg/Send reaches the log.
type Log struct {
	run   *Run
	runID string
	path  string
	zl    zerolog.Logger

	mu        sync.Mutex
	f         *os.File
	enc       *zstd.Encoder
	seq       uint64 // last seq written
	committed uint64 // last seq in a complete block in the file (Commit or Flush)
	flushed   uint64 // last seq made durable by Flush
	err       error  // first write/flush error; the log is dead after it
	dropped   error  // events zerolog dropped; Flush and Close report it
	closed    bool
	pre       []byte // scratch for the seq prefix

	seg        int          // this segment's number
	out        *countWriter // the file, counting the bytes written
	frameBytes int64        // uncompressed bytes in the current frame
	frames     []Position   // newest frame starts, oldest first
}

// frameRestart is how much a frame must hold before a checkpoint starts the
// next one: a new frame forgets the compression window, so restarting at
// every checkpoint of a fast sync run would cost ratio, while resuming
// decodes at most this much before the checkpoint's events.
const frameRestart = 1 << 20

// keepFrames bounds Log.frames: a checkpoint names the newest frame start at
// or before its Seq, and only a checkpoint racing new events needs an older one.
const keepFrames = 4

// countWriter counts what the encoder wrote to the file, so a frame's offset
// is known without a seek.
type countWriter struct {
	f *os.File
	n int64
}

func (w *countWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.n += int64(n)
	return n, err
}

var errClosed = errors.New("log is closed")

// TimeFormat is how events write the times they carry (a trial's start and
// end): RFC 3339 in microseconds, trailing zeros dropped, which any
// RFC3339Nano parser reads. Digits below the clock's resolution do not
// compress: nanoseconds cost ~2 bytes a time in the zstd log.
const TimeFormat = "2006-01-02T15:04:05.999999Z07:00"

// eventTimeFormat is the "time" of every event: milliseconds, enough to
// place an event (seq orders them); finer digits were ~25 bytes a trial.
const eventTimeFormat = "2006-01-02T15:04:05.999Z07:00"

// Encoder settings for segments: one goroutine, so Write and Flush are
// synchronous; a 1 MiB window is ample for repeated keys across events and
// keeps reader memory small; a frame checksum so a closed segment is verified
// end to end. SpeedFastest: an async search commits a block per trial, and
// on rank 0, whose caches go cold between results, the larger hash tables
// of SpeedBetterCompression cost ~60 µs of CPU a trial for a log ~10%
// smaller (docs/performance.md, "Rank 0's own work").
func newSegmentEncoder(w io.Writer) (*zstd.Encoder, error) {
	return zstd.NewWriter(w,
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithWindowSize(1<<20),
		zstd.WithEncoderCRC(true))
}

// NewLog starts the next event segment, events-NNNN.jsonl.zst with NNNN one
// past the highest on disk. runID goes into every event's "run" field. Only
// one log may be open on a Run at a time; the first event's seq follows the
// last seq of the earlier segments (see Open).
func (r *Run) NewLog(runID string) (*Log, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("journal: %s: run is closed", r.Dir)
	}
	if r.log != nil {
		return nil, fmt.Errorf("journal: %s: log %s is still open", r.Dir, filepath.Base(r.log.path))
	}
	segs, err := listSegments(r.Dir)
	if err != nil {
		return nil, err
	}
	n := r.lastSeg + 1
	if len(segs) > 0 && segs[len(segs)-1].n >= n {
		n = segs[len(segs)-1].n + 1
	}
	path := filepath.Join(r.Dir, segmentName(n))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := syncDir(r.Dir); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("journal: %s: %w", path, err)
	}
	out := &countWriter{f: f}
	enc, err := newSegmentEncoder(out)
	if err != nil { // only for bad options
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("journal: %s: %w", path, err)
	}
	l := &Log{run: r, runID: runID, path: path, f: f, enc: enc, seq: r.lastSeq, committed: r.lastSeq,
		flushed: r.lastSeq, seg: n, out: out, frames: []Position{{Segment: n, Offset: 0, Seq: r.lastSeq}}}
	l.zl = zerolog.New(lineWriter{l})
	r.lastSeg = n
	r.log = l
	return l, nil
}

// Path is the segment's file name (inside the run directory).
func (l *Log) Path() string { return l.path }

// Event starts an event of the given kind with its time (RFC3339Nano, UTC),
// event and run fields; the caller adds fields and calls Msg("") or Send().
// The seq field is assigned when the event is written, so seqs follow file
// order with no gaps even if events are built concurrently or abandoned.
//
// Events are written at zerolog.NoLevel and so ignore zerolog's global level,
// except zerolog.Disabled, which would silence the journal: Event then
// returns nil (zerolog's nil event is a no-op) and Flush and Close report it.
//
// Do not use Float64/Floats64/Interface for values that may be NaN or ±Inf:
// zerolog writes those as strings ("NaN"). Use Float and Floats.
func (l *Log) Event(kind string) *zerolog.Event {
	e := l.zl.Log()
	if e == nil {
		l.mu.Lock()
		if l.dropped == nil {
			l.dropped = fmt.Errorf("journal: %s: event %q dropped: zerolog's global level is Disabled", l.path, kind)
		}
		l.mu.Unlock()
		return nil
	}
	var tb [40]byte
	return e.Bytes("time", time.Now().UTC().AppendFormat(tb[:0], eventTimeFormat)).
		Str("event", kind).
		Str("run", l.runID)
}

// Seq is the seq of the last event written: in this segment, or before its
// first event, the last of the earlier segments (0 for a new run).
func (l *Log) Seq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq
}

// Commit makes every event written so far decodable from the file even if
// the process is killed right after (kill -9, the OOM killer, a crash of
// nasd): the zstd encoder emits a complete block into the file, without an
// fsync, so the events are in the kernel's page cache but not yet proof
// against the machine going down. It costs a block encode and a write, a
// few µs, where Flush's fsync costs a disk round trip. After a write error
// the log is unusable and every later call returns that error.
func (l *Log) Commit() error { return l.locked(l.commitLocked) }

// Flush is Commit, then an fsync: every event written so far survives the
// machine crashing too. Call it at trial boundaries when results must
// outlive the node; after a write or flush error the log is unusable and
// every later call returns that error.
func (l *Log) Flush() error { return l.locked(l.flushLocked) }

// locked runs f under the log's lock and then reports events zerolog
// dropped, if f had no error of its own.
func (l *Log) locked(f func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := f(); err != nil {
		return err
	}
	return l.dropped
}

func (l *Log) commitLocked() error {
	if l.err != nil {
		return l.err
	}
	if l.closed {
		return fmt.Errorf("journal: %s: %w", l.path, errClosed)
	}
	if l.committed == l.seq {
		return nil
	}
	if err := l.enc.Flush(); err != nil {
		l.err = fmt.Errorf("journal: %s: %w", l.path, err)
		return l.err
	}
	l.committed = l.seq
	return nil
}

func (l *Log) flushLocked() error {
	if err := l.commitLocked(); err != nil {
		return err
	}
	if l.flushed == l.seq {
		return nil
	}
	if err := l.f.Sync(); err != nil {
		// Never retry a failed fsync: the kernel may have dropped the pages.
		l.err = fmt.Errorf("journal: %s: %w", l.path, err)
		return l.err
	}
	l.flushed = l.seq
	return nil
}

// position flushes the log through seq and returns the newest frame start
// that reading the events after seq can begin at. When everything written
// is seq or before and the current frame holds frameRestart bytes, the frame
// is closed and a new one started right here, so that the position is seq's
// own. ok is false when the log cannot say (closed, or dead after an error).
func (l *Log) position(seq uint64) (pos Position, ok bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.err != nil {
		return Position{}, false, l.err
	}
	if seq > l.flushed {
		if err := l.flushLocked(); err != nil {
			return Position{}, false, err
		}
	}
	if l.seq == seq && l.frameBytes >= frameRestart {
		if err := l.enc.Close(); err != nil {
			l.err = fmt.Errorf("journal: %s: %w", l.path, err)
			return Position{}, false, l.err
		}
		if err := l.f.Sync(); err != nil {
			l.err = fmt.Errorf("journal: %s: %w", l.path, err)
			return Position{}, false, l.err
		}
		l.enc.Reset(l.out)
		l.frameBytes = 0
		l.frames = append(l.frames, Position{Segment: l.seg, Offset: l.out.n, Seq: seq})
		if len(l.frames) > keepFrames {
			l.frames = append(l.frames[:0], l.frames[len(l.frames)-keepFrames:]...)
		}
	}
	for i := len(l.frames) - 1; i >= 0; i-- {
		if l.frames[i].Seq <= seq {
			return l.frames[i], true, nil
		}
	}
	return Position{}, false, nil
}

// Close finishes the segment (last block and frame checksum), fsyncs and
// closes it. It returns the first error the log met, if any. Closing twice is
// a no-op.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	err := l.err
	if err == nil {
		// Flush first so even a tiny segment is a multi-block frame without
		// a content size: a cut copy of it then reads like any other.
		if e := l.enc.Flush(); e != nil {
			err = e
		} else if e := l.enc.Close(); e != nil {
			err = e
		} else if e := l.f.Sync(); e != nil {
			err = e
		}
		if err != nil {
			err = fmt.Errorf("journal: %s: %w", l.path, err)
		}
	}
	if e := l.f.Close(); e != nil && err == nil {
		err = fmt.Errorf("journal: %w", e)
	}
	if err == nil {
		err = l.dropped
	}
	seq := l.seq
	l.committed, l.flushed = seq, seq
	l.mu.Unlock()

	r := l.run
	r.mu.Lock()
	if r.log == l {
		r.log = nil
	}
	r.lastSeq = max(r.lastSeq, seq)
	r.mu.Unlock()
	return err
}

// lineWriter receives each finished zerolog event, one complete JSON line
// per Write, and writes it to the segment with its seq as the first field.
type lineWriter struct{ l *Log }

func (w lineWriter) Write(p []byte) (int, error) {
	l := w.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return 0, l.err
	}
	if l.closed {
		return 0, fmt.Errorf("journal: %s: event after Close: %w", l.path, errClosed)
	}
	if len(p) < 3 || p[0] != '{' || p[len(p)-1] != '\n' {
		return 0, fmt.Errorf("journal: %s: not a zerolog JSON line: %.40q", l.path, p)
	}
	seq := l.seq + 1
	l.pre = append(strconv.AppendUint(append(l.pre[:0], `{"seq":`...), seq, 10), ',')
	if _, err := l.enc.Write(l.pre); err != nil {
		l.err = fmt.Errorf("journal: %s: %w", l.path, err)
		return 0, l.err
	}
	if _, err := l.enc.Write(p[1:]); err != nil {
		l.err = fmt.Errorf("journal: %s: %w", l.path, err)
		return 0, l.err
	}
	l.frameBytes += int64(len(l.pre) + len(p) - 1)
	l.seq = seq
	return len(p), nil
}

var nullJSON = []byte("null")

// Float adds key: v to e. JSON has no NaN or infinity, and the event log
// never holds them: a non-finite v is written as key: null plus
// key+"_nonfinite": "NaN", "+Inf" or "-Inf". Returns e (nil stays nil).
//
//	journal.Float(log.Event("trial_result").Str("trial", id), "reward", r).Send()
func Float(e *zerolog.Event, key string, v float64) *zerolog.Event {
	if e == nil {
		return nil
	}
	if !math.IsNaN(v) && !math.IsInf(v, 0) {
		return e.Float64(key, v)
	}
	return e.RawJSON(key, nullJSON).Str(key+"_nonfinite", nonfinite(v))
}

// Floats adds key: vs to e like Float: non-finite elements are written as
// null, and key+"_nonfinite" maps their indexes to "NaN", "+Inf" or "-Inf"
// ({"3": "NaN"}). Returns e (nil stays nil).
func Floats(e *zerolog.Event, key string, vs []float64) *zerolog.Event {
	if e == nil {
		return nil
	}
	bad := -1
	for i, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			bad = i
			break
		}
	}
	if bad < 0 {
		return e.Floats64(key, vs)
	}
	arr := zerolog.Arr()
	dict := zerolog.Dict()
	for i, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			arr.RawJSON(nullJSON)
			dict.Str(strconv.Itoa(i), nonfinite(v))
		} else {
			arr.Float64(v)
		}
	}
	return e.Array(key, arr).Dict(key+"_nonfinite", dict)
}

func nonfinite(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return "NaN"
}

package journal

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Event is one line of the event log.
type Event struct {
	Seq  uint64
	Time time.Time
	Kind string          // the "event" field
	Run  string          // the "run" field
	Raw  json.RawMessage // the whole line, without its newline; fn may keep it
}

// ReadEvents calls fn for every event of the run in dir, segment by segment
// in order. A segment whose tail was cut (the writer was killed, or is still
// writing) is not an error: everything in its complete zstd blocks is
// delivered and the cut is described in truncated ("journal: run/events-
// 0002.jsonl.zst: truncated at byte 4113 of 4200 (incomplete zstd block)").
// Damage inside a segment is an error naming the file; events before it have
// been delivered. Seqs must increase strictly across segments. An error from
// fn stops the reading and is returned as is.
//
// A closed segment is verified by its frame checksum. In a segment that was
// not closed, damage is caught when it breaks the zstd structure, a JSON line
// or the seq order; damage to a block header can read as a cut at that block,
// which is then reported in truncated with its offset.
func ReadEvents(dir string, fn func(Event) error) (truncated []string, err error) {
	return ReadEventsFrom(dir, Position{}, fn)
}

// ReadSegment is ReadEvents of one segment file, e.g. the one a Log writes
// (Log.Path): what this job segment logged, at a cost independent of the
// run's earlier segments.
func ReadSegment(path string, fn func(Event) error) (truncated string, err error) {
	return readSegment(path, fn)
}

// Position is a place in a run's event log where a zstd frame starts, so that
// reading can begin there without decoding what comes before: segment
// events-NNNN (Segment = NNNN), byte Offset in it. Seq is the seq of the last
// event before it (0: none). The zero Position is the start of the log.
type Position struct {
	Segment int    `json:"segment"`
	Offset  int64  `json:"offset"`
	Seq     uint64 `json:"seq"`
}

// ErrPosition is wrapped by ReadEventsFrom's error when from is not a frame
// start of the log on disk (a segment missing, an offset that holds no
// frame, a first event that does not follow from.Seq). Nothing has been
// delivered then: the caller may read the whole log instead.
var ErrPosition = errors.New("not a position in the event log")

// ReadEventsFrom is ReadEvents from a position (as a checkpoint records it):
// segments before from.Segment are not read and that one is read from
// from.Offset, so the cost is what follows the position, not the run's
// length. Cuts and damage before the position go unnoticed.
func ReadEventsFrom(dir string, from Position, fn func(Event) error) (truncated []string, err error) {
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) ([]string, error) {
		return nil, fmt.Errorf("journal: %s: position %d:%d (after seq %d): %s: %w",
			dir, from.Segment, from.Offset, from.Seq, fmt.Sprintf(format, args...), ErrPosition)
	}
	if from.Offset < 0 || (from != Position{} && from.Segment < 1) {
		return bad("out of range")
	}
	last := from.Seq
	first := from != Position{} // the first event must follow from.Seq
	found := from == Position{}
	for _, s := range segs {
		if s.n < from.Segment {
			continue
		}
		off := int64(0)
		if s.n == from.Segment {
			off, found = from.Offset, true
		} else if !found {
			return bad("%s is missing", segmentName(from.Segment))
		}
		tr, err := readSegmentFrom(s.path, off, func(ev Event) error {
			if first {
				first = false
				if ev.Seq != last+1 {
					return errPositionSeq{ev.Seq}
				}
			}
			if ev.Seq <= last {
				return &lineError{fmt.Sprintf("seq %d does not follow %d", ev.Seq, last)}
			}
			last = ev.Seq
			return fn(ev)
		})
		var pe errPositionSeq
		switch {
		case errors.As(err, &pe):
			return bad("its first event has seq %d", pe.seq)
		case err != nil && off > 0 && errors.Is(err, errNoFrame):
			return bad("%v", err)
		}
		if tr != "" {
			truncated = append(truncated, tr)
		}
		if err != nil {
			return truncated, err
		}
	}
	if !found {
		return bad("%s is missing", segmentName(from.Segment))
	}
	return truncated, nil
}

type errPositionSeq struct{ seq uint64 }

func (e errPositionSeq) Error() string { return fmt.Sprintf("first event seq %d", e.seq) }

// errNoFrame marks a scan that found no zstd frame where one must start.
var errNoFrame = errors.New("not a zstd frame")

// lineError is a problem with one decoded line; readSegment adds the file
// and line number.
type lineError struct{ msg string }

func (e *lineError) Error() string { return e.msg }

// zstd framing constants (RFC 8878).
const (
	zstdMagic      = 0xFD2FB528
	skippableMagic = 0x184D2A50 // ...0x184D2A5F
	maxBlockSize   = 128 << 10
)

// layout is the zstd structure of a segment as far as it is complete.
type layout struct {
	good   int64   // bytes [0, good) are complete frames plus complete blocks of the last one
	size   int64   // file size
	open   bool    // the last frame within good has no last block yet
	patch  int64   // >0: offset of the last frame's header descriptor, whose checksum flag must be cleared
	fhd    byte    // that descriptor
	tail   string  // why [good, size) is unusable; "" when good == size
	start  int64   // where the scan began (a frame start)
	frames []int64 // offsets of the zstd frames found
}

// scanLayout walks frame and block headers without decompressing. Running
// out of bytes is a cut (tail); anything impossible is an error.
func scanLayout(r io.ReaderAt, from, size int64) (layout, error) {
	lay := layout{size: size, start: from, good: from}
	br := bufio.NewReaderSize(io.NewSectionReader(r, from, size-from), 64<<10)
	pos := from
	skip := func(n int64) error {
		for n > 0 {
			k := int(min(n, 1<<30))
			d, err := br.Discard(k)
			pos += int64(d)
			n -= int64(d)
			if err != nil {
				return err
			}
		}
		return nil
	}
	peek := func(n int) []byte {
		b, _ := br.Peek(n)
		return b
	}
	cut := func(what string) (layout, error) {
		lay.tail = what
		return lay, nil
	}
	for pos < size {
		start := pos
		if size-pos < 4 {
			return cut("incomplete frame magic")
		}
		magic := binary.LittleEndian.Uint32(peek(4))
		if magic&^0xF == skippableMagic {
			if size-pos < 8 {
				return cut("incomplete skippable frame")
			}
			n := int64(binary.LittleEndian.Uint32(peek(8)[4:]))
			if size-pos-8 < n {
				return cut("incomplete skippable frame")
			}
			if err := skip(8 + n); err != nil {
				return lay, err
			}
			lay.good, lay.open, lay.patch = pos, false, 0
			continue
		}
		if magic != zstdMagic {
			return lay, fmt.Errorf("byte %d: %w (magic %#08x)", pos, errNoFrame, magic)
		}
		lay.frames = append(lay.frames, start)
		if size-pos < 5 {
			return cut("incomplete frame header")
		}
		fhd := peek(5)[4]
		if fhd&0x08 != 0 {
			return lay, fmt.Errorf("byte %d: zstd frame header has its reserved bit set", pos+4)
		}
		single := fhd&0x20 != 0
		hdr := int64(5) + [4]int64{0, 1, 2, 4}[fhd&3] + [4]int64{0, 2, 4, 8}[fhd>>6]
		if !single {
			hdr++
		} else if fhd>>6 == 0 {
			hdr++
		}
		if size-pos < hdr {
			return cut("incomplete frame header")
		}
		if err := skip(hdr); err != nil {
			return lay, err
		}
		hasSum := fhd&0x04 != 0
		lay.good, lay.open, lay.patch, lay.fhd = pos, true, start+4, fhd
		for {
			if size-pos == 0 {
				return lay, nil // ends after a complete block: an unclosed segment
			}
			if size-pos < 3 {
				return cut("incomplete zstd block header")
			}
			h := peek(3)
			bh := uint32(h[0]) | uint32(h[1])<<8 | uint32(h[2])<<16
			last, typ, bsize := bh&1 != 0, (bh>>1)&3, int64(bh>>3)
			if typ == 3 {
				return lay, fmt.Errorf("byte %d: zstd block of reserved type", pos)
			}
			if bsize > maxBlockSize {
				return lay, fmt.Errorf("byte %d: zstd block of %d bytes (at most %d)", pos, bsize, maxBlockSize)
			}
			payload := bsize
			if typ == 1 { // RLE: one byte repeated bsize times
				payload = 1
			}
			if size-pos-3 < payload {
				return cut("incomplete zstd block")
			}
			if err := skip(3 + payload); err != nil {
				return lay, err
			}
			lay.good = pos
			if last {
				break
			}
		}
		lay.open = false
		if hasSum {
			if size-pos < 4 {
				return cut("incomplete frame checksum") // blocks complete: decode without the checksum
			}
			if err := skip(4); err != nil {
				return lay, err
			}
		}
		lay.good, lay.patch = pos, 0
	}
	return lay, nil
}

// decodable returns the complete part of the segment as a zstd stream: an
// unfinished last frame gets its checksum flag cleared and, if it has no last
// block, an empty one appended.
func (lay layout) decodable(f io.ReaderAt) io.Reader {
	if lay.patch == 0 {
		return io.NewSectionReader(f, lay.start, lay.good-lay.start)
	}
	rs := []io.Reader{
		io.NewSectionReader(f, lay.start, lay.patch-lay.start),
		bytes.NewReader([]byte{lay.fhd &^ 0x04}),
		io.NewSectionReader(f, lay.patch+1, lay.good-lay.patch-1),
	}
	if lay.open {
		rs = append(rs, bytes.NewReader([]byte{1, 0, 0})) // last block, raw, 0 bytes
	}
	return io.MultiReader(rs...)
}

// readSegment decodes one segment, calling fn per event. trunc describes a
// cut tail ("" if none); err is damage (naming the file and line) or fn's.
func readSegment(path string, fn func(Event) error) (trunc string, err error) {
	return readSegmentFrom(path, 0, fn)
}

// readSegmentFrom is readSegment from byte start, where a frame must begin.
func readSegmentFrom(path string, start int64, fn func(Event) error) (trunc string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("journal: %w", err)
	}
	if start > fi.Size() {
		return "", fmt.Errorf("journal: %s: byte %d is past its end (%d bytes): %w", path, start, fi.Size(), errNoFrame)
	}
	lay, err := scanLayout(f, start, fi.Size())
	if err != nil {
		return "", fmt.Errorf("journal: %s: %w", path, err)
	}
	if lay.good == start {
		if lay.tail != "" {
			return fmt.Sprintf("journal: %s: truncated at byte %d of %d (%s)", path, start, lay.size, lay.tail), nil
		}
		return "", nil // empty: created, nothing flushed yet
	}
	dec, err := getDecoder(lay.decodable(f))
	if err != nil {
		return "", fmt.Errorf("journal: %s: %w", path, err)
	}
	defer putDecoder(dec)
	br := bufio.NewReaderSize(dec, 64<<10)
	line := 0
	for {
		b, err := br.ReadBytes('\n')
		if err == io.EOF {
			if len(b) > 0 && lay.tail == "" && !lay.open && lay.patch == 0 {
				return "", fmt.Errorf("journal: %s: last line (%d) has no newline in a closed segment", path, line+1)
			}
			return describeCut(path, lay, len(b)), nil
		}
		if err != nil {
			return "", fmt.Errorf("journal: %s: after line %d: %w", path, line, err)
		}
		line++
		ev, perr := parseEvent(b[:len(b)-1])
		if perr != nil {
			return "", fmt.Errorf("journal: %s: line %d: %w", path, line, perr)
		}
		if err := fn(ev); err != nil {
			var le *lineError
			if errors.As(err, &le) {
				return "", fmt.Errorf("journal: %s: line %d: %w", path, line, err)
			}
			return "", err
		}
	}
}

// lastSeq finds the seq of a segment's last event by decoding its frames
// from the last one back until one holds an event: a segment that
// checkpoints restarted into many frames costs its last frame, not its
// length. trunc and err are as readSegment's.
func lastSeq(path string) (seq uint64, found bool, trunc string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, "", fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, false, "", fmt.Errorf("journal: %w", err)
	}
	lay, err := scanLayout(f, 0, fi.Size())
	if err != nil {
		return 0, false, "", fmt.Errorf("journal: %s: %w", path, err)
	}
	starts := lay.frames
	if len(starts) == 0 {
		starts = []int64{0}
	}
	for i := len(starts) - 1; i >= 0; i-- {
		tr, err := readSegmentFrom(path, starts[i], func(ev Event) error {
			seq, found = ev.Seq, true
			return nil
		})
		if i == len(starts)-1 {
			trunc = tr
		}
		if err != nil || found {
			return seq, found, trunc, err
		}
	}
	return 0, false, trunc, nil
}

// Decoders are reused: a new one allocates its window and block buffers
// (over a megabyte), which dominated reading small segments.
var decoders sync.Pool

func getDecoder(r io.Reader) (*zstd.Decoder, error) {
	if d, ok := decoders.Get().(*zstd.Decoder); ok {
		if err := d.Reset(r); err == nil {
			return d, nil
		}
		d.Close()
	}
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(segmentMaxWindow))
}

// segmentMaxWindow bounds the window a segment's frame may declare: the
// decoder allocates it up front, so without a bound a 12-byte segment
// claiming a 512 MiB window cost 512 MiB (found by FuzzReadEvents' review).
// Segments are written with a 1 MiB window (newSegmentEncoder).
const segmentMaxWindow = 8 << 20

func putDecoder(d *zstd.Decoder) {
	if d.Reset(nil) == nil {
		decoders.Put(d)
	}
}

func describeCut(path string, lay layout, partial int) string {
	var s string
	switch {
	case lay.tail != "":
		s = fmt.Sprintf("journal: %s: truncated at byte %d of %d (%s)", path, lay.good, lay.size, lay.tail)
	case lay.open || lay.patch != 0:
		s = fmt.Sprintf("journal: %s: not closed, ends at byte %d (the writer was killed or is still writing)", path, lay.size)
	default:
		return ""
	}
	if partial > 0 {
		s += fmt.Sprintf("; dropped a half-written last line of %d bytes", partial)
	}
	return s
}

// parseEvent decodes the fields every event has and checks the line is JSON.
func parseEvent(line []byte) (Event, error) {
	var h struct {
		Seq   *uint64 `json:"seq"`
		Time  string  `json:"time"`
		Event string  `json:"event"`
		Run   string  `json:"run"`
	}
	if err := json.Unmarshal(line, &h); err != nil {
		return Event{}, &lineError{fmt.Sprintf("not a JSON event: %v", err)}
	}
	if h.Seq == nil {
		return Event{}, &lineError{"event without seq"}
	}
	t, err := time.Parse(time.RFC3339Nano, h.Time)
	if err != nil {
		return Event{}, &lineError{fmt.Sprintf("seq %d: bad time %q", *h.Seq, h.Time)}
	}
	return Event{Seq: *h.Seq, Time: t, Kind: h.Event, Run: h.Run, Raw: line}, nil
}

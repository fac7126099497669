package journal

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Checkpoint is a snapshot of the search at a position in the event log:
// resume loads it, then replays the events after Seq.
type Checkpoint struct {
	Version  int             // the controller's snapshot schema
	Run      string          // run ID
	Seq      uint64          // last event seq whose effect the snapshot includes
	Strategy string          // strategy name
	State    []byte          // strategy snapshot (opaque; kept byte for byte)
	Loop     json.RawMessage // controller's own state: trials in flight, counters, round
	Written  time.Time       // set by SaveCheckpoint when zero; loaded in UTC
	// EventsFrom is where reading the events after Seq can start (see
	// ReadEventsFrom): set by SaveCheckpoint from the open log; nil when it
	// was saved with no log open, or by a version that did not record it.
	EventsFrom *Position
}

// Checkpoint file layout (little endian). The header is a zstd skippable
// frame, so `zstdcat checkpoint.zst | jq` shows the JSON payload.
//
//	0   4  0x184D2A50        skippable frame magic
//	4   4  80                skippable frame size
//	8   8  "nasdckpt"
//	16  2  1                 format version
//	18  6  0                 reserved
//	24  8  Seq
//	32  8  Written           Unix nanoseconds
//	40  8  N                 zstd payload bytes
//	48  8  M                 JSON bytes inside it
//	56 32  SHA-256 of bytes 8..55 followed by the payload
//	88  N  one zstd frame with content checksum: the JSON (M bytes)
//
// The JSON: {"version":V,"run":"...","strategy":"...","state":S,"loop":L,
// "events_from":{"segment":G,"offset":O,"seq":Q}}
// where S is State itself when State is a JSON value without surrounding
// white space, else "state_b64":"<base64>"; Seq and Written live in the
// header only, so a checkpoint's size depends on State and Loop alone (and
// the few digits of events_from).
const (
	ckptSkipMagic  = 0x184D2A50
	ckptHeaderSize = 88
	ckptFormat     = 1
	ckptMagic      = "nasdckpt"
	ckptWindow     = 8 << 20
)

// maxCheckpointJSON bounds what a checkpoint may decompress to (tests lower it).
var maxCheckpointJSON int64 = 16 << 30

// SaveCheckpoint writes c as checkpoint.zst, atomically: temp file → fsync →
// the current checkpoint.zst becomes checkpoint.prev.zst → rename → fsync of
// the directory. A crash at any point leaves at least one good checkpoint
// (if there was one). A current checkpoint known to be damaged is replaced
// without becoming the previous one, so the good previous one is kept.
//
// If the run's log is open and c.Seq is beyond what it has flushed, the log
// is flushed first: a checkpoint never refers to events that are not on disk.
func (r *Run) SaveCheckpoint(c Checkpoint) error {
	r.ckptMu.Lock()
	defer r.ckptMu.Unlock()
	r.mu.Lock()
	l, closed := r.log, r.closed
	r.mu.Unlock()
	if closed {
		return fmt.Errorf("journal: %s: run is closed", r.Dir)
	}
	if l != nil {
		pos, ok, err := l.position(c.Seq)
		if err != nil {
			return err
		}
		if ok {
			c.EventsFrom = &pos
		}
	}
	if c.Written.IsZero() {
		c.Written = time.Now()
	}
	data, err := encodeCheckpoint(c)
	if err != nil {
		return fmt.Errorf("journal: %s: %w", filepath.Join(r.Dir, checkpointName), err)
	}
	cur := filepath.Join(r.Dir, checkpointName)
	prev := filepath.Join(r.Dir, prevName)
	fail := func(err error) error { return fmt.Errorf("journal: %s: %w", cur, err) }

	f, err := os.CreateTemp(r.Dir, "."+checkpointName+".*"+tempSuffix)
	if err != nil {
		return fail(err)
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if _, err := os.Lstat(cur); err == nil {
		r.mu.Lock()
		state := r.ckptGood
		r.mu.Unlock()
		if state == 0 {
			state = -1
			if _, err := checkpointSeq(cur); err == nil {
				state = 1
			}
		}
		if state > 0 {
			if err := os.Rename(cur, prev); err != nil {
				return fail(err)
			}
		}
	}
	if err := os.Rename(tmp, cur); err != nil {
		return fail(err)
	}
	done = true
	r.mu.Lock()
	r.ckptGood = 1
	r.mu.Unlock()
	if err := syncDir(r.Dir); err != nil {
		return fail(err)
	}
	return nil
}

// LoadCheckpoint returns the newest good checkpoint: checkpoint.zst, or, if
// that is missing or damaged, checkpoint.prev.zst with a warning naming the
// damaged file ("journal: run/checkpoint.zst: checksum mismatch; using
// checkpoint.prev.zst"). Neither good: an error naming both. Neither present:
// an error wrapping os.ErrNotExist.
func (r *Run) LoadCheckpoint() (c Checkpoint, warnings []string, err error) {
	cur := filepath.Join(r.Dir, checkpointName)
	prev := filepath.Join(r.Dir, prevName)
	c, curErr := readCheckpoint(cur)
	r.mu.Lock()
	switch {
	case curErr == nil:
		r.ckptGood = 1
	case !errors.Is(curErr, fs.ErrNotExist):
		r.ckptGood = -1
	}
	r.mu.Unlock()
	if curErr == nil {
		return c, nil, nil
	}
	c, prevErr := readCheckpoint(prev)
	if prevErr == nil {
		return c, []string{fmt.Sprintf("journal: %s: %s; using %s", cur, describe(curErr), prevName)}, nil
	}
	if errors.Is(curErr, fs.ErrNotExist) && errors.Is(prevErr, fs.ErrNotExist) {
		return Checkpoint{}, nil, fmt.Errorf("journal: %s: no checkpoint (%s, %s): %w", r.Dir, checkpointName, prevName, fs.ErrNotExist)
	}
	return Checkpoint{}, nil, fmt.Errorf("journal: %s: %s; %s: %s: no usable checkpoint", cur, describe(curErr), prev, describe(prevErr))
}

// describe is the short reason a checkpoint file was not used.
func describe(err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return "missing"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func readCheckpoint(path string) (Checkpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Checkpoint{}, err
	}
	return decodeCheckpoint(b, true)
}

// checkpointSeq verifies a checkpoint's header and checksum (without
// decompressing) and returns its Seq.
func checkpointSeq(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	c, err := decodeCheckpoint(b, false)
	return c.Seq, err
}

// ckptJSON is the payload's shape when decoding.
type ckptJSON struct {
	Version  int             `json:"version"`
	Run      string          `json:"run"`
	Strategy string          `json:"strategy"`
	State    json.RawMessage `json:"state"`
	StateB64 []byte          `json:"state_b64"`
	Loop     json.RawMessage `json:"loop"`
	From     *Position       `json:"events_from"`
}

func encodeCheckpoint(c Checkpoint) ([]byte, error) {
	loop := bytes.TrimSpace(c.Loop)
	if len(loop) > 0 && !json.Valid(loop) {
		return nil, errors.New("checkpoint Loop is not valid JSON")
	}
	js := make([]byte, 0, 64+len(c.Run)+len(c.Strategy)+len(loop)+len(c.State)*4/3)
	js = append(js, `{"version":`...)
	js = strconv.AppendInt(js, int64(c.Version), 10)
	js = append(js, `,"run":`...)
	js = appendJSONString(js, c.Run)
	js = append(js, `,"strategy":`...)
	js = appendJSONString(js, c.Strategy)
	if len(c.State) > 0 {
		if len(bytes.TrimSpace(c.State)) == len(c.State) && json.Valid(c.State) {
			js = append(append(js, `,"state":`...), c.State...)
		} else {
			b64, _ := json.Marshal(c.State) // []byte → base64 string
			js = append(append(js, `,"state_b64":`...), b64...)
		}
	}
	if len(loop) > 0 {
		js = append(append(js, `,"loop":`...), loop...)
	}
	if c.EventsFrom != nil {
		js = fmt.Appendf(js, `,"events_from":{"segment":%d,"offset":%d,"seq":%d}`,
			c.EventsFrom.Segment, c.EventsFrom.Offset, c.EventsFrom.Seq)
	}
	js = append(js, "}\n"...)

	var z bytes.Buffer
	enc, err := zstd.NewWriter(&z, zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(true),
		zstd.WithWindowSize(ckptWindow))
	if err != nil {
		return nil, err
	}
	if _, err := enc.Write(js); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}

	out := make([]byte, ckptHeaderSize, ckptHeaderSize+z.Len())
	binary.LittleEndian.PutUint32(out[0:], ckptSkipMagic)
	binary.LittleEndian.PutUint32(out[4:], ckptHeaderSize-8)
	copy(out[8:], ckptMagic)
	binary.LittleEndian.PutUint16(out[16:], ckptFormat)
	binary.LittleEndian.PutUint64(out[24:], c.Seq)
	binary.LittleEndian.PutUint64(out[32:], uint64(c.Written.UnixNano()))
	binary.LittleEndian.PutUint64(out[40:], uint64(z.Len()))
	binary.LittleEndian.PutUint64(out[48:], uint64(len(js)))
	out = append(out, z.Bytes()...)
	sum := ckptSum(out[8:56], out[ckptHeaderSize:])
	copy(out[56:88], sum[:])
	return out, nil
}

func ckptSum(header, payload []byte) [32]byte {
	h := sha256.New()
	h.Write(header)
	h.Write(payload)
	var s [32]byte
	h.Sum(s[:0])
	return s
}

func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // cannot fail for a string
	return append(dst, b...)
}

// decodeCheckpoint checks a checkpoint file's bytes and, with full, decodes
// its payload. Errors are short reasons; the caller names the file.
func decodeCheckpoint(b []byte, full bool) (Checkpoint, error) {
	var hdr [16]byte
	binary.LittleEndian.PutUint32(hdr[0:], ckptSkipMagic)
	binary.LittleEndian.PutUint32(hdr[4:], ckptHeaderSize-8)
	copy(hdr[8:], ckptMagic)
	if n := min(len(b), len(hdr)); !bytes.Equal(b[:n], hdr[:n]) {
		return Checkpoint{}, errors.New("not a nasd checkpoint")
	}
	if len(b) < ckptHeaderSize {
		return Checkpoint{}, fmt.Errorf("truncated (%d bytes, header alone is %d)", len(b), ckptHeaderSize)
	}
	if v := binary.LittleEndian.Uint16(b[16:]); v != ckptFormat {
		return Checkpoint{}, fmt.Errorf("checkpoint format %d (this nasd reads %d)", v, ckptFormat)
	}
	n := binary.LittleEndian.Uint64(b[40:])
	m := binary.LittleEndian.Uint64(b[48:])
	if have := uint64(len(b) - ckptHeaderSize); n > have {
		return Checkpoint{}, fmt.Errorf("truncated (%d of %d bytes)", len(b), uint64(ckptHeaderSize)+n)
	} else if n < have {
		return Checkpoint{}, fmt.Errorf("%d bytes of garbage after the checkpoint", have-n)
	}
	if sum := ckptSum(b[8:56], b[ckptHeaderSize:]); !bytes.Equal(sum[:], b[56:88]) {
		return Checkpoint{}, errors.New("checksum mismatch")
	}
	c := Checkpoint{
		Seq:     binary.LittleEndian.Uint64(b[24:]),
		Written: time.Unix(0, int64(binary.LittleEndian.Uint64(b[32:]))).UTC(),
	}
	if !full {
		return c, nil
	}
	if m > uint64(maxCheckpointJSON) {
		return Checkpoint{}, fmt.Errorf("payload of %d bytes is over the limit of %d", m, maxCheckpointJSON)
	}
	dec, err := zstd.NewReader(bytes.NewReader(b[ckptHeaderSize:]), zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxWindow(ckptWindow), zstd.WithDecoderMaxMemory(uint64(maxCheckpointJSON)))
	if err != nil {
		return Checkpoint{}, err
	}
	defer dec.Close()
	// Preallocate what the compressed payload can plausibly back, not what
	// the header claims: a 114-byte file claiming 1 GiB cost 64 MiB.
	js := bytes.NewBuffer(make([]byte, 0, min(m, 64<<20, max(32*n, 1<<16))))
	if _, err := io.Copy(js, io.LimitReader(dec, int64(m)+1)); err != nil {
		return Checkpoint{}, fmt.Errorf("payload: %w", err)
	}
	if uint64(js.Len()) != m {
		return Checkpoint{}, fmt.Errorf("payload is %d bytes, header says %d", js.Len(), m)
	}
	var p ckptJSON
	if err := json.Unmarshal(js.Bytes(), &p); err != nil {
		return Checkpoint{}, fmt.Errorf("payload: %w", err)
	}
	if p.State != nil && p.StateB64 != nil {
		return Checkpoint{}, errors.New("payload has both state and state_b64")
	}
	c.Version, c.Run, c.Strategy, c.Loop, c.EventsFrom = p.Version, p.Run, p.Strategy, p.Loop, p.From
	c.State = p.StateB64
	if p.State != nil {
		c.State = []byte(p.State)
	}
	return c, nil
}

package cluster

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"

	"nasd/arch"
)

// WireVersion is the version of the wire format this build speaks; Decode
// refuses any other. Bump it whenever the header or a payload changes
// incompatibly. The magic and the version byte stay at offsets 0–4 in every
// version so that a mismatch is always reported as one.
const WireVersion = 1

// Kind says what a message carries.
type Kind uint8

// Message kinds. Zero is not a kind, so a Message left at its zero value
// does not encode.
const (
	KindSetup    Kind = 1 + iota // the run's resolved config, rank 0 → workers (Message.Setup)
	KindTask                     // a trial to train (Message.Trial)
	KindIdle                     // no trial for this worker this round (no payload)
	KindResult                   // a trial's result, worker → rank 0 (Message.Result)
	KindStop                     // the run is over: the worker returns (no payload)
	KindProgress                 // an epoch of a reporting trial, worker → rank 0 (Message.Progress)
	KindDecision                 // rank 0's answer to a progress message (Message.Decision)
)

var kindNames = [...]string{KindSetup: "setup", KindTask: "task", KindIdle: "idle", KindResult: "result", KindStop: "stop",
	KindProgress: "progress", KindDecision: "decision"}

func (k Kind) valid() bool { return k >= KindSetup && k <= KindDecision }

// String returns the kind's name ("task"), or "kind(9)" for an unknown one.
func (k Kind) String() string {
	if k.valid() {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Message is one unit on the wire. Exactly the field that its Kind names is
// set: Setup for KindSetup, Trial for KindTask, Result for KindResult,
// Progress for KindProgress, Decision for KindDecision; KindIdle and
// KindStop carry nothing.
type Message struct {
	Kind     Kind
	Setup    []byte    // KindSetup: the run's resolved config (opaque to cluster)
	Trial    *Trial    // KindTask
	Result   *Result   // KindResult
	Progress *Progress // KindProgress
	Decision *Decision // KindDecision
}

// The header and payload layout is documented in doc.go ("Wire format");
// the offsets below are its fields.
const (
	HeaderSize    = 20       // bytes before the payload
	CompressAbove = 4 << 10  // payloads longer than this are compressed
	MaxPayload    = 64 << 20 // largest payload, decoded, that Encode writes and Decode accepts
)

const (
	magic        = "NASD"
	flagZstd     = 1 << 0
	knownFlags   = flagZstd
	offVersion   = 4
	offKind      = 5
	offFlags     = 6
	offReserved  = 7
	offWireLen   = 8
	offDecodeLen = 12
	offCRC       = 16
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// One encoder and one decoder for the process: EncodeAll and DecodeAll are
// safe for concurrent use, and each keeps a small pool of state.
var (
	zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
		// Our CRC already covers the compressed bytes; zstd's would add 4
		// bytes and a second hash for nothing.
		return zstd.NewWriter(nil, zstd.WithEncoderCRC(false), zstd.WithEncoderLevel(zstd.SpeedDefault))
	})
	zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
		// Cap-limited: DecodeAll never writes more than the header's decoded
		// length, which is itself at most MaxPayload.
		return zstd.NewReader(nil, zstd.WithDecoderMaxMemory(MaxPayload), zstd.WithDecodeAllCapLimit(true))
	})
)

// Encode returns m's wire form. It refuses a message whose fields do not fit
// its kind, a trial without an ID or with an invalid architecture, a result
// without a trial ID or status, a progress message without a trial ID, with
// an epoch below 1 or a non-finite accuracy, a decision without a trial ID,
// NaN or ±Inf anywhere in a result (JSON cannot
// carry them, and they must not reach the event log: a diverged trial reports
// status "diverged"), and payloads over MaxPayload. Whatever Encode returns,
// Decode accepts.
func Encode(m Message) ([]byte, error) {
	payload, err := encodePayload(m)
	if err != nil {
		return nil, fmt.Errorf("cluster: encode %s: %w", describe(m), err)
	}
	if len(payload) > MaxPayload {
		return nil, fmt.Errorf("cluster: encode %s: payload of %d bytes exceeds the %d MiB limit", describe(m), len(payload), MaxPayload>>20)
	}
	out := make([]byte, HeaderSize, HeaderSize+len(payload))
	var flags byte
	if len(payload) > CompressAbove {
		enc, err := zstdEncoder()
		if err != nil {
			return nil, fmt.Errorf("cluster: encode %s: zstd: %w", describe(m), err)
		}
		if z := enc.EncodeAll(payload, out); len(z)-HeaderSize < len(payload) {
			out, flags = z, flagZstd
		}
	}
	if flags == 0 {
		out = append(out, payload...)
	}
	copy(out, magic)
	out[offVersion] = WireVersion
	out[offKind] = byte(m.Kind)
	out[offFlags] = flags
	out[offReserved] = 0
	wire := out[HeaderSize:]
	binary.BigEndian.PutUint32(out[offWireLen:], uint32(len(wire)))
	binary.BigEndian.PutUint32(out[offDecodeLen:], uint32(len(payload)))
	binary.BigEndian.PutUint32(out[offCRC:], crc32.Checksum(wire, crcTable))
	return out, nil
}

// describe names a message in Encode's errors: "task t000001", "result t000001", "stop".
func describe(m Message) string {
	switch {
	case m.Kind == KindTask && m.Trial != nil && m.Trial.ID != "":
		return "task " + m.Trial.ID
	case m.Kind == KindResult && m.Result != nil && m.Result.TrialID != "":
		return "result " + m.Result.TrialID
	case m.Kind == KindProgress && m.Progress != nil && m.Progress.TrialID != "":
		return "progress " + m.Progress.TrialID
	case m.Kind == KindDecision && m.Decision != nil && m.Decision.TrialID != "":
		return "decision " + m.Decision.TrialID
	}
	return m.Kind.String()
}

func encodePayload(m Message) ([]byte, error) {
	if !m.Kind.valid() {
		return nil, fmt.Errorf("unknown message kind %d", m.Kind)
	}
	if err := checkFields(m); err != nil {
		return nil, err
	}
	switch m.Kind {
	case KindSetup:
		return m.Setup, nil
	case KindTask:
		if err := checkTrial(m.Trial, true); err != nil {
			return nil, err
		}
		return marshalTask(m.Trial)
	case KindResult:
		if err := checkResult(m.Result); err != nil {
			return nil, err
		}
		return json.Marshal(m.Result)
	case KindProgress:
		if err := checkProgress(m.Progress); err != nil {
			return nil, err
		}
		return json.Marshal(m.Progress)
	case KindDecision:
		if err := checkDecision(m.Decision); err != nil {
			return nil, err
		}
		return json.Marshal(m.Decision)
	}
	return nil, nil
}

// taskWire is a Trial as a task's payload: the same fields and tags, but the
// architecture in its compact form (arch.Arch.CompactJSON, no "layers"),
// which the worker decodes as well and derives the layers from. Deriving them
// on rank 0 meant building every trial's graph just to send it.
type taskWire struct {
	ID     string          `json:"id"`
	Arch   json.RawMessage `json:"arch"`
	Seed   uint64          `json:"seed"`
	Epochs int             `json:"epochs,omitempty"`
	Report bool            `json:"report,omitempty"`
}

func marshalTask(t *Trial) ([]byte, error) {
	a, err := t.Arch.CompactJSON()
	if err != nil {
		return nil, err
	}
	return json.Marshal(taskWire{ID: t.ID, Arch: a, Seed: t.Seed, Epochs: t.Epochs, Report: t.Report})
}

// checkFields refuses a message that sets a field its kind does not carry,
// or leaves out the one it does.
func checkFields(m Message) error {
	var errs []error
	want := map[Kind]string{KindSetup: "setup", KindTask: "trial", KindResult: "result",
		KindProgress: "progress", KindDecision: "decision"}[m.Kind]
	has := func(name string, set bool) {
		switch {
		case set && name != want:
			errs = append(errs, fmt.Errorf("a %s message carries no %s, but Message.%s is set", m.Kind, name, exported(name)))
		case !set && name == want:
			errs = append(errs, fmt.Errorf("Message.%s is missing", exported(name)))
		}
	}
	has("setup", len(m.Setup) > 0)
	has("trial", m.Trial != nil)
	has("result", m.Result != nil)
	has("progress", m.Progress != nil)
	has("decision", m.Decision != nil)
	return joinErrors(errs)
}

func exported(name string) string { return string(name[0]-'a'+'A') + name[1:] }

// checkTrial checks what a worker needs to run the trial. Encode also checks
// the architecture (Decode's JSON decoding already has).
func checkTrial(t *Trial, checkArch bool) error {
	var errs []error
	if t.ID == "" {
		errs = append(errs, errors.New("trial ID is empty"))
	}
	if t.Epochs < 0 {
		errs = append(errs, fmt.Errorf("epochs = %d: must be ≥ 0 (0 = the run's)", t.Epochs))
	}
	if t.Arch.Space == "" {
		errs = append(errs, errors.New("arch is missing"))
	} else if checkArch {
		s, err := arch.New(t.Arch.Space, t.Arch.Options)
		if err == nil {
			_, err = s.Arch(t.Arch.Decisions)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return joinErrors(errs)
}

// checkResult checks the fields the controller keys on and every float.
func checkResult(r *Result) error {
	var errs []error
	if r.TrialID == "" {
		errs = append(errs, errors.New("trial ID is empty"))
	}
	if r.Status == "" {
		errs = append(errs, errors.New("status is empty"))
	}
	finite := func(field string, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("%s is %v: JSON cannot carry NaN or Inf (a diverged trial reports status %q)", field, v, "diverged"))
		}
	}
	finite("reward", r.Reward)
	for i, v := range r.ValAcc {
		finite("val_acc["+strconv.Itoa(i)+"]", v)
	}
	finite("best_val_acc", r.BestValAcc)
	if r.TestAcc != nil {
		finite("test_acc", *r.TestAcc)
	}
	finite("img_per_sec", r.ImgPerSec)
	for i, v := range r.ValPPL {
		finite("val_ppl["+strconv.Itoa(i)+"]", v)
	}
	if r.TestPPL != nil {
		finite("test_ppl", *r.TestPPL)
	}
	return joinErrors(errs)
}

// checkProgress checks a progress report.
func checkProgress(p *Progress) error {
	var errs []error
	if p.TrialID == "" {
		errs = append(errs, errors.New("trial ID is empty"))
	}
	if p.Epoch < 1 {
		errs = append(errs, fmt.Errorf("epoch = %d: must be ≥ 1", p.Epoch))
	}
	if math.IsNaN(p.ValAcc) || math.IsInf(p.ValAcc, 0) {
		errs = append(errs, fmt.Errorf("val_acc is %v: JSON cannot carry NaN or Inf", p.ValAcc))
	}
	return joinErrors(errs)
}

// checkDecision checks rank 0's answer to a progress report.
func checkDecision(d *Decision) error {
	if d.TrialID == "" {
		return errors.New("trial ID is empty")
	}
	return nil
}

// Decode parses a message that rank from sent. It never panics; every error
// names the sender and what is wrong, e.g.
//
//	cluster: message from rank 3: wire version 9, this build speaks 1
//
// The returned message shares no memory with b.
func Decode(from int, b []byte) (Message, error) {
	m, err := decode(b)
	if err != nil {
		return Message{}, fmt.Errorf("cluster: message from rank %d: %w", from, err)
	}
	return m, nil
}

func decode(b []byte) (Message, error) {
	// The magic and the version first: any other version may lay out the
	// rest differently.
	if len(b) == 0 {
		return Message{}, errors.New("empty message")
	}
	if n := min(len(b), len(magic)); !bytes.Equal(b[:n], []byte(magic[:n])) {
		return Message{}, fmt.Errorf("not a nasd message (starts % x, want %q)", b[:n], magic)
	}
	if len(b) <= offVersion {
		return Message{}, fmt.Errorf("truncated: %d bytes, the header alone is %d", len(b), HeaderSize)
	}
	if v := b[offVersion]; v != WireVersion {
		return Message{}, fmt.Errorf("wire version %d, this build speaks %d", v, WireVersion)
	}
	if len(b) < HeaderSize {
		return Message{}, fmt.Errorf("truncated: %d bytes, the header alone is %d", len(b), HeaderSize)
	}
	kind := Kind(b[offKind])
	if !kind.valid() {
		return Message{}, fmt.Errorf("unknown message kind %d", b[offKind])
	}
	flags := b[offFlags]
	if flags&^knownFlags != 0 {
		return Message{}, fmt.Errorf("%s message: unknown flags %#02x", kind, flags&^knownFlags)
	}
	if r := b[offReserved]; r != 0 {
		return Message{}, fmt.Errorf("%s message: reserved header byte is %#02x, want 0", kind, r)
	}
	wireLen := binary.BigEndian.Uint32(b[offWireLen:])
	decodedLen := binary.BigEndian.Uint32(b[offDecodeLen:])
	if wireLen > MaxPayload || decodedLen > MaxPayload {
		return Message{}, fmt.Errorf("%s message: payload of %d bytes (%d decoded) exceeds the %d MiB limit", kind, wireLen, decodedLen, MaxPayload>>20)
	}
	switch got := uint64(len(b) - HeaderSize); {
	case got < uint64(wireLen):
		return Message{}, fmt.Errorf("%s message truncated: header says %d payload bytes, got %d", kind, wireLen, got)
	case got > uint64(wireLen):
		return Message{}, fmt.Errorf("%s message: %d bytes after the %d-byte payload", kind, got-uint64(wireLen), wireLen)
	}
	wire := b[HeaderSize:]
	if flags&flagZstd == 0 && decodedLen != wireLen {
		return Message{}, fmt.Errorf("%s message: uncompressed payload of %d bytes, but the header says %d decoded", kind, wireLen, decodedLen)
	}
	if got, want := crc32.Checksum(wire, crcTable), binary.BigEndian.Uint32(b[offCRC:]); got != want {
		return Message{}, fmt.Errorf("%s message: payload checksum %08x, header says %08x (corrupted in transit)", kind, got, want)
	}

	payload := wire
	if flags&flagZstd != 0 {
		dec, err := zstdDecoder()
		if err != nil {
			return Message{}, fmt.Errorf("zstd: %w", err)
		}
		payload, err = dec.DecodeAll(wire, make([]byte, 0, decodedLen))
		if err != nil {
			return Message{}, fmt.Errorf("%s message: decompressing the payload: %w", kind, err)
		}
		if uint32(len(payload)) != decodedLen {
			return Message{}, fmt.Errorf("%s message: payload decompressed to %d bytes, the header says %d", kind, len(payload), decodedLen)
		}
	}

	m := Message{Kind: kind}
	switch kind {
	case KindSetup:
		if len(payload) == 0 {
			return Message{}, errors.New("setup message without a payload")
		}
		m.Setup = bytes.Clone(payload)
	case KindIdle, KindStop:
		if len(payload) != 0 {
			return Message{}, fmt.Errorf("%s message carries %d payload bytes; it has none", kind, len(payload))
		}
	case KindTask:
		m.Trial = new(Trial)
		if err := unmarshal(kind, payload, m.Trial); err != nil {
			return Message{}, err
		}
		if err := checkTrial(m.Trial, false); err != nil {
			return Message{}, fmt.Errorf("task message: %w", err)
		}
	case KindResult:
		m.Result = new(Result)
		if err := unmarshal(kind, payload, m.Result); err != nil {
			return Message{}, err
		}
		if err := checkResult(m.Result); err != nil {
			return Message{}, fmt.Errorf("result message: %w", err)
		}
		if len(m.Result.ValAcc) == 0 {
			m.Result.ValAcc = nil // "val_acc": [] and no val_acc are the same result
		}
	case KindProgress:
		m.Progress = new(Progress)
		if err := unmarshal(kind, payload, m.Progress); err != nil {
			return Message{}, err
		}
		if err := checkProgress(m.Progress); err != nil {
			return Message{}, fmt.Errorf("progress message: %w", err)
		}
	case KindDecision:
		m.Decision = new(Decision)
		if err := unmarshal(kind, payload, m.Decision); err != nil {
			return Message{}, err
		}
		if err := checkDecision(m.Decision); err != nil {
			return Message{}, fmt.Errorf("decision message: %w", err)
		}
	}
	return m, nil
}

// unmarshal decodes one JSON object strictly: no unknown fields, nothing
// after it, not null.
func unmarshal(kind Kind, payload []byte, v any) error {
	if len(bytes.TrimSpace(payload)) == 0 {
		return fmt.Errorf("%s message without a payload", kind)
	}
	if bytes.Equal(bytes.TrimSpace(payload), []byte("null")) {
		return fmt.Errorf("%s message: payload is null", kind)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s message: malformed JSON payload: %w", kind, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%s message: malformed JSON payload: data after the object at offset %d", kind, dec.InputOffset())
	}
	return nil
}

// joinErrors joins problems on one line, so that the prefix Encode and
// Decode add covers them all: "trial ID is empty; arch is missing".
func joinErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

package cluster

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"nasd/arch"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// sampleArch is a seeded sample of the nas space with the given layers.
func sampleArch(t testing.TB, layers int) arch.Arch {
	t.Helper()
	s, err := arch.New("nas", arch.Options{Layers: layers})
	if err != nil {
		t.Fatal(err)
	}
	return s.Sample(rand.New(rand.NewPCG(1, uint64(layers))))
}

func typicalTrial(t testing.TB) *Trial {
	return &Trial{ID: "t000042", Arch: sampleArch(t, 6), Seed: 0x9e3779b97f4a7c15, Epochs: 5}
}

func typicalResult() *Result {
	test := 0.8861
	start := time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)
	return &Result{
		TrialID: "t000042", Status: "ok", Reward: 0.8907,
		ValAcc:     []float64{0.7712, 0.8325, 0.8611, 0.8802, 0.8907},
		BestValAcc: 0.8907, TestAcc: &test,
		Params: 318_474, FLOPs: 41_236_992,
		Rank: 3, Host: "node017",
		Start: start, End: start.Add(83*time.Second + 250*time.Millisecond),
		ImgPerSec: 3012.5,
	}
}

// roundTripMessages is one message of every kind, small and (where a kind
// has a payload) over CompressAbove.
func roundTripMessages(t testing.TB) map[string]Message {
	var setup strings.Builder
	for i := 0; setup.Len() < 20<<10; i++ {
		fmt.Fprintf(&setup, "[strategy.option%d]\nlearning_rate = 0.0006\nentropy_weight = 0.0001\n\n", i)
	}
	failed := typicalResult()
	failed.Status, failed.Reward, failed.ValAcc, failed.TestAcc = StatusFailed, 0, nil, nil
	failed.Reason = "panic: runtime error: index out of range [7] with length 7\n\ngoroutine 1 [running]:\n" +
		strings.Repeat("nasd/train.(*net).forward(...)\n\t/work/main/train/net.go:212 +0x1d4\n", 120)
	long := typicalResult()
	long.ValAcc = make([]float64, 1500)
	for i := range long.ValAcc {
		long.ValAcc[i] = math.Round(1e4*(0.9-0.5*math.Exp(-float64(i)/40))) / 1e4
	}
	return map[string]Message{
		"setup":        {Kind: KindSetup, Setup: []byte("[search]\nstrategy = \"random\"\nmax_trials = 100\n")},
		"setup-large":  {Kind: KindSetup, Setup: []byte(setup.String())},
		"task":         {Kind: KindTask, Trial: typicalTrial(t)},
		"task-large":   {Kind: KindTask, Trial: &Trial{ID: "t000043", Arch: sampleArch(t, 100), Seed: 7}},
		"idle":         {Kind: KindIdle},
		"result":       {Kind: KindResult, Result: typicalResult()},
		"result-large": {Kind: KindResult, Result: failed},
		"result-long":  {Kind: KindResult, Result: long},
		"stop":         {Kind: KindStop},
		"task-report":  {Kind: KindTask, Trial: &Trial{ID: "t000044", Arch: sampleArch(t, 2), Seed: 9, Epochs: 3, Report: true}},
		"progress":     {Kind: KindProgress, Progress: &Progress{TrialID: "t000042", Epoch: 3, ValAcc: 0.8611}},
		"decision":     {Kind: KindDecision, Decision: &Decision{TrialID: "t000042", Stop: true}},
		"decision-go":  {Kind: KindDecision, Decision: &Decision{TrialID: "t000042"}},
	}
}

func TestRoundTrip(t *testing.T) {
	for name, m := range roundTripMessages(t) {
		t.Run(name, func(t *testing.T) {
			b, err := Encode(m)
			if err != nil {
				t.Fatal(err)
			}
			if string(b[:4]) != "NASD" || b[offVersion] != WireVersion || Kind(b[offKind]) != m.Kind {
				t.Fatalf("header % x", b[:HeaderSize])
			}
			decodedLen := binary.BigEndian.Uint32(b[offDecodeLen:])
			compressed := b[offFlags]&flagZstd != 0
			if large := strings.HasSuffix(name, "-large") || strings.HasSuffix(name, "-long"); large != (decodedLen > CompressAbove) || large != compressed {
				t.Errorf("payload %d bytes decoded, %d on the wire, compressed %v; want compressed exactly when over %d", decodedLen, len(b)-HeaderSize, compressed, CompressAbove)
			}
			if compressed && len(b)-HeaderSize >= int(decodedLen) {
				t.Errorf("compressed payload %d bytes is not smaller than %d", len(b)-HeaderSize, decodedLen)
			}
			t.Logf("%s: %d bytes decoded, %d on the wire", m.Kind, decodedLen, len(b))
			if m.Kind == KindTask && !compressed && bytes.Contains(b[HeaderSize:], []byte(`"layers":[`)) {
				t.Errorf("task payload carries the layers: %s", b[HeaderSize:])
			}
			got, err := Decode(5, b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Errorf("round trip:\ngot  %+v\nwant %+v", got, m)
			}
			// The decoded message shares nothing with b.
			for i := range b {
				b[i] = 0xff
			}
			if !reflect.DeepEqual(got, m) {
				t.Error("the decoded message changed with the bytes it came from")
			}
		})
	}
}

// TestIncompressible: a large payload that zstd cannot shrink is sent as is.
func TestIncompressible(t *testing.T) {
	setup := make([]byte, 10<<10)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range setup {
		setup[i] = byte(r.Uint32())
	}
	b, err := Encode(Message{Kind: KindSetup, Setup: setup})
	if err != nil {
		t.Fatal(err)
	}
	if b[offFlags] != 0 || len(b) != HeaderSize+len(setup) {
		t.Errorf("flags %#x, %d bytes: want the %d bytes uncompressed", b[offFlags], len(b), len(setup))
	}
	m, err := Decode(1, b)
	if err != nil || !bytes.Equal(m.Setup, setup) {
		t.Fatalf("decode: %v", err)
	}
}

// TestGolden pins the header and the JSON payload of one result.
func TestGolden(t *testing.T) {
	b, err := Encode(Message{Kind: KindResult, Result: typicalResult()})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("header, %d bytes (wire version %d):\n%spayload, %d bytes:\n%s\n",
		HeaderSize, WireVersion, hex.Dump(b[:HeaderSize]), len(b)-HeaderSize, b[HeaderSize:])
	path := filepath.Join("testdata", "result.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it after a deliberate change; bump WireVersion if old builds cannot read it):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// frame builds a message with a correct header around any payload.
func frame(kind Kind, flags byte, decodedLen int, payload []byte) []byte {
	b := make([]byte, HeaderSize, HeaderSize+len(payload))
	copy(b, magic)
	b[offVersion], b[offKind], b[offFlags] = WireVersion, byte(kind), flags
	binary.BigEndian.PutUint32(b[offWireLen:], uint32(len(payload)))
	binary.BigEndian.PutUint32(b[offDecodeLen:], uint32(decodedLen))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(payload, crcTable))
	return append(b, payload...)
}

func plain(kind Kind, payload string) []byte {
	return frame(kind, 0, len(payload), []byte(payload))
}

func compressed(t testing.TB, kind Kind, decodedLen int, payload []byte) []byte {
	enc, err := zstdEncoder()
	if err != nil {
		t.Fatal(err)
	}
	return frame(kind, flagZstd, decodedLen, enc.EncodeAll(payload, nil))
}

func TestDecodeErrors(t *testing.T) {
	good, err := Encode(Message{Kind: KindResult, Result: typicalResult()})
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	taskJSON := func(f func(s string) string) []byte {
		b, err := Encode(Message{Kind: KindTask, Trial: typicalTrial(t)})
		if err != nil {
			t.Fatal(err)
		}
		return plain(KindTask, f(string(b[HeaderSize:])))
	}
	resultJSON := func(f func(s string) string) []byte { return plain(KindResult, f(string(good[HeaderSize:]))) }
	big := bytes.Repeat([]byte("x"), 10<<10)

	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "empty message"},
		{"short wrong magic", []byte("NA\x00"), `not a nasd message (starts 4e 41 00, want "NASD")`},
		{"wrong magic", []byte("GET / HTTP/1.1\r\n"), `not a nasd message (starts 47 45 54 20, want "NASD")`},
		{"magic only", []byte("NASD"), "truncated: 4 bytes, the header alone is 20"},
		{"wrong version", edit(func(b []byte) []byte { b[offVersion] = 9; return b }), "wire version 9, this build speaks 1"},
		{"truncated header", good[:12], "truncated: 12 bytes, the header alone is 20"},
		{"unknown kind", edit(func(b []byte) []byte { b[offKind] = 42; return b }), "unknown message kind 42"},
		{"kind zero", edit(func(b []byte) []byte { b[offKind] = 0; return b }), "unknown message kind 0"},
		{"unknown flags", edit(func(b []byte) []byte { b[offFlags] = 0x81; return b }), "result message: unknown flags 0x80"},
		{"reserved", edit(func(b []byte) []byte { b[offReserved] = 1; return b }), "result message: reserved header byte is 0x01, want 0"},
		{"truncated payload", good[:len(good)-10], fmt.Sprintf("result message truncated: header says %d payload bytes, got %d", len(good)-HeaderSize, len(good)-HeaderSize-10)},
		{"trailing bytes", append(bytes.Clone(good), "xyz"...), fmt.Sprintf("result message: 3 bytes after the %d-byte payload", len(good)-HeaderSize)},
		{"bad checksum", edit(func(b []byte) []byte { b[len(b)-2] ^= 0x20; return b }), "result message: payload checksum"},
		{"oversized", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[offWireLen:], 65<<20); return b }), "result message: payload of 68157440 bytes"},
		{"oversized decoded", compressed(t, KindSetup, MaxPayload+1, big), "setup message: payload of"},
		{"length mismatch", frame(KindSetup, 0, 3, []byte("abcd")), "setup message: uncompressed payload of 4 bytes, but the header says 3 decoded"},
		{"not zstd", frame(KindSetup, flagZstd, 100, big[:100]), "setup message: decompressing the payload"},
		{"zstd longer than said", compressed(t, KindSetup, 5<<10, big), "setup message: decompressing the payload"},
		{"zstd shorter than said", compressed(t, KindSetup, 20<<10, big), "setup message: payload decompressed to 10240 bytes, the header says 20480"},
		{"empty setup", plain(KindSetup, ""), "setup message without a payload"},
		{"idle with payload", plain(KindIdle, "{}"), "idle message carries 2 payload bytes; it has none"},
		{"stop with payload", plain(KindStop, "x"), "stop message carries 1 payload bytes; it has none"},
		{"task without payload", plain(KindTask, ""), "task message without a payload"},
		{"task null", plain(KindTask, " null "), "task message: payload is null"},
		{"task malformed", taskJSON(func(s string) string { return s[:len(s)/2] }), "task message: malformed JSON payload: unexpected EOF"},
		{"task trailing", taskJSON(func(s string) string { return s + "{}" }), "task message: malformed JSON payload: data after the object"},
		{"task unknown field", taskJSON(func(s string) string { return strings.Replace(s, `"id"`, `"budget":3,"id"`, 1) }), `task message: malformed JSON payload: json: unknown field "budget"`},
		{"task wrong type", taskJSON(func(s string) string { return strings.Replace(s, `"seed":`, `"seed":-`, 1) }), "task message: malformed JSON payload: json: cannot unmarshal number -"},
		{"task no id", taskJSON(func(s string) string { return strings.Replace(s, `"id":"t000042"`, `"id":""`, 1) }), "task message: trial ID is empty"},
		{"task no arch", plain(KindTask, `{"id":"t1","seed":1}`), "task message: arch is missing"},
		{"task bad epochs", taskJSON(func(s string) string { return strings.Replace(s, `"epochs":5`, `"epochs":-5`, 1) }), "task message: epochs = -5: must be ≥ 0"},
		{"task bad arch", taskJSON(func(s string) string { return strings.Replace(s, `"space":"nas"`, `"space":"darts"`, 1) }), `task message: malformed JSON payload: arch: space "darts": unknown (known: enas-macro, enas-micro, enas-rnn, nas, nas-rnn)`},
		{"result empty object", plain(KindResult, "{}"), "result message: trial ID is empty; status is empty"},
		{"result Inf", resultJSON(func(s string) string { return strings.Replace(s, `"reward":0.8907`, `"reward":1e999`, 1) }), "result message: malformed JSON payload: json: cannot unmarshal number 1e999"},
		{"result NaN", resultJSON(func(s string) string { return strings.Replace(s, `"reward":0.8907`, `"reward":NaN`, 1) }), "result message: malformed JSON payload: invalid character 'N'"},
		{"result array", plain(KindResult, `[1,2]`), "result message: malformed JSON payload: json: cannot unmarshal array"},
		{"result bad time", resultJSON(func(s string) string { return strings.Replace(s, `"start":"2026-`, `"start":"26-`, 1) }), "result message: malformed JSON payload: parsing time"},
		{"progress without payload", plain(KindProgress, ""), "progress message without a payload"},
		{"progress empty object", plain(KindProgress, "{}"), "progress message: trial ID is empty; epoch = 0: must be ≥ 1"},
		{"progress epoch 0", plain(KindProgress, `{"trial":"t1","epoch":0,"val_acc":0.5}`), "progress message: epoch = 0: must be ≥ 1"},
		{"progress unknown field", plain(KindProgress, `{"trial":"t1","epoch":1,"val_acc":0.5,"loss":2}`), `progress message: malformed JSON payload: json: unknown field "loss"`},
		{"progress Inf", plain(KindProgress, `{"trial":"t1","epoch":1,"val_acc":1e999}`), "progress message: malformed JSON payload: json: cannot unmarshal number 1e999"},
		{"decision null", plain(KindDecision, "null"), "decision message: payload is null"},
		{"decision no trial", plain(KindDecision, `{"stop":true}`), "decision message: trial ID is empty"},
		{"decision wrong type", plain(KindDecision, `{"trial":"t1","stop":1}`), "decision message: malformed JSON payload: json: cannot unmarshal number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode(3, tc.b)
			if err == nil {
				t.Fatalf("no error; decoded %+v", m)
			}
			if want := "cluster: message from rank 3: " + tc.want; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error\n%s\nwant one starting\n%s", err, want)
			}
			if !reflect.DeepEqual(m, Message{}) {
				t.Errorf("with the error, a message %+v", m)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	nan := math.NaN()
	badResult := func(f func(r *Result)) Message {
		r := typicalResult()
		f(r)
		return Message{Kind: KindResult, Result: r}
	}
	badTrial := func(f func(tr *Trial)) Message {
		tr := typicalTrial(t)
		f(tr)
		return Message{Kind: KindTask, Trial: tr}
	}
	for _, tc := range []struct {
		name string
		m    Message
		want string
	}{
		{"zero message", Message{}, "cluster: encode kind(0): unknown message kind 0"},
		{"unknown kind", Message{Kind: 77}, "cluster: encode kind(77): unknown message kind 77"},
		{"task without trial", Message{Kind: KindTask}, "cluster: encode task: Message.Trial is missing"},
		{"result without result", Message{Kind: KindResult}, "cluster: encode result: Message.Result is missing"},
		{"setup without bytes", Message{Kind: KindSetup, Setup: []byte{}}, "cluster: encode setup: Message.Setup is missing"},
		{"stop with result", Message{Kind: KindStop, Result: typicalResult()}, "cluster: encode stop: a stop message carries no result, but Message.Result is set"},
		{"task with setup too", Message{Kind: KindTask, Trial: typicalTrial(t), Setup: []byte("x")},
			"cluster: encode task t000042: a task message carries no setup, but Message.Setup is set"},
		{"NaN reward", badResult(func(r *Result) { r.Reward = nan }),
			`cluster: encode result t000042: reward is NaN: JSON cannot carry NaN or Inf (a diverged trial reports status "diverged")`},
		{"Inf val_acc", badResult(func(r *Result) { r.ValAcc[2] = math.Inf(-1) }), "cluster: encode result t000042: val_acc[2] is -Inf"},
		{"NaN test_acc", badResult(func(r *Result) { r.TestAcc = &nan }), "cluster: encode result t000042: test_acc is NaN"},
		{"Inf best and img/s", badResult(func(r *Result) { r.BestValAcc, r.ImgPerSec = math.Inf(1), nan }),
			"cluster: encode result t000042: best_val_acc is +Inf: JSON cannot carry NaN or Inf (a diverged trial reports status \"diverged\"); img_per_sec is NaN"},
		{"result without id and status", badResult(func(r *Result) { r.TrialID, r.Status = "", "" }), "cluster: encode result: trial ID is empty; status is empty"},
		{"trial without id", badTrial(func(tr *Trial) { tr.ID = "" }), "cluster: encode task: trial ID is empty"},
		{"trial without arch", badTrial(func(tr *Trial) { tr.Arch = arch.Arch{} }), "cluster: encode task t000042: arch is missing"},
		{"trial bad decisions", badTrial(func(tr *Trial) { tr.Arch.Decisions = tr.Arch.Decisions[:3] }), "cluster: encode task t000042: arch: nas: "},
		{"trial bad epochs", badTrial(func(tr *Trial) { tr.Epochs = -1 }), "cluster: encode task t000042: epochs = -1: must be ≥ 0"},
		{"oversized setup", Message{Kind: KindSetup, Setup: make([]byte, MaxPayload+1)}, "cluster: encode setup: payload of 67108865 bytes exceeds the 64 MiB limit"},
		{"progress without progress", Message{Kind: KindProgress}, "cluster: encode progress: Message.Progress is missing"},
		{"decision with progress", Message{Kind: KindDecision, Decision: &Decision{TrialID: "t1"}, Progress: &Progress{TrialID: "t1", Epoch: 1}},
			"cluster: encode decision t1: a decision message carries no progress, but Message.Progress is set"},
		{"progress NaN", Message{Kind: KindProgress, Progress: &Progress{TrialID: "t1", Epoch: 2, ValAcc: nan}},
			"cluster: encode progress t1: val_acc is NaN: JSON cannot carry NaN or Inf"},
		{"progress epoch 0", Message{Kind: KindProgress, Progress: &Progress{TrialID: "t1"}}, "cluster: encode progress t1: epoch = 0: must be ≥ 1"},
		{"decision without trial", Message{Kind: KindDecision, Decision: &Decision{Stop: true}}, "cluster: encode decision: trial ID is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Encode(tc.m)
			if err == nil {
				t.Fatalf("no error; encoded %d bytes", len(b))
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error\n%s\nwant one starting\n%s", err, tc.want)
			}
			if b != nil {
				t.Errorf("with the error, %d bytes", len(b))
			}
		})
	}
}

// TestEncodeConcurrent shares the zstd encoder and decoder between goroutines
// (run with -race).
func TestEncodeConcurrent(t *testing.T) {
	msgs := roundTripMessages(t)
	done := make(chan error)
	for range 8 {
		go func() {
			for range 20 {
				for _, m := range msgs {
					b, err := Encode(m)
					if err == nil {
						_, err = Decode(1, b)
					}
					if err != nil {
						done <- err
						return
					}
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func TestKindString(t *testing.T) {
	var got []string
	for k := range Kind(9) {
		got = append(got, k.String())
	}
	if want := "kind(0) setup task idle result stop progress decision kind(8)"; strings.Join(got, " ") != want {
		t.Errorf("got %q, want %q", strings.Join(got, " "), want)
	}
}

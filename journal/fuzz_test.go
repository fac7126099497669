package journal

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// seal puts a valid header (with a correct checksum) in front of a zstd
// payload that claims to hold m bytes of JSON, so the fuzzer reaches the
// decompressor and the JSON decoder past the SHA-256 check.
func seal(payload []byte, m uint64) []byte {
	out := make([]byte, ckptHeaderSize, ckptHeaderSize+len(payload))
	binary.LittleEndian.PutUint32(out[0:], ckptSkipMagic)
	binary.LittleEndian.PutUint32(out[4:], ckptHeaderSize-8)
	copy(out[8:], ckptMagic)
	binary.LittleEndian.PutUint16(out[16:], ckptFormat)
	binary.LittleEndian.PutUint64(out[24:], 99)
	binary.LittleEndian.PutUint64(out[40:], uint64(len(payload)))
	binary.LittleEndian.PutUint64(out[48:], m)
	out = append(out, payload...)
	sum := ckptSum(out[8:56], out[ckptHeaderSize:])
	copy(out[56:], sum[:])
	return out
}

// FuzzLoadCheckpoint: whatever checkpoint.zst holds, LoadCheckpoint never
// panics; with a good previous checkpoint it either returns the newest intact
// or falls back with a warning naming the file. The same bytes as a JSON
// payload or as a zstd payload behind a valid header must not panic either,
// and whatever decodes must survive a save/load round trip.
func FuzzLoadCheckpoint(f *testing.F) {
	good, err := encodeCheckpoint(sampleCheckpoint(7))
	if err != nil {
		f.Fatal(err)
	}
	bin := sampleCheckpoint(8)
	bin.State = []byte{0, 1, 2, 0xff}
	goodBin, _ := encodeCheckpoint(bin)
	f.Add(good)
	f.Add(goodBin)
	f.Add(good[:60])
	f.Add(good[:ckptHeaderSize])
	f.Add(good[ckptHeaderSize:])
	f.Add([]byte{})
	f.Add([]byte(`{"version":1,"run":"r","strategy":"s","state":{"a":1},"loop":[1]}`))
	f.Add([]byte(`{"state":"x","state_b64":"AA=="}`))
	f.Add([]byte(`{"state_b64":"!!"}`))

	old := maxCheckpointJSON
	maxCheckpointJSON = 64 << 20
	f.Cleanup(func() { maxCheckpointJSON = old })
	dir := f.TempDir()
	r := &Run{Dir: dir}
	if err := os.WriteFile(filepath.Join(dir, prevName), good, 0o644); err != nil {
		f.Fatal(err)
	}
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))

	f.Fuzz(func(t *testing.T, data []byte) {
		// 1. The bytes as checkpoint.zst.
		cur := filepath.Join(dir, checkpointName)
		os.Remove(cur)
		if err := os.WriteFile(cur, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, warn, err := r.LoadCheckpoint()
		if err != nil {
			t.Fatalf("a good previous checkpoint exists, yet: %v", err)
		}
		if len(warn) == 0 {
			roundTrip(t, c)
		} else if c.Seq != 7 || len(warn) != 1 || !strings.HasPrefix(warn[0], "journal: "+cur+": ") {
			t.Fatalf("fallback: seq %d, warnings %q", c.Seq, warn)
		}

		// 2. The bytes as the JSON payload.
		if c, err := decodeCheckpoint(seal(enc.EncodeAll(data, nil), uint64(len(data))), true); err == nil {
			roundTrip(t, c)
		}

		// 3. The bytes as the zstd payload.
		m := uint64(len(data))
		if dec, err := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<20)); err == nil {
			var b bytes.Buffer
			if _, err := b.ReadFrom(dec); err == nil {
				m = uint64(b.Len())
			}
			dec.Close()
		}
		if c, err := decodeCheckpoint(seal(data, m), true); err == nil {
			roundTrip(t, c)
		}
	})
}

// roundTrip checks that a decoded checkpoint encodes and decodes to itself.
func roundTrip(t *testing.T, c Checkpoint) {
	t.Helper()
	b, err := encodeCheckpoint(c)
	if err != nil {
		if strings.Contains(err.Error(), "Loop is not valid JSON") {
			t.Fatalf("decoded an invalid Loop %q", c.Loop)
		}
		t.Fatal(err)
	}
	c2, err := decodeCheckpoint(b, true)
	if err != nil {
		t.Fatalf("re-encoded checkpoint does not decode: %v", err)
	}
	if c2.Version != c.Version || c2.Run != c.Run || c2.Seq != c.Seq || c2.Strategy != c.Strategy ||
		!bytes.Equal(c2.State, c.State) || !bytes.Equal(c2.Loop, c.Loop) || !c2.Written.Equal(c.Written) {
		t.Fatalf("round trip:\n%+v\n%+v", c, c2)
	}
}

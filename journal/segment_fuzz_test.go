package journal

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadEvents: whatever an event segment holds — a cut, damaged or
// hostile zstd frame, lines that are not events — ReadEvents never panics
// or hangs; what it delivers has strictly increasing seqs.
func FuzzReadEvents(f *testing.F) {
	var good bytes.Buffer
	enc, err := newSegmentEncoder(nil)
	if err == nil {
		enc.Reset(&good)
		enc.Write([]byte(`{"seq":1,"time":"2026-12-05T00:00:00Z","event":"run_start","run":"r"}` + "\n" +
			`{"seq":2,"time":"2026-12-05T00:00:01Z","event":"trial_result","run":"r","trial":"t000001"}` + "\n"))
		enc.Flush()
		mid := good.Len()
		enc.Close()
		f.Add(good.Bytes())
		f.Add(good.Bytes()[:mid])
		f.Add(good.Bytes()[:mid/2])
	}
	f.Add([]byte{})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})
	// A frame declaring a 512 MiB window over a 3-byte block.
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x98, 0x19, 0, 0, '{', '}', '\n'})
	dir := f.TempDir() // one per process: a directory per input costs more than the read
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, "events-0001.jsonl.zst"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		var last uint64
		ReadEvents(dir, func(e Event) error {
			if e.Seq <= last && last > 0 {
				t.Fatalf("seq %d after %d", e.Seq, last)
			}
			last = e.Seq
			return nil
		})
	})
}

package journal

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// allocated is how many bytes fn allocated (the whole process's count, so
// thresholds are generous).
func allocated(fn func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	fn()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// A segment of a few bytes whose zstd frame declares a huge window (or
// content size) is refused before the decoder allocates that window: it
// used to cost 512 MiB for a 12-byte file.
func TestReadEventsHugeWindowNotAllocated(t *testing.T) {
	block := []byte{0x19, 0, 0, '{', '}', '\n'} // last raw block of 3 bytes
	frames := map[string][]byte{
		// Window descriptor 0x98: 2^(10+19) = 512 MiB.
		"window 512 MiB": append([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x98}, block...),
		// Single segment, 8-byte content size of 1 TiB.
		"content size 1 TiB": append(binary.LittleEndian.AppendUint64([]byte{0x28, 0xb5, 0x2f, 0xfd, 0xe0}, 1<<40), block...),
	}
	for name, frame := range frames {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "events-0001.jsonl.zst"), frame, 0o644); err != nil {
				t.Fatal(err)
			}
			var err error
			n := allocated(func() { _, err = ReadEvents(dir, func(Event) error { return nil }) })
			if err == nil {
				t.Fatal("segment accepted")
			}
			if n > 16<<20 {
				t.Errorf("%d-byte segment: %d bytes allocated (%v)", len(frame), n, err)
			}
		})
	}
}

// A checkpoint's header may claim any payload size (the checksum is no
// secret); the buffer is sized by what the compressed payload can back. A
// 114-byte file claiming 1 GiB used to cost 64 MiB.
func TestCheckpointClaimedSizeNotPreallocated(t *testing.T) {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := seal(enc.EncodeAll([]byte(`{"version":1}`), nil), 1<<30)
	var derr error
	n := allocated(func() { _, derr = decodeCheckpoint(b, true) })
	if derr == nil || !strings.Contains(derr.Error(), "header says 1073741824") {
		t.Fatalf("error %v, want the size mismatch", derr)
	}
	if n > 8<<20 {
		t.Errorf("%d-byte checkpoint claiming 1 GiB: %d bytes allocated", len(b), n)
	}
}

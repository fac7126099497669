package dataset

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"
)

// FuzzCIFAR: whatever a CIFAR-10 batch file holds (plain or gzip), the
// reader never panics; what it accepts is whole records with labels 0..9.
// It reads from memory: with a file per input, each exec cost ~0.2 ms, and
// minimizing one new input (60 s by default) held the run for most of its
// time.
func FuzzCIFAR(f *testing.F) {
	f.Add(cifarBatch(0, []byte{0, 9, 3}), false)
	f.Add(cifarBatch(5, []byte{1}), true)
	f.Add(cifarBatch(0, []byte{0})[:100], false)
	f.Add(gz(f, cifarBatch(0, []byte{2, 7})), false)
	f.Add([]byte{10}, false)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	f.Fuzz(func(t *testing.T, data []byte, gzipped bool) {
		if gzipped {
			buf.Reset()
			zw.Reset(&buf)
			if _, err := zw.Write(data); err != nil {
				t.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			data = buf.Bytes()
		}
		open := func(string) (io.ReadCloser, int64, error) {
			return io.NopCloser(bytes.NewReader(data)), int64(len(data)), nil
		}
		pix, labels, err := readCIFAR10([]string{"data_batch_1.bin"}, open)
		if err != nil {
			return
		}
		if len(pix) != len(labels)*cifarPixels {
			t.Fatalf("%d pixels for %d labels", len(pix), len(labels))
		}
		for i, l := range labels {
			if l > 9 {
				t.Fatalf("record %d: label %d accepted", i, l)
			}
		}
	})
}

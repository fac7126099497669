package dataset

import (
	"path/filepath"
	"testing"
)

// FuzzCIFAR: whatever a CIFAR-10 batch file holds (plain or gzip), the
// reader never panics; what it accepts is whole records with labels 0..9.
func FuzzCIFAR(f *testing.F) {
	f.Add(cifarBatch(0, []byte{0, 9, 3}), false)
	f.Add(cifarBatch(5, []byte{1}), true)
	f.Add(cifarBatch(0, []byte{0})[:100], false)
	f.Add([]byte{10}, false)
	f.Fuzz(func(t *testing.T, data []byte, gzipped bool) {
		dir := t.TempDir()
		if gzipped {
			data = gz(t, data)
		}
		p := writeFile(t, dir, "data_batch_1.bin", data)
		pix, labels, err := ReadCIFAR10(filepath.Clean(p))
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

package dataset

import (
	"bytes"
	"errors"
	"io/fs"
	"math"
	"path/filepath"
	"testing"
)

// cifarBatch encodes n CIFAR-10 records; record i has label labels[i] and
// pixel p of it is byte(first+i + p*3).
func cifarBatch(first int, labels []byte) []byte {
	var b bytes.Buffer
	for i, l := range labels {
		b.WriteByte(l)
		for p := range cifarPixels {
			b.WriteByte(byte(first + i + p*3))
		}
	}
	return b.Bytes()
}

func TestReadCIFAR10(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "data_batch_1.bin", cifarBatch(0, []byte{0, 9, 3}))
	b := writeFile(t, dir, "data_batch_2.bin", gz(t, cifarBatch(3, []byte{7, 1})))
	pix, labels, err := ReadCIFAR10(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0, 9, 3, 7, 1}; !bytes.Equal(labels, want) {
		t.Errorf("labels = %v, want %v", labels, want)
	}
	if len(pix) != 5*cifarPixels {
		t.Fatalf("len(pix) = %d, want %d", len(pix), 5*cifarPixels)
	}
	for i := range 5 {
		for _, p := range []int{0, 1023, 1024, 2048, 3071} { // first/last red, first green, first blue, last blue
			if got, want := pix[i*cifarPixels+p], byte(i+p*3); got != want {
				t.Errorf("image %d pixel %d = %d, want %d", i, p, got, want)
			}
		}
	}
}

func TestReadCIFAR10Errors(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.bin", cifarBatch(0, []byte{1, 2}))
	truncated := writeFile(t, dir, "truncated.bin", cifarBatch(0, []byte{1, 2, 3})[:2*cifarRecord+100])
	truncatedGz := writeFile(t, dir, "truncated.bin.gz", gz(t, cifarBatch(0, []byte{1, 2, 3})[:2*cifarRecord+100]))
	badLabel := writeFile(t, dir, "label.bin", cifarBatch(0, []byte{1, 10}))
	empty := writeFile(t, dir, "empty.bin", nil)
	missing := filepath.Join(dir, "missing.bin")

	_, _, err := ReadCIFAR10(good, truncated)
	wantErr(t, err, "dataset: "+truncated, "truncated: 6246 bytes is 2 whole 3073-byte CIFAR-10 records and 100 bytes of the next; expected 9219")
	_, _, err = ReadCIFAR10(truncatedGz)
	wantErr(t, err, "dataset: "+truncatedGz, "truncated: expected 3073 bytes for record 2, got 100")
	_, _, err = ReadCIFAR10(badLabel)
	wantErr(t, err, "dataset: "+badLabel, "record 1: label 10 ≥ 10 classes")
	_, _, err = ReadCIFAR10(empty)
	wantErr(t, err, "dataset: "+empty, "empty file")
	_, _, err = ReadCIFAR10()
	wantErr(t, err, "no files given")

	// Every bad file is reported at once.
	_, _, err = ReadCIFAR10(missing, good, truncated)
	wantErr(t, err, missing, "no such file", truncated, "truncated")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v is not fs.ErrNotExist", err)
	}
}

func TestLoadCIFAR10(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "cifar-10-batches-bin") // as the archive unpacks
	if err := mkdir(sub); err != nil {
		t.Fatal(err)
	}
	for k := range 5 {
		labels := make([]byte, 20)
		for i := range labels {
			labels[i] = byte((k*20 + i) % 10)
		}
		writeFile(t, sub, "data_batch_"+string(rune('1'+k))+".bin", cifarBatch(k*20, labels))
	}
	writeFile(t, sub, "test_batch.bin", cifarBatch(7, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}))

	sp, err := Load(Spec{Name: "cifar10", Dir: dir, ValSize: 10, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if sp.Train.Len() != 90 || sp.Val.Len() != 10 || sp.Test.Len() != 10 {
		t.Errorf("lens %d/%d/%d, want 90/10/10", sp.Train.Len(), sp.Val.Len(), sp.Test.Len())
	}
	s := sp.Train
	if s.C != 3 || s.H != 32 || s.W != 32 || s.Classes != 10 || s.ClassNames[9] != "truck" {
		t.Errorf("shape %d×%d×%d, %d classes %v", s.C, s.H, s.W, s.Classes, s.ClassNames)
	}
	if len(sp.Mean) != 3 || len(sp.Std) != 3 {
		t.Fatalf("Mean %v Std %v: want 3 channels", sp.Mean, sp.Std)
	}
	// Per channel, the normalised training pixels have mean 0 and std 1
	// (tolerance: float32 rounding of ~10⁵ values).
	hw := 32 * 32
	for c := range 3 {
		var sum, sq float64
		for i := range s.Len() {
			for _, v := range s.Image(i)[c*hw : (c+1)*hw] {
				sum += float64(v)
				sq += float64(v) * float64(v)
			}
		}
		n := float64(s.Len() * hw)
		mean, std := sum/n, math.Sqrt(sq/n-(sum/n)*(sum/n))
		if math.Abs(mean) > 1e-5 || math.Abs(std-1) > 1e-5 {
			t.Errorf("channel %d: normalised mean %g std %g, want 0 and 1 ± 1e-5", c, mean, std)
		}
	}

	_, err = Load(Spec{Name: "cifar10"})
	wantErr(t, err, "dataset: cifar10: Spec.Dir is required")
	_, err = Load(Spec{Name: "cifar10", Dir: t.TempDir()})
	wantErr(t, err, "data_batch_1.bin", "test_batch.bin", "no such file")
}

package dataset

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// idxImages encodes an IDX image file.
func idxImages(n, h, w int, pix []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, [4]uint32{idxImageMagic, uint32(n), uint32(h), uint32(w)})
	b.Write(pix)
	return b.Bytes()
}

// idxLabels encodes an IDX label file.
func idxLabels(labels []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, [2]uint32{idxLabelMagic, uint32(len(labels))})
	b.Write(labels)
	return b.Bytes()
}

func gz(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// synthIDX writes a Fashion-MNIST-shaped directory of small h×w images in
// which image i of a file carries its index in its first two pixels and its
// label is i%10, so tests can tell exactly which images a split holds.
func synthIDX(t testing.TB, dir string, nTrain, nTest, h, w int) {
	t.Helper()
	for _, f := range []struct {
		images, labels string
		n              int
	}{{trainImagesIDX, trainLabelsIDX, nTrain}, {testImagesIDX, testLabelsIDX, nTest}} {
		pix := make([]byte, f.n*h*w)
		labels := make([]byte, f.n)
		for i := range f.n {
			img := pix[i*h*w : (i+1)*h*w]
			for p := range img {
				img[p] = byte(i*31 + p*7)
			}
			img[0], img[1] = byte(i>>8), byte(i)
			labels[i] = byte(i % 10)
		}
		writeFile(t, dir, f.images+".gz", gz(t, idxImages(f.n, h, w, pix)))
		writeFile(t, dir, f.labels, idxLabels(labels)) // raw: both forms are found
	}
}

// origIndex recovers the file index synthIDX stored in example i.
func origIndex(sp *Splits, s *Set, i int) int {
	img := s.Image(i)
	byteAt := func(k int) int {
		return int(math.Round((float64(img[k])*float64(sp.Std[0]) + float64(sp.Mean[0])) * 255))
	}
	return byteAt(0)<<8 | byteAt(1)
}

// wantErr fails unless err mentions every part.
func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one mentioning %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

func mkdir(p string) error { return os.MkdirAll(p, 0o755) }

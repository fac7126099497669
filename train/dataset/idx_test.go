package dataset

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func TestIDXRawAndGzipAgree(t *testing.T) {
	dir := t.TempDir()
	const n, h, w = 37, 5, 3
	r := rand.New(rand.NewPCG(1, 2))
	pix := make([]byte, n*h*w)
	for i := range pix {
		pix[i] = byte(r.Uint32())
	}
	labels := make([]byte, n)
	for i := range labels {
		labels[i] = byte(r.IntN(10))
	}
	// The gzip file has a raw-looking name and vice versa: detection is by magic.
	rawImg := writeFile(t, dir, "images.gz", idxImages(n, h, w, pix))
	gzImg := writeFile(t, dir, "images", gz(t, idxImages(n, h, w, pix)))
	rawLab := writeFile(t, dir, "labels.gz", idxLabels(labels))
	gzLab := writeFile(t, dir, "labels", gz(t, idxLabels(labels)))

	for _, p := range []string{rawImg, gzImg} {
		gn, gh, gw, got, err := ReadIDXImages(p)
		if err != nil {
			t.Fatal(err)
		}
		if gn != n || gh != h || gw != w || !bytes.Equal(got, pix) {
			t.Errorf("%s: got %d×%d×%d, equal pixels %v; want %d×%d×%d and equal", p, gn, gh, gw, bytes.Equal(got, pix), n, h, w)
		}
	}
	for _, p := range []string{rawLab, gzLab} {
		got, err := ReadIDXLabels(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, labels) {
			t.Errorf("%s: labels differ", p)
		}
	}
}

func TestIDXErrors(t *testing.T) {
	dir := t.TempDir()
	img := idxImages(3, 4, 4, make([]byte, 48))
	lab := idxLabels([]byte{1, 2, 3})
	gzImg := gz(t, img)
	noise := make([]byte, 4096)
	for i, r := 0, rand.New(rand.NewPCG(3, 4)); i < len(noise); i++ {
		noise[i] = byte(r.Uint32())
	}
	gzNoise := gz(t, idxImages(4, 32, 32, noise)) // incompressible: a cut loses pixels
	badCRC := bytes.Clone(gzImg)
	badCRC[len(badCRC)-8] ^= 0xff // the CRC-32 in the gzip trailer

	for _, tc := range []struct {
		name   string
		data   []byte // nil: do not create the file
		labels bool   // read with ReadIDXLabels
		want   []string
	}{
		{"labels-as-images", lab, false, []string{"not an IDX image file (magic 0x00000801: an IDX label file?)"}},
		{"images-as-labels", img, true, []string{"not an IDX label file (magic 0x00000803: an IDX image file?)"}},
		{"text", []byte("hello, world, this is not IDX"), false, []string{"not an IDX image file (magic 0x68656c6c)"}},
		{"gzip-in-gzip", gz(t, gzImg), false, []string{"not an IDX image file (magic 0x1f8b0800: gzip inside gzip?)"}},
		{"float-idx", append([]byte{0, 0, 0x0d, 3}, img[4:]...), false, []string{"magic 0x00000d03: IDX data type 0x0d with 3 dimensions"}},
		{"empty", []byte{}, false, []string{"truncated header: expected 16 bytes, got 0"}},
		{"short-header", img[:10], false, []string{"truncated header: expected 16 bytes, got 10"}},
		{"truncated-raw", img[:len(img)-5], false, []string{"truncated: expected 48 bytes of pixels for 3 images of 4×4 after the header, got 43"}},
		{"truncated-raw-labels", lab[:len(lab)-1], true, []string{"truncated: expected 3 bytes of labels for 3 examples after the header, got 2"}},
		{"too-long-raw", append(bytes.Clone(img), 9), false, []string{"file too long: expected 48 bytes", "got 49"}},
		{"truncated-gzip", gzNoise[:len(gzNoise)/2], false, []string{"truncated gzip stream: expected 4096 bytes of pixels for 4 images of 32×32 after the header, got"}},
		{"truncated-gzip-trailer", gzImg[:len(gzImg)-4], false, []string{"truncated gzip stream: all 48 bytes of pixels for 3 images of 4×4 are there but the gzip trailer is cut off"}},
		{"short-content-gzip", gz(t, img[:len(img)-5]), false, []string{"truncated: expected 48 bytes of pixels for 3 images of 4×4 after the header, got 43"}},
		{"too-long-gzip", gz(t, append(bytes.Clone(img), 9)), false, []string{"file too long: data after the 48 bytes of pixels"}},
		{"bad-gzip-checksum", badCRC, false, []string{"corrupt gzip stream (gzip: invalid checksum) after 48 of 48 bytes"}},
		{"bad-gzip-header", []byte{0x1f, 0x8b, 0, 0, 0, 0}, false, []string{"bad gzip header"}},
		{"zero-size", idxImages(3, 0, 4, nil), false, []string{"invalid image size 0×4"}},
		{"implausible", idxImages(1<<31, 1<<16, 1<<16, nil), false, []string{"implausible header: 2147483648 images of 65536×65536"}},
		{"missing", nil, false, []string{"no such file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			if tc.data != nil {
				p = writeFile(t, dir, tc.name, tc.data)
			}
			var err error
			if tc.labels {
				_, err = ReadIDXLabels(p)
			} else {
				_, _, _, _, err = ReadIDXImages(p)
			}
			wantErr(t, err, append([]string{"dataset: ", p}, tc.want...)...)
			if tc.data == nil && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error %v is not fs.ErrNotExist", err)
			}
		})
	}
	t.Run("directory", func(t *testing.T) {
		_, err := ReadIDXLabels(dir)
		wantErr(t, err, dir, "not a regular file")
	})
}

// FuzzIDX feeds arbitrary bytes, raw or gunzipped, to both IDX decoders: they
// must return an error or a consistent result, never panic or over-allocate.
func FuzzIDX(f *testing.F) {
	img := idxImages(2, 3, 3, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18})
	lab := idxLabels([]byte{4, 2})
	f.Add(img)
	f.Add(lab)
	f.Add(gz(f, img))
	f.Add(gz(f, lab))
	f.Add(img[:20])
	f.Add(idxImages(1<<30, 1<<20, 1, nil))
	// The real Fashion-MNIST files where present: the start of each, as
	// stored (a cut gzip stream) and gunzipped (a real header whose count
	// the bytes do not back).
	for _, name := range []string{"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"} {
		fh, err := os.Open(filepath.Join("/usr/share/datasets/fashion-mnist", name))
		if err != nil {
			continue
		}
		head := make([]byte, 512)
		m, _ := io.ReadFull(fh, head)
		f.Add(head[:m])
		fh.Seek(0, io.SeekStart)
		if zr, err := gzip.NewReader(fh); err == nil {
			body := make([]byte, 16+2*28*28)
			m, _ := io.ReadFull(zr, body)
			f.Add(body[:m])
		}
		fh.Close()
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const prealloc = 1 << 16 // keep the fuzzer fast; the real cap is larger
		n, h, w, pix, err := decodeIDXImages(bytes.NewReader(data), int64(len(data)), prealloc)
		if err == nil && len(pix) != n*h*w {
			t.Fatalf("images: %d×%d×%d but %d bytes", n, h, w, len(pix))
		}
		if err == nil && len(data) >= 2 && data[0] != 0x1f && len(pix) != len(data)-16 {
			t.Fatalf("raw images: %d bytes of pixels from %d bytes of file", len(pix), len(data))
		}
		labels, err := decodeIDXLabels(bytes.NewReader(data), int64(len(data)), prealloc)
		if err == nil && len(data) >= 2 && data[0] != 0x1f && len(labels) != len(data)-8 {
			t.Fatalf("raw labels: %d labels from %d bytes of file", len(labels), len(data))
		}
		// Unknown length, as for a gzip stream.
		_, _, _, _, _ = decodeIDXImages(bytes.NewReader(data), -1, prealloc)
	})
}

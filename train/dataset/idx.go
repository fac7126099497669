package dataset

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
)

const (
	idxImageMagic = 0x00000803 // unsigned bytes, 3 dimensions: n, rows, cols
	idxLabelMagic = 0x00000801 // unsigned bytes, 1 dimension: n

	// preallocCap bounds what is allocated before the data has been seen when
	// the decoded length is unknown (gzip): a corrupt header may claim terabytes.
	// 128 MiB covers every file of the supported sets in one allocation.
	preallocCap = 1 << 27

	// maxIDXBytes rejects headers whose n*rows*cols cannot be a real data set.
	maxIDXBytes = 1 << 38
)

// ReadIDXImages reads an IDX image file (magic 0x00000803: n images of h×w
// unsigned bytes, row-major), raw or gzip-compressed; compression is detected
// by the gzip magic, not by the file name. pix holds n*h*w bytes.
func ReadIDXImages(path string) (n, h, w int, pix []uint8, err error) {
	f, size, err := openFile(path)
	if err != nil {
		return 0, 0, 0, nil, err
	}
	defer f.Close()
	n, h, w, pix, err = decodeIDXImages(f, size, preallocCap)
	if err != nil {
		return 0, 0, 0, nil, fmt.Errorf("dataset: %s: %w", path, err)
	}
	return n, h, w, pix, nil
}

// ReadIDXLabels reads an IDX label file (magic 0x00000801: n unsigned bytes),
// raw or gzip-compressed.
func ReadIDXLabels(path string) ([]uint8, error) {
	f, size, err := openFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	labels, err := decodeIDXLabels(f, size, preallocCap)
	if err != nil {
		return nil, fmt.Errorf("dataset: %s: %w", path, err)
	}
	return labels, nil
}

// openFile opens a regular file and returns its size.
func openFile(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("dataset: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("dataset: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("dataset: %s: not a regular file (%v)", path, fi.Mode().Type())
	}
	return f, fi.Size(), nil
}

// decoded returns r's content, gunzipped if it starts with the gzip magic
// 1f 8b. size is r's length (-1 if unknown); the returned length is the
// decoded length if known, else -1.
func decoded(r io.Reader, size int64) (io.Reader, int64, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	head, err := br.Peek(2)
	if err != nil && err != io.EOF {
		return nil, -1, err
	}
	if len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, -1, fmt.Errorf("bad gzip header: %w", err)
		}
		return zr, -1, nil
	}
	return br, size, nil
}

// readHeader fills hdr, whose first 4 bytes must be the magic want. A wrong
// magic is reported even if the file is also too short for the header.
func readHeader(r io.Reader, hdr []byte, want uint32, kind string) error {
	m, err := io.ReadFull(r, hdr)
	if m >= 4 {
		if magic := binary.BigEndian.Uint32(hdr); magic != want {
			return magicError(kind, magic)
		}
	}
	switch {
	case err == nil:
		return nil
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return fmt.Errorf("truncated header: expected %d bytes, got %d", len(hdr), m)
	default:
		return fmt.Errorf("reading header: %w", err)
	}
}

// magicError explains a wrong IDX magic number, with a hint when it is
// recognisable.
func magicError(kind string, magic uint32) error {
	hint := ""
	switch {
	case magic == idxLabelMagic:
		hint = ": an IDX label file?"
	case magic == idxImageMagic:
		hint = ": an IDX image file?"
	case magic>>16 == 0x1f8b:
		hint = ": gzip inside gzip?"
	case magic>>16 == 0:
		hint = fmt.Sprintf(": IDX data type 0x%02x with %d dimensions", magic>>8&0xff, magic&0xff)
	}
	return fmt.Errorf("not an IDX %s file (magic 0x%08x%s)", kind, magic, hint)
}

func decodeIDXImages(r io.Reader, size, prealloc int64) (n, h, w int, pix []uint8, err error) {
	r, known, err := decoded(r, size)
	if err != nil {
		return 0, 0, 0, nil, err
	}
	var hdr [16]byte
	if err := readHeader(r, hdr[:], idxImageMagic, "image"); err != nil {
		return 0, 0, 0, nil, err
	}
	un := uint64(binary.BigEndian.Uint32(hdr[4:]))
	uh := uint64(binary.BigEndian.Uint32(hdr[8:]))
	uw := uint64(binary.BigEndian.Uint32(hdr[12:]))
	if uh == 0 || uw == 0 {
		return 0, 0, 0, nil, fmt.Errorf("invalid image size %d×%d in header", uh, uw)
	}
	hi1, per := bits.Mul64(uh, uw)
	hi2, total := bits.Mul64(un, per)
	if hi1 != 0 || hi2 != 0 || total > maxIDXBytes {
		return 0, 0, 0, nil, fmt.Errorf("implausible header: %d images of %d×%d", un, uh, uw)
	}
	if known >= 0 {
		known -= int64(len(hdr))
	}
	pix, err = readBody(r, int64(total), known, prealloc, fmt.Sprintf("pixels for %d images of %d×%d", un, uh, uw))
	if err != nil {
		return 0, 0, 0, nil, err
	}
	return int(un), int(uh), int(uw), pix, nil
}

func decodeIDXLabels(r io.Reader, size, prealloc int64) ([]uint8, error) {
	r, known, err := decoded(r, size)
	if err != nil {
		return nil, err
	}
	var hdr [8]byte
	if err := readHeader(r, hdr[:], idxLabelMagic, "label"); err != nil {
		return nil, err
	}
	n := int64(binary.BigEndian.Uint32(hdr[4:]))
	if known >= 0 {
		known -= int64(len(hdr))
	}
	return readBody(r, n, known, prealloc, fmt.Sprintf("labels for %d examples", n))
}

// readBody reads exactly n bytes, the rest of a file, in one allocation when
// the length is known (known ≥ 0 is what the stream holds) or n ≤ prealloc.
// It then insists on the end of the stream, which is also where gzip verifies
// its checksum.
func readBody(r io.Reader, n, known, prealloc int64, what string) ([]byte, error) {
	if known >= 0 && known != n {
		if known < n {
			return nil, fmt.Errorf("truncated: expected %d bytes of %s after the header, got %d", n, what, known)
		}
		return nil, fmt.Errorf("file too long: expected %d bytes of %s after the header, got %d", n, what, known)
	}
	buf := make([]byte, min(n, max(prealloc, known)))
	var got int64
	for got < n {
		if got == int64(len(buf)) {
			bigger := make([]byte, min(n, max(2*got, 1<<16)))
			copy(bigger, buf)
			buf = bigger
		}
		m, err := r.Read(buf[got:])
		got += int64(m)
		if err != nil {
			if got == n && err == io.EOF {
				return buf, nil
			}
			return nil, bodyError(err, n, got, what)
		}
	}
	return buf, expectEOF(r, n, what)
}

func bodyError(err error, n, got int64, what string) error {
	var corrupt flate.CorruptInputError
	switch {
	case err == io.EOF:
		return fmt.Errorf("truncated: expected %d bytes of %s after the header, got %d", n, what, got)
	case err == io.ErrUnexpectedEOF && got == n:
		return fmt.Errorf("truncated gzip stream: all %d bytes of %s are there but the gzip trailer is cut off", n, what)
	case err == io.ErrUnexpectedEOF:
		return fmt.Errorf("truncated gzip stream: expected %d bytes of %s after the header, got %d", n, what, got)
	case errors.Is(err, gzip.ErrChecksum), errors.As(err, &corrupt):
		return fmt.Errorf("corrupt gzip stream (%w) after %d of %d bytes of %s", err, got, n, what)
	default:
		return fmt.Errorf("reading %s after %d of %d bytes: %w", what, got, n, err)
	}
}

// expectEOF checks that r has nothing after the n bytes of what.
func expectEOF(r io.Reader, n int64, what string) error {
	var b [1]byte
	for range 100 {
		m, err := r.Read(b[:])
		if m > 0 {
			return fmt.Errorf("file too long: data after the %d bytes of %s", n, what)
		}
		switch {
		case err == io.EOF:
			return nil
		case err == io.ErrUnexpectedEOF:
			return fmt.Errorf("truncated gzip stream after the %d bytes of %s", n, what)
		case err != nil:
			return fmt.Errorf("after the %d bytes of %s: %w", n, what, err)
		}
	}
	return fmt.Errorf("after the %d bytes of %s: %w", n, what, io.ErrNoProgress)
}

package dataset

import (
	"errors"
	"fmt"
	"io"
)

// CIFAR-10 binary format: each record is one label byte followed by 32×32 red,
// then green, then blue bytes, row-major, which is already C, H, W order.
// Reference: https://www.cs.toronto.edu/~kriz/cifar.html ("Binary version").
const (
	cifarC, cifarH, cifarW = 3, 32, 32
	cifarPixels            = cifarC * cifarH * cifarW
	cifarRecord            = 1 + cifarPixels
	cifarClasses           = 10
)

var cifar10Classes = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// ReadCIFAR10 reads CIFAR-10 binary batches (data_batch_1.bin … test_batch.bin),
// raw or gzip-compressed, and concatenates them in the order given. Each
// example is 3×32×32: pix holds len(labels)*3072 bytes in C, H, W order and
// every label is in [0, 10). Missing or malformed files are all reported.
func ReadCIFAR10(paths ...string) (pix, labels []uint8, err error) {
	return readCIFAR10(paths, func(path string) (io.ReadCloser, int64, error) {
		return openFile(path)
	})
}

// readCIFAR10 is ReadCIFAR10 over open, which returns a file's content and
// its size (the fuzz target reads from memory).
func readCIFAR10(paths []string, open func(string) (io.ReadCloser, int64, error)) (pix, labels []uint8, err error) {
	if len(paths) == 0 {
		return nil, nil, errors.New("dataset: ReadCIFAR10: no files given")
	}
	type input struct {
		path  string
		f     io.Closer
		r     io.Reader
		known int64
	}
	ins := make([]input, 0, len(paths))
	defer func() {
		for _, in := range ins {
			in.f.Close()
		}
	}()
	var errs []error
	records, allKnown := int64(0), true
	for _, path := range paths {
		f, size, err := open(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ins = append(ins, input{path: path, f: f})
		r, known, err := decoded(f, size)
		if err != nil {
			errs = append(errs, fmt.Errorf("dataset: %s: %w", path, err))
			continue
		}
		switch {
		case known == 0:
			errs = append(errs, fmt.Errorf("dataset: %s: empty file, expected %d-byte CIFAR-10 records", path, cifarRecord))
			continue
		case known > 0 && known%cifarRecord != 0:
			errs = append(errs, fmt.Errorf("dataset: %s: truncated: %d bytes is %d whole %d-byte CIFAR-10 records and %d bytes of the next; expected %d",
				path, known, known/cifarRecord, cifarRecord, known%cifarRecord, (known/cifarRecord+1)*cifarRecord))
			continue
		case known < 0:
			allKnown = false
		}
		records += known / cifarRecord
		ins[len(ins)-1].r, ins[len(ins)-1].known = r, known
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	if !allKnown {
		records = min(records, preallocCap/cifarRecord)
	}
	// One allocation each when every size is known (raw files).
	pix = make([]uint8, 0, records*cifarPixels)
	labels = make([]uint8, 0, records)
	var rec [cifarRecord]byte
	for _, in := range ins {
		for i := 0; ; i++ {
			m, err := io.ReadFull(in.r, rec[:])
			if err == io.EOF {
				if i == 0 {
					return nil, nil, fmt.Errorf("dataset: %s: empty file, expected %d-byte CIFAR-10 records", in.path, cifarRecord)
				}
				break
			}
			if err == io.ErrUnexpectedEOF {
				return nil, nil, fmt.Errorf("dataset: %s: truncated: expected %d bytes for record %d, got %d", in.path, cifarRecord, i, m)
			}
			if err != nil {
				return nil, nil, fmt.Errorf("dataset: %s: reading record %d: %w", in.path, i, err)
			}
			if rec[0] >= cifarClasses {
				return nil, nil, fmt.Errorf("dataset: %s: record %d: label %d ≥ %d classes (not a CIFAR-10 binary batch?)", in.path, i, rec[0], cifarClasses)
			}
			labels = append(labels, rec[0])
			pix = append(pix, rec[1:]...)
		}
	}
	return pix, labels, nil
}

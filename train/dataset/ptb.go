package dataset

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"unicode"
	"unicode/utf8"
)

// TextFiles are the Penn Treebank layout (Mikolov's simple-examples/data):
// three files in one directory, one sentence per line, words separated by
// white space.
var TextFiles = [3]string{"ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"}

const (
	// EOS ends every line; the files do not hold it, the reader adds it.
	EOS = "<eos>"
	// Unk stands for a word outside the vocabulary.
	Unk = "<unk>"

	// maxLine bounds a line so that a file without newlines (or a binary one)
	// is refused instead of read whole into one token.
	maxLine = 1 << 20
)

// maxVocab keeps every id within int32; a variable so a test can lower it.
var maxVocab int64 = 1 << 31

// LoadText reads ptb.train.txt, ptb.valid.txt and ptb.test.txt from dir, each
// raw or gzip-compressed (the name may end in .gz; compression is detected by
// content). Every line becomes its words followed by <eos>.
//
// The vocabulary is the words of the training file, <eos> included, ordered
// by descending count, ties by first appearance, so the most frequent token
// has id 0. A word of the validation or test file outside it becomes <unk> if
// the vocabulary has <unk>; otherwise it is an error naming the file, line and
// word.
func LoadText(dir string) (*Text, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("dataset: text: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("dataset: text: %s: not a directory; want one holding %s, %s and %s", dir, TextFiles[0], TextFiles[1], TextFiles[2])
	}
	var paths [3]string
	for i, name := range TextFiles {
		// The plain file wins over its .gz; any other stat error is
		// openFile's to report.
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			if _, errGz := os.Stat(p + ".gz"); errGz == nil {
				p += ".gz"
			} else {
				return nil, fmt.Errorf("dataset: %s: missing %s (or %s.gz): the PTB layout is %s, %s and %s in one directory",
					dir, name, name, TextFiles[0], TextFiles[1], TextFiles[2])
			}
		}
		paths[i] = p
	}
	open := func(i int) (io.ReadCloser, error) {
		f, _, err := openFile(paths[i])
		return f, err
	}
	return readText(paths, open)
}

// readText reads the three splits from open(0..2), naming them by paths in
// errors; the fuzz test reads from memory through it.
func readText(paths [3]string, open func(i int) (io.ReadCloser, error)) (*Text, error) {
	// The training file: ids in order of first appearance, then renumbered.
	index := map[string]int32{}
	var words []string
	var counts []int
	var train []int32
	add := func(w []byte, line int) error {
		id, ok := index[string(w)]
		if !ok {
			if int64(len(words)) >= maxVocab {
				return fmt.Errorf("%d: vocabulary over 2^31 words", line)
			}
			id = int32(len(words))
			s := string(w)
			index[s] = id
			words = append(words, s)
			counts = append(counts, 0)
		}
		counts[id]++
		train = append(train, id)
		return nil
	}
	if err := scanSplit(paths[0], open, 0, add); err != nil {
		return nil, err
	}

	order := make([]int32, len(words))
	for i := range order {
		order[i] = int32(i)
	}
	// Stable: ties keep the order of first appearance.
	slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(counts[b], counts[a]) })
	remap := make([]int32, len(words))
	vocab := make([]string, len(words))
	for newID, old := range order {
		remap[old] = int32(newID)
		vocab[newID] = words[old]
		index[words[old]] = int32(newID)
	}
	for i, id := range train {
		train[i] = remap[id]
	}

	t := &Text{Vocab: vocab, Train: train}
	unk, hasUnk := index[Unk]
	for split, dst := range []*[]int32{&t.Val, &t.Test} {
		split++
		var ids []int32
		err := scanSplit(paths[split], open, split, func(w []byte, line int) error {
			id, ok := index[string(w)]
			if !ok {
				if !hasUnk {
					return fmt.Errorf("%d: word %q is not in the vocabulary of %s, which has no %s to stand for it",
						line, w, filepath.Base(paths[0]), Unk)
				}
				id = unk
			}
			ids = append(ids, id)
			return nil
		})
		if err != nil {
			return nil, err
		}
		*dst = ids
	}
	return t, nil
}

// scanSplit calls word for every word of file i and for the <eos> that ends
// each line, with the 1-based line number. An error of word that starts with
// a line number is reported as path:line.
func scanSplit(path string, open func(i int) (io.ReadCloser, error), i int, word func(w []byte, line int) error) error {
	rc, err := open(i)
	if err != nil {
		return err
	}
	defer rc.Close()
	lines, words := 0, 0
	err = scanLines(rc, func(line []byte, n int) error {
		lines = n
		if err := checkText(line); err != nil {
			return fmt.Errorf("%d: %w", n, err)
		}
		for len(line) > 0 {
			var w []byte
			w, line = nextField(line)
			if len(w) == 0 {
				break
			}
			words++
			if err := word(w, n); err != nil {
				return err
			}
		}
		return word([]byte(EOS), n)
	})
	if err != nil {
		return fmt.Errorf("dataset: %s:%w", path, err)
	}
	if words == 0 {
		what := "no lines"
		if lines > 0 {
			what = fmt.Sprintf("%d lines without a word", lines)
		}
		return fmt.Errorf("dataset: %s: empty file (%s); the PTB layout has one sentence per line", path, what)
	}
	return nil
}

// scanLines calls fn for each line of r (without its line ending) and its
// 1-based number. Errors of fn are returned as they are; the scanner's own
// errors are prefixed with " " or the line number, to follow "path:".
func scanLines(r io.Reader, fn func(line []byte, n int) error) error {
	r, _, err := decoded(r, -1)
	if err != nil {
		return fmt.Errorf(" %w", err)
	}
	sc := bufio.NewScanner(r)
	// Room for the longest line allowed plus "\r\n", so the check below, not
	// the scanner, decides; a longer line stops the scanner with ErrTooLong.
	sc.Buffer(make([]byte, 0, 64<<10), maxLine+2)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSuffix(sc.Bytes(), []byte{'\r'})
		if len(line) > maxLine {
			return fmt.Errorf("%d: line longer than %d bytes (1 MiB): not a text file?", n, maxLine)
		}
		if err := fn(line, n); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%d: line longer than %d bytes (1 MiB): not a text file?", n+1, maxLine)
		}
		return fmt.Errorf("%d: reading: %w", n+1, err)
	}
	return nil
}

// checkText refuses what a text file does not hold: NUL bytes and invalid
// UTF-8, the marks of a binary or wrongly encoded file.
func checkText(line []byte) error {
	if i := bytes.IndexByte(line, 0); i >= 0 {
		return fmt.Errorf("NUL byte at column %d: a binary file, not text", i+1)
	}
	if !utf8.Valid(line) {
		for i := 0; i < len(line); {
			r, size := utf8.DecodeRune(line[i:])
			if r == utf8.RuneError && size == 1 {
				return fmt.Errorf("invalid UTF-8 at column %d (byte 0x%02x): a binary file or another encoding", i+1, line[i])
			}
			i += size
		}
	}
	return nil
}

// nextField returns the first white-space separated field of s (Unicode white
// space, as Python's str.split, which the reference PTB readers use) and the
// rest after it.
func nextField(s []byte) (field, rest []byte) {
	start := bytes.IndexFunc(s, isSpaceNot)
	if start < 0 {
		return nil, nil
	}
	s = s[start:]
	end := bytes.IndexFunc(s, isSpace)
	if end < 0 {
		return s, nil
	}
	return s[:end], s[end:]
}

func isSpace(r rune) bool    { return unicode.IsSpace(r) }
func isSpaceNot(r rune) bool { return !unicode.IsSpace(r) }

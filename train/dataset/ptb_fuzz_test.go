package dataset

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// FuzzLoadText: whatever the three PTB files hold, the reader never panics;
// what it accepts has a vocabulary of distinct words ordered by count, ids
// within it, and one <eos> per training line. It reads from memory, as
// FuzzCIFAR does; the training file is gzipped when asked.
func FuzzLoadText(f *testing.F) {
	f.Add([]byte(" a b c\n b <unk>\n"), []byte("a z\n"), []byte("c\n"), false)
	f.Add([]byte("a b\r\n\n"), []byte("a\n"), []byte("b a"), true)
	f.Add([]byte("a\x00b\n"), []byte(""), []byte("\xff\n"), false)
	f.Add([]byte("x\u2028y\u00a0z\n"), []byte("y\n"), []byte("zebra\n"), false)
	f.Fuzz(func(t *testing.T, train, valid, test []byte, gzipped bool) {
		raw := train
		if gzipped {
			train = gz(t, train)
		}
		files := [3][]byte{train, valid, test}
		open := func(i int) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(files[i])), nil
		}
		tx, err := readText(TextFiles, open)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "dataset: ptb.") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		counts := make([]int, len(tx.Vocab))
		seen := map[string]bool{}
		for _, w := range tx.Vocab {
			if w == "" || seen[w] || strings.IndexFunc(w, unicode.IsSpace) >= 0 {
				t.Fatalf("vocabulary %q: empty, repeated or spaced word %q", tx.Vocab, w)
			}
			seen[w] = true
		}
		for _, split := range [][]int32{tx.Train, tx.Val, tx.Test} {
			for _, id := range split {
				if id < 0 || int(id) >= len(tx.Vocab) {
					t.Fatalf("id %d outside a vocabulary of %d", id, len(tx.Vocab))
				}
			}
		}
		for _, id := range tx.Train {
			counts[id]++
		}
		if !slices.IsSortedFunc(counts, func(a, b int) int { return b - a }) {
			t.Fatalf("vocabulary not by descending count: %v", counts)
		}
		eos := int32(slices.Index(tx.Vocab, EOS))
		lines := bytes.Count(raw, []byte{'\n'})
		if len(raw) > 0 && raw[len(raw)-1] != '\n' {
			lines++
		}
		if got := count(tx.Train, eos); got != lines || tx.Train[len(tx.Train)-1] != eos {
			t.Fatalf("%d <eos> for %d lines", got, lines)
		}
	})
}

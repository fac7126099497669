package dataset

import (
	"bytes"
	"os"
	"slices"
	"sync"
	"testing"
)

const fortunesDir = "/usr/share/games/fortunes"

var fortunes struct {
	once sync.Once
	c    *Corpus
	err  error
}

// fortunesCorpus builds the shipped corpus (as `make corpus` does) once per
// test binary.
func fortunesCorpus(t *testing.T) *Corpus {
	t.Helper()
	if _, err := os.Stat(fortunesDir); err != nil {
		t.Skipf("fortunes not installed at %s: install fortunes (make deps): %v", fortunesDir, err)
	}
	fortunes.once.Do(func() {
		fortunes.c, fortunes.err = BuildCorpus(CorpusSpec{Inputs: []string{fortunesDir}, Seed: 1})
	})
	if fortunes.err != nil {
		t.Fatal(fortunes.err)
	}
	return fortunes.c
}

func writeCorpus(t *testing.T, c *Corpus) string {
	t.Helper()
	dir := t.TempDir()
	for i, name := range TextFiles {
		writeFile(t, dir, name, c.Files[i])
	}
	return dir
}

func TestFortunesCorpus(t *testing.T) {
	c := fortunesCorpus(t)
	tx, err := LoadText(writeCorpus(t, c))
	if err != nil {
		t.Fatal(err)
	}
	words := 0
	for _, s := range c.Splits {
		words += s.Words
	}
	t.Logf("%d files, %d words, vocabulary %d; train/valid/test %+v", c.Inputs, words, len(tx.Vocab), c.Splits)
	// The fortunes package holds about 458,000 words (wc -w).
	if c.Inputs < 30 || words < 400000 {
		t.Errorf("%d files, %d words: want the whole fortunes package", c.Inputs, words)
	}
	if len(tx.Vocab) > DefaultCorpusVocab || len(tx.Vocab) != c.Vocab || len(tx.Vocab) < DefaultCorpusVocab-1 {
		t.Errorf("vocabulary of %d words, BuildCorpus says %d, budget %d", len(tx.Vocab), c.Vocab, DefaultCorpusVocab)
	}
	eos := int32(slices.Index(tx.Vocab, EOS))
	unk := int32(slices.Index(tx.Vocab, Unk))
	if eos < 0 || unk < 0 {
		t.Fatalf("<eos> id %d, <unk> id %d", eos, unk)
	}
	for i, ids := range [][]int32{tx.Train, tx.Val, tx.Test} {
		s := c.Splits[i]
		if n := count(ids, eos); n != s.Lines {
			t.Errorf("%s: %d <eos> for %d lines", TextFiles[i], n, s.Lines)
		}
		if n := count(ids, unk); n != s.Unk {
			t.Errorf("%s: %d <unk>, BuildCorpus wrote %d", TextFiles[i], n, s.Unk)
		}
		if len(ids) != s.Words+s.Lines {
			t.Errorf("%s: %d tokens, want %d words + %d <eos>", TextFiles[i], len(ids), s.Words, s.Lines)
		}
		// Held-out words outside a 10k vocabulary: a few per cent, as in PTB (~5%).
		if oov := float64(s.Unk) / float64(s.Words); oov < 0.01 || oov > 0.15 {
			t.Errorf("%s: OOV rate %.3f", TextFiles[i], oov)
		}
	}
	s := c.Splits
	all := float64(s[0].Lines + s[1].Lines + s[2].Lines)
	for i, want := range []float64{0.8, 0.1, 0.1} {
		if got := float64(s[i].Lines) / all; got < want-0.01 || got > want+0.01 {
			t.Errorf("%s: %.3f of the lines, want %.2f ± 0.01", TextFiles[i], got, want)
		}
	}
	if tx.Vocab[0] != EOS && tx.Vocab[0] != "the" {
		t.Errorf("most frequent token %q", tx.Vocab[0])
	}

	// Same seed, same bytes; another seed, another split of the same lines.
	again, err := BuildCorpus(CorpusSpec{Inputs: []string{fortunesDir}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range TextFiles {
		if !bytes.Equal(again.Files[i], c.Files[i]) {
			t.Errorf("%s differs between two builds with seed 1", TextFiles[i])
		}
	}
	other, err := BuildCorpus(CorpusSpec{Inputs: []string{fortunesDir}, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other.Files[1], c.Files[1]) || bytes.Equal(other.Files[0], c.Files[0]) {
		t.Error("seeds 1 and 2 made the same split")
	}
	lines := func(c *Corpus) int { return c.Splits[0].Lines + c.Splits[1].Lines + c.Splits[2].Lines }
	if lines(other) != lines(c) {
		t.Errorf("seed 2 kept %d lines, seed 1 %d", lines(other), lines(c))
	}
}

func TestFortunesStreams(t *testing.T) {
	c := fortunesCorpus(t)
	tx, err := LoadText(writeCorpus(t, c))
	if err != nil {
		t.Fatal(err)
	}
	const batch, bptt = 20, 35
	s, err := NewStreams(tx.Val, batch, bptt)
	if err != nil {
		t.Fatal(err)
	}
	steps := len(tx.Val) / batch
	x, y := make([]int32, batch*bptt), make([]int32, batch*bptt)
	windows, served := 0, 0
	for n := s.Next(x, y); n > 0; n = s.Next(x, y) {
		for b := range batch {
			for t2 := range n {
				at := b*steps + served + t2
				if x[t2*batch+b] != tx.Val[at] || y[t2*batch+b] != tx.Val[at+1] {
					t.Fatalf("window %d, stream %d, step %d: got (%d, %d), want (%d, %d)",
						windows, b, t2, x[t2*batch+b], y[t2*batch+b], tx.Val[at], tx.Val[at+1])
				}
			}
		}
		windows++
		served += n
	}
	if windows != s.WindowsPerEpoch() || served != steps-1 || s.Epoch() != 1 {
		t.Errorf("%d windows (want %d), %d steps (want %d), epoch %d", windows, s.WindowsPerEpoch(), served, steps-1, s.Epoch())
	}
}

func count(ids []int32, id int32) int {
	n := 0
	for _, v := range ids {
		if v == id {
			n++
		}
	}
	return n
}

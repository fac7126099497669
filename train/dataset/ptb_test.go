package dataset

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeText writes the three PTB files into a new directory.
func writeText(t *testing.T, train, valid, test string) string {
	t.Helper()
	dir := t.TempDir()
	for i, s := range []string{train, valid, test} {
		writeFile(t, dir, TextFiles[i], []byte(s))
	}
	return dir
}

// words maps ids back to their words.
func words(tx *Text, ids []int32) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(tx.Vocab[id])
	}
	return b.String()
}

func TestLoadTextVocabularyAndIDs(t *testing.T) {
	// "b" and <eos> are tied with 4; "b" comes first. "c", "<unk>" and "a" tie with 1: "c" first.
	dir := writeText(t, " c b b\n b <unk> b\r\n\n a\n", "b zebra a\n", "<unk> <eos> b")
	tx, err := LoadText(dir)
	if err != nil {
		t.Fatal(err)
	}
	wantVocab := []string{"b", EOS, "c", "<unk>", "a"}
	if !slices.Equal(tx.Vocab, wantVocab) {
		t.Fatalf("vocabulary %q, want %q", tx.Vocab, wantVocab)
	}
	// Every line, the blank one too, ends in <eos>, as the reference readers do.
	if got, want := words(tx, tx.Train), "c b b <eos> b <unk> b <eos> <eos> a <eos>"; got != want {
		t.Errorf("train %q, want %q", got, want)
	}
	if got, want := words(tx, tx.Val), "b <unk> a <eos>"; got != want {
		t.Errorf("valid %q, want %q (zebra is out of the vocabulary)", got, want)
	}
	if got, want := words(tx, tx.Test), "<unk> <eos> b <eos>"; got != want {
		t.Errorf("test %q, want %q", got, want)
	}

	// The same files gzipped (and named .gz) read the same.
	gzDir := t.TempDir()
	for _, name := range TextFiles {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, gzDir, name+".gz", gz(t, data))
	}
	tz, err := LoadText(gzDir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tz.Vocab, tx.Vocab) || !slices.Equal(tz.Train, tx.Train) || !slices.Equal(tz.Val, tx.Val) || !slices.Equal(tz.Test, tx.Test) {
		t.Errorf("gzipped files read differently: %+v vs %+v", tz, tx)
	}
}

func TestLoadTextLineLimit(t *testing.T) {
	long := strings.Repeat("x", maxLine-2) + " y\n" // exactly 1 MiB before the newline
	tx, err := LoadText(writeText(t, long, "y\n", "y\n"))
	if err != nil {
		t.Fatalf("a 1 MiB line: %v", err)
	}
	if len(tx.Train) != 3 {
		t.Errorf("train has %d tokens, want 3", len(tx.Train))
	}
}

func TestLoadTextErrors(t *testing.T) {
	ok := "a b\n<unk> c\n"
	nul := "a b\nc\x00d\n"
	for _, c := range []struct {
		name               string
		train, valid, test string
		want               []string
	}{
		{"empty train", "", ok, ok, []string{"ptb.train.txt: empty file (no lines)"}},
		{"blank valid", ok, " \n\n", ok, []string{"ptb.valid.txt: empty file (2 lines without a word)"}},
		{"NUL", ok, ok, nul, []string{"ptb.test.txt:2: NUL byte at column 2", "binary"}},
		{"invalid UTF-8", "a\nb\nc \xff\n", ok, ok, []string{"ptb.train.txt:3: invalid UTF-8 at column 3 (byte 0xff)"}},
		{"long line", ok, "a\n" + strings.Repeat("a", maxLine+1) + "\n", ok, []string{"ptb.valid.txt:2: line longer than 1048576 bytes"}},
		{"long last line", ok, ok, strings.Repeat("a", 3*maxLine), []string{"ptb.test.txt:1: line longer than 1048576 bytes"}},
		{"unknown word without <unk>", "a b\n", "a\nb zebra\n", ok, []string{"ptb.valid.txt:2:", `word "zebra" is not in the vocabulary of ptb.train.txt`, "no <unk>"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadText(writeText(t, c.train, c.valid, c.test))
			wantErr(t, err, append([]string{"dataset: "}, c.want...)...)
		})
	}

	t.Run("missing file", func(t *testing.T) {
		dir := writeText(t, ok, ok, ok)
		os.Remove(filepath.Join(dir, "ptb.valid.txt"))
		_, err := LoadText(dir)
		wantErr(t, err, dir, "missing ptb.valid.txt (or ptb.valid.txt.gz)", "the PTB layout is ptb.train.txt, ptb.valid.txt and ptb.test.txt")
	})
	t.Run("split file is a directory", func(t *testing.T) {
		dir := writeText(t, ok, ok, ok)
		os.Remove(filepath.Join(dir, "ptb.test.txt"))
		os.Mkdir(filepath.Join(dir, "ptb.test.txt"), 0o755)
		_, err := LoadText(dir)
		wantErr(t, err, "ptb.test.txt: not a regular file")
	})
	t.Run("missing directory", func(t *testing.T) {
		_, err := LoadText(filepath.Join(t.TempDir(), "nope"))
		wantErr(t, err, "dataset: text:", "nope", "no such file")
	})
	t.Run("bad gzip", func(t *testing.T) {
		dir := writeText(t, ok, ok, ok)
		os.Remove(filepath.Join(dir, "ptb.test.txt"))
		data := gz(t, []byte(ok))
		writeFile(t, dir, "ptb.test.txt.gz", data[:len(data)-4])
		_, err := LoadText(dir)
		wantErr(t, err, "ptb.test.txt.gz:", "reading", "unexpected EOF")
	})
	t.Run("vocabulary over 2^31", func(t *testing.T) {
		defer func(v int64) { maxVocab = v }(maxVocab)
		maxVocab = 3 // stands for 2^31: a, b, <eos> fit, c does not
		_, err := LoadText(writeText(t, "a b\na\nb c\n", ok, ok))
		wantErr(t, err, "ptb.train.txt:3: vocabulary over 2^31 words")
	})
}

func TestCorpusTokens(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Hello, World!", "hello world"},
		{"I don't know; it's 3.14 or 1,000 (maybe 42).", "i do n't know it 's N or N maybe N"},
		{"We'll see: they're here, you've won, I'd go, I'm off.", "we 'll see they 're here you 've won i 'd go i 'm off"},
		{"It’s five o'clock in the 1990s -- a long-term plan.", "it 's five o'clock in the 1990s a long-term plan"},
		{"'Quoted' words' ends", "quoted words ends"},
		{"Ça ira, NAÏVE café", "ça ira naïve café"},
		{"%", ""},
		{"  ...  ", ""},
		{"1990-91 $5 #1 -3", "N N N N"},
		{"a \u0301 b", "a b"}, // a lone combining accent is no word
	} {
		got := strings.Join(corpusTokens(nil, c.in), " ")
		if got != c.want {
			t.Errorf("corpusTokens(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// corpusDir writes a small fortune-like directory: text files with "%"
// separators, and the .dat, .u8 and hidden files that must be skipped.
func corpusDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	for i := range 300 {
		b.WriteString([]string{"The cat sat on the mat.", "A dog's life, 7 days!", "%", "", "Zebra number " + strings.Repeat("x", i%7+1)}[i%5])
		b.WriteByte('\n')
	}
	writeFile(t, dir, "animals", []byte(b.String()))
	writeFile(t, dir, "animals.dat", []byte{0, 0, 0, 2, 0xff, 0})
	if err := os.Symlink("animals", filepath.Join(dir, "animals.u8")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, ".hidden", []byte("secret words\n"))
	if err := os.Mkdir(filepath.Join(dir, "more"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "more"), "birds", []byte("%\nBirds fly.\n%\nOwls don't.\n"))
	return dir
}

func TestBuildCorpus(t *testing.T) {
	dir := corpusDir(t)
	c, err := BuildCorpus(CorpusSpec{Inputs: []string{dir}, Vocab: 8, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if c.Inputs != 2 {
		t.Errorf("read %d files, want 2 (animals, more/birds)", c.Inputs)
	}
	lines, all := 0, ""
	for i, s := range c.Splits {
		lines += s.Lines
		all += string(c.Files[i])
		if n := bytes.Count(c.Files[i], []byte{'\n'}); n != s.Lines {
			t.Errorf("%s: %d lines, stats say %d", TextFiles[i], n, s.Lines)
		}
		if got := len(strings.Fields(string(c.Files[i]))); got != s.Words {
			t.Errorf("%s: %d words, stats say %d", TextFiles[i], got, s.Words)
		}
		if got := countWord(string(c.Files[i]), Unk); got != s.Unk {
			t.Errorf("%s: %d <unk>, stats say %d", TextFiles[i], got, s.Unk)
		}
	}
	// 180 lines of animals with words (the "%" and blank ones dropped), 2 of birds.
	if lines != 182 {
		t.Errorf("%d lines, want 182", lines)
	}
	for _, banned := range []string{"secret", "%", "\n\n", "7"} {
		if strings.Contains(all, banned) {
			t.Errorf("output holds %q:\n%s", banned, all)
		}
	}
	// Roughly 80/10/10.
	if s := c.Splits; s[0].Lines < 120 || s[1].Lines < 5 || s[2].Lines < 5 {
		t.Errorf("split %d/%d/%d of 182 lines", s[0].Lines, s[1].Lines, s[2].Lines)
	}

	// Round trip: LoadText finds the vocabulary BuildCorpus promised, within budget.
	out := t.TempDir()
	for i, name := range TextFiles {
		writeFile(t, out, name, c.Files[i])
	}
	tx, err := LoadText(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(tx.Vocab) != c.Vocab || c.Vocab > 8 {
		t.Errorf("LoadText vocabulary %d words %q, BuildCorpus says %d (budget 8)", len(tx.Vocab), tx.Vocab, c.Vocab)
	}
	if got, want := strings.ReplaceAll(words(tx, tx.Val)+" ", " <eos> ", "\n"), string(c.Files[1]); got != want {
		t.Errorf("valid read back as\n%s\nwant\n%s", got, want)
	}

	// Same seed, same bytes; another seed, another split.
	again, err := BuildCorpus(CorpusSpec{Inputs: []string{dir}, Vocab: 8, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	other, err := BuildCorpus(CorpusSpec{Inputs: []string{dir}, Vocab: 8, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range TextFiles {
		if !bytes.Equal(again.Files[i], c.Files[i]) {
			t.Errorf("%s differs between two builds with seed 1", TextFiles[i])
		}
	}
	if bytes.Equal(other.Files[1], c.Files[1]) {
		t.Errorf("seeds 1 and 2 drew the same validation lines")
	}
}

func TestBuildCorpusUnkInTraining(t *testing.T) {
	// Every training word fits the budget but valid and test have other
	// words: the rarest training word gives way so <unk> is in the vocabulary.
	dir := t.TempDir()
	var b strings.Builder
	for i := range 400 {
		b.WriteString([]string{"alpha beta", "alpha gamma", "alpha", "delta"}[i%4])
		if i%4 == 3 {
			b.WriteString(strings.Repeat(" q", i%9)) // rarer words
		}
		b.WriteString(" w")
		b.WriteString(strings.Repeat("z", i)) // a word of its own
		b.WriteByte('\n')
	}
	writeFile(t, dir, "text", []byte(b.String()))
	c, err := BuildCorpus(CorpusSpec{Inputs: []string{filepath.Join(dir, "text")}, Vocab: 1000, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if c.Splits[0].Unk == 0 || c.Splits[1].Unk == 0 {
		t.Fatalf("no <unk>: %+v", c.Splits)
	}
	out := t.TempDir()
	for i, name := range TextFiles {
		writeFile(t, out, name, c.Files[i])
	}
	tx, err := LoadText(out)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(tx.Vocab, Unk) || len(tx.Vocab) != c.Vocab {
		t.Errorf("vocabulary of %d words (BuildCorpus says %d), <unk> in it: %v", len(tx.Vocab), c.Vocab, slices.Contains(tx.Vocab, Unk))
	}
}

func TestBuildCorpusErrors(t *testing.T) {
	dir := corpusDir(t)
	bin := writeFile(t, t.TempDir(), "bin", []byte("fine\nnot\x00fine\n"))
	empty := t.TempDir()
	writeFile(t, empty, "x.dat", []byte("skipped"))
	for _, c := range []struct {
		name string
		spec CorpusSpec
		want []string
	}{
		{"small vocabulary", CorpusSpec{Inputs: []string{dir}, Vocab: 2}, []string{"vocabulary of 2 words: want at least 3"}},
		{"zero share", CorpusSpec{Inputs: []string{dir}, Split: [3]int{90, 10, 0}}, []string{"split 90,10,0", "ptb.test.txt share must be in [1, 1048576]"}},
		{"huge share", CorpusSpec{Inputs: []string{dir}, Split: [3]int{1, math.MaxInt, 1}}, []string{"ptb.valid.txt share must be in [1, 1048576]"}},
		{"no inputs", CorpusSpec{}, []string{"no input files"}},
		{"missing input", CorpusSpec{Inputs: []string{dir + "/nope"}}, []string{"nope", "no such file"}},
		{"no text files", CorpusSpec{Inputs: []string{empty}}, []string{empty, "no text files"}},
		{"binary", CorpusSpec{Inputs: []string{bin}}, []string{bin + ":2: NUL byte"}},
		{"too little text", CorpusSpec{Inputs: []string{filepath.Join(dir, "more", "birds")}}, []string{"no line drawn for ptb.", "give more text"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := BuildCorpus(c.spec)
			wantErr(t, err, append([]string{"dataset: corpus: "}, c.want...)...)
		})
	}
}

func countWord(s, w string) int {
	n := 0
	for _, f := range strings.Fields(s) {
		if f == w {
			n++
		}
	}
	return n
}

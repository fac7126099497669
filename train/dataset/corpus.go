package dataset

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
)

// DefaultCorpusVocab is the vocabulary of the Penn Treebank as Mikolov et al.
// distribute it: 10,000 words, <unk> and <eos> included.
const DefaultCorpusVocab = 10000

// DefaultCorpusSplit is the default share of lines of train, valid and test.
var DefaultCorpusSplit = [3]int{80, 10, 10}

const (
	saltCorpus = 0x6e617364_636f7270 // "nasdcorp"
	maxShare   = 1 << 20             // keeps the sum of the shares far from overflow
)

// CorpusSpec says which plain text BuildCorpus reads and how it splits it.
type CorpusSpec struct {
	// Inputs are files or directories. A directory contributes its regular
	// files (recursively, in lexical order), skipping hidden ones, symlinks
	// and the .dat and .u8 files of the fortune packages (strfile indexes and
	// links to the text).
	Inputs []string
	Vocab  int    // words kept, <unk> and <eos> included; 0 means 10,000
	Seed   uint64 // seeds the split of lines
	Split  [3]int // shares of lines for train, valid, test; zero means 80,10,10
}

// CorpusSplit counts one output file.
type CorpusSplit struct {
	Lines int // lines, hence <eos> tokens
	Words int // words, <eos> not counted
	Unk   int // words replaced by <unk>
}

// Corpus is the PTB layout built from plain text: Files[i] is the content of
// TextFiles[i].
type Corpus struct {
	Files  [3][]byte
	Splits [3]CorpusSplit
	Inputs int // files read
	Vocab  int // size of the vocabulary LoadText builds from Files[0]
}

// BuildCorpus turns plain English text into the Penn Treebank layout. Each
// input line becomes one output line of tokens (see corpusTokens for the
// rules); a line with no token, among them the "%" lines that separate
// fortunes, is dropped. Each kept line goes to train, valid or test by a
// seeded draw in proportion to Split, so the same inputs and Seed give the
// same files byte for byte. The vocabulary is the Vocab−2 most frequent words
// of the training lines (ties by first appearance), leaving room for <unk>
// and <eos>; every other word becomes <unk> in all three files. Counting only
// the training lines keeps the held-out text from choosing the vocabulary.
func BuildCorpus(spec CorpusSpec) (*Corpus, error) {
	if spec.Vocab == 0 {
		spec.Vocab = DefaultCorpusVocab
	}
	if spec.Vocab < 3 {
		return nil, fmt.Errorf("dataset: corpus: vocabulary of %d words: want at least 3 (<unk>, <eos> and a word)", spec.Vocab)
	}
	if spec.Split == [3]int{} {
		spec.Split = DefaultCorpusSplit
	}
	total := 0
	for i, s := range spec.Split {
		if s <= 0 || s > maxShare {
			return nil, fmt.Errorf("dataset: corpus: split %d,%d,%d: the %s share must be in [1, %d] (the PTB layout needs all three files)",
				spec.Split[0], spec.Split[1], spec.Split[2], TextFiles[i], maxShare)
		}
		total += s
	}
	if len(spec.Inputs) == 0 {
		return nil, fmt.Errorf("dataset: corpus: no input files")
	}
	files, err := corpusFiles(spec.Inputs)
	if err != nil {
		return nil, err
	}

	var p rand.PCG
	seedPCG(&p, spec.Seed, saltCorpus, 0)
	var lines [3][][]string
	var toks []string
	for _, path := range files {
		f, _, err := openFile(path)
		if err != nil {
			return nil, err
		}
		err = scanLines(f, func(line []byte, ln int) error {
			if err := checkText(line); err != nil {
				return fmt.Errorf("%d: %w", ln, err)
			}
			if string(bytes.TrimSpace(line)) == "%" {
				return nil // a fortune separator
			}
			toks = corpusTokens(toks[:0], string(line))
			if len(toks) == 0 {
				return nil
			}
			d := uintn(&p, uint64(total))
			split := 0
			for d >= uint64(spec.Split[split]) {
				d -= uint64(spec.Split[split])
				split++
			}
			lines[split] = append(lines[split], slices.Clone(toks))
			return nil
		})
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("dataset: corpus: %s:%w", path, err)
		}
	}
	for i := range lines {
		if len(lines[i]) == 0 {
			return nil, fmt.Errorf("dataset: corpus: no line drawn for %s (%d, %d and %d lines in all): give more text",
				TextFiles[i], len(lines[0]), len(lines[1]), len(lines[2]))
		}
	}

	// The vocabulary: training words by descending count, ties by first appearance.
	count := map[string]int{}
	var order []string
	for _, l := range lines[0] {
		for _, w := range l {
			if count[w] == 0 {
				order = append(order, w)
			}
			count[w]++
		}
	}
	slices.SortStableFunc(order, func(a, b string) int { return cmp.Compare(count[b], count[a]) })
	keep := order[:min(len(order), spec.Vocab-2)]
	kept := make(map[string]bool, len(keep))
	for _, w := range keep {
		kept[w] = true
	}
	if len(keep) == len(order) {
		// Every training word fits, so the training file would hold no <unk>
		// and LoadText's vocabulary would lack it; if valid or test need it,
		// give up the rarest training word to put <unk> in the training file.
		unseen := false
		for _, split := range lines[1:] {
			for _, l := range split {
				for _, w := range l {
					unseen = unseen || !kept[w]
				}
			}
		}
		if unseen {
			delete(kept, keep[len(keep)-1])
		}
	}

	c := &Corpus{Inputs: len(files), Vocab: len(kept) + 1} // + <eos>
	for i, split := range lines {
		var b bytes.Buffer
		st := &c.Splits[i]
		for _, l := range split {
			for j, w := range l {
				if j > 0 {
					b.WriteByte(' ')
				}
				if !kept[w] {
					w = Unk
					st.Unk++
				}
				b.WriteString(w)
			}
			b.WriteByte('\n')
			st.Lines++
			st.Words += len(l)
		}
		c.Files[i] = b.Bytes()
	}
	if c.Splits[0].Unk > 0 {
		c.Vocab++
	}
	return c, nil
}

// corpusFiles expands directories into their files.
func corpusFiles(inputs []string) ([]string, error) {
	var files []string
	for _, in := range inputs {
		fi, err := os.Stat(in)
		if err != nil {
			return nil, fmt.Errorf("dataset: corpus: %w", err)
		}
		if !fi.IsDir() {
			files = append(files, in)
			continue
		}
		n := len(files)
		err = filepath.WalkDir(in, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := d.Name()
			if path != in && strings.HasPrefix(name, ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			// Symlinks are skipped: the fortune packages link name.u8 to name.
			if d.Type().IsRegular() && !strings.HasSuffix(name, ".dat") && !strings.HasSuffix(name, ".u8") {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("dataset: corpus: %w", err)
		}
		if len(files) == n {
			return nil, fmt.Errorf("dataset: corpus: %s: no text files in the directory", in)
		}
	}
	return files, nil
}

// corpusTokens appends the tokens of line to dst, in the manner of the Penn
// Treebank as Mikolov et al. distribute it, simplified:
//   - text is lower-cased;
//   - a word is a run of letters and digits, joined across an apostrophe
//     between letters (’ becomes '), a hyphen between letters or digits
//     ("long-term"), and a '.' or ',' between digits ("3.14", "1,000");
//     everything else, punctuation included, separates words and is dropped;
//   - a word without letters (a number) becomes N;
//   - the clitics n't, 's, 're, 've, 'll, 'd and 'm are split off as PTB
//     does ("don't" → "do n't", "it's" → "it 's"); other apostrophes stay
//     ("o'clock").
func corpusTokens(dst []string, line string) []string {
	rs := []rune(strings.ToLower(line))
	alnum := func(i int) bool {
		return i >= 0 && i < len(rs) && (unicode.IsLetter(rs[i]) || unicode.IsDigit(rs[i]) || unicode.IsMark(rs[i]))
	}
	letter := func(i int) bool { return i >= 0 && i < len(rs) && (unicode.IsLetter(rs[i]) || unicode.IsMark(rs[i])) }
	digit := func(i int) bool { return i >= 0 && i < len(rs) && unicode.IsDigit(rs[i]) }
	var w []rune
	flush := func() {
		if len(w) == 0 {
			return
		}
		letters, digits := 0, 0
		for _, r := range w {
			if unicode.IsLetter(r) {
				letters++
			} else if unicode.IsDigit(r) {
				digits++
			}
		}
		switch {
		case letters > 0:
			dst = appendClitic(dst, string(w))
		case digits > 0:
			dst = append(dst, "N")
		} // else stray combining marks: no word
		w = w[:0]
	}
	for i, r := range rs {
		switch {
		case alnum(i):
			w = append(w, r)
		case (r == '\'' || r == '’') && len(w) > 0 && letter(i-1) && letter(i+1):
			w = append(w, '\'')
		case r == '-' && len(w) > 0 && alnum(i-1) && alnum(i+1):
			w = append(w, r)
		case (r == '.' || r == ',') && len(w) > 0 && digit(i-1) && digit(i+1):
			w = append(w, r)
		default:
			flush()
		}
	}
	flush()
	return dst
}

// appendClitic appends w, its PTB clitic split off.
func appendClitic(dst []string, w string) []string {
	if len(w) > 3 && strings.HasSuffix(w, "n't") {
		return append(dst, w[:len(w)-3], "n't")
	}
	for _, c := range []string{"'s", "'re", "'ve", "'ll", "'d", "'m"} {
		if len(w) > len(c) && strings.HasSuffix(w, c) {
			return append(dst, w[:len(w)-len(c)], c)
		}
	}
	return append(dst, w)
}

// Text reads the corpus's files from memory as LoadText reads them from a
// directory.
func (c *Corpus) Text() (*Text, error) {
	return readText(TextFiles, func(i int) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(c.Files[i])), nil })
}

// CharSpace is the token of the space between words in a character-level
// corpus, as in the character-level Penn Treebank.
const CharSpace = "_"

// CharLevel rewrites the corpus as characters, the layout of the
// character-level Penn Treebank: each word's characters become tokens, "_"
// stands between words, and <unk> stays one token. Lines and their split
// are kept, so word and character models see the same text; Words then
// counts character tokens.
func (c *Corpus) CharLevel() {
	vocab := map[string]bool{}
	for i, f := range c.Files {
		var b bytes.Buffer
		st := CorpusSplit{}
		for _, line := range bytes.Split(bytes.TrimSuffix(f, []byte("\n")), []byte("\n")) {
			n := 0
			emit := func(tok string) {
				if n > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(tok)
				n++
				if i == 0 {
					vocab[tok] = true
				}
				if tok == Unk {
					st.Unk++
				}
			}
			for j, w := range strings.Fields(string(line)) {
				if j > 0 {
					emit(CharSpace)
				}
				if w == Unk {
					emit(Unk)
					continue
				}
				for _, r := range w {
					emit(string(r))
				}
			}
			b.WriteByte('\n')
			st.Lines++
			st.Words += n
		}
		c.Files[i], c.Splits[i] = b.Bytes(), st
	}
	c.Vocab = len(vocab) + 1 // + <eos>
}

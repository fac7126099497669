package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"nasd/journal"
	"nasd/train/dataset"
)

const corpusSynopsis = "-o DIR [-vocab 10000] [-seed 1] [-split 80,10,10] [-chars] FILE|DIR..."

func runCorpus(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("corpus", corpusSynopsis, stderr)
	out := fs.String("o", "", "directory to write ptb.train.txt, ptb.valid.txt and ptb.test.txt into (created if missing)")
	vocab := fs.Int("vocab", dataset.DefaultCorpusVocab, "words kept, <unk> and <eos> included; the rest become <unk>")
	seed := fs.Uint64("seed", 1, "seed of the draw that sends each line to train, valid or test")
	split := fs.String("split", "80,10,10", "shares of lines for train, valid and test")
	chars := fs.Bool("chars", false, "write the same lines as characters (character-level PTB layout: \"_\" between words, <unk> one token)")
	inputs, code, ok := parseFlagsAndArgs(fs, args)
	if !ok {
		return code
	}
	var problems []error
	if *out == "" {
		problems = append(problems, errors.New("-o DIR is required"))
	}
	if len(inputs) == 0 {
		problems = append(problems, errors.New("no input: give text files or directories"))
	}
	shares, err := parseSplit(*split)
	if err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "nasd corpus: %v\n", errors.Join(problems...))
		fs.Usage()
		return exitUsage
	}

	c, err := dataset.BuildCorpus(dataset.CorpusSpec{Inputs: inputs, Vocab: *vocab, Seed: *seed, Split: shares})
	if err != nil {
		return fail(stderr, err)
	}
	if *chars {
		c.CharLevel()
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fail(stderr, fmt.Errorf("corpus: %w", err))
	}
	for i, name := range dataset.TextFiles {
		if err := journal.WriteFileAtomic(filepath.Join(*out, name), c.Files[i], 0o644); err != nil {
			return fail(stderr, fmt.Errorf("corpus: %w", err))
		}
	}
	unit := "words"
	if *chars {
		unit = "chars"
	}
	fmt.Fprintf(stdout, "corpus: %d files -> %s (seed %d, split %s)\nvocabulary: %d %s, <unk> and <eos> included\n",
		c.Inputs, *out, *seed, *split, c.Vocab, unit)
	fmt.Fprintf(stdout, "%-14s %8s %9s %9s %6s\n", "file", "lines", unit, "tokens", "OOV")
	for i, s := range c.Splits {
		fmt.Fprintf(stdout, "%-14s %8d %9d %9d %5.2f%%\n", dataset.TextFiles[i], s.Lines, s.Words, s.Words+s.Lines,
			100*float64(s.Unk)/float64(max(s.Words, 1)))
	}
	return exitOK
}

// parseFlagsAndArgs is parseFlags for a command with operands: flags may come
// before, between or after them.
func parseFlagsAndArgs(fs *flag.FlagSet, args []string) (operands []string, code int, ok bool) {
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			return nil, exitOK, false
		}
		if err != nil {
			return nil, exitUsage, false
		}
		args = fs.Args()
		if len(args) == 0 {
			return operands, exitOK, true
		}
		if args[0] == "--" {
			return append(operands, args[1:]...), exitOK, true
		}
		operands = append(operands, args[0])
		args = args[1:]
	}
}

// parseSplit reads "80,10,10".
func parseSplit(s string) ([3]int, error) {
	var shares [3]int
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return shares, fmt.Errorf("-split %q: want three shares, train,valid,test, such as 80,10,10", s)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 {
			return shares, fmt.Errorf("-split %q: share %q must be a whole number ≥ 1", s, p)
		}
		shares[i] = n
	}
	return shares, nil
}

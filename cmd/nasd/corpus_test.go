package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nasd/train/dataset"
)

func TestCorpusCommand(t *testing.T) {
	in := t.TempDir()
	var b strings.Builder
	for i := range 200 {
		b.WriteString([]string{"The cat sat.", "%", "Don't panic: 42!", "", "A line of its own " + strings.Repeat("z", i)}[i%5])
		b.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(in, "text"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, "text.dat"), []byte{0, 1, 2}, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "a", "corpus")
	// Flags after the operand are taken too.
	code, stdout, stderr := nasd(t, "corpus", "-o", out, in, "-vocab", "20", "-seed", "5")
	if code != exitOK {
		t.Fatalf("code %d, stderr:\n%s", code, stderr)
	}
	for _, want := range []string{"corpus: 1 files -> " + out + " (seed 5, split 80,10,10)", "vocabulary: 20 words", "ptb.train.txt", "ptb.valid.txt", "ptb.test.txt", "%"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	tx, err := dataset.LoadText(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(tx.Vocab) != 20 {
		t.Errorf("LoadText finds %d words, want 20: %q", len(tx.Vocab), tx.Vocab)
	}
	lines := 0
	var files [3][]byte
	for i, name := range dataset.TextFiles {
		if files[i], err = os.ReadFile(filepath.Join(out, name)); err != nil {
			t.Fatal(err)
		}
		lines += bytes.Count(files[i], []byte{'\n'})
	}
	if lines != 120 { // 40 each of "the cat sat", "do n't panic N", "a line of its own z..."
		t.Errorf("%d lines written, want 120", lines)
	}
	if !bytes.Contains(files[0], []byte("do n't panic N\n")) {
		t.Errorf("ptb.train.txt lacks the tokenised line \"do n't panic N\":\n%s", files[0])
	}

	// The same command again rewrites the same bytes.
	if code, _, stderr := nasd(t, "corpus", "-seed", "5", "-vocab", "20", "-o", out, in); code != exitOK {
		t.Fatalf("again: code %d, stderr:\n%s", code, stderr)
	}
	for i, name := range dataset.TextFiles {
		again, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, files[i]) {
			t.Errorf("%s differs after a second run with the same seed", name)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(out, "*tmp*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestCorpusCommandErrors(t *testing.T) {
	in := t.TempDir()
	bin := filepath.Join(in, "bin")
	if err := os.WriteFile(bin, []byte("ok\n\x00\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-h"}, exitOK, "Usage: nasd corpus -o DIR"},
		{[]string{in}, exitUsage, "-o DIR is required"},
		{[]string{"-o", in}, exitUsage, "no input"},
		{[]string{"-o", in, "-split", "80,20", in}, exitUsage, `-split "80,20": want three shares`},
		{[]string{"-o", in, "-split", "80,x,10", in}, exitUsage, `share "x" must be a whole number`},
		{[]string{"-o", in, "-bogus", in}, exitUsage, "bogus"},
		{[]string{"-o", in, filepath.Join(in, "nope")}, exitError, "nasd: dataset: corpus: stat " + filepath.Join(in, "nope")},
		{[]string{"-o", in, bin}, exitError, "nasd: dataset: corpus: " + bin + ":2: NUL byte"},
		{[]string{"-o", in, "-vocab", "1", bin}, exitError, "vocabulary of 1 words"},
	} {
		code, _, stderr := nasd(t, append([]string{"corpus"}, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("corpus %q: code %d (want %d), stderr lacks %q:\n%s", c.args, code, c.code, c.want, stderr)
		}
	}
}

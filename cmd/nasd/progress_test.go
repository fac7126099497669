package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nasd/controller"
	"nasd/train"
)

// TestProgressBarOnlyOnTerminals: stderr on /dev/null (a character device,
// but no terminal), on a file or in memory gets no redrawn bar; the
// progress goes to stdout as whole lines, for training and for a search.
func TestProgressBarOnlyOnTerminals(t *testing.T) {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	file, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	for name, stderr := range map[string]io.Writer{
		"/dev/null": devnull, "file": file, "buffer": &bytes.Buffer{},
	} {
		if isTerminal(stderr) {
			t.Errorf("%s: isTerminal = true", name)
		}
		var out bytes.Buffer
		p := newProgress(&out, stderr)
		if p.bar != nil {
			t.Errorf("%s: training progress draws a bar", name)
		}
		p.update(train.Progress{Epoch: 1, Step: 5, StepsPerEpoch: 10, Loss: 1})
		p.update(train.Progress{Epoch: 1, Epochs: 2, EpochDone: &train.EpochStats{Epoch: 1, ValAcc: 0.5}})
		if got := out.String(); strings.Contains(got, "\r") || !strings.HasPrefix(got, "epoch 1/2  train loss") {
			t.Errorf("%s: training output %q, want one epoch line", name, got)
		}
		out.Reset()
		sp := newSearchProgress(&out, stderr)
		if sp.bar != nil {
			t.Errorf("%s: search progress draws a bar", name)
		}
		// Trials finishing back to back: the first and the last get a line.
		for done := 1; done <= 400; done++ {
			sp.update(controller.Progress{Done: done, Budget: 400, Running: 2})
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if got := out.String(); strings.Contains(got, "\r") || len(lines) < 2 || len(lines) > 4 ||
			!strings.HasPrefix(lines[0], "trials 1/400") || !strings.HasPrefix(lines[len(lines)-1], "trials 400/400") {
			t.Errorf("%s: search output %q, want a line for the first trial and one for the last", name, got)
		}
	}
	if st, err := devnull.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		t.Logf("%s is not a character device here (%v): the test shows less", os.DevNull, err)
	}
	// A terminal does get the bar: a pseudo-terminal's master side is one.
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal to check the positive case: %v", err)
	}
	defer ptmx.Close()
	if !isTerminal(ptmx) || newProgress(io.Discard, ptmx).bar == nil {
		t.Error("/dev/ptmx: no bar on a terminal")
	}
}

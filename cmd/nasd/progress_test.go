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
		sp.update(controller.Progress{Done: 1, Budget: 4, Running: 2})
		if got := out.String(); strings.Contains(got, "\r") || !strings.HasPrefix(got, "trials 1/4") {
			t.Errorf("%s: search output %q, want one line", name, got)
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

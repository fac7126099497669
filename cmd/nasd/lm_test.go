package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"nasd/arch"
	"nasd/journal"
	"nasd/train/dataset"
)

var fortunesCorpus struct {
	once sync.Once
	dir  string
	err  error
}

// fortunesDir is a PTB-layout corpus built from the fortunes package with a
// 2 000-word vocabulary, once per test binary.
func fortunesDir(t *testing.T) string {
	t.Helper()
	const src = "/usr/share/games/fortunes"
	if _, err := os.Stat(src); err != nil {
		t.Skipf("fortunes not installed at %s: install fortunes (make deps)", src)
	}
	fortunesCorpus.once.Do(func() {
		c, err := dataset.BuildCorpus(dataset.CorpusSpec{Inputs: []string{src}, Seed: 1, Vocab: 2000})
		if err != nil {
			fortunesCorpus.err = err
			return
		}
		dir := filepath.Join(testTmp, "fortunes-2000")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fortunesCorpus.err = err
			return
		}
		for i, name := range dataset.TextFiles {
			if err := os.WriteFile(filepath.Join(dir, name), c.Files[i], 0o644); err != nil {
				fortunesCorpus.err = err
				return
			}
		}
		fortunesCorpus.dir = dir
	})
	if fortunesCorpus.err != nil {
		t.Fatal(fortunesCorpus.err)
	}
	return fortunesCorpus.dir
}

// nasd train -data ptb trains an LSTM language model and writes its record.
func TestTrainLSTMLanguageModel(t *testing.T) {
	dir := fortunesDir(t)
	out := filepath.Join(t.TempDir(), "lm.json")
	code, stdout, stderr := nasd(t, "train", "-data", "ptb", "-data-dir", dir, "-cell", "lstm", "-hidden", "32",
		"-epochs", "1", "-steps", "30", "-test", "-o", out)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"Cell: LSTM, 32 inputs, 32 units", "val ppl", "Test perplexity:", "tokens/s"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	var rec lmOutput
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	r := rec.Result
	if r.Status != "ok" || r.Steps != 30 || r.TestPPL == nil || r.BestValPPL <= 1 || r.BestValPPL > 2000 ||
		math.Abs(r.Reward-80/r.BestValPPL) > 1e-12 || rec.Cell != "lstm" {
		t.Fatalf("record %+v", rec)
	}
	for _, bad := range [][]string{
		{"train", "-data", "ptb", "-cell", "lstm"},                                 // no -data-dir
		{"train", "-data", "ptb", "-data-dir", dir},                                // no cell
		{"train", "-data", "ptb", "-data-dir", dir, "-cell", "gru"},                // unknown cell
		{"train", "-data", "ptb", "-data-dir", dir, "-cell", "lstm", "-bptt", "0"}, // bad config
		{"train", "-data", "ptb", "-data-dir", dir, "-space", "enas-macro", "-sample"},
	} {
		if code, _, stderr := nasd(t, bad...); code == exitOK || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q", bad, code, stderr)
		}
	}
}

// A search over enas-rnn cells on text: every trial is a language model,
// its reward 80/validation perplexity, perplexities logged.
func TestSearchRecurrentCells(t *testing.T) {
	dir := fortunesDir(t)
	cfg := writeConfig(t, `
seed = 2
workers = 2
mode = "sync"
[budget]
trials = 4
[data]
name = "ptb"
dir = "`+dir+`"
[space]
name = "enas-rnn"
nodes = 4
hidden = 32
[strategy]
name = "rl"
[trainer.lm]
epochs = 1
steps = 8
eval_batch = 20
`)
	run := filepath.Join(t.TempDir(), "run")
	code, stdout, stderr := nasd(t, "search", "-config", cfg, "-run-dir", run)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "best validation perplexity") {
		t.Errorf("summary:\n%s", stdout)
	}
	n := 0
	_, err := journal.ReadEvents(run, func(e journal.Event) error {
		if e.Kind != "trial_result" {
			return nil
		}
		var f struct {
			Status string    `json:"status"`
			Reward float64   `json:"reward"`
			ValPPL []float64 `json:"val_ppl"`
			ValAcc []float64 `json:"val_acc"`
		}
		if err := json.Unmarshal(e.Raw, &f); err != nil {
			return err
		}
		n++
		if f.Status == "ok" && (len(f.ValPPL) != 1 || math.Abs(f.Reward-80/f.ValPPL[0]) > 1e-4*f.Reward || f.ValAcc[0] != f.Reward) {
			t.Errorf("trial result %s", e.Raw)
		}
		return nil
	})
	if err != nil || n != 4 {
		t.Fatalf("%d trial results, %v", n, err)
	}
	if a, _, err := arch.Load(filepath.Join(run, "best.json")); err != nil || a.Space != "enas-rnn" {
		t.Fatalf("best.json: %v %v", a.Space, err)
	}

	for name, body := range map[string]string{
		"cells on images":  "[budget]\ntrials = 1\n[space]\nname = \"enas-rnn\"\n",
		"images on text":   "[budget]\ntrials = 1\n[data]\nname = \"ptb\"\ndir = \"" + dir + "\"\n[space]\nname = \"enas-macro\"\n",
		"text without dir": "[budget]\ntrials = 1\n[data]\nname = \"ptb\"\n[space]\nname = \"enas-rnn\"\n",
		"bad lm config":    "[budget]\ntrials = 1\n[data]\nname = \"ptb\"\ndir = \"" + dir + "\"\n[space]\nname = \"enas-rnn\"\n[trainer.lm]\nbptt = 0\n",
	} {
		code, _, stderr := nasd(t, "search", "-config", writeConfig(t, body), "-run-dir", filepath.Join(t.TempDir(), "x"))
		if code != 1 || stderr == "" {
			t.Errorf("%s: exit %d, stderr %q", name, code, stderr)
		}
	}
}

// nasd space shows the cell spaces like the others.
func TestSpaceRecurrentCells(t *testing.T) {
	for _, args := range [][]string{
		{"space", "-space", "enas-rnn", "-nodes", "4", "-hidden", "32", "-seed", "3"},
		{"space", "-space", "nas-rnn", "-base", "4", "-hidden", "16", "-embed", "8", "-format", "dot"},
		{"space", "-space", "nas-rnn", "-base", "2", "-format", "json", "-arch-only"},
	} {
		code, stdout, stderr := nasd(t, args...)
		if code != exitOK || stdout == "" {
			t.Errorf("%v: exit %d\n%s", args, code, stderr)
		}
	}
	_, stdout, _ := nasd(t, "space", "-space", "enas-rnn", "-nodes", "4", "-hidden", "32", "-arch-only")
	for _, want := range []string{"node 1", "h_t", "x_t", "h_{t-1}"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("enas-rnn table lacks %q:\n%s", want, stdout)
		}
	}
	for _, bad := range [][]string{
		{"space", "-space", "nas-rnn", "-base", "3"},
		{"space", "-space", "enas-rnn", "-output", "median"},
		{"space", "-space", "enas-rnn", "-channels", "8"},
	} {
		if code, _, stderr := nasd(t, bad...); code == exitOK || stderr == "" {
			t.Errorf("%v: exit %d", bad, code)
		}
	}
}

package main

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fortunesHead writes the first lines of each file of the fortunes corpus
// into a directory of its own: a corpus small enough for a search in a test.
func fortunesHead(t *testing.T, lines int) string {
	t.Helper()
	src := fortunesDir(t)
	dst := t.TempDir()
	for _, name := range []string{"ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"} {
		f, err := os.Open(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		sc := bufio.NewScanner(f)
		n := lines
		if name != "ptb.train.txt" {
			n = lines / 4
		}
		for i := 0; i < n && sc.Scan(); i++ {
			b.WriteString(sc.Text() + "\n")
		}
		f.Close()
		if err := os.WriteFile(filepath.Join(dst, name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// enasLMTOML is a tiny ENAS search over enas-rnn cells on real English text.
const enasLMTOML = `
seed = 4
workers = 2
[data]
name = "ptb"
dir = "DIR"
[space]
name = "enas-rnn"
nodes = 4
hidden = 16
[strategy]
name = "enas"
[strategy.options]
epochs = 2
batch_size = 8
controller_steps = 2
controller_batch = 4
derive_samples = 3
checkpoint_steps = 6
checksum_steps = 3
[trainer]
kind = "real"
[trainer.lm]
bptt = 20
eval_batch = 4
tie = true
drop_out = 0.1
state_clip = 25
`

// ENAS over recurrent cells in process: the shared language model trains
// (replicas checked identical), cells are rewarded c / perplexity, a cell is
// derived by validation perplexity, the same seed gives the same search, and
// a search killed mid-epoch resumes to the same end — the workers' carried
// hidden states and dropout generators included.
func TestENASRecurrentCells(t *testing.T) {
	dir := fortunesHead(t, 1500)
	cfg := writeConfig(t, strings.Replace(enasLMTOML, "DIR", dir, 1))
	var outs []enasOutcome
	for i := range 2 {
		run := filepath.Join(t.TempDir(), "run")
		code, out, errOut := nasd(t, "search", "-config", cfg, "-run-dir", run)
		if code != exitOK || !strings.Contains(out, "Derived: validation perplexity") || !strings.Contains(out, "-data ptb") {
			t.Fatalf("run %d: exit %d\n%s\n%s", i, code, out, errOut)
		}
		outs = append(outs, readENAS(t, run))
	}
	o := outs[0]
	if len(o.epochs) != 2 || o.derive == nil {
		t.Fatalf("%d enas_epoch events, derive %v", len(o.epochs), o.derive)
	}
	for _, e := range o.epochs {
		loss, ppl := e["shared_loss"].(float64), e["shared_ppl"].(float64)
		if math.Abs(math.Exp(loss)-ppl) > 1e-3*ppl || e["checksums_verified"].(float64) < 1 || e["diverged"] != 0.0 {
			t.Errorf("enas_epoch %v", e)
		}
		if r := e["controller_reward"].(float64); !(r > 0 && r < 1) {
			t.Errorf("controller reward %v: want 80 / perplexity", r)
		}
	}
	if o.epochs[1]["shared_loss"].(float64) >= o.epochs[0]["shared_loss"].(float64) {
		t.Errorf("the shared loss did not fall: %v then %v", o.epochs[0]["shared_loss"], o.epochs[1]["shared_loss"])
	}
	for _, c := range o.derive["candidates"].([]any) {
		m := c.(map[string]any)
		ppl, reward := m["val_ppl"].(float64), m["val_reward"].(float64)
		if math.Abs(reward-80/ppl) > 1e-6*reward || !(ppl > 1) {
			t.Errorf("derive candidate %v", m)
		}
	}
	if !strings.Contains(string(o.best), `"enas-rnn"`) {
		t.Errorf("best.json:\n%s", o.best)
	}
	if !bytes.Equal(outs[0].best, outs[1].best) || outs[0].weightsHash != outs[1].weightsHash {
		t.Errorf("same seed, different searches: weights %s vs %s", outs[0].weightsHash, outs[1].weightsHash)
	}

	killed := filepath.Join(t.TempDir(), "killed")
	killAtCheckpoint(t, cfg, killed, 2) // checkpoint 2 is mid-epoch 1
	code, out, errOut := nasd(t, "search", "-resume", killed)
	if code != exitOK {
		t.Fatalf("resume: exit %d\n%s\n%s", code, out, errOut)
	}
	got := readENAS(t, killed)
	if n := len(got.starts); n != 2 || got.starts[1]["from_step"].(float64) < 6 {
		t.Fatalf("%d run_start events; the resumed one %v: want a resume in the middle of an epoch", n, got.starts[n-1])
	}
	if !bytes.Equal(got.best, o.best) || got.weightsHash != o.weightsHash {
		t.Errorf("resumed search differs from the uninterrupted one: weights %s vs %s", got.weightsHash, o.weightsHash)
	}
}

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTrainNetTestEveryEpoch: `nasd train -net reference-cnn
// -test-every-epoch -val-size -1` (bench/tta.sh's nasd side) trains the
// reference CNN on every training image and writes each epoch's test
// accuracy and training clock, growing epoch by epoch, into -o's JSON.
func TestTrainNetTestEveryEpoch(t *testing.T) {
	if _, err := os.Stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"); err != nil {
		t.Skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
	}
	out := filepath.Join(t.TempDir(), "r.json")
	code, stdout, errOut := nasd(t, "train", "-net", "reference-cnn", "-val-size", "-1", "-subset", "256", "-test-subset", "128",
		"-epochs", "3", "-batch", "32", "-lr", "0.02", "-nesterov=false", "-test-every-epoch", "-o", out)
	if code != exitOK {
		t.Fatalf("code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, errOut)
	}
	if !strings.Contains(stdout, "256 train, 0 validation, 128 test") || !strings.Contains(stdout, "test acc") ||
		strings.Contains(stdout, "val acc") { // no validation set: no column of zeros
		t.Errorf("stdout:\n%s", stdout)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Arch   json.RawMessage `json:"arch"`
		Net    string          `json:"net"`
		Params int             `json:"params"`
		Result struct {
			Epochs []struct {
				Epoch      int      `json:"epoch"`
				TestAcc    *float64 `json:"test_acc"`
				TrainClock float64  `json:"train_clock"`
			} `json:"epochs"`
		} `json:"result"`
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Net != "reference-cnn" || rec.Arch != nil || rec.Params != 430890 || len(rec.Result.Epochs) != 3 {
		t.Fatalf("net %q, arch %s, %d params, %d epochs; want reference-cnn, none, 430890, 3", rec.Net, rec.Arch, rec.Params, len(rec.Result.Epochs))
	}
	prev := 0.0
	for _, e := range rec.Result.Epochs {
		if e.TestAcc == nil || *e.TestAcc <= 0 || *e.TestAcc > 1 || e.TrainClock <= prev {
			t.Errorf("epoch %d: test acc %v, train clock %v after %v", e.Epoch, e.TestAcc, e.TrainClock, prev)
		}
		prev = e.TrainClock
	}

	for _, args := range [][]string{
		{"train", "-net", "vgg"},
		{"train", "-net", "reference-cnn", "-sample"},
		{"train", "-net", "reference-cnn", "-layers", "4"},
		{"train", "-net", "reference-cnn", "-channels", "8"},
		{"train", "-data", "ptb", "-net", "reference-cnn"},
		{"train", "-data", "ptb", "-cell", "lstm", "-test-every-epoch"},
	} {
		if code, _, errOut := nasd(t, args...); code != exitUsage {
			t.Errorf("%q: code %d, stderr %q; want usage error", args, code, errOut)
		}
	}
}

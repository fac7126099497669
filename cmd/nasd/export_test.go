package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestExportUsage(t *testing.T) {
	if code, _, errOut := nasd(t, "export", "-arch", "x.json"); code != exitUsage || !strings.Contains(errOut, "-o") {
		t.Errorf("no -o: code %d, stderr %q", code, errOut)
	}
	if code, _, errOut := nasd(t, "export", "-arch", "x.json", "-o", t.TempDir(), "-format", "onnx"); code != exitUsage || !strings.Contains(errOut, "onnx") {
		t.Errorf("-format onnx: code %d, stderr %q", code, errOut)
	}
	if code, _, errOut := nasd(t, "export", "-h"); code != exitOK || !strings.Contains(errOut, "load.py") {
		t.Errorf("-h: code %d, stderr %q", code, errOut)
	}
	dir := t.TempDir()
	cell := filepath.Join(dir, "cell.json")
	code, js, errOut := nasd(t, "space", "-space", "enas-rnn", "-hidden", "8", "-seed", "1", "-arch-only", "-format", "json")
	if code != exitOK {
		t.Fatalf("space: %s", errOut)
	}
	if err := os.WriteFile(cell, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := nasd(t, "export", "-arch", cell, "-o", filepath.Join(dir, "out")); code != exitError || !strings.Contains(errOut, "not supported yet") {
		t.Errorf("enas-rnn cell: code %d, stderr %q", code, errOut)
	}
}

// TestExportEndToEnd: train -save-weights, export -weights, and load.py
// loads them into the module (strict) and runs it.
func TestExportEndToEnd(t *testing.T) {
	if _, err := os.Stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"); err != nil {
		t.Skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
	}
	dir := t.TempDir()
	netPath := filepath.Join(dir, "net.json")
	code, js, errOut := nasd(t, "space", "-space", "enas-macro", "-layers", "3", "-channels", "4", "-seed", "2", "-arch-only", "-format", "json")
	if code != exitOK {
		t.Fatalf("space: %s", errOut)
	}
	if err := os.WriteFile(netPath, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	wPath := filepath.Join(dir, "w.safetensors")
	code, out, errOut := nasd(t, "train", "-arch", netPath, "-subset", "64", "-val-subset", "32", "-epochs", "1", "-batch", "16", "-save-weights", wPath)
	if code != exitOK || !strings.Contains(out, "Weights written to") {
		t.Fatalf("train: code %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	outDir := filepath.Join(dir, "model")
	if code, out, errOut := nasd(t, "export", "-arch", netPath, "-weights", wPath, "-o", outDir); code != exitOK {
		t.Fatalf("export: code %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, f := range []string{"model.py", "weights.safetensors", "load.py"} {
		if _, err := os.Stat(filepath.Join(outDir, f)); err != nil {
			t.Error(err)
		}
	}
	// Weights of another architecture are refused, naming the file.
	other := filepath.Join(dir, "other.json")
	_, js2, _ := nasd(t, "space", "-space", "enas-macro", "-layers", "3", "-channels", "6", "-seed", "2", "-arch-only", "-format", "json")
	os.WriteFile(other, []byte(js2), 0o644)
	if code, _, errOut := nasd(t, "export", "-arch", other, "-weights", wPath, "-o", filepath.Join(dir, "bad")); code != exitError || !strings.Contains(errOut, wPath) {
		t.Errorf("mismatched weights: code %d, stderr %q", code, errOut)
	}

	py := ""
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-c", "import torch").Run() == nil {
			py = p
			break
		}
	}
	if py == "" {
		t.Skip("no python3 with torch (apt-get install python3-torch): load.py not run")
	}
	cmd := exec.Command(py, "load.py")
	cmd.Dir = outDir
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python3 load.py: %v\n%s", err, b)
	}
}

// The exported module trains in PyTorch to the accuracy nasd reports for
// the same network and schedule (a small nas net, 4 000 Fashion-MNIST
// images, 2 epochs, constant rate): within 0.04 on the 10 000 test images,
// the spread of such short trainings over seeds (and far above chance).
func TestExportTrainsInPyTorch(t *testing.T) {
	if os.Getenv("NASD_LONG") == "" {
		t.Skip("trains the net on both sides (a minute): make test-long")
	}
	if _, err := os.Stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"); err != nil {
		t.Skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
	}
	py := ""
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-c", "import torch, numpy").Run() == nil {
			py = p
			break
		}
	}
	if py == "" {
		t.Skip("no python3 with torch and numpy (apt-get install python3-torch)")
	}
	dir := t.TempDir()
	netPath := filepath.Join(dir, "net.json")
	code, js, errOut := nasd(t, "space", "-space", "nas", "-layers", "2", "-seed", "4", "-arch-only", "-format", "json")
	if code != exitOK {
		t.Fatalf("space: %s", errOut)
	}
	os.WriteFile(netPath, []byte(js), 0o644)
	resPath := filepath.Join(dir, "res.json")
	code, out, errOut := nasd(t, "train", "-arch", netPath, "-subset", "4000", "-val-subset", "500", "-epochs", "2", "-batch", "64",
		"-lr", "0.02", "-schedule", "constant", "-test", "-o", resPath)
	if code != exitOK {
		t.Fatalf("train: exit %d\n%s\n%s", code, out, errOut)
	}
	var res struct {
		Result struct {
			TestAcc *float64 `json:"test_acc"`
		} `json:"result"`
	}
	b, _ := os.ReadFile(resPath)
	if err := json.Unmarshal(b, &res); err != nil || res.Result.TestAcc == nil {
		t.Fatalf("nasd's result %s: %v", b, err)
	}
	model := filepath.Join(dir, "model")
	if code, _, errOut := nasd(t, "export", "-arch", netPath, "-o", model); code != exitOK {
		t.Fatalf("export: %s", errOut)
	}
	cmd := exec.Command(py, "testdata/train_exported.py", model, "4000", "2", "64", "0.02", "1")
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1")
	pyOut, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("PyTorch training: %v\n%s", err, pyOut)
	}
	var torchAcc float64
	if _, err := fmt.Sscanf(strings.TrimSpace(string(pyOut[strings.LastIndex(string(pyOut), "test_acc"):])), "test_acc %f", &torchAcc); err != nil {
		t.Fatalf("PyTorch's output: %s", pyOut)
	}
	nasdAcc := *res.Result.TestAcc
	t.Logf("test accuracy: nasd %.4f, PyTorch %.4f", nasdAcc, torchAcc)
	if math.Abs(nasdAcc-torchAcc) > 0.04 || torchAcc < 0.5 {
		t.Errorf("test accuracy: nasd %.4f, the exported module in PyTorch %.4f", nasdAcc, torchAcc)
	}
}

package main

import (
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

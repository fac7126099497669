package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nasd space samples, sizes, renders and validates enas-micro like the other
// spaces, with its own flags.
func TestSpaceENASMicro(t *testing.T) {
	args := []string{"space", "-space", "enas-micro", "-nodes", "3", "-cells", "1", "-channels", "8", "-seed", "3"}
	code, out, errOut := nasd(t, args...)
	if code != exitOK {
		t.Fatalf("code %d, stderr:\n%s", code, errOut)
	}
	for _, want := range []string{"Space enas-micro", `"nodes":3,"cells":1,"stages":3`, "decisions: 24", "size:",
		"reduce node 2 op 2", "prev-prev | prev | node 0 | node 1", "Sampled architecture (seed 3",
		"cell 4 output", "(reduction cell)", "head", "total"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	_, again, _ := nasd(t, args...)
	_, other, _ := nasd(t, append(args[:len(args)-1], "4")...)
	if again != out || other == out {
		t.Error("sampling is not a function of the seed")
	}

	code, dot, errOut := nasd(t, append(args, "-arch-only", "-format", "dot")...)
	if code != exitOK || !strings.HasPrefix(dot, "// enas-micro ") || !strings.Contains(dot, `"cell 4 output" -> "head"`) {
		t.Fatalf("dot: code %d, stdout:\n%s\nstderr:\n%s", code, dot, errOut)
	}
	code, js, errOut := nasd(t, append(args, "-arch-only", "-format", "json")...)
	if code != exitOK || !strings.Contains(js, `"cell": "reduce"`) {
		t.Fatalf("json: code %d, stdout:\n%s\nstderr:\n%s", code, js, errOut)
	}
	path := filepath.Join(t.TempDir(), "cell.json")
	if err := os.WriteFile(path, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	code, table, errOut := nasd(t, "space", "-validate", path)
	_, direct, _ := nasd(t, append(args, "-arch-only")...)
	if code != exitOK || table != direct {
		t.Fatalf("validate: code %d, stderr:\n%s\ntable:\n%s\nwant the sampled one:\n%s", code, errOut, table, direct)
	}
	code, _, errOut = nasd(t, "space", "-validate", path, "-max-flops", "1000")
	if code != exitError || !strings.Contains(errOut, "FLOPs") || !strings.Contains(errOut, "over budget 1,000") {
		t.Fatalf("over budget: code %d, stderr:\n%s", code, errOut)
	}

	code, _, errOut = nasd(t, "space", "-space", "enas-micro", "-nodes", "99", "-stages", "-1", "-layers", "4", "-ops", "sep3x3,conv3x3")
	for _, want := range []string{"options.layers: not used by space enas-micro", "options.nodes = 99: must be in 1..32",
		"options.stages = -1", `options.ops[1] = "conv3x3": unknown op`} {
		if code != exitError || !strings.Contains(errOut, want) {
			t.Errorf("bad options: code %d, stderr lacks %q:\n%s", code, want, errOut)
		}
	}
	code, _, errOut = nasd(t, "space", "-space", "nas", "-nodes", "3")
	if code != exitError || !strings.Contains(errOut, "options.nodes: not used by space nas") {
		t.Errorf("-nodes with nas: code %d, stderr:\n%s", code, errOut)
	}
}

// nasd train trains a sampled network of the default enas-micro space (three
// stages, so factorized reductions and their shifts) for a tiny budget.
func TestTrainMicroSample(t *testing.T) {
	if _, err := os.Stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"); err != nil {
		t.Skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
	}
	outPath := filepath.Join(t.TempDir(), "result.json")
	code, out, errOut := nasd(t, "train", "-space", "enas-micro", "-sample", "-seed", "7",
		"-subset", "64", "-val-subset", "32", "-epochs", "1", "-batch", "16", "-o", outPath)
	if code != exitOK {
		t.Fatalf("train: code %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{"(space enas-micro)", "identity → factorized reduce", "relu → factorized reduce to", "epoch 1/1"} {
		if !strings.Contains(out, want) {
			t.Errorf("train output lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	var res trainResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("%s: %v", outPath, err)
	}
	if res.Result.Status != "ok" || len(res.Result.Epochs) != 1 {
		t.Fatalf("result: %+v", res)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nasd runs the command in-process and returns its exit code and outputs.
func nasd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestUsage(t *testing.T) {
	code, out, _ := nasd(t, "-h")
	if code != exitOK || !strings.Contains(out, "train") || !strings.Contains(out, "space") {
		t.Fatalf("nasd -h: code %d, output:\n%s", code, out)
	}
	if code, _, errOut := nasd(t); code != exitUsage || !strings.Contains(errOut, "Commands:") {
		t.Fatalf("nasd with no arguments: code %d, stderr:\n%s", code, errOut)
	}
	if code, _, errOut := nasd(t, "frobnicate"); code != exitUsage || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: code %d, stderr:\n%s", code, errOut)
	}
	if code, _, errOut := nasd(t, "space", "-h"); code != exitOK || !strings.Contains(errOut, "-validate") {
		t.Fatalf("space -h: code %d, stderr:\n%s", code, errOut)
	}
	if code, _, errOut := nasd(t, "space", "-bogus"); code != exitUsage || !strings.Contains(errOut, "bogus") {
		t.Fatalf("space -bogus: code %d, stderr:\n%s", code, errOut)
	}
	if code, out, _ := nasd(t, "version"); code != exitOK || !strings.HasPrefix(out, "nasd ") {
		t.Fatalf("version: code %d, output %q", code, out)
	}
}

func TestSpaceDescribesAndSamples(t *testing.T) {
	for _, space := range []string{"nas", "enas-macro"} {
		code, out, errOut := nasd(t, "space", "-space", space, "-layers", "4", "-seed", "3")
		if code != exitOK {
			t.Fatalf("space %s: code %d, stderr:\n%s", space, code, errOut)
		}
		for _, want := range []string{"Space " + space, "decisions:", "size:", "layer 3", "Sampled architecture (seed 3", "head"} {
			if !strings.Contains(out, want) {
				t.Errorf("space %s: output lacks %q:\n%s", space, want, out)
			}
		}
		// The same seed samples the same architecture; another seed (almost surely) not.
		_, again, _ := nasd(t, "space", "-space", space, "-layers", "4", "-seed", "3")
		_, other, _ := nasd(t, "space", "-space", space, "-layers", "4", "-seed", "4")
		if again != out || other == out {
			t.Errorf("space %s: sampling is not a function of the seed", space)
		}
	}
	code, _, errOut := nasd(t, "space", "-space", "nope")
	if code != exitError || !strings.Contains(errOut, "nas") || !strings.Contains(errOut, "enas-macro") {
		t.Fatalf("unknown space: code %d, stderr should list the known spaces:\n%s", code, errOut)
	}
	code, _, errOut = nasd(t, "space", "-space", "nas", "-filter-sizes", "2,4")
	if code != exitError || !strings.Contains(errOut, "filter_sizes") {
		t.Fatalf("even filter sizes: code %d, stderr:\n%s", code, errOut)
	}
}

func TestSpaceJSONValidateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	code, js, errOut := nasd(t, "space", "-space", "nas", "-layers", "5", "-seed", "9", "-arch-only", "-format", "json")
	if code != exitOK {
		t.Fatalf("code %d, stderr:\n%s", code, errOut)
	}
	path := filepath.Join(dir, "net.json")
	if err := os.WriteFile(path, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	code, table, errOut := nasd(t, "space", "-validate", path)
	if code != exitOK || !strings.Contains(table, "params") || !strings.Contains(table, "layer 4") {
		t.Fatalf("validate: code %d, stdout:\n%s\nstderr:\n%s", code, table, errOut)
	}
	_, direct, _ := nasd(t, "space", "-space", "nas", "-layers", "5", "-seed", "9", "-arch-only")
	if direct != table {
		t.Errorf("the table of the validated file differs from the table of the sampled architecture:\n%s\nvs\n%s", table, direct)
	}
	code, dot, _ := nasd(t, "space", "-validate", path, "-format", "dot")
	if code != exitOK || !strings.Contains(dot, "digraph") {
		t.Fatalf("dot: code %d, output:\n%s", code, dot)
	}
	code, _, errOut = nasd(t, "space", "-validate", path, "-max-params", "10")
	if code != exitError || !strings.Contains(errOut, path) || !strings.Contains(errOut, "param") {
		t.Fatalf("over budget: code %d, stderr:\n%s", code, errOut)
	}
}

// An architecture whose FLOPs pass int64 (65536×65536 image, 99×99 filters,
// 65536 of them) is an error naming the quantity and the layer, both when
// sampled and when validated under a budget; it used to print a negative
// FLOPs total and pass -max-flops.
func TestSpaceCostOverflow(t *testing.T) {
	huge := []string{"space", "-space", "nas", "-input", "1x65536x65536", "-filter-sizes", "99",
		"-filter-counts", "65536", "-strides", "1", "-seed", "1"}
	const want = "overflow" // "overflows int64" (one node) or "overflow int64" (a total)
	code, out, errOut := nasd(t, append(huge, "-arch-only")...)
	if code != exitError || !strings.Contains(errOut, want) || !strings.Contains(errOut, "layer 1") {
		t.Fatalf("sampled: code %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	code, js, errOut := nasd(t, append(huge, "-arch-only", "-format", "json")...)
	if code != exitOK {
		t.Fatalf("json: code %d, stderr:\n%s", code, errOut)
	}
	path := filepath.Join(t.TempDir(), "huge.json")
	if err := os.WriteFile(path, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = nasd(t, "space", "-validate", path, "-max-flops", "1000000000")
	if code != exitError || !strings.Contains(errOut, path) || !strings.Contains(errOut, "FLOPs") || !strings.Contains(errOut, want) {
		t.Fatalf("validate under -max-flops: code %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

func TestSpaceValidateBadFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := map[string]struct{ content, want string }{
		"syntax.json":    {`{"space": "nas",`, "syntax.json"},
		"unknown.json":   {`{"space": "transformer", "decisions": []}`, "transformer"},
		"count.json":     {`{"space": "nas", "options": {"layers": 2}, "decisions": [1,1,1]}`, "decision"},
		"range.json":     {`{"space": "enas-macro", "options": {"layers": 1}, "decisions": [99]}`, "99"},
		"unknownop.json": {`{"space": "enas-macro", "options": {"layers": 1, "ops": ["conv4x4"]}, "decisions": [0]}`, "conv4x4"},
	}
	for name, c := range cases {
		p := write(name, c.content)
		code, _, errOut := nasd(t, "space", "-validate", p)
		if code != exitError || !strings.Contains(errOut, p) || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: code %d, stderr should name the file and %q:\n%s", name, code, c.want, errOut)
		}
	}
	if code, _, errOut := nasd(t, "space", "-validate", filepath.Join(dir, "missing.json")); code != exitError || !strings.Contains(errOut, "missing.json") {
		t.Errorf("missing file: code %d, stderr:\n%s", code, errOut)
	}
}

func TestTrainUsageErrors(t *testing.T) {
	if code, _, errOut := nasd(t, "train"); code != exitUsage || !strings.Contains(errOut, "-arch") {
		t.Errorf("train without -arch/-sample: code %d, stderr:\n%s", code, errOut)
	}
	if code, _, errOut := nasd(t, "train", "-sample", "-arch", "x.json"); code != exitUsage {
		t.Errorf("train with both -arch and -sample: code %d, stderr:\n%s", code, errOut)
	}
	code, _, errOut := nasd(t, "train", "-sample", "-epochs", "-3", "-batch", "0", "-optimizer", "rmsprop")
	if code != exitError {
		t.Fatalf("bad training flags: code %d, stderr:\n%s", code, errOut)
	}
	for _, want := range []string{"epochs", "-3", "rmsprop"} {
		if !strings.Contains(strings.ToLower(errOut), want) {
			t.Errorf("bad training flags: stderr lacks %q (every problem at once):\n%s", want, errOut)
		}
	}
	code, _, errOut = nasd(t, "train", "-sample", "-data-dir", t.TempDir())
	if code != exitError || !strings.Contains(errOut, "-data-dir") && !strings.Contains(errOut, "idx") {
		t.Errorf("empty data dir: code %d, stderr:\n%s", code, errOut)
	}
}

// trainResult is the part of -o's JSON the tests read.
type trainResult struct {
	Hash   string `json:"hash"`
	Result struct {
		Status     string  `json:"status"`
		BestValAcc float64 `json:"best_val_acc"`
		Reward     float64 `json:"reward"`
		Epochs     []struct {
			ValAcc float64 `json:"val_acc"`
		} `json:"epochs"`
	} `json:"result"`
}

func TestTrainEndToEnd(t *testing.T) {
	if _, err := os.Stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"); err != nil {
		t.Skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
	}
	dir := t.TempDir()
	netPath := filepath.Join(dir, "net.json")
	code, js, errOut := nasd(t, "space", "-space", "enas-macro", "-layers", "3", "-channels", "8", "-seed", "2", "-arch-only", "-format", "json")
	if code != exitOK {
		t.Fatalf("space: %s", errOut)
	}
	if err := os.WriteFile(netPath, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	outPath := filepath.Join(dir, "result.json")
	args := []string{"train", "-arch", netPath, "-subset", "600", "-val-subset", "300", "-epochs", "2", "-seed", "5", "-o", outPath}
	code, out, errOut := nasd(t, args...)
	if code != exitOK {
		t.Fatalf("train: code %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{"600 train", "300 validation", "epoch 1/2", "epoch 2/2", "Best validation acc", "Reward", "Result written to"} {
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
	if res.Result.Status != "ok" || len(res.Result.Epochs) != 2 || res.Hash == "" {
		t.Fatalf("result file: %+v", res)
	}
	// Ten classes: a network that learned nothing scores about 0.1.
	if res.Result.BestValAcc < 0.3 {
		t.Errorf("best validation accuracy %.3f after 2 epochs on 600 images: the network did not learn", res.Result.BestValAcc)
	}
	// The same command gives the same metrics.
	outPath2 := filepath.Join(dir, "again.json")
	args[len(args)-1] = outPath2
	if code, _, errOut := nasd(t, args...); code != exitOK {
		t.Fatalf("second train: %s", errOut)
	}
	b2, _ := os.ReadFile(outPath2)
	var res2 trainResult
	if err := json.Unmarshal(b2, &res2); err != nil {
		t.Fatal(err)
	}
	if res2.Result.BestValAcc != res.Result.BestValAcc || res2.Result.Reward != res.Result.Reward {
		t.Errorf("same seed, different results: %+v vs %+v", res.Result, res2.Result)
	}

	// An architecture for other inputs is refused before training.
	code, js, _ = nasd(t, "space", "-space", "nas", "-layers", "2", "-input", "3x32x32", "-arch-only", "-format", "json")
	if code != exitOK {
		t.Fatal("space -input 3x32x32 failed")
	}
	cifarNet := filepath.Join(dir, "cifar.json")
	os.WriteFile(cifarNet, []byte(js), 0o644)
	code, _, errOut = nasd(t, "train", "-arch", cifarNet, "-subset", "100", "-val-subset", "100", "-epochs", "1")
	if code != exitError || !strings.Contains(errOut, "3×32×32") {
		t.Errorf("mismatched input: code %d, stderr:\n%s", code, errOut)
	}
}

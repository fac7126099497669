package export

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"nasd/arch"
	"nasd/train"
)

// python returns an interpreter with torch, or skips the test. NASD_PYTHON
// picks one; Debian's python3-torch lives in /usr/bin/python3, which may not
// be the python3 first on PATH.
func python(t *testing.T) string {
	t.Helper()
	cands := []string{"/usr/bin/python3", "python3"}
	if p := os.Getenv("NASD_PYTHON"); p != "" {
		cands = []string{p}
	}
	for _, p := range cands {
		if exec.Command(p, "-c", "import torch").Run() == nil {
			return p
		}
	}
	t.Skipf("no python3 with torch (tried %s; install python3-torch): the exported model cannot be run", strings.Join(cands, ", "))
	return ""
}

// pick returns the first sampled architecture of the space whose graph has
// what the test is about.
func pick(t *testing.T, name string, opt arch.Options, want func(*arch.Graph, []arch.Stats) bool) *arch.Graph {
	t.Helper()
	s, err := arch.New(name, opt)
	if err != nil {
		t.Fatal(err)
	}
	for seed := range uint64(500) {
		a := s.Sample(rand.New(rand.NewPCG(seed, 7)))
		g, err := s.Lower(a)
		if err != nil {
			continue
		}
		st, err := g.Infer()
		if err != nil {
			continue
		}
		if want(g, st) {
			return g
		}
	}
	t.Fatalf("%s: no sample in 500 has the wanted features", name)
	return nil
}

func has(g *arch.Graph, st []arch.Stats, f func(n arch.Node, st []arch.Stats) bool) bool {
	for _, n := range g.Nodes {
		if f(n, st) {
			return true
		}
	}
	return false
}

// unevenConcat: a concat whose inputs differ in size, so zero padding is used.
func unevenConcat(n arch.Node, st []arch.Stats) bool {
	if n.Op.Kind != arch.KindConcat || len(n.Inputs) < 2 {
		return false
	}
	for _, j := range n.Inputs[1:] {
		if st[j].Shape.H != st[n.Inputs[0]].Shape.H {
			return true
		}
	}
	return false
}

func kind(k arch.Kind) func(arch.Node, []arch.Stats) bool {
	return func(n arch.Node, _ []arch.Stats) bool { return n.Op.Kind == k }
}

func paddedAvgPool(n arch.Node, _ []arch.Stats) bool {
	return n.Op.Kind == arch.KindAvgPool && n.Op.Pad > 0
}

// nasdLogits makes non-trivial weights (batch-norm running statistics from a
// few training-mode passes, random scales and shifts) and returns them with
// nasd's evaluation-mode logits for x.
func nasdLogits(t *testing.T, g *arch.Graph, x []float32, batch int) (*train.Weights, []float32) {
	t.Helper()
	w := train.NewWeights(tensor.Float32, 3)
	r := rand.New(rand.NewPCG(5, 5))
	size := g.Input.Elems()
	tr, err := train.Build(g, w, train.BuildOptions{Batch: 8, Train: true})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		xs := make([]float32, 8*size)
		for i := range xs {
			xs[i] = float32(r.NormFloat64()*0.7 + 0.3)
		}
		if _, _, err := tr.Run(xs, make([]int32, 8)); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range w.Names() {
		if strings.HasSuffix(name, "/bn/gamma") || strings.HasSuffix(name, "/bn/beta") || strings.HasSuffix(name, "/b") {
			v := w.Get(name).Value.Data().([]float32)
			for i := range v {
				v[i] += float32(r.NormFloat64() * 0.3)
			}
		}
	}
	ev, err := train.Build(g, w, train.BuildOptions{Batch: batch})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ev.Run(x, make([]int32, batch)); err != nil {
		t.Fatal(err)
	}
	return w, ev.Logits()
}

const runPy = `import json, sys
import torch
torch.set_num_threads(1)
sys.path.insert(0, sys.argv[1])
import load
net = load.load()
assert not net.training
x = load.read_safetensors(sys.argv[2])["x"]
with torch.no_grad():
    y = net(x)
print(json.dumps([float(v) for v in y.flatten().tolist()]))
`

// checkExport exports g with nasd's weights, runs it in PyTorch on fixed
// inputs and compares the logits with nasd's evaluation-mode forward.
func checkExport(t *testing.T, py string, g *arch.Graph) {
	t.Helper()
	const batch = 4
	size := g.Input.Elems()
	r := rand.New(rand.NewPCG(11, 11))
	x := make([]float32, batch*size)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	w, want := nasdLogits(t, g, x, batch)

	dir := t.TempDir()
	wfile := filepath.Join(dir, "trained.safetensors")
	if err := SaveWeights(wfile, w); err != nil {
		t.Fatal(err)
	}
	ts, err := ReadSafetensors(wfile)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := Write(out, g, "test net", ts, wfile); err != nil {
		t.Fatal(err)
	}
	xfile := filepath.Join(dir, "x.safetensors")
	if err := WriteSafetensors(xfile, []Tensor{F32("x", []int{batch, g.Input.C, g.Input.H, g.Input.W}, x)}); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "run.py")
	if err := os.WriteFile(script, []byte(runPy), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, script, out, xfile)
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1")
	b, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		code, _ := os.ReadFile(filepath.Join(out, "model.py"))
		t.Fatalf("python: %v\n%s\nmodel.py:\n%s", err, stderr, code)
	}
	var got []float64
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("python output %q: %v", b, err)
	}
	if len(got) != batch*g.Classes || len(want) != len(got) {
		t.Fatalf("%d PyTorch logits, %d nasd logits, want %d", len(got), len(want), batch*g.Classes)
	}
	// float32 both sides, different summation orders: 1e-4 absolute.
	var worst float64
	for i := range got {
		worst = max(worst, math.Abs(got[i]-float64(want[i])))
	}
	t.Logf("max |PyTorch − nasd| = %.3g over %d logits", worst, len(got))
	if worst > 1e-4 {
		t.Errorf("max |PyTorch − nasd| = %g > 1e-4\nnasd:    %v\nPyTorch: %v", worst, want, got)
	}
}

func TestPyTorchNAS(t *testing.T) {
	py := python(t)
	opt := arch.Options{Layers: 4, Input: arch.Shape{C: 2, H: 11, W: 11}, Classes: 5,
		FilterSizes: []int{1, 3, 5}, FilterCounts: []int{3, 6}, Strides: []int{1, 2}}
	g := pick(t, "nas", opt, func(g *arch.Graph, st []arch.Stats) bool { return has(g, st, unevenConcat) })
	checkExport(t, py, g)
}

func TestPyTorchENASMacro(t *testing.T) {
	py := python(t)
	opt := arch.Options{Layers: 4, Input: arch.Shape{C: 3, H: 8, W: 8}, Classes: 4, Channels: 4, ReduceAfter: []int{1}}
	g := pick(t, "enas-macro", opt, func(g *arch.Graph, st []arch.Stats) bool {
		return has(g, st, paddedAvgPool) && has(g, st, kind(arch.KindDepthwiseConv)) && has(g, st, kind(arch.KindAdd))
	})
	checkExport(t, py, g)
}

func TestPyTorchENASMacroFinal(t *testing.T) {
	py := python(t)
	opt := arch.Options{Layers: 4, Input: arch.Shape{C: 1, H: 8, W: 8}, Classes: 3, Channels: 4, ReduceAfter: []int{1}, FinalNetwork: true}
	g := pick(t, "enas-macro", opt, func(g *arch.Graph, st []arch.Stats) bool {
		return has(g, st, kind(arch.KindConcat)) && has(g, st, kind(arch.KindMaxPool))
	})
	checkExport(t, py, g)
}

func TestPyTorchENASMicro(t *testing.T) {
	py := python(t)
	opt := arch.Options{Input: arch.Shape{C: 1, H: 8, W: 8}, Classes: 3, Channels: 4, Nodes: 2, Cells: 1, Stages: 2}
	g := pick(t, "enas-micro", opt, func(g *arch.Graph, st []arch.Stats) bool { return has(g, st, kind(arch.KindShift)) })
	checkExport(t, py, g)
}

func TestRecurrentRefused(t *testing.T) {
	s, err := arch.New("enas-rnn", arch.Options{Hidden: 8, Nodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.Lower(s.Sample(rand.New(rand.NewPCG(1, 1))))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := PyTorch(g, "cell"); err == nil || !strings.Contains(err.Error(), "not supported yet") {
		t.Fatalf("PyTorch(enas-rnn cell) = %v, want a not-supported error", err)
	}
}

func TestSafetensorsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.safetensors")
	in := []Tensor{F32("b", []int{2, 3}, []float32{1, 2, 3, 4, 5, 6}), F32("a", []int{1}, []float32{-1.5}),
		{Name: "n", Dtype: "I64", Shape: []int{}, Data: make([]byte, 8)}}
	if err := WriteSafetensors(path, in); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if hl := int(b[0]) | int(b[1])<<8; (8+hl)%8 != 0 {
		t.Errorf("data starts at byte %d, not 8-aligned", 8+hl)
	}
	out, err := ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 || out[0].Name != "a" || out[1].Name != "b" || out[1].Float32s()[5] != 6 || out[0].Float32s()[0] != -1.5 {
		t.Fatalf("read back %+v", out)
	}
	if err := os.WriteFile(path, []byte("\xff\xff\xff\xff\xff\xff\xff\x7fjunk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSafetensors(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("corrupt file: err = %v, want one naming %s", err, path)
	}
}

// FuzzReadSafetensors: no file makes the reader panic or return a tensor
// whose data does not fit its shape.
func FuzzReadSafetensors(f *testing.F) {
	dir := f.TempDir()
	good := filepath.Join(dir, "good")
	if err := WriteSafetensors(good, []Tensor{F32("w", []int{2, 2}, []float32{1, 2, 3, 4})}); err != nil {
		f.Fatal(err)
	}
	b, _ := os.ReadFile(good)
	f.Add(b)
	f.Add([]byte("\x10\x00\x00\x00\x00\x00\x00\x00{\"w\":{}}        "))
	f.Add([]byte(`{"x":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		ts, err := ReadSafetensors(path)
		if err != nil {
			return
		}
		for _, x := range ts {
			if len(x.Data) != elemSize(x.Dtype)*numel(x.Shape) {
				t.Fatalf("tensor %s: %d bytes for %s %v", x.Name, len(x.Data), x.Dtype, x.Shape)
			}
		}
	})
}

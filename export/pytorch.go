package export

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"nasd/arch"
)

// Module is a graph lowered to a PyTorch nn.Module.
type Module struct {
	Code string // model.py
	// Params maps each state_dict entry to the nasd store name it comes
	// from ("stem_conv1.weight" ← "node1/conv/W"), in state_dict order. An
	// entry with an empty store name is a batch-norm step counter, written as 0.
	Params []Param
}

// Param is one state_dict entry of a Module.
type Param struct {
	Key   string // state_dict name
	Store string // nasd weight name; "" for num_batches_tracked
	Shape []int
}

// attrName is node i's attribute: its layer and kind, then its index, so
// names are unique, valid Python and still say where the layer sits.
func attrName(layer string, kind arch.Kind, i int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(layer + " " + string(kind)) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			if s := b.String(); s != "" && !strings.HasSuffix(s, "_") {
				b.WriteByte('_')
			}
		}
	}
	s := strings.TrimSuffix(b.String(), "_")
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		s = "n_" + s
	}
	return s + strconv.Itoa(i)
}

// PyTorch lowers g to a module named after the architecture. Only the CNN
// primitives are supported; a recurrent cell is an error.
func PyTorch(g *arch.Graph, title string) (*Module, error) {
	if g.Hidden > 0 {
		return nil, fmt.Errorf("export: recurrent cells (hidden = %d) are not supported yet: only the CNN spaces (nas, enas-macro, enas-micro) export", g.Hidden)
	}
	stats, err := g.Infer()
	if err != nil {
		return nil, err
	}
	m := &Module{}
	var init, fwd []string
	in := func(format string, args ...any) { init = append(init, "        "+fmt.Sprintf(format, args...)) }
	out := func(format string, args ...any) { fwd = append(fwd, "        "+fmt.Sprintf(format, args...)) }
	v := func(j int) string { return "x" + strconv.Itoa(j) }
	for i, n := range g.Nodes {
		o := n.Op
		bad := func(format string, args ...any) error {
			return fmt.Errorf("export: node %d (%s, %s): %s", i, o.Kind, n.Layer, fmt.Sprintf(format, args...))
		}
		if i == 0 {
			if o.Kind != arch.KindInput {
				return nil, bad("the first node must be the input")
			}
			continue
		}
		if len(n.Inputs) == 0 {
			return nil, bad("no inputs")
		}
		x := v(n.Inputs[0])
		cin := stats[n.Inputs[0]].Shape.C
		name := attrName(n.Layer, o.Kind, i)
		pre := "node" + strconv.Itoa(i)
		param := func(suffix, store string, shape ...int) {
			m.Params = append(m.Params, Param{Key: name + "." + suffix, Store: store, Shape: shape})
		}
		var y string
		switch o.Kind {
		case arch.KindConv:
			in("self.%s = nn.Conv2d(%d, %d, kernel_size=(%d, %d), stride=%d, padding=(%d, %d), bias=%s)",
				name, cin, o.Out, o.KH, o.KW, o.Stride, (o.KH-1)/2, (o.KW-1)/2, pyBool(o.Bias))
			param("weight", pre+"/conv/W", o.Out, cin, o.KH, o.KW)
			if o.Bias {
				param("bias", pre+"/conv/b", o.Out)
			}
			y = fmt.Sprintf("self.%s(%s)", name, x)
		case arch.KindDepthwiseConv:
			in("self.%s = nn.Conv2d(%d, %d, kernel_size=(%d, %d), stride=%d, padding=(%d, %d), groups=%d, bias=False)",
				name, cin, cin, o.KH, o.KW, o.Stride, (o.KH-1)/2, (o.KW-1)/2, cin)
			param("weight", pre+"/dwconv/W", cin, 1, o.KH, o.KW)
			y = fmt.Sprintf("self.%s(%s)", name, x)
		case arch.KindMaxPool, arch.KindAvgPool:
			// PyTorch refuses padding over half the window; nasd's spaces never make one.
			if 2*o.Pad > o.KH || 2*o.Pad > o.KW {
				return nil, bad("padding %d over half the %d×%d window: PyTorch's pools refuse it", o.Pad, o.KH, o.KW)
			}
			if o.Kind == arch.KindMaxPool {
				in("self.%s = nn.MaxPool2d(kernel_size=(%d, %d), stride=%d, padding=%d)", name, o.KH, o.KW, o.Stride, o.Pad)
			} else {
				in("self.%s = nn.AvgPool2d(kernel_size=(%d, %d), stride=%d, padding=%d, count_include_pad=False)", name, o.KH, o.KW, o.Stride, o.Pad)
			}
			y = fmt.Sprintf("self.%s(%s)", name, x)
		case arch.KindBatchNorm:
			in("self.%s = nn.BatchNorm2d(%d, eps=1e-5)", name, cin)
			param("weight", pre+"/bn/gamma", cin)
			param("bias", pre+"/bn/beta", cin)
			param("running_mean", pre+"/bn/mean", cin)
			param("running_var", pre+"/bn/var", cin)
			param("num_batches_tracked", "")
			y = fmt.Sprintf("self.%s(%s)", name, x)
		case arch.KindReLU:
			y = fmt.Sprintf("F.relu(%s)", x)
		case arch.KindConcat, arch.KindAdd:
			if len(n.Inputs) == 1 {
				y = x
				break
			}
			var xs []string
			for _, j := range n.Inputs {
				xs = append(xs, v(j))
			}
			f := "concat"
			if o.Kind == arch.KindAdd {
				f = "add"
			}
			y = fmt.Sprintf("%s([%s])", f, strings.Join(xs, ", "))
		case arch.KindGlobalAvgPool:
			y = fmt.Sprintf("%s.mean(dim=(2, 3), keepdim=True)", x)
		case arch.KindFlatten:
			y = fmt.Sprintf("%s.reshape(%s.shape[0], -1, 1, 1)", x, x)
		case arch.KindDense:
			k := stats[n.Inputs[0]].Shape.Elems()
			in("self.%s = nn.Linear(%d, %d)", name, k, o.Out)
			param("weight", pre+"/dense/W", o.Out, k)
			param("bias", pre+"/dense/b", o.Out)
			y = fmt.Sprintf("self.%s(%s.flatten(1))[:, :, None, None]", name, x)
		case arch.KindShift:
			y = fmt.Sprintf("shift(%s)", x)
		default:
			return nil, bad("op kind %q is not supported by the PyTorch export", o.Kind)
		}
		out("%s = %s  # %s, %v", v(i), y, n.Layer, stats[i].Shape)
	}
	if len(init) == 0 {
		init = append(init, "        pass")
	}
	in0 := g.Input
	var b strings.Builder
	fmt.Fprintf(&b, pyHeader, title, in0.C, in0.H, in0.W, g.Classes)
	b.WriteString("\n\nclass Net(nn.Module):\n")
	fmt.Fprintf(&b, "    \"\"\"%s: input N×%d×%d×%d, %d logits.\"\"\"\n\n", title, in0.C, in0.H, in0.W, g.Classes)
	fmt.Fprintf(&b, "    input_shape = (%d, %d, %d)\n    classes = %d\n\n", in0.C, in0.H, in0.W, g.Classes)
	b.WriteString("    def __init__(self):\n        super().__init__()\n")
	b.WriteString(strings.Join(init, "\n") + "\n\n")
	b.WriteString("    def forward(self, x0):\n")
	b.WriteString(strings.Join(fwd, "\n") + "\n")
	fmt.Fprintf(&b, "        return %s.flatten(1)\n", v(len(g.Nodes)-1))
	m.Code = b.String()
	return m, nil
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// pyHeader holds the helpers for the primitives PyTorch has no layer for,
// each with nasd's exact semantics.
const pyHeader = `"""%s, exported by nasd export.

Input: float32 images N×%d×%d×%d, normalised as nasd's data set loader
normalises them; output: %d logits per image (no softmax). Call .eval() before
inference: batch norm then uses its running statistics, as nasd evaluates.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


def concat(xs):
    """Concatenates along channels; smaller maps are zero-padded at the
    bottom and right to the largest height and width (nasd's concat)."""
    h = max(x.shape[2] for x in xs)
    w = max(x.shape[3] for x in xs)
    return torch.cat([F.pad(x, (0, w - x.shape[3], 0, h - x.shape[2])) for x in xs], dim=1)


def add(xs):
    """Element-wise sum of same-shaped maps."""
    y = xs[0]
    for x in xs[1:]:
        y = y + x
    return y


def shift(x):
    """y[c, i, j] = x[c, i+1, j+1], zero past the bottom and right edges: the
    second path of ENAS's factorized reduction."""
    return F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
`

// loadPy is load.py: the standard library and torch only.
const loadPy = `"""Loads weights.safetensors into model.Net, with the Python standard library
and torch only (no safetensors package needed).

    from load import load
    net = load()            # model.Net in eval mode, weights loaded
    logits = net(images)    # images: float32 N×C×H×W
"""

import json
import os
import struct

import torch

import model

_DTYPES = {"F32": torch.float32, "I64": torch.int64}


def read_safetensors(path):
    """Returns {name: tensor} from a safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = bytearray(data[8 + n:])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        begin, end = e["data_offsets"]
        dtype = _DTYPES[e["dtype"]]
        size = torch.empty(0, dtype=dtype).element_size()
        if end > begin:
            t = torch.frombuffer(body, dtype=dtype, count=(end - begin) // size, offset=begin)
        else:
            t = torch.zeros(0, dtype=dtype)
        out[name] = t.reshape(e["shape"]).clone()
    return out


def load(path=None):
    """Builds model.Net, loads the weights (every entry, strict) and
    returns the net in eval mode."""
    if path is None:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights.safetensors")
    net = model.Net()
    net.load_state_dict(read_safetensors(path), strict=True)
    return net.eval()


if __name__ == "__main__":
    net = load()
    x = torch.zeros(1, *net.input_shape)
    print(net(x))
`

// Write writes dir/model.py for g and, when weights is not empty (the
// tensors of a nasd train -save-weights file), dir/weights.safetensors
// under the module's state_dict names and dir/load.py. from names the
// weights' file in errors.
func Write(dir string, g *arch.Graph, title string, weights []Tensor, from string) error {
	m, err := PyTorch(g, title)
	if err != nil {
		return err
	}
	var ts []Tensor
	if weights != nil {
		if ts, err = m.stateDict(weights, from); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := writeFile(filepath.Join(dir, "model.py"), m.Code); err != nil {
		return err
	}
	if weights == nil {
		return nil
	}
	if err := WriteSafetensors(filepath.Join(dir, "weights.safetensors"), ts); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "load.py"), loadPy)
}

// stateDict renames the store's tensors to the module's state_dict and
// checks that every one is there with its shape.
func (m *Module) stateDict(weights []Tensor, from string) ([]Tensor, error) {
	byName := map[string]Tensor{}
	for _, t := range weights {
		byName[t.Name] = t
	}
	var ts []Tensor
	var missing []string
	for _, p := range m.Params {
		if p.Store == "" {
			ts = append(ts, Tensor{Name: p.Key, Dtype: "I64", Shape: []int{}, Data: make([]byte, 8)})
			continue
		}
		t, ok := byName[p.Store]
		if !ok {
			missing = append(missing, p.Store)
			continue
		}
		if t.Dtype != "F32" || !equalInts(t.Shape, p.Shape) {
			return nil, fmt.Errorf("export: %s: tensor %s is %s %v; the architecture needs F32 %v (a different architecture?)", from, p.Store, t.Dtype, t.Shape, p.Shape)
		}
		ts = append(ts, Tensor{Name: p.Key, Dtype: "F32", Shape: p.Shape, Data: t.Data})
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("export: %s: no tensor %s (%d of %d missing; weights of another architecture?)", from, strings.Join(missing[:min(len(missing), 3)], ", "), len(missing), len(m.Params))
	}
	return ts, nil
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// writeFile writes text atomically (temp file + rename).
func writeFile(path, text string) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	tmp := f.Name()
	if _, err = f.WriteString(text); err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("export: %s: %w", path, err)
	}
	return nil
}

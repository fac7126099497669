package export

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"

	"gorgonia.org/tensor"

	"nasd/train"
)

// Tensor is one named tensor of a safetensors file. Data holds the raw
// little-endian values: 4 bytes each for F32, 8 for I64.
type Tensor struct {
	Name  string
	Dtype string // "F32" or "I64"
	Shape []int
	Data  []byte
}

// F32 returns a float32 tensor.
func F32(name string, shape []int, v []float32) Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return Tensor{Name: name, Dtype: "F32", Shape: shape, Data: b}
}

// Float32s decodes an F32 tensor's values.
func (t Tensor) Float32s() []float32 {
	v := make([]float32, len(t.Data)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	return v
}

func elemSize(dtype string) int {
	switch dtype {
	case "F32":
		return 4
	case "I64":
		return 8
	}
	return 0
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// headerEntry is one tensor in a safetensors JSON header.
type headerEntry struct {
	Dtype   string `json:"dtype"`
	Shape   []int  `json:"shape"`
	Offsets [2]int `json:"data_offsets"`
}

// WriteSafetensors writes ts to path in the safetensors format (an 8-byte
// little-endian header length, a JSON header, then the data), atomically: a
// temporary file in the same directory, synced, then renamed, so a reader
// never sees half a file.
func WriteSafetensors(path string, ts []Tensor) error {
	header := map[string]headerEntry{}
	off := 0
	for _, t := range ts {
		if _, dup := header[t.Name]; dup {
			return fmt.Errorf("export: %s: tensor %q twice", path, t.Name)
		}
		size := elemSize(t.Dtype)
		if size == 0 {
			return fmt.Errorf("export: %s: tensor %q: dtype %q: want F32 or I64", path, t.Name, t.Dtype)
		}
		if len(t.Data) != size*numel(t.Shape) {
			return fmt.Errorf("export: %s: tensor %q: %d bytes for shape %v", path, t.Name, len(t.Data), t.Shape)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{} // a scalar: "shape": [], not null
		}
		header[t.Name] = headerEntry{Dtype: t.Dtype, Shape: shape, Offsets: [2]int{off, off + len(t.Data)}}
		off += len(t.Data)
	}
	h, err := json.Marshal(header) // map keys sorted: the same tensors give the same bytes
	if err != nil {
		return fmt.Errorf("export: %s: %w", path, err)
	}
	// Pad the header with spaces so the data starts 8-byte aligned, as the
	// format recommends (torch.frombuffer of I64 wants it).
	for (8+len(h))%8 != 0 {
		h = append(h, ' ')
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("export: %s: %w", path, err)
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(h)))
	if _, err := f.Write(n[:]); err != nil {
		return fail(err)
	}
	if _, err := f.Write(h); err != nil {
		return fail(err)
	}
	for _, t := range ts {
		if _, err := f.Write(t.Data); err != nil {
			return fail(err)
		}
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("export: %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// maxHeader bounds the JSON header a reader accepts, so a corrupt length
// cannot ask for gigabytes.
const maxHeader = 100 << 20

// ReadSafetensors reads a safetensors file of F32 and I64 tensors, sorted by name.
func ReadSafetensors(path string) ([]Tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if len(b) < 8 {
		return nil, fmt.Errorf("export: %s: %d bytes: not a safetensors file", path, len(b))
	}
	hl := binary.LittleEndian.Uint64(b)
	if hl > maxHeader || hl > uint64(len(b)-8) {
		return nil, fmt.Errorf("export: %s: header length %d in a file of %d bytes: not a safetensors file", path, hl, len(b))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+hl], &raw); err != nil {
		return nil, fmt.Errorf("export: %s: header: %w", path, err)
	}
	data := b[8+hl:]
	var ts []Tensor
	for name, m := range raw {
		if name == "__metadata__" {
			continue
		}
		var e headerEntry
		if err := json.Unmarshal(m, &e); err != nil {
			return nil, fmt.Errorf("export: %s: tensor %q: %w", path, name, err)
		}
		size := elemSize(e.Dtype)
		if size == 0 {
			return nil, fmt.Errorf("export: %s: tensor %q: dtype %q: want F32 or I64", path, name, e.Dtype)
		}
		// Checked as it multiplies, so a corrupt shape cannot wrap around
		// to a count that matches its offsets.
		n := 1
		for _, d := range e.Shape {
			if d < 0 || d > len(data) || n*d > len(data) {
				return nil, fmt.Errorf("export: %s: tensor %q: shape %v does not fit %d data bytes", path, name, e.Shape, len(data))
			}
			n *= d
		}
		lo, hi := e.Offsets[0], e.Offsets[1]
		if lo < 0 || hi < lo || hi > len(data) || hi-lo != size*numel(e.Shape) {
			return nil, fmt.Errorf("export: %s: tensor %q: data_offsets %v for %s %v in %d data bytes", path, name, e.Offsets, e.Dtype, e.Shape, len(data))
		}
		ts = append(ts, Tensor{Name: name, Dtype: e.Dtype, Shape: e.Shape, Data: data[lo:hi]})
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	return ts, nil
}

// SaveWeights writes every tensor of a store (trained parameters and
// batch-norm running statistics) as F32 under its store name.
func SaveWeights(path string, w *train.Weights) error {
	var ts []Tensor
	for _, name := range w.Names() {
		p := w.Get(name)
		var v []float32
		switch d := p.Value.Data().(type) {
		case []float32:
			v = d
		case []float64:
			v = make([]float32, len(d))
			for i, x := range d {
				v[i] = float32(x)
			}
		default:
			return fmt.Errorf("export: %s: parameter %s: dtype %v", path, name, p.Value.Dtype())
		}
		ts = append(ts, F32(name, append([]int(nil), tensor.Shape(p.Shape)...), v))
	}
	return WriteSafetensors(path, ts)
}

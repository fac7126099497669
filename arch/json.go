package arch

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// layerJSON is the human-readable view of one searchable layer in an Arch's
// JSON. It is derived from the decisions and never needed to decode.
type layerJSON struct {
	Cell   string   `json:"cell,omitempty"` // enas-micro: "normal" or "reduce"; Layer is then the node
	Layer  int      `json:"layer"`
	Op     string   `json:"op"`
	Inputs []string `json:"inputs"`
	Skips  []string `json:"skips,omitempty"`
}

type archJSON struct {
	Space     string      `json:"space"`
	Options   Options     `json:"options"`
	Decisions []int       `json:"decisions"`
	Layers    []layerJSON `json:"layers,omitempty"`
}

// MarshalJSON writes the canonical form:
//
//	{"space":"nas","options":{...},"decisions":[...],"layers":[{"layer":0,"op":"conv 5×3, 36 filters, stride 2","inputs":["image"]}, ...]}
//
// Options have every default filled in and unused fields omitted. "layers"
// is derived from the decisions for people reading the file; for enas-macro
// "inputs" is the branch's input and "skips" the layers summed into it. An
// Arch that is not valid is still written (useful in logs), without layers,
// and will not decode.
func (a Arch) MarshalJSON() ([]byte, error) { return a.marshal(true) }

// CompactJSON is the canonical form without "layers": what identifies the
// architecture (space, options with defaults filled in, decisions) and
// decodes back to it. Logs repeating many architectures use it; the layers
// are derived from the decisions.
func (a Arch) CompactJSON() ([]byte, error) { return a.marshal(false) }

func (a Arch) marshal(layers bool) ([]byte, error) {
	out := archJSON{Space: a.Space, Options: a.Options, Decisions: a.Decisions}
	if out.Decisions == nil {
		out.Decisions = []int{}
	}
	if def, ok := registry[a.Space]; ok {
		if s := buildSpace(a.Space, def, a.Options, &problems{}); s != nil {
			out.Options = s.core().opt
			p := &problems{}
			s.core().checkDecisions(p, a.Decisions)
			if layers && p.ok() {
				_, descs := s.build(a.Decisions)
				out.Layers = layersJSON(descs)
			}
		}
	}
	return json.Marshal(out)
}

func layersJSON(descs []layerDesc) []layerJSON {
	var out []layerJSON
	for _, d := range descs {
		if d.index >= 0 {
			out = append(out, layerJSON{Cell: d.cell, Layer: d.index, Op: d.op, Inputs: d.inputs, Skips: d.skips})
		}
	}
	return out
}

// UnmarshalJSON decodes and checks an architecture. The decisions are the
// architecture; "layers" is optional and, when present, must agree with them
// entry for entry (so a hand-edited op that the decisions do not say is an
// error, not silently ignored). Options may omit defaults; unknown fields are
// errors. JSON null leaves a unchanged, as encoding/json expects.
func (a *Arch) UnmarshalJSON(data []byte) error {
	if string(bytes.TrimSpace(data)) == "null" {
		return nil
	}
	got, _, err := decode(data, "arch: ")
	if err != nil {
		return err
	}
	*a = got
	return nil
}

// Load reads an architecture from a JSON file and returns it with its space.
// Every problem is reported at once, each naming the file and the field or
// line.
func Load(path string) (Arch, Space, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Arch{}, nil, fmt.Errorf("arch: %w", err)
	}
	return decode(data, "arch: "+path+": ")
}

// decode is UnmarshalJSON and Load; prefix names the object in every error.
func decode(data []byte, prefix string) (Arch, Space, error) {
	p := &problems{prefix: prefix}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var raw archJSON
	if err := dec.Decode(&raw); err != nil {
		p.add("%s", jsonError(data, err))
		return Arch{}, nil, p.err()
	}
	if _, err := dec.Token(); err != io.EOF {
		line, col := position(data, dec.InputOffset())
		p.add("line %d, column %d: unexpected data after the architecture", line, col)
		return Arch{}, nil, p.err()
	}

	def, ok := registry[raw.Space]
	switch {
	case raw.Space == "":
		p.add("space: missing (known: %s)", strings.Join(Names(), ", "))
	case !ok:
		p.add("%s", unknownSpace(raw.Space))
	}
	if !p.ok() {
		return Arch{}, nil, p.err()
	}
	s := buildSpace(raw.Space, def, raw.Options, p)
	if s == nil {
		return Arch{}, nil, p.err()
	}
	b := s.core()
	b.checkDecisions(p, raw.Decisions)
	if !p.ok() {
		return Arch{}, nil, p.err()
	}
	if raw.Layers != nil {
		_, descs := s.build(raw.Decisions)
		checkLayersAgree(p, s, raw.Layers, layersJSON(descs))
		if !p.ok() {
			return Arch{}, nil, p.err()
		}
	}
	return b.arch(raw.Decisions), s, nil
}

// checkLayersAgree compares a file's "layers" with those the decisions give.
func checkLayersAgree(p *problems, s builtin, got, want []layerJSON) {
	if len(got) != len(want) {
		p.add("layers: has %d entries, the decisions describe %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if g.Cell != w.Cell {
			p.add("layers[%d].cell = %q: want %q", i, g.Cell, w.Cell)
		}
		if g.Layer != w.Layer {
			p.add("layers[%d].layer = %d: want %d", i, g.Layer, w.Layer)
		}
		if g.Op != w.Op {
			if hint := s.opHint(g.Op); hint != "" {
				p.add("layers[%d].op = %q: %s", i, g.Op, hint)
			} else {
				p.add("layers[%d].op = %q: the decisions say %q", i, g.Op, w.Op)
			}
		}
		if !slices.Equal(g.Inputs, w.Inputs) {
			p.add("layers[%d].inputs = %q: the decisions say %q", i, g.Inputs, w.Inputs)
		}
		if !slices.Equal(g.Skips, w.Skips) {
			p.add("layers[%d].skips = %q: the decisions say %q", i, g.Skips, w.Skips)
		}
	}
}

// jsonError turns a decoding error into one that names the line, or the
// field and the wrong value.
func jsonError(data []byte, err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "malformed JSON: empty input"
	case errors.Is(err, io.ErrUnexpectedEOF):
		line, col := position(data, int64(len(data)))
		return fmt.Sprintf("line %d, column %d: malformed JSON: unexpected end of input", line, col)
	case errors.As(err, &syn):
		line, col := position(data, syn.Offset)
		return fmt.Sprintf("line %d, column %d: malformed JSON: %s", line, col, syn.Error())
	case errors.As(err, &typ):
		line, col := position(data, typ.Offset)
		field := typ.Field
		if field == "" {
			field = "architecture"
		}
		return fmt.Sprintf("line %d, column %d: %s: cannot use a JSON %s as %s", line, col, field, typ.Value, typ.Type)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// position converts a byte offset into a 1-based line and column.
func position(data []byte, off int64) (line, col int) {
	off = max(0, min(off, int64(len(data))))
	before := data[:off]
	line = 1 + bytes.Count(before, []byte("\n"))
	col = int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// optionsKey is a canonical text of o, for comparing options.
func optionsKey(o Options) string {
	b, err := json.Marshal(o)
	if err != nil {
		panic("arch: options do not marshal: " + err.Error()) // plain ints and strings always do
	}
	return string(b)
}

// hashVersion is hashed first so that a future change of the canonical
// encoding cannot collide with hashes made by this one.
const hashVersion = "nasd/arch/v1\n"

// Hash identifies the architecture: the hex SHA-256 of a canonical encoding of
// its space, its options with defaults filled in and its decisions. The same
// architecture has the same hash however its JSON was formatted, ordered or
// abbreviated. (For an Arch whose space or options are invalid it hashes the
// fields as they are.)
func (a Arch) Hash() string {
	c := struct {
		Space     string  `json:"space"`
		Options   Options `json:"options"`
		Decisions []int   `json:"decisions"`
	}{a.Space, fillOptions(a), a.Decisions}
	if c.Decisions == nil {
		c.Decisions = []int{}
	}
	b, err := json.Marshal(c)
	if err != nil {
		panic("arch: architecture does not marshal: " + err.Error())
	}
	sum := sha256.Sum256(append([]byte(hashVersion), b...))
	return hex.EncodeToString(sum[:])
}

// WriteJSON writes a's canonical JSON laid out for reading and diffing: one
// line for the options, one for the decisions, one per layer. It decodes to
// the same Arch as MarshalJSON's compact form.
func WriteJSON(w io.Writer, a Arch) error {
	data, err := a.MarshalJSON()
	if err != nil {
		return err
	}
	var raw archJSON
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("arch: re-reading own JSON: %w", err)
	}
	var b bytes.Buffer
	line := func(key string, v any, last bool) {
		j, _ := json.Marshal(v)
		fmt.Fprintf(&b, "  %q: %s", key, j)
		if !last {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("{\n")
	line("space", raw.Space, false)
	line("options", raw.Options, false)
	line("decisions", raw.Decisions, raw.Layers == nil)
	if raw.Layers != nil {
		b.WriteString("  \"layers\": [\n")
		for i, l := range raw.Layers {
			j, _ := json.Marshal(l)
			b.WriteString("    ")
			b.Write(j)
			if i < len(raw.Layers)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString("  ]\n")
	}
	b.WriteString("}\n")
	_, err = w.Write(b.Bytes())
	return err
}

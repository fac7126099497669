package arch

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// WriteTable writes an aligned text table of the layers (name, op, inputs,
// output shape, params, FLOPs) followed by totals.
func WriteTable(w io.Writer, an *Analysis) error {
	rows := [][]string{{"layer", "op", "inputs", "output", "params", "FLOPs"}}
	for _, l := range an.Layers {
		rows = append(rows, []string{l.Name, l.Op, inputsText(l), l.Output.String(), group(int64(l.Params)), group(l.FLOPs)})
	}
	rows = append(rows, []string{"total", "", "", an.Output.String(), group(int64(an.Params)), group(an.FLOPs)})
	right := []bool{false, false, false, false, true, true}

	width := make([]int, len(right))
	for _, r := range rows {
		for c, v := range r {
			width[c] = max(width[c], utf8.RuneCountInString(v))
		}
	}
	var b strings.Builder
	line := func(r []string) {
		var sb strings.Builder
		for c, v := range r {
			pad := strings.Repeat(" ", width[c]-utf8.RuneCountInString(v))
			if c > 0 {
				sb.WriteString("  ")
			}
			if right[c] {
				sb.WriteString(pad + v)
			} else {
				sb.WriteString(v + pad)
			}
		}
		b.WriteString(strings.TrimRight(sb.String(), " ") + "\n")
	}
	total := 2 * (len(width) - 1)
	for _, n := range width {
		total += n
	}
	rule := strings.Repeat("─", total) + "\n"
	line(rows[0])
	b.WriteString(rule)
	for _, r := range rows[1 : len(rows)-1] {
		line(r)
	}
	b.WriteString(rule)
	line(rows[len(rows)-1])
	fmt.Fprintf(&b, "activations: %s bytes per example (float32)\n", group(an.ActivationBytes))
	_, err := io.WriteString(w, b.String())
	return err
}

// inputsText is "layer 1" or, with skips, "layer 1 + skips layer 0, layer 2".
func inputsText(l LayerStats) string {
	s := strings.Join(l.Inputs, ", ")
	if s == "" {
		s = "-"
	}
	if len(l.Skips) > 0 {
		s += " + skips " + strings.Join(l.Skips, ", ")
	}
	return s
}

// WriteDOT writes the layer-level graph in Graphviz DOT: one box per layer
// with its op, output shape and params; solid edges for inputs, dashed for
// enas-macro skips. Render with `dot -Tsvg`.
func WriteDOT(w io.Writer, s Space, a Arch) error {
	an, err := Analyze(s, a)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "// %s %s\n", a.Space, a.Hash())
	b.WriteString("digraph arch {\n\trankdir=TB;\n\tnode [shape=box, fontname=\"Helvetica\"];\n")
	for _, l := range an.Layers {
		label := l.Name + "\n" + l.Op + "\n" + l.Output.String()
		if l.Params > 0 {
			label += ", " + group(int64(l.Params)) + " params"
		}
		fmt.Fprintf(&b, "\t%s [label=%s];\n", dotQuote(l.Name), dotQuote(label))
	}
	for _, l := range an.Layers {
		for _, in := range l.Inputs {
			fmt.Fprintf(&b, "\t%s -> %s;\n", dotQuote(in), dotQuote(l.Name))
		}
		for _, in := range l.Skips {
			fmt.Fprintf(&b, "\t%s -> %s [style=dashed];\n", dotQuote(in), dotQuote(l.Name))
		}
	}
	b.WriteString("}\n")
	_, err = io.WriteString(w, b.String())
	return err
}

// dotQuote makes a DOT string; a newline becomes DOT's centred line break.
func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

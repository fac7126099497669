package arch_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"nasd/arch"
)

func TestMicroDefaultsAndDecisions(t *testing.T) {
	def, err := arch.DefaultOptions("enas-micro")
	if err != nil {
		t.Fatal(err)
	}
	want := arch.Options{Input: arch.Shape{C: 1, H: 28, W: 28}, Classes: 10, Channels: 20,
		Ops: []string{"sep3x3", "sep5x5", "avg3x3", "max3x3", "identity"}, Nodes: 5, Cells: 2, Stages: 3}
	if !reflect.DeepEqual(def, want) {
		t.Errorf("enas-micro defaults = %+v, want %+v", def, want)
	}
	s := mustNew(t, "enas-micro", arch.Options{})
	ds := s.Decisions()
	// 2 cells × 5 nodes × (input, op, input, op).
	if len(ds) != 40 {
		t.Fatalf("%d decisions, want 40", len(ds))
	}
	for i, w := range []string{"normal node 0 input 1", "normal node 0 op 1", "normal node 0 input 2", "normal node 0 op 2", "normal node 1 input 1"} {
		if ds[i].Name != w {
			t.Errorf("decision %d = %q, want %q", i, ds[i].Name, w)
		}
	}
	if ds[20].Name != "reduce node 0 input 1" || ds[39].Name != "reduce node 4 op 2" {
		t.Errorf("reduce decisions: %q .. %q", ds[20].Name, ds[39].Name)
	}
	// Node b chooses among the two cell inputs and the b nodes before it.
	if got := ds[16].Choices; !slices.Equal(got, []string{"prev-prev", "prev", "node 0", "node 1", "node 2", "node 3"}) {
		t.Errorf("normal node 4 input 1 choices = %q", got)
	}
	// Per cell ∏_b (b+2)²·5²; two cells.
	wantSize := 0.0
	for b := range 5 {
		wantSize += 2 * (2*math.Log10(float64(b+2)) + 2*math.Log10(5))
	}
	if got := s.Log10Size(); math.Abs(got-wantSize) > 1e-9 {
		t.Errorf("Log10Size = %v, want %v", got, wantSize)
	}
}

func TestMicroSampleDeterministicAndValid(t *testing.T) {
	for _, opt := range []arch.Options{
		{},
		{Nodes: 2, Cells: 1, Stages: 4, Channels: 3},
		{Nodes: 7, Cells: 3, Stages: 2, Input: arch.Shape{C: 3, H: 9, W: 7}, Ops: []string{"sep7x7", "avg5x5", "identity"}},
		{Input: arch.Shape{C: 1, H: 1, W: 1}, Stages: 5, Cells: 1}, // sizes round up: 1×1 never collapses
	} {
		s := mustNew(t, "enas-micro", opt)
		for seed := range uint64(20) {
			a := s.Sample(rand.New(rand.NewPCG(seed, 1)))
			b := s.Sample(rand.New(rand.NewPCG(seed, 1)))
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("%+v seed %d: two samples differ", opt, seed)
			}
			if err := arch.Validate(s, a, arch.Budget{}); err != nil {
				t.Fatalf("%+v seed %d: sampled arch does not validate: %v", opt, seed, err)
			}
		}
		a := s.Sample(rand.New(rand.NewPCG(1, 1)))
		if b := s.Sample(rand.New(rand.NewPCG(2, 1))); reflect.DeepEqual(a, b) {
			t.Errorf("%+v: seeds 1 and 2 sample the same arch", opt)
		}
	}
}

func TestMicroOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		opt   arch.Options
		wants []string
		paths []string
	}{
		{arch.Options{Nodes: -1, Cells: 33, Stages: 17, Channels: -20}, []string{
			"options.channels = -20: must be in 1..65536",
			"options.nodes = -1: must be in 1..32",
			"options.cells = 33: must be in 1..32",
			"options.stages = 17: must be in 1..16"}, []string{"channels", "nodes", "cells", "stages"}},
		{arch.Options{Ops: []string{"sep3x3", "conv3x3", "sep4x4", "max3x5", "sep3x3", "Identity"}}, []string{
			`options.ops[1] = "conv3x3": unknown op (want sepKxK, avgKxK or maxKxK`,
			`options.ops[2] = "sep4x4": kernel size must be odd`,
			`options.ops[3] = "max3x5": unknown op`,
			`options.ops[4] = "sep3x3": duplicate`,
			`options.ops[5] = "Identity": unknown op`}, []string{"ops", "ops", "ops", "ops", "ops"}},
		{arch.Options{Ops: []string{}}, []string{"options.ops = []: must list at least one op"}, []string{"ops"}},
		{arch.Options{Layers: 6, ReduceAfter: []int{1}, Strides: []int{1}}, []string{
			"options.layers: not used by space enas-micro",
			"options.strides: not used by space enas-micro",
			"options.reduce_after: not used by space enas-micro"}, []string{"layers", "strides", "reduce_after"}},
		{arch.Options{Input: arch.Shape{C: 1, H: 0, W: 28}, Classes: -2}, []string{
			"options.input.h = 0", "options.classes = -2"}, []string{"input.h", "classes"}},
	} {
		_, err := arch.New("enas-micro", tc.opt)
		wantLines(t, err, "arch: enas-micro: ", tc.wants...)
		if got := fieldPaths(err); !slices.Equal(got, tc.paths) {
			t.Errorf("%+v: field paths %q, want %q", tc.opt, got, tc.paths)
		}
	}
	// The other spaces reject enas-micro's options.
	_, err := arch.New("enas-macro", arch.Options{Nodes: 5, Stages: 3})
	wantLines(t, err, "arch: enas-macro: ", "options.nodes: not used by space enas-macro", "options.stages: not used by space enas-macro")
	_, err = arch.New("nas", arch.Options{Cells: 2})
	wantLines(t, err, "arch: nas: ", "options.cells: not used by space nas")
}

func TestMicroBadDecisions(t *testing.T) {
	s := mustNew(t, "enas-micro", arch.Options{Nodes: 2})
	d := make([]int, len(s.Decisions())) // 16
	d[0] = 2                             // normal node 0 has two inputs to pick from
	d[3] = 5                             // five ops
	d[14] = 4                            // reduce node 1 input 2: prev-prev, prev, node 0
	_, err := s.Arch(d)
	wantLines(t, err, "arch: enas-micro: ",
		"decisions[0] (normal node 0 input 1) = 2: want 0..1 (prev-prev, prev)",
		"decisions[3] (normal node 0 op 2) = 5: want 0..4 (sep3x3, sep5x5, avg3x3, max3x3, identity)",
		"decisions[14] (reduce node 1 input 2) = 4: want 0..2 (prev-prev, prev, node 0)")
	_, err = s.Arch(d[:15])
	wantLines(t, err, "arch: enas-micro: ", "decisions: got 15, want 16", "decisions[0]", "decisions[3]", "decisions[14]")
}

// A one-cell, single-stage network on a 4×4 image, computed by hand with the
// rules of TestNASHandComputed (conv: KH·KW·Cin·Cout params, 2·KH·KW·Cin
// FLOPs per output; depthwise: KH·KW·C params, 2·KH·KW FLOPs per output;
// batchnorm 2·C params, 2 FLOPs per value; relu and add 1 FLOP per value
// (per extra input); K×K pooling K·K per output). C = 4, so the stem has
// 3C = 12 channels; each value count below is channels·16.
func TestMicroHandComputed(t *testing.T) {
	s := mustNew(t, "enas-micro", arch.Options{Nodes: 2, Cells: 1, Stages: 1, Channels: 4, Classes: 2,
		Input: arch.Shape{C: 1, H: 4, W: 4}, Ops: []string{"sep3x3", "max3x3", "identity"}})
	// node 0 = sep3x3(prev) + identity(prev-prev); node 1 = max3x3(node 0) + identity(prev).
	// The reduction cell's decisions are unused with one stage.
	a, err := s.Arch([]int{1, 0, 0, 2, 2, 1, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0})
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.Lower(a) // one stage: no factorized reduction, so it lowers
	if err != nil {
		t.Fatal(err)
	}
	sh := func(c int) arch.Shape { return arch.Shape{C: c, H: 4, W: 4} }
	in0, in1, n0, n1, out := "cell 0 input 0", "cell 0 input 1", "cell 0 node 0", "cell 0 node 1", "cell 0 output"
	checkNodes(t, g, []nodeWant{
		{arch.KindInput, "image", sh(1), 0, 0},
		{arch.KindConv, "stem", sh(12), 9 * 12, 2 * 9 * 1 * 12 * 16}, // 108 params, 3,456 FLOPs
		{arch.KindBatchNorm, "stem", sh(12), 24, 2 * 12 * 16},
		{arch.KindReLU, in0, sh(12), 0, 12 * 16}, // 3C → C: relu → conv 1×1 → batchnorm
		{arch.KindConv, in0, sh(4), 12 * 4, 2 * 12 * 4 * 16},
		{arch.KindBatchNorm, in0, sh(4), 8, 2 * 4 * 16},
		{arch.KindReLU, in1, sh(12), 0, 12 * 16},
		{arch.KindConv, in1, sh(4), 12 * 4, 2 * 12 * 4 * 16},
		{arch.KindBatchNorm, in1, sh(4), 8, 2 * 4 * 16},
		{arch.KindReLU, n0, sh(4), 0, 64}, // sep3x3, first of two
		{arch.KindDepthwiseConv, n0, sh(4), 9 * 4, 2 * 9 * 64},
		{arch.KindConv, n0, sh(4), 4 * 4, 2 * 4 * 64},
		{arch.KindBatchNorm, n0, sh(4), 8, 2 * 64},
		{arch.KindReLU, n0, sh(4), 0, 64}, // second
		{arch.KindDepthwiseConv, n0, sh(4), 9 * 4, 2 * 9 * 64},
		{arch.KindConv, n0, sh(4), 4 * 4, 2 * 4 * 64},
		{arch.KindBatchNorm, n0, sh(4), 8, 2 * 64},
		{arch.KindAdd, n0, sh(4), 0, 64}, // + identity(prev-prev): no node of its own
		{arch.KindMaxPool, n1, sh(4), 0, 9 * 64},
		{arch.KindAdd, n1, sh(4), 0, 64},
		{arch.KindReLU, out, sh(4), 0, 64}, // node 0 is read by node 1: only node 1 is a loose end
		{arch.KindConv, out, sh(4), 4 * 4, 2 * 4 * 64},
		{arch.KindBatchNorm, out, sh(4), 8, 2 * 64},
		{arch.KindReLU, "head", sh(4), 0, 64},
		{arch.KindGlobalAvgPool, "head", arch.Shape{C: 4, H: 1, W: 1}, 0, 64},
		{arch.KindDense, "head", arch.Shape{C: 2, H: 1, W: 1}, 4*2 + 2, 2 * 4 * 2},
	})
	an, err := arch.Analyze(s, a)
	if err != nil {
		t.Fatal(err)
	}
	// Params: stem 108+24, inputs 2·(48+8), node 0 2·(36+16+8), output 16+8,
	// head 10: 132+112+120+24+10 = 398. FLOPs: stem 3,456+384 = 3,840; inputs
	// 2·(192+1,536+128) = 3,712; node 0 2·(64+1,152+512+128)+64 = 3,776;
	// node 1 576+64 = 640; output 64+512+128 = 704; head 64+64+16 = 144:
	// 12,816 in all.
	if an.Params != 398 || an.FLOPs != 12816 {
		t.Errorf("totals = %d params, %d FLOPs; want 398, 12816", an.Params, an.FLOPs)
	}
	var rows []string
	for _, l := range an.Layers {
		rows = append(rows, l.Name+": "+l.Op+" ← "+strings.Join(l.Inputs, ", "))
	}
	wantRows := []string{
		"image: input ← ",
		"stem: conv 3×3, 12 filters → batchnorm ← image",
		"cell 0 input 0: relu → conv 1×1, 4 filters → batchnorm ← stem",
		"cell 0 input 1: relu → conv 1×1, 4 filters → batchnorm ← stem",
		"cell 0 node 0: sep3x3 + identity ← cell 0 input 1, cell 0 input 0",
		"cell 0 node 1: max3x3 + identity ← cell 0 node 0, cell 0 input 1",
		"cell 0 output: relu → conv 1×1, 4 filters → batchnorm (normal cell) ← cell 0 node 1",
		"head: relu → gap → dense 2 ← cell 0 output",
	}
	if !slices.Equal(rows, wantRows) {
		t.Errorf("layers:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(wantRows, "\n"))
	}
}

// Two stages on a 5×5 image with C = 2: cell 1 reduces (4 channels, 3×3) and
// cell 2's prev-prev (cell 0, 5×5) is factorized-reduced to match cell 1.
func TestMicroFactorizedReduction(t *testing.T) {
	s := mustNew(t, "enas-micro", arch.Options{Nodes: 1, Cells: 1, Stages: 2, Channels: 2, Classes: 2,
		Input: arch.Shape{C: 1, H: 5, W: 5}, Ops: []string{"identity", "avg3x3"}})
	// normal node 0 = identity(prev) + avg3x3(prev-prev); reduce node 0 the same, at stride 2.
	a, err := s.Arch([]int{1, 0, 0, 1, 1, 0, 0, 1})
	if err != nil {
		t.Fatal(err)
	}
	an, err := arch.Analyze(s, a)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]arch.LayerStats{}
	for _, l := range an.Layers {
		rows[l.Name] = l
	}
	// cell 1 node 0, identity at stride 2 on a 4×5×5 input: relu 100; two
	// 1×1 stride-2 convs 4→2 onto 3×3, 8 params and 2·4·2·9 = 144 FLOPs each
	// (the second reads the shifted map, free); concat; batchnorm on 4×3×3:
	// 8 params, 72 FLOPs. avg3x3 stride 2 pad 1: 9·36 = 324. add: 36.
	// 24 params, 100+144+144+72+324+36 = 820 FLOPs.
	// cell 2 input 0 (cell 0's 2×5×5 output, to cell 2's width 4): relu 50;
	// two convs 2→2 onto 3×3, 4 params and 2·2·2·9 = 72 FLOPs each;
	// batchnorm on 4×3×3, 8 params, 72 FLOPs: 16 params, 266 FLOPs.
	// cell 1 input 0 (the 6-channel stem to 4): relu 150, conv 24 params and
	// 2·6·4·25 = 1,200 FLOPs, batchnorm 8 params and 200 FLOPs.
	for _, w := range []struct {
		name   string
		op     string
		shape  arch.Shape
		params int
		flops  int64
	}{
		{"cell 1 input 0", "relu → conv 1×1, 4 filters → batchnorm", arch.Shape{C: 4, H: 5, W: 5}, 6*4 + 8, 150 + 2*6*4*25 + 200},
		{"cell 1 node 0", "identity → factorized reduce + avg3x3 stride 2", arch.Shape{C: 4, H: 3, W: 3}, 24, 820},
		{"cell 2 input 0", "relu → factorized reduce to 4", arch.Shape{C: 4, H: 3, W: 3}, 4 + 4 + 8, 50 + 72 + 72 + 72},
	} {
		l := rows[w.name]
		if l.Op != w.op || l.Output != w.shape || l.Params != w.params || l.FLOPs != w.flops {
			t.Errorf("%s = %q %v, %d params, %d FLOPs; want %q %v, %d, %d", w.name, l.Op, l.Output, l.Params, l.FLOPs,
				w.op, w.shape, w.params, w.flops)
		}
	}
	if an.Output != (arch.Shape{C: 2, H: 1, W: 1}) {
		t.Errorf("output %v", an.Output)
	}

	// Lower keeps the shift (node 22): relu → shift → conv 1×1 stride 2, the
	// shift sized as its input with no params or FLOPs.
	g, err := s.Lower(a)
	if err != nil {
		t.Fatal(err)
	}
	st, err := g.Infer()
	if err != nil {
		t.Fatal(err)
	}
	sh := g.Nodes[22]
	if sh.Op.Kind != arch.KindShift || sh.Layer != "cell 1 node 0" || len(sh.Inputs) != 1 ||
		g.Nodes[sh.Inputs[0]].Op.Kind != arch.KindReLU || g.Nodes[23].Op != (arch.Op{Kind: arch.KindConv, KH: 1, KW: 1, Stride: 2, Out: 2}) ||
		!slices.Equal(g.Nodes[23].Inputs, []int{22}) {
		t.Errorf("node 22 = %+v, node 23 = %+v: want the shift of a factorized reduction", sh, g.Nodes[23])
	}
	if st[22] != (arch.Stats{Shape: arch.Shape{C: 4, H: 5, W: 5}}) {
		t.Errorf("shift stats %+v, want 4×5×5, 0 params, 0 FLOPs", st[22])
	}

	// Without identity on a reduction cell's inputs, and with no cell reading
	// prev-prev (so no calibration across a reduction survives pruning),
	// nothing needs a factorized reduction, so no shift.
	s = mustNew(t, "enas-micro", arch.Options{Nodes: 1, Cells: 1, Stages: 2, Ops: []string{"max3x3", "identity"}})
	a, err = s.Arch([]int{1, 0, 1, 1, 1, 0, 1, 0}) // max3x3(prev) + identity(prev); reduce: max3x3(prev) twice
	if err != nil {
		t.Fatal(err)
	}
	g, err = s.Lower(a)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range g.Nodes {
		if n.Op.Kind == arch.KindShift {
			t.Errorf("node %d (%s) is a shift in a network without factorized reduction", i, n.Layer)
		}
	}
}

// The JSON's "layers" lists the searched nodes of both cells; a hand edit
// that disagrees with the decisions is an error naming the entry.
func TestMicroJSONLayers(t *testing.T) {
	s := mustNew(t, "enas-micro", arch.Options{Nodes: 2})
	a, err := s.Arch([]int{1, 0, 0, 4, 2, 2, 1, 3, 0, 1, 1, 2, 0, 0, 2, 4})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	want := `"layers":[` +
		`{"cell":"normal","layer":0,"op":"sep3x3 + identity","inputs":["prev","prev-prev"]},` +
		`{"cell":"normal","layer":1,"op":"avg3x3 + max3x3","inputs":["node 0","prev"]},` +
		`{"cell":"reduce","layer":0,"op":"sep5x5 + avg3x3","inputs":["prev-prev","prev"]},` +
		`{"cell":"reduce","layer":1,"op":"sep3x3 + identity","inputs":["prev-prev","node 0"]}]`
	if !strings.Contains(string(data), want) {
		t.Errorf("JSON:\n%s\nwant it to contain\n%s", data, want)
	}
	bad := strings.NewReplacer(`"cell":"reduce","layer":0`, `"cell":"normal","layer":0`,
		`"avg3x3 + max3x3"`, `"avg3x3 + conv3x3"`, `"sep5x5 + avg3x3"`, `"avg3x3 + sep5x5"`).Replace(string(data))
	var b arch.Arch
	err = json.Unmarshal([]byte(bad), &b)
	wantLines(t, err, "arch: ",
		`layers[1].op = "avg3x3 + conv3x3": unknown op (want "A + B" with A and B among sep3x3, sep5x5, avg3x3, max3x3, identity)`,
		`layers[2].cell = "normal": want "reduce"`,
		`layers[2].op = "avg3x3 + sep5x5": the decisions say "sep5x5 + avg3x3"`)
}

// Single-stage networks have no factorized reduction and lower to the
// primitives train builds.
func TestMicroLowersWithoutReductions(t *testing.T) {
	s := mustNew(t, "enas-micro", arch.Options{Stages: 1})
	r := rand.New(rand.NewPCG(3, 4))
	for range 50 {
		a := s.Sample(r)
		g, err := s.Lower(a)
		if err != nil {
			t.Fatal(err)
		}
		an, err := arch.Analyze(s, a)
		if err != nil {
			t.Fatal(err)
		}
		st, err := g.Infer()
		if err != nil {
			t.Fatal(err)
		}
		params := 0
		for _, x := range st {
			params += x.Params
		}
		if params != an.Params {
			t.Fatalf("lowered graph has %d params, Analyze says %d", params, an.Params)
		}
		for i, n := range g.Nodes {
			if n.Op.Kind == "shift" {
				t.Fatalf("node %d is a shift", i)
			}
		}
	}
}

// A cell whose successor reads only prev-prev feeds nothing: it is pruned,
// so neither the table nor the costs count it, and train never sees
// parameters without a gradient.
func TestMicroPrunesDeadCells(t *testing.T) {
	s := mustNew(t, "enas-micro", arch.Options{Nodes: 1, Cells: 2, Stages: 1, Ops: []string{"identity", "max3x3"}})
	a, err := s.Arch([]int{0, 1, 0, 0, 0, 0, 0, 0}) // node 0 = max3x3(prev-prev) + identity(prev-prev)
	if err != nil {
		t.Fatal(err)
	}
	an, err := arch.Analyze(s, a)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range an.Layers {
		names = append(names, l.Name)
	}
	want := []string{"image", "stem", "cell 1 input 0", "cell 1 node 0", "cell 1 output", "head"}
	if !slices.Equal(names, want) {
		t.Errorf("layers %q, want %q (cell 0 feeds nothing)", names, want)
	}
	g, err := s.Lower(a)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range g.Nodes {
		for _, j := range n.Inputs {
			if j >= i {
				t.Fatalf("node %d reads node %d: pruning broke the order", i, j)
			}
		}
	}
}

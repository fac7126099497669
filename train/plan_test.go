package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"

	"nasd/arch"
)

// TestPlanPoisonsDead: a net whose outputs and scratch are placed by
// liveness computes, run after run, the same bits (loss, correct count,
// logits, every weight gradient) as a net whose every buffer is its own,
// although each planned output is filled with NaN right after its last
// reader has run and all scratch after every step. So no step reads an
// output after the plan lets its memory go. The networks have every op and
// the couplings that matter (skip adds and concats across reductions,
// batch-norm and max-pool state, dropout, the "+" that sums gradients).
// The sabotaged case checks that the test would notice a live output
// poisoned too early.
func TestPlanPoisonsDead(t *testing.T) {
	nasGraph := nasTestGraph(t)
	for _, net := range []struct {
		name string
		g    *arch.Graph
	}{{"enas-default", defaultENASChild(t)}, {"enas-child", enasChild(t)}, {"reference-cnn", ReferenceCNN()}, {"nas", nasGraph},
		{"variants", variantsGraph()}, {"enas-micro", microGraph(t, arch.Options{Nodes: 2, Cells: 1, Channels: 4, Input: arch.Shape{C: 1, H: 9, W: 8}, Classes: 3}, 1)}} {
		for _, train := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/train=%v", net.name, train), func(t *testing.T) {
				if d := planMismatch(t, net.g, train, false); d != "" {
					t.Fatal(d)
				}
			})
		}
	}
	t.Run("sabotaged", func(t *testing.T) {
		if planMismatch(t, enasChild(t), true, true) == "" {
			t.Fatal("an output poisoned while live went unnoticed")
		}
	})
}

// planMismatch runs g, planned with poisoning and with buffers of its own,
// on the same data three times and describes the first difference. With
// sabotage it poisons the longest-lived planned output right after it is
// written.
func planMismatch(t *testing.T, g *arch.Graph, train, sabotage bool) string {
	t.Helper()
	const batch = 2
	opt := BuildOptions{Batch: batch, Train: train, Dropout: 0.3, DropoutRNG: rand.NewPCG(3, 4)}
	own, err := Build(g, NewWeights(tensor.Float32, 4), opt)
	if err != nil {
		t.Fatal(err)
	}
	buf := NewBuffers()
	opt.Buffers, opt.DropoutRNG = buf, rand.NewPCG(3, 4)
	planned, err := Build(g, NewWeights(tensor.Float32, 4), opt)
	if err != nil {
		t.Fatal(err)
	}
	m := planned.prog.(*program[float32]).mem
	if m == nil || len(m.outs) == 0 {
		t.Fatal("nothing planned")
	}
	m.poison = true
	if sabotage {
		long := 0
		for i, o := range m.outs {
			if o.last-o.first > m.outs[long].last-m.outs[long].first && o.last < len(m.dead) {
				long = i
			}
		}
		m.dead[m.outs[long].first] = append(m.dead[m.outs[long].first], long)
	}
	for round := range 3 {
		r := rand.New(rand.NewPCG(uint64(round), 9))
		x, y := randomData(r, batch, g.Input.Elems(), g.Classes)
		poison(buf)
		lossP, corrP, err := planned.Run(x, y)
		if err != nil {
			t.Fatal(err)
		}
		lossO, corrO, err := own.Run(x, y)
		if err != nil {
			t.Fatal(err)
		}
		if math.IsNaN(lossO) {
			t.Fatal("NaN loss with own buffers")
		}
		if math.Float64bits(lossP) != math.Float64bits(lossO) || corrP != corrO {
			return fmt.Sprintf("round %d: planned: loss %v, correct %d; own buffers: %v, %d", round, lossP, corrP, lossO, corrO)
		}
		if !sameBits(planned.Logits(), own.Logits()) {
			return fmt.Sprintf("round %d: logits differ", round)
		}
		for i := range own.grads {
			if !sameBits(planned.gradOf(i).([]float32), own.gradOf(i).([]float32)) {
				return fmt.Sprintf("round %d: gradient of %s differs", round, own.params[i].Name)
			}
		}
	}
	return ""
}

// TestPlanPlacement: outputs live at the same step never share memory, and
// on the default enas-macro child in training the planned outputs take at
// most a fifth of what one buffer each would (0.12 when written; 0.35 before
// steps were sunk and batch norm and pooling stopped holding their outputs
// for ordering).
func TestPlanPlacement(t *testing.T) {
	n, err := Build(defaultENASChild(t), NewWeights(tensor.Float32, 4), BuildOptions{Batch: 8, Train: true, Buffers: NewBuffers()})
	if err != nil {
		t.Fatal(err)
	}
	m := n.prog.(*program[float32]).mem
	each := 0
	for i, a := range m.outs {
		each += a.n
		for _, b := range m.outs[i+1:] {
			if a.first <= b.last && b.first <= a.last && a.off < b.off+b.n && b.off < a.off+a.n {
				t.Fatalf("outputs live over steps [%d, %d] and [%d, %d] share memory", a.first, a.last, b.first, b.last)
			}
		}
	}
	if m.size*5 > each {
		t.Fatalf("planned outputs take %d elements, one buffer each %d: more than a fifth", m.size, each)
	}
}

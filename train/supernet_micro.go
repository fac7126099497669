package train

import (
	"fmt"
	"strconv"
	"strings"

	"nasd/arch"
)

// The enas-micro supernet (Pham et al. 2018, §2.4; docs/enas-micro.md). A
// child is the network arch/micro.go derives, built from these buckets:
//
//	stem                          conv 3×3 to 3C → BN
//	cell n input i                the calibration of input i (0: prev-prev,
//	                              1: prev) when the cell needs one: relu →
//	                              conv 1×1 → BN, or relu → factorized reduction
//	cell n node b slot j from S/O op O of the node's input j on state S
//	                              (prev-prev, prev or node k): sepK, or
//	                              identity at stride 2 (a factorized reduction);
//	                              pools and identity at stride 1 have no weights
//	                              and no bucket
//	cell n output node b          a c×c block of the cell's output 1×1 conv
//	cell n output                 the output BN
//	head                          relu → global average pool → dense
//
// Weights are per cell position n, as ENAS keeps them per layer (the cells
// of a stage are not tied), and per (node, slot, input, op) as ENAS's
// _enas_cell indexes them by the input it reads.
//
// The cell's output conv reads the concatenation of its loose ends, whose
// number the child decides. ENAS keeps one c×c block per node and gathers
// the loose ones; here each block is its own bucket and the child computes
// relu → conv 1×1 per loose node, summed, then BN: the same function as
// relu → concat → conv 1×1 with the blocks stacked (relu is elementwise, a
// conv over a concatenation is the sum of the convs over its parts), with
// the weights of the loose nodes only and each block contiguous in the flat
// buffer, so it aliases without copies.
//
// Factorized reductions take the odd pixels with the constant 3×3 stride-2
// depthwise "shift" of the macro supernet, one per input width.

// snMicroOp is a parsed enas-micro op.
type snMicroOp struct {
	name string
	kind string // sep, avg, max or identity
	k    int
}

// snCalib says how a cell brings one input to its width.
type snCalib int

const (
	calibNone snCalib = iota
	calibConv         // relu → conv 1×1 → BN
	calibFR           // relu → factorized reduction
)

// snCell is one cell of the network; its shape is fixed by the options.
type snCell struct {
	reduce bool
	c      int        // width
	inC    [2]int     // widths of prev-prev and prev before calibration
	calib  [2]snCalib // per input
}

type snMicro struct {
	ops   []snMicroOp
	nodes int
	cells []snCell
}

func newSnMicro(opt arch.Options) (*snMicro, error) {
	m := &snMicro{nodes: opt.Nodes}
	for _, name := range opt.Ops {
		op := snMicroOp{name: name, kind: "identity"}
		if name != "identity" {
			kind, rest := name[:3], name[3:]
			a, _, _ := strings.Cut(rest, "x")
			k, err := strconv.Atoi(a)
			if err != nil || (kind != "sep" && kind != "avg" && kind != "max") {
				return nil, fmt.Errorf("train: supernet: enas-micro op %q", name)
			}
			op.kind, op.k = kind, k
		}
		m.ops = append(m.ops, op)
	}
	// Widths and reductions as arch/micro.go's build: the stem stands in for
	// both inputs of the first cell; a reduction cell doubles the width.
	type state struct{ c, level int }
	p2 := state{3 * opt.Channels, 0}
	p1 := p2
	c := opt.Channels
	add := func(reduce bool) {
		cell := snCell{reduce: reduce, c: c, inC: [2]int{p2.c, p1.c}}
		for i, h := range []state{p2, p1} {
			switch {
			case h.level < p1.level:
				cell.calib[i] = calibFR
			case h.c != c:
				cell.calib[i] = calibConv
			}
		}
		out := state{c, p1.level}
		if reduce {
			out.level++
		}
		m.cells = append(m.cells, cell)
		p2, p1 = p1, out
	}
	for stage := range opt.Stages {
		if stage > 0 {
			c *= 2
			add(true)
		}
		for range opt.Cells {
			add(false)
		}
	}
	return m, nil
}

// microDeclare lists every bucket and parameter of the micro supernet, in
// flat-buffer order.
func (s *Supernet) microDeclare() {
	b := &snBuilder{s: s}
	m := s.micro
	b.microStem()
	for n, cell := range m.cells {
		b.microCalib(n, 0, -1)
		b.microCalib(n, 1, -1)
		for node := range m.nodes {
			for slot := range 2 {
				for src := range 2 + node {
					for o := range m.ops {
						b.microBranch(n, node, slot, src, o, -1)
					}
				}
			}
		}
		for node := range m.nodes {
			b.microOutNode(n, node, -1)
		}
		b.enter(fmt.Sprintf("cell %d output", n))
		b.add(fmt.Sprintf("cell %d output", n), snBN, cell.c, -1)
	}
	b.microHead(-1)
}

func (b *snBuilder) microStem() int {
	o := b.s.opt
	b.enter("stem")
	x := b.add("stem", conv(3, 3*o.Channels, 1), o.Input.C, 0)
	return b.add("stem", snBN, 3*o.Channels, x)
}

// microCalib brings input i (x) of cell n to the cell's width.
func (b *snBuilder) microCalib(n, i, x int) int {
	cell := b.s.micro.cells[n]
	name := fmt.Sprintf("cell %d input %d", n, i)
	switch cell.calib[i] {
	case calibConv:
		b.enter(name)
		x = b.add(name, snReLU, cell.inC[i], x)
		x = b.add(name, conv(1, cell.c, 1), cell.inC[i], x)
		return b.add(name, snBN, cell.c, x)
	case calibFR:
		b.enter(name)
		return b.factorized(name, x, cell.inC[i], cell.c)
	}
	return x
}

// factorized is relu → factorized reduction of x (inC channels) to c: 1×1
// stride-2 convs to c/2 on the even pixels and to c − c/2 on the odd ones
// (the shift constant), concatenated, BN.
func (b *snBuilder) factorized(name string, x, inC, c int) int {
	x = b.add(name, snReLU, inC, x)
	even := b.add(name+"/even", conv(1, c/2, 2), inC, x)
	odd := b.add(shiftPrefix+"/"+strconv.Itoa(inC), arch.Op{Kind: arch.KindDepthwiseConv, KH: 3, KW: 3, Stride: 2}, inC, x)
	odd = b.add(name+"/odd", conv(1, c-c/2, 1), inC, odd)
	y := b.add(name, arch.Op{Kind: arch.KindConcat}, c, even, odd)
	return b.add(name, snBN, c, y)
}

// microBranch is op o of cell n's node at input slot, reading state src
// (x); stride 2 where a reduction cell's op reads a cell input.
func (b *snBuilder) microBranch(n, node, slot, src, o, x int) int {
	m := b.s.micro
	cell, op := m.cells[n], m.ops[o]
	stride := 1
	if cell.reduce && src < 2 {
		stride = 2
	}
	from := [2]string{"prev-prev", "prev"}
	srcName := "node " + strconv.Itoa(src-2)
	if src < 2 {
		srcName = from[src]
	}
	name := fmt.Sprintf("cell %d node %d slot %d from %s/%s", n, node, slot, srcName, op.name)
	c := cell.c
	switch op.kind {
	case "sep":
		b.enter(name)
		for i := range 2 {
			st := 1
			if i == 0 {
				st = stride
			}
			p := name + "/" + strconv.Itoa(i)
			x = b.add(p, snReLU, c, x)
			x = b.add(p, arch.Op{Kind: arch.KindDepthwiseConv, KH: op.k, KW: op.k, Stride: st}, c, x)
			x = b.add(p, conv(1, c, 1), c, x)
			x = b.add(p, snBN, c, x)
		}
		return x
	case "avg", "max":
		b.free()
		kind := arch.KindMaxPool
		if op.kind == "avg" {
			kind = arch.KindAvgPool
		}
		return b.add(name, arch.Op{Kind: kind, KH: op.k, KW: op.k, Stride: stride, Pad: (op.k - 1) / 2}, c, x)
	}
	if stride == 1 {
		return x
	}
	b.enter(name)
	return b.factorized(name, x, c, c)
}

// microOutNode is node's part of cell n's output conv: relu → its c×c block.
func (b *snBuilder) microOutNode(n, node, x int) int {
	c := b.s.micro.cells[n].c
	name := fmt.Sprintf("cell %d output node %d", n, node)
	b.enter(name)
	x = b.add(name, snReLU, c, x)
	return b.add(name, conv(1, c, 1), c, x)
}

func (b *snBuilder) microHead(x int) int {
	o := b.s.opt
	c := b.s.micro.cells[len(b.s.micro.cells)-1].c
	b.enter("head")
	x = b.add("head", snReLU, c, x)
	x = b.add("head", arch.Op{Kind: arch.KindGlobalAvgPool}, c, x)
	return b.add("head", arch.Op{Kind: arch.KindDense, Out: o.Classes}, c, x)
}

// microChild emits the graph of decisions d (the enas-micro layout: per
// cell type, per node, input 1, op 1, input 2, op 2). Dead parts are left
// for prune.
func (b *snBuilder) microChild(d []int) {
	m := b.s.micro
	prev2 := b.microStem()
	prev1 := prev2
	for n, cell := range m.cells {
		t := 0
		if cell.reduce {
			t = 1
		}
		states := []int{b.microCalib(n, 0, prev2), b.microCalib(n, 1, prev1)}
		read := make([]bool, 2+m.nodes)
		for node := range m.nodes {
			k := (t*m.nodes + node) * 4
			var br [2]int
			for slot := range 2 {
				src := d[k+2*slot]
				br[slot] = b.microBranch(n, node, slot, src, d[k+2*slot+1], states[src])
				read[src] = true
			}
			b.free()
			states = append(states, b.add(fmt.Sprintf("cell %d node %d", n, node), arch.Op{Kind: arch.KindAdd}, cell.c, br[0], br[1]))
		}
		var parts []int
		for node := range m.nodes {
			if !read[2+node] {
				parts = append(parts, b.microOutNode(n, node, states[2+node]))
			}
		}
		name := fmt.Sprintf("cell %d output", n)
		b.enter(name)
		x := b.add(name, arch.Op{Kind: arch.KindAdd}, cell.c, parts...)
		prev2, prev1 = prev1, b.add(name, snBN, cell.c, x)
	}
	b.microHead(prev1)
}

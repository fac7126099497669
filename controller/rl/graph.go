package rl

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/floats"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// batchGraph is the policy of model.forward written as a Gorgonia graph over
// a batch of rows action sequences (teacher-forced), with the REINFORCE loss
//
//	loss = −Σ_b wAdv_b·log P(seq_b) − β·Σ_b wEnt_b·H(seq_b)
//
// where the update sets wAdv_b = (R_b − baseline)/n and wEnt_b = 1/n for the
// n real rows (Zoph & Le 2017 eq. 2, with the 1/m average) and zero for
// padding rows. The weights are bound to the model's own slices, so the
// graph always sees the current weights and Adam updates them in place. The
// inputs are bound to slices this struct owns and refills before each run.
//
// Gorgonia's Mul treats a 1×n or n×1 matrix as a vector, so batches of one
// are padded to two rows, a hidden size of one is refused, and
// single-choice decisions have no softmax head.
type batchGraph struct {
	rows  int
	g     *G.ExprGraph
	vm    G.VM
	grads G.Nodes // per model.params

	onehot [][]float64 // per decision with a head: rows×C one-hot; nil otherwise
	sign   [][]float64 // per skip decision: 1 − 2a (rows)
	mixw   [][]float64 // per skip decision: a/(1 + yes in its group) (rows×1)
	wAdv   []float64
	wEnt   []float64

	logp, ent, cost *G.Node
	// The tape machine reuses buffers in place, so values are copied out at
	// the point they are computed (G.Read) rather than read afterwards.
	logpVal, entVal, costVal G.Value
}

// buildGraph builds the graph for rows sequences (rows ≥ 2).
func (m *model) buildGraph(rows int, entropyWeight float64) (bg *batchGraph, err error) {
	if rows < 2 {
		return nil, fmt.Errorf("graph needs at least 2 rows, got %d", rows)
	}
	defer func() {
		if r := recover(); r != nil {
			bg, err = nil, fmt.Errorf("building the Gorgonia graph: %v", r)
		}
	}()
	g := G.NewGraph()
	bg = &batchGraph{rows: rows, g: g,
		onehot: make([][]float64, len(m.decisions)),
		sign:   make([][]float64, len(m.decisions)),
		mixw:   make([][]float64, len(m.decisions)),
	}
	must := G.Must

	pn := make(map[*param]*G.Node, len(m.params))
	wrt := make(G.Nodes, 0, len(m.params))
	for _, p := range m.params {
		var n *G.Node
		if p.vec {
			n = G.NewVector(g, tensor.Float64, G.WithShape(p.rows), G.WithName(p.name),
				G.WithValue(tensor.New(tensor.WithShape(p.rows), tensor.WithBacking(p.data))))
		} else {
			n = G.NewMatrix(g, tensor.Float64, G.WithShape(p.rows, p.cols), G.WithName(p.name),
				G.WithValue(tensor.New(tensor.WithShape(p.rows, p.cols), tensor.WithBacking(p.data))))
		}
		pn[p] = n
		wrt = append(wrt, n)
	}
	// input makes an input node bound to a fresh slice: a vector for one
	// dimension, a matrix for two.
	input := func(name string, shape ...int) (*G.Node, []float64) {
		size := 1
		for _, d := range shape {
			size *= d
		}
		data := make([]float64, size)
		val := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
		if len(shape) == 1 {
			return G.NewVector(g, tensor.Float64, G.WithShape(shape...), G.WithName(name), G.WithValue(val)), data
		}
		return G.NewMatrix(g, tensor.Float64, G.WithShape(shape...), G.WithName(name), G.WithValue(val)), data
	}
	ones, onesData := input("ones", rows, 1)
	for i := range onesData {
		onesData[i] = 1
	}
	rowsOf := func(p *param) *G.Node { // a 1×n weight repeated on every row
		// ones·p, not a broadcast add: Gorgonia's gradient of a broadcast
		// operand drops its unit axis, and adding it to another use's
		// gradient of full shape fails (a 4-layer nas space hit it).
		return must(G.Mul(ones, pn[p]))
	}
	transform := func(n *G.Node) *G.Node {
		if m.invTemp != 1 {
			n = must(G.Mul(n, G.NewConstant(m.invTemp)))
		}
		if m.tanhC > 0 {
			n = must(G.Mul(must(G.Tanh(must(G.Mul(n, G.NewConstant(1/m.tanhC))))), G.NewConstant(m.tanhC)))
		}
		return n
	}

	var lps, ents, kls G.Nodes
	hs := make([]*G.Node, m.l)
	cs := make([]*G.Node, m.l)
	anchor := make([]*G.Node, m.anchors)
	aPrev := make([]*G.Node, m.anchors)
	x := rowsOf(m.start)
	for s, st := range m.steps {
		in := x
		for l := range m.l {
			gate := func(k int) *G.Node {
				z := must(G.Mul(in, pn[m.wx[l][k]]))
				if hs[l] != nil {
					z = must(G.Add(z, must(G.Mul(hs[l], pn[m.wh[l][k]]))))
				}
				return must(G.BroadcastAdd(z, pn[m.b[l][k]], nil, []byte{0}))
			}
			ig := must(G.Sigmoid(gate(0)))
			gg := must(G.Tanh(gate(2)))
			og := must(G.Sigmoid(gate(3)))
			c := must(G.HadamardProd(ig, gg))
			if cs[l] != nil {
				fg := must(G.Sigmoid(gate(1)))
				c = must(G.Add(must(G.HadamardProd(fg, cs[l])), c))
			}
			h := must(G.HadamardProd(og, must(G.Tanh(c))))
			hs[l], cs[l] = h, c
			in = h
		}
		top := in
		last := s+1 == len(m.steps)
		if st.dec >= 0 {
			k := st.dec
			hd := &m.heads[m.dec[k].head]
			if hd.choices == 1 {
				if !last {
					x = rowsOf(hd.emb)
				}
				continue
			}
			oh, data := input(fmt.Sprintf("onehot%d", k), rows, hd.choices)
			bg.onehot[k] = data
			logits := transform(must(G.BroadcastAdd(must(G.Mul(top, pn[hd.w])), pn[hd.b], nil, []byte{0})))
			ls := must(G.LogSoftMax(logits, 1))
			lps = append(lps, must(G.Sum(must(G.HadamardProd(ls, oh)), 1)))
			ents = append(ents, must(G.Neg(must(G.Sum(must(G.HadamardProd(must(G.Exp(ls)), ls)), 1)))))
			if !last {
				x = must(G.Mul(oh, pn[hd.emb]))
			}
			continue
		}
		anchor[st.anchor] = top
		if m.anchorUsedJ[st.anchor] {
			aPrev[st.anchor] = must(G.Mul(top, pn[m.wPrev]))
		}
		if len(st.skips) == 0 {
			x = rowsOf(m.start)
			continue
		}
		curr := must(G.Mul(top, pn[m.wCurr]))
		var mix G.Nodes
		for _, sk := range st.skips {
			z := transform(must(G.Mul(must(G.Tanh(must(G.Add(aPrev[sk.from], curr)))), pn[m.v])))
			sg, sdata := input(fmt.Sprintf("sign%d", sk.dec), rows)
			bg.sign[sk.dec] = sdata
			lps = append(lps, must(G.Neg(must(G.Softplus(must(G.HadamardProd(sg, z)))))))
			ents = append(ents, must(G.Sub(must(G.Softplus(z)), must(G.HadamardProd(must(G.Sigmoid(z)), z)))))
			if m.skipWeight > 0 {
				// KL(Bernoulli(p) ‖ Bernoulli(target)), p = σ(z), as in forward.
				p := must(G.Sigmoid(z))
				q := must(G.Sub(G.NewConstant(1.0), p))
				lp := must(G.Sub(must(G.Neg(must(G.Softplus(must(G.Neg(z)))))), G.NewConstant(math.Log(m.skipTarget))))
				lq := must(G.Sub(must(G.Neg(must(G.Softplus(z)))), G.NewConstant(math.Log(1-m.skipTarget))))
				kls = append(kls, must(G.Add(must(G.HadamardProd(p, lp)), must(G.HadamardProd(q, lq)))))
			}
			mw, mdata := input(fmt.Sprintf("mix%d", sk.dec), rows, 1)
			bg.mixw[sk.dec] = mdata
			mix = append(mix, must(G.BroadcastHadamardProd(anchor[sk.from], mw, nil, []byte{1})))
		}
		x = sum(mix)
	}
	if len(lps) == 0 {
		return nil, errors.New("no decision to learn")
	}
	var adv, entw *G.Node
	adv, bg.wAdv = input("wadv", rows)
	entw, bg.wEnt = input("went", rows)
	bg.logp, bg.ent = sum(lps), sum(ents)
	bg.cost = must(G.Neg(must(G.Sum(must(G.HadamardProd(adv, bg.logp))))))
	if entropyWeight > 0 {
		bonus := must(G.Mul(must(G.Sum(must(G.HadamardProd(entw, bg.ent)))), G.NewConstant(entropyWeight)))
		bg.cost = must(G.Sub(bg.cost, bonus))
	}
	if len(kls) > 0 {
		// ENAS's skip penalty (Pham et al. 2018, §2.3): weighted like the
		// entropy, so it is a mean over the batch.
		pen := must(G.Mul(must(G.Sum(must(G.HadamardProd(entw, sum(kls))))), G.NewConstant(m.skipWeight)))
		bg.cost = must(G.Add(bg.cost, pen))
	}
	G.Read(bg.logp, &bg.logpVal)
	G.Read(bg.ent, &bg.entVal)
	G.Read(bg.cost, &bg.costVal)
	if bg.grads, err = G.Grad(bg.cost, wrt...); err != nil {
		return nil, fmt.Errorf("differentiating the loss: %w", err)
	}
	bg.vm = G.NewTapeMachine(g)
	return bg, nil
}

// sum adds nodes: a chain of Adds, or the node itself.
func sum(ns G.Nodes) *G.Node {
	acc := ns[0]
	for _, n := range ns[1:] {
		acc = G.Must(G.Add(acc, n))
	}
	return acc
}

// batchResult is what one run of the graph computes.
type batchResult struct {
	loss      float64
	logp, ent []float64 // per row
	grad      [][]float64
}

// maxRows bounds the rows of a graph. Gorgonia allocates every node's value
// on every run (≈7,000 nodes of rows×hidden for the default spaces), so a
// batch is evaluated in chunks of at most maxRows and the gradients summed:
// the loss is a sum over sequences, so this is exact up to rounding.
const maxRows = 64

// graphRows is the number of rows of the graph for batches of n.
func graphRows(n int) int { return min(max(n, 2), maxRows) }

// run evaluates the loss and its gradient for seqs with per-sequence
// weights wAdv and wEnt, bg.rows sequences at a time.
func (bg *batchGraph) run(m *model, seqs [][]int, wAdv, wEnt []float64) (batchResult, error) {
	var out batchResult
	for lo := 0; lo < len(seqs); lo += bg.rows {
		hi := min(lo+bg.rows, len(seqs))
		res, err := bg.runChunk(m, seqs[lo:hi], wAdv[lo:hi], wEnt[lo:hi])
		if err != nil {
			return batchResult{}, err
		}
		out.loss += res.loss
		out.logp = append(out.logp, res.logp...)
		out.ent = append(out.ent, res.ent...)
		if out.grad == nil {
			out.grad = res.grad
			continue
		}
		for i, g := range res.grad {
			floats.Add(out.grad[i], g)
		}
	}
	if math.IsNaN(out.loss) || math.IsInf(out.loss, 0) {
		return out, fmt.Errorf("loss is %v", out.loss)
	}
	return out, nil
}

// runChunk evaluates the loss and its gradient for at most rows sequences;
// the other rows are padding with zero weights.
func (bg *batchGraph) runChunk(m *model, seqs [][]int, wAdv, wEnt []float64) (batchResult, error) {
	if len(seqs) > bg.rows {
		return batchResult{}, fmt.Errorf("graph for %d rows given %d sequences", bg.rows, len(seqs))
	}
	for k := range m.decisions {
		if bg.onehot[k] != nil {
			clear(bg.onehot[k])
		}
	}
	clear(bg.wAdv)
	clear(bg.wEnt)
	copy(bg.wAdv, wAdv)
	copy(bg.wEnt, wEnt)
	for r := range bg.rows {
		var a []int
		if r < len(seqs) {
			a = seqs[r]
		}
		act := func(k int) int {
			if a == nil {
				return 0
			}
			return a[k]
		}
		for k, oh := range bg.onehot {
			if oh != nil {
				c := len(oh) / bg.rows
				oh[r*c+act(k)] = 1
			}
		}
		for _, st := range m.steps {
			if len(st.skips) == 0 {
				continue
			}
			yes := 0.0
			for _, sk := range st.skips {
				yes += float64(act(sk.dec))
			}
			for _, sk := range st.skips {
				av := float64(act(sk.dec))
				bg.sign[sk.dec][r] = 1 - 2*av
				bg.mixw[sk.dec][r] = av / (1 + yes)
			}
		}
	}
	bg.vm.Reset()
	if err := bg.vm.RunAll(); err != nil {
		return batchResult{}, fmt.Errorf("running the Gorgonia graph: %w", err)
	}
	out := batchResult{
		loss: bg.costVal.Data().(float64),
		logp: append([]float64(nil), bg.logpVal.Data().([]float64)[:len(seqs)]...),
		ent:  append([]float64(nil), bg.entVal.Data().([]float64)[:len(seqs)]...),
	}
	for i, gn := range bg.grads {
		d, ok := gn.Value().Data().([]float64)
		if !ok || len(d) != m.params[i].size() {
			return batchResult{}, fmt.Errorf("gradient of %s: unexpected value %T", m.params[i].name, gn.Value().Data())
		}
		out.grad = append(out.grad, append([]float64(nil), d...))
	}
	return out, nil
}

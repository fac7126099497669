package train

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"nasd/arch"
)

func lmSpace(t testing.TB, nodes, hidden int) arch.Space {
	t.Helper()
	s, err := arch.New("enas-rnn", arch.Options{Nodes: nodes, Hidden: hidden, Embed: hidden})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randomCell(s arch.Space, r *rand.Rand) arch.Arch {
	var d []int
	for _, dec := range s.Decisions() {
		d = append(d, r.IntN(len(dec.Choices)))
	}
	a, err := s.Arch(d)
	if err != nil {
		panic(err)
	}
	return a
}

// A Step of a child through the shared weights is the step of the same cell
// as a stand-alone model holding copies of those weights: the same loss and
// the same gradient, each shared matrix's at its own offset; buckets the
// child does not read get no gradient.
func TestLMSupernetChildIsStandAlone(t *testing.T) {
	const V, B, T = 11, 3, 4
	for _, tie := range []bool{false, true} {
		s := lmSpace(t, 4, 5)
		cfg := DefaultLMConfig()
		cfg.BPTT, cfg.Tie = T, tie
		sn, err := NewLMSupernet(s, V, cfg, 7, LMSupernetOptions{Batch: B})
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(1, 2))
		ids, tgt := make([]int32, T*B), make([]int32, T*B)
		for i := range ids {
			ids[i], tgt[i] = int32(r.IntN(V)), int32(r.IntN(V))
		}
		for trial := range 4 {
			child := randomCell(s, r)
			g, err := s.Lower(child)
			if err != nil {
				t.Fatal(err)
			}
			spec, err := cellSpecOf(g)
			if err != nil {
				t.Fatal(err)
			}
			alone, err := newLM(spec, V, 5, 5, cfg, 99)
			if err != nil {
				t.Fatal(err)
			}
			shared, err := sn.child(child)
			if err != nil {
				t.Fatal(err)
			}
			// Copy the shared weights into the stand-alone layout.
			w := sn.Weights()
			copy(alone.params[alone.emb:alone.emb+V*5], w[sn.m.emb:])
			copy(alone.params[alone.bias:alone.bias+V], w[sn.m.bias:])
			if !tie {
				copy(alone.params[alone.dec:alone.dec+V*5], w[sn.m.dec:])
			}
			for i, n := range spec.nodes {
				if n.kind == cellLinear {
					size := spec.nodes[n.in[0]].size * n.size
					copy(alone.params[alone.cell+n.w:alone.cell+n.w+size], w[sn.m.cell+shared.spec.nodes[i].w:])
				}
			}
			run, err := alone.newRun(B)
			if err != nil {
				t.Fatal(err)
			}
			copy(run.ids, ids)
			copy(run.tgt, tgt)
			copy(run.h, sn.train.h) // the supernet's carried state
			want := run.window(T, true) / float64(T*B)

			sn.ZeroGrad()
			got, err := sn.Step(child, ids, tgt, T)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-want) > 1e-6 {
				t.Fatalf("tie %v, child %d: supernet loss %.7f, stand-alone %.7f", tie, trial, got, want)
			}
			close := func(what string, a, b []float32) {
				for k := range a {
					if math.Abs(float64(a[k]-b[k])) > 1e-6+1e-5*math.Abs(float64(b[k])) {
						t.Fatalf("tie %v, child %d: %s gradient %d: supernet %g, stand-alone %g", tie, trial, what, k, a[k], b[k])
					}
				}
			}
			gr := sn.Grad()
			close("embedding", gr[sn.m.emb:sn.m.emb+V*5], alone.grads[alone.emb:alone.emb+V*5])
			close("decoder bias", gr[sn.m.bias:sn.m.bias+V], alone.grads[alone.bias:alone.bias+V])
			used, _ := sn.UsedBuckets(child)
			inChild := make([]bool, len(gr))
			for i, n := range spec.nodes {
				if n.kind == cellLinear {
					size := spec.nodes[n.in[0]].size * n.size
					off := sn.m.cell + shared.spec.nodes[i].w
					close(g.Nodes[i].Layer, gr[off:off+size], alone.grads[alone.cell+n.w:alone.cell+n.w+size])
					for k := off; k < off+size; k++ {
						inChild[k] = true
					}
				}
			}
			for bi, b := range sn.Buckets() {
				nonzero := slices.ContainsFunc(gr[b.Offset:b.Offset+b.Len], func(v float32) bool { return v != 0 })
				if nonzero && !used[bi] {
					t.Errorf("tie %v, child %d: bucket %s has a gradient but is not used", tie, trial, b.Name)
				}
				if !used[bi] {
					continue
				}
				if b.Name != "embedding" && b.Name != "decoder" && b.Name != "decoder bias" && !inChild[b.Offset] {
					t.Errorf("tie %v, child %d: bucket %s is marked used but no linear reads it", tie, trial, b.Name)
				}
			}
		}
	}
}

// The rank state carries the streams' hidden state and the dropout
// generator: a replica given another's weights and rank state takes the
// same next step; without the rank state it does not.
func TestLMSupernetRankState(t *testing.T) {
	const V, B, T = 13, 2, 5
	s := lmSpace(t, 3, 6)
	cfg := DefaultLMConfig()
	cfg.BPTT, cfg.DropEmbed, cfg.DropOut = T, 0.2, 0.3
	mk := func() *LMSupernet {
		sn, err := NewLMSupernet(s, V, cfg, 3, LMSupernetOptions{Batch: B, Rank: 2})
		if err != nil {
			t.Fatal(err)
		}
		return sn
	}
	a := mk()
	r := rand.New(rand.NewPCG(4, 4))
	window := func() ([]int32, []int32) {
		ids, tgt := make([]int32, T*B), make([]int32, T*B)
		for i := range ids {
			ids[i], tgt[i] = int32(r.IntN(V)), int32(r.IntN(V))
		}
		return ids, tgt
	}
	for range 3 {
		ids, tgt := window()
		a.ZeroGrad()
		if _, err := a.Step(randomCell(s, r), ids, tgt, T); err != nil {
			t.Fatal(err)
		}
		a.ApplySGD(1, 0, false, 0)
	}
	state := a.RankState()
	b, c := mk(), mk()
	copy(b.Weights(), a.Weights())
	copy(c.Weights(), a.Weights())
	if err := b.SetRankState(state); err != nil {
		t.Fatal(err)
	}
	child := randomCell(s, r)
	ids, tgt := window()
	la, _ := a.Step(child, ids, tgt, T)
	lb, _ := b.Step(child, ids, tgt, T)
	lc, _ := c.Step(child, ids, tgt, T)
	if la != lb {
		t.Errorf("restored replica: loss %v, the original's %v", lb, la)
	}
	if la == lc {
		t.Errorf("a replica without the rank state took the same step (%v): the state is not carried", lc)
	}
	if err := b.SetRankState(state[:len(state)-4]); err == nil {
		t.Error("a cut rank state was taken")
	}
}

// Shared-weight training on real English text learns: over a few hundred
// windows, each a fresh random cell, the mean loss of the last windows is
// far below the first ones', and a fixed cell's validation NLL falls.
func TestLMSupernetLearnsFortunes(t *testing.T) {
	text := fortunesText(t)
	s := lmSpace(t, 4, 32)
	cfg := DefaultLMConfig()
	sn, err := NewLMSupernet(s, len(text.Vocab), cfg, 1, LMSupernetOptions{Batch: 16})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(9, 9))
	fixed := randomCell(s, r)
	val := func() float64 {
		T := cfg.BPTT
		eb := sn.EvalBatch()
		ids, tgt := make([]int32, T*eb), make([]int32, T*eb)
		steps := len(text.Val) / eb
		nll := 0.0
		for w := range 4 {
			for b := range eb {
				for k := range T {
					ids[k*eb+b] = text.Val[b*steps+w*T+k]
					tgt[k*eb+b] = text.Val[b*steps+w*T+k+1]
				}
			}
			l, err := sn.Eval(fixed, ids, tgt, T, w == 0)
			if err != nil {
				t.Fatal(err)
			}
			nll += l
		}
		return nll / float64(4*T*eb)
	}
	before := val()
	const B, T, steps = 16, 35, 240
	per := len(text.Train) / B
	ids, tgt := make([]int32, T*B), make([]int32, T*B)
	var first, last float64
	for w := range steps {
		for b := range B {
			for k := range T {
				ids[k*B+b] = text.Train[b*per+w*T+k]
				tgt[k*B+b] = text.Train[b*per+w*T+k+1]
			}
		}
		sn.ZeroGrad()
		child := randomCell(s, r)
		l, err := sn.Step(child, ids, tgt, T)
		if err != nil {
			t.Fatalf("window %d, cell %v: %v", w, child.Decisions, err)
		}
		sn.ClipGrad(cfg.Clip)
		sn.ApplySGD(10, 0, false, 0) // 20 (ENAS's, for 1000 units) diverges at 32 units
		if w < 20 {
			first += l / 20
		}
		if w >= steps-20 {
			last += l / 20
		}
	}
	after := val()
	t.Logf("training loss %.3f → %.3f; a fixed cell's validation NLL %.3f → %.3f", first, last, before, after)
	if first-last < 0.5 {
		t.Errorf("shared-weight training loss fell from %.3f to %.3f only", first, last)
	}
	if before-after < 0.5 {
		t.Errorf("a fixed cell's validation NLL fell from %.3f to %.3f only", before, after)
	}
}

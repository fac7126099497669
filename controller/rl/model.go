package rl

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/floats"

	"nasd/arch"
)

// The controller's policy: an LSTM run over a fixed plan of steps derived
// from the space's decisions. Every step feeds one input through the LSTM; a
// decision step reads its softmax head from the top hidden state; an anchor
// step records the top hidden state as a layer's anchor (Zoph & Le 2017,
// §3.3) and, if the layer has skip decisions, draws each of them from
// sigmoid(vᵀ tanh(W_prev·h_j + W_curr·h_i)). The next input is the embedding
// of the decision just made, after a skip group the mean of the chosen
// anchors (Σ_j a_j·h_j / (1 + Σ_j a_j), Pham et al. 2018's controller), and
// the learned start token at the beginning and after an anchor step without
// skips.
//
// The same function is written twice: in plain Go here (sampling and scoring
// one sequence, fast) and as a Gorgonia graph over a batch in graph.go
// (differentiated for the update). Tests hold the two to 1e-9.

// param is one weight tensor: a matrix rows×cols, or a vector when vec.
type param struct {
	name       string
	rows, cols int
	vec        bool
	data       []float64
}

func (p *param) size() int { return p.rows * p.cols }

// head is the softmax head of one decision kind: logits = h·w + b, and the
// embedding of its choices as the next input. A single-choice decision has
// no w or b (its log-probability is 0).
type head struct {
	key     string
	choices int
	w, b    *param // H×C, 1×C
	emb     *param // C×H; nil if no step ever follows a decision of this kind
}

// step is one LSTM step of the plan.
type step struct {
	dec    int    // decision step: the decision's index; -1 on an anchor step
	anchor int    // anchor step: the anchor's slot; -1 on a decision step
	skips  []skip // anchor step: the layer's skip decisions
}

// skip is a skip decision: its index in the space and the anchor slot of the
// earlier layer it connects.
type skip struct{ dec, from int }

// decInfo says how a decision is made.
type decInfo struct {
	head int // index into model.heads; -1 for a skip decision
	step int // the step that makes it; -1 if none (a trailing single choice)
}

type model struct {
	h, l        int
	invTemp     float64 // 1/temperature
	tanhC       float64
	skipWeight  float64 // weight of the skip-rate penalty (0: off)
	skipTarget  float64 // its target skip probability
	decisions   []arch.Decision
	params      []*param
	wx, wh, b   [][4]*param // per LSTM layer and gate i, f, g, o: H×H, H×H (nil with one step), 1×H
	start       *param      // 1×H
	heads       []head
	wPrev       *param // H×H
	wCurr       *param // H×H
	v           *param // H
	steps       []step
	dec         []decInfo
	anchors     int    // anchor slots
	anchorUsedJ []bool // per slot: some skip reads it as an earlier layer
	nSkips      int
}

var (
	skipRE  = regexp.MustCompile(`^layer ([0-9]+) skip from layer ([0-9]+)$`)
	layerRE = regexp.MustCompile(`^layer ([0-9]+) `)
)

// layerOf returns the layer number a decision name starts with, or -1.
func layerOf(name string) int {
	m := layerRE.FindStringSubmatch(name)
	if m == nil {
		return -1
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return -1
	}
	return n
}

// parseSkip returns (i, j) for "layer i skip from layer j" with choices
// {no, yes}, j < i.
func parseSkip(d arch.Decision) (int, int, bool) {
	m := skipRE.FindStringSubmatch(d.Name)
	if m == nil || len(d.Choices) != 2 || d.Choices[0] != "no" || d.Choices[1] != "yes" {
		return 0, 0, false
	}
	i, err1 := strconv.Atoi(m[1])
	j, err2 := strconv.Atoi(m[2])
	if err1 != nil || err2 != nil || j >= i {
		return 0, 0, false
	}
	return i, j, true
}

// headKey names the head of decision k: its index, or with sharing its name
// without the "layer N " prefix plus its choices, so "layer 3 filter height"
// and "layer 5 filter height" share one head when they offer the same
// choices.
func headKey(k int, d arch.Decision, share bool) string {
	if !share {
		return "d" + strconv.Itoa(k)
	}
	name := d.Name
	if loc := layerRE.FindStringIndex(name); loc != nil {
		name = name[loc[1]:]
	}
	return name + "|" + strings.Join(d.Choices, "\x00")
}

// plan lays out the steps. A decision named "layer i skip from layer j"
// (choices no, yes) becomes a skip decision of the anchor step of layer i if
// that step immediately precedes its group and layer j's anchor exists; any
// other decision, a skip that does not fit included, gets a softmax head.
// Layer i's anchor step follows its last non-skip decision when some skip
// decision names layer i.
func (m *model) plan(share bool) error {
	ds := m.decisions
	referenced := map[int]bool{}
	lastRegular := map[int]int{}
	for k, d := range ds {
		if i, j, ok := parseSkip(d); ok {
			referenced[i], referenced[j] = true, true
			continue
		}
		if l := layerOf(d.Name); l >= 0 {
			lastRegular[l] = k
		}
	}
	slot := map[int]int{} // layer → anchor slot
	headIdx := map[string]int{}
	m.dec = make([]decInfo, len(ds))
	group := -1 // layer whose anchor step is the last step and takes skips
	for k, d := range ds {
		if i, j, ok := parseSkip(d); ok {
			sj, okj := slot[j]
			if group == i && okj {
				st := &m.steps[len(m.steps)-1]
				st.skips = append(st.skips, skip{dec: k, from: sj})
				m.anchorUsedJ[sj] = true
				m.dec[k] = decInfo{head: -1, step: len(m.steps) - 1}
				m.nSkips++
				continue
			}
		}
		group = -1
		key := headKey(k, d, share)
		h, ok := headIdx[key]
		if !ok {
			h = len(m.heads)
			headIdx[key] = h
			m.heads = append(m.heads, head{key: key, choices: len(d.Choices)})
		}
		m.dec[k] = decInfo{head: h, step: len(m.steps)}
		m.steps = append(m.steps, step{dec: k, anchor: -1})
		l := layerOf(d.Name)
		if last, ok := lastRegular[l]; ok && l >= 0 && referenced[l] && last == k {
			if _, dup := slot[l]; !dup {
				slot[l] = m.anchors
				m.anchors++
				m.anchorUsedJ = append(m.anchorUsedJ, false)
				m.steps = append(m.steps, step{dec: -1, anchor: slot[l]})
				group = l
			}
		}
	}
	// Steps after the last one that draws something (a decision with more
	// than one choice, or skips) change no probability: drop them, and their
	// single-choice decisions stay at choice 0. Gorgonia also refuses to
	// differentiate with respect to weights that only they would read.
	last := -1
	for s, st := range m.steps {
		if len(st.skips) > 0 || (st.dec >= 0 && m.heads[m.dec[st.dec].head].choices > 1) {
			last = s
		}
	}
	if last < 0 {
		return errors.New("the space has no decision with more than one choice")
	}
	m.steps = m.steps[:last+1]
	for k := range m.dec {
		if m.dec[k].step > last {
			m.dec[k].step = -1
		}
	}
	return nil
}

// newModel lays out the plan for the space's decisions and allocates and
// initialises the weights uniformly in ±opt.InitRange from init.
func newModel(ds []arch.Decision, opt Options, init *rand.Rand) (*model, error) {
	m := &model{h: opt.Hidden, l: opt.Layers, invTemp: 1 / opt.Temperature, tanhC: opt.TanhConstant, decisions: ds,
		skipWeight: opt.SkipWeight, skipTarget: opt.SkipTarget}
	for k, d := range ds {
		if len(d.Choices) == 0 {
			return nil, fmt.Errorf("decision %d (%s) has no choices", k, d.Name)
		}
	}
	if err := m.plan(opt.ShareHeads); err != nil {
		return nil, err
	}
	H := m.h
	add := func(name string, rows, cols int, vec bool) *param {
		p := &param{name: name, rows: rows, cols: cols, vec: vec, data: make([]float64, rows*cols)}
		m.params = append(m.params, p)
		return p
	}
	for l := range m.l {
		// One tensor per gate: slicing a fused 4H-wide product makes
		// Gorgonia work on strided views, ~2× slower.
		// A single step never reads the (zero) previous state, so it has
		// no forget gate and no recurrent weights.
		var wx, wh, b [4]*param
		for k, gate := range "ifgo" {
			if len(m.steps) == 1 && gate == 'f' {
				continue
			}
			wx[k] = add(fmt.Sprintf("lstm%d.wx.%c", l, gate), H, H, false)
			if len(m.steps) > 1 {
				wh[k] = add(fmt.Sprintf("lstm%d.wh.%c", l, gate), H, H, false)
			}
			b[k] = add(fmt.Sprintf("lstm%d.b.%c", l, gate), 1, H, false)
		}
		m.wx, m.wh, m.b = append(m.wx, wx), append(m.wh, wh), append(m.b, b)
	}
	m.start = add("start", 1, H, false)
	// A head's embedding is needed when a step follows one of its decisions.
	embedded := make([]bool, len(m.heads))
	for s, st := range m.steps {
		if st.dec >= 0 && s+1 < len(m.steps) {
			embedded[m.dec[st.dec].head] = true
		}
	}
	for i := range m.heads {
		h := &m.heads[i]
		if h.choices > 1 {
			h.w = add("head"+strconv.Itoa(i)+".w", H, h.choices, false)
			h.b = add("head"+strconv.Itoa(i)+".b", 1, h.choices, false)
		}
		if embedded[i] {
			h.emb = add("head"+strconv.Itoa(i)+".emb", h.choices, H, false)
		}
	}
	if m.nSkips > 0 {
		m.wPrev = add("attn.wprev", H, H, false)
		m.wCurr = add("attn.wcurr", H, H, false)
		m.v = add("attn.v", H, 1, true)
	}
	r := opt.InitRange
	for _, p := range m.params {
		for i := range p.data {
			p.data[i] = (2*init.Float64() - 1) * r
		}
	}
	return m, nil
}

// numWeights is the number of scalar weights.
func (m *model) numWeights() int {
	n := 0
	for _, p := range m.params {
		n += p.size()
	}
	return n
}

// work is scratch space for one forward pass.
type work struct {
	h, c    [][]float64 // per LSTM layer
	z       []float64   // 4H
	x       []float64   // the step's input, H
	logits  []float64
	probs   []float64
	anchor  [][]float64 // per slot: top hidden state h_j
	aPrev   [][]float64 // per slot: W_prev·h_j (only slots read as j)
	curr    []float64   // W_curr·h_i
	actions []int
	skipKL  float64 // Σ over the skips of KL(Bernoulli(p) ‖ Bernoulli(target)), of the last forward
}

func (m *model) newWork() *work {
	H := m.h
	w := &work{z: make([]float64, 4*H), x: make([]float64, H), curr: make([]float64, H), actions: make([]int, len(m.decisions))}
	maxC := 2
	for _, h := range m.heads {
		maxC = max(maxC, h.choices)
	}
	w.logits = make([]float64, maxC)
	w.probs = make([]float64, maxC)
	for range m.l {
		w.h = append(w.h, make([]float64, H))
		w.c = append(w.c, make([]float64, H))
	}
	for range m.anchors {
		w.anchor = append(w.anchor, make([]float64, H))
		w.aPrev = append(w.aPrev, make([]float64, H))
	}
	return w
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// softplus is log(1+eˣ) computed as Gorgonia 0.9.18 computes it.
func softplus(x float64) float64 {
	if x < -708 {
		return 0
	}
	if x > 16 {
		return x
	}
	return math.Log1p(math.Exp(x))
}

// vecMat sets out = x·W (+ b) for W rows×cols row-major, len(x) = rows.
func vecMat(out, x []float64, w *param, b *param) {
	if b != nil {
		copy(out[:w.cols], b.data)
	} else {
		clear(out[:w.cols])
	}
	addVecMat(out, x, w)
}

// addVecMat adds x·W to out.
func addVecMat(out, x []float64, w *param) {
	cols := w.cols
	for i, xi := range x {
		if xi == 0 {
			continue
		}
		floats.AddScaled(out[:cols], xi, w.data[i*cols:(i+1)*cols])
	}
}

// transform applies temperature and tanh clipping to logits in place.
func (m *model) transform(l []float64) {
	for i := range l {
		x := l[i]
		if m.invTemp != 1 {
			x *= m.invTemp
		}
		if m.tanhC > 0 {
			x = math.Tanh(x*(1/m.tanhC)) * m.tanhC
		}
		l[i] = x
	}
}

// forward runs the policy over one sequence. pick chooses decision k's
// action given its probabilities (sampling), or returns a fixed one
// (scoring). It returns the sequence's log-probability and the sum of the
// decisions' entropies, and leaves the actions in w.actions.
func (m *model) forward(w *work, pick func(k int, probs []float64) int) (logp, ent float64) {
	H := m.h
	clear(w.actions)
	w.skipKL = 0
	for l := range m.l {
		clear(w.h[l])
		clear(w.c[l])
	}
	copy(w.x, m.start.data)
	for s, st := range m.steps {
		// LSTM: z = x·Wx + h·Wh + b; gates i, f, g, o.
		x := w.x
		for l := range m.l {
			for k := range 4 {
				if s == 0 && k == 1 {
					continue // the forget gate multiplies the zero initial cell
				}
				zk := w.z[k*H : (k+1)*H]
				vecMat(zk, x, m.wx[l][k], m.b[l][k])
				if s > 0 {
					addVecMat(zk, w.h[l], m.wh[l][k])
				}
			}
			h, c := w.h[l], w.c[l]
			for j := range H {
				ig, gg, og := sigmoid(w.z[j]), math.Tanh(w.z[2*H+j]), sigmoid(w.z[3*H+j])
				if s == 0 {
					c[j] = ig * gg
				} else {
					c[j] = sigmoid(w.z[H+j])*c[j] + ig*gg
				}
				h[j] = og * math.Tanh(c[j])
			}
			x = h
		}
		top := x
		last := s+1 == len(m.steps)
		if st.dec >= 0 {
			k := st.dec
			hd := &m.heads[m.dec[k].head]
			a := 0
			if hd.choices > 1 {
				lg := w.logits[:hd.choices]
				vecMat(lg, top, hd.w, hd.b)
				m.transform(lg)
				mx := lg[0]
				for _, v := range lg[1:] {
					mx = max(mx, v)
				}
				sum := 0.0
				for _, v := range lg {
					sum += math.Exp(v - mx)
				}
				lse := mx + math.Log(sum)
				for i := range lg {
					lg[i] -= lse // log-probabilities
				}
				for _, v := range lg {
					ent -= math.Exp(v) * v
				}
				probs := w.probs[:hd.choices]
				for i, v := range lg {
					probs[i] = math.Exp(v)
				}
				a = pick(k, probs)
				logp += lg[a]
			} else {
				w.probs[0] = 1
				a = pick(k, w.probs[:1])
			}
			w.actions[k] = a
			if !last {
				copy(w.x, hd.emb.data[a*H:(a+1)*H])
			}
			continue
		}
		// Anchor step.
		copy(w.anchor[st.anchor], top)
		if m.anchorUsedJ[st.anchor] {
			vecMat(w.aPrev[st.anchor], top, m.wPrev, nil)
		}
		if len(st.skips) == 0 {
			copy(w.x, m.start.data)
			continue
		}
		vecMat(w.curr, top, m.wCurr, nil)
		clear(w.x)
		n := 0.0
		for _, sk := range st.skips {
			ap := w.aPrev[sk.from]
			z := 0.0
			for j, vj := range m.v.data {
				z += vj * math.Tanh(ap[j]+w.curr[j])
			}
			zz := [1]float64{z}
			m.transform(zz[:])
			z = zz[0]
			p := sigmoid(z)
			probs := w.probs[:2]
			probs[0], probs[1] = 1-p, p
			a := pick(sk.dec, probs)
			w.actions[sk.dec] = a
			if a == 1 {
				logp -= softplus(-z)
				for j, v := range w.anchor[sk.from] {
					w.x[j] += v
				}
				n++
			} else {
				logp -= softplus(z)
			}
			ent += softplus(z) - p*z
			if m.skipWeight > 0 { // log p = −softplus(−z), log(1−p) = −softplus(z)
				t := m.skipTarget
				w.skipKL += p*(-softplus(-z)-math.Log(t)) + (1-p)*(-softplus(z)-math.Log(1-t))
			}
		}
		for j := range w.x {
			w.x[j] /= 1 + n
		}
	}
	return logp, ent
}

// sample draws one sequence of actions with r; it returns the actions (a
// fresh slice), their log-probability and the entropy.
func (m *model) sample(w *work, r *rand.Rand) ([]int, float64, float64) {
	logp, ent := m.forward(w, func(_ int, probs []float64) int {
		u := r.Float64()
		for i, p := range probs {
			u -= p
			if u < 0 {
				return i
			}
		}
		return len(probs) - 1
	})
	return append([]int(nil), w.actions...), logp, ent
}

// score returns the log-probability and entropy of a given sequence.
func (m *model) score(w *work, actions []int) (float64, float64) {
	return m.forward(w, func(k int, _ []float64) int { return actions[k] })
}

package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"nasd/arch"
	"nasd/train/dataset"
)

// LMConfig configures a word-level recurrent language model: embedding →
// recurrent cell (unrolled over BPTT steps, state carried across windows) →
// dense decoder → softmax cross-entropy, trained by SGD with gradient-norm
// clipping and the usual language-model schedule (Zaremba et al. 2014; the
// PyTorch word_language_model example): the learning rate is divided by
// Anneal whenever an epoch's validation perplexity does not improve.
type LMConfig struct {
	Epochs    int     `json:"epochs" toml:"epochs"`
	Steps     int     `json:"steps,omitempty" toml:"steps"` // windows; 0 = no limit
	Batch     int     `json:"batch" toml:"batch"`           // parallel streams
	EvalBatch int     `json:"eval_batch" toml:"eval_batch"` // streams when evaluating
	BPTT      int     `json:"bptt" toml:"bptt"`             // steps per window
	LR        float64 `json:"lr" toml:"lr"`
	Anneal    float64 `json:"anneal" toml:"anneal"` // LR ÷ this when validation perplexity stalls; 1 = never
	Clip      float64 `json:"clip" toml:"clip"`     // global gradient norm; 0 = off
	// InitRange: embedding and decoder weights start uniform in ±InitRange;
	// the cell's in ±1/√hidden (PyTorch's nn.LSTM initialisation).
	InitRange float64 `json:"init_range" toml:"init_range"`
	Tie       bool    `json:"tie,omitempty" toml:"tie"`               // decoder weight = embedding (needs embed = hidden)
	DropEmbed float64 `json:"drop_embed,omitempty" toml:"drop_embed"` // dropout on the cell's input
	DropOut   float64 `json:"drop_out,omitempty" toml:"drop_out"`     // dropout on the cell's output, before the decoder
	// StateClip scales each stream's h_t down to this norm after every step
	// (0: off), the scale a constant to the gradient: the guard against
	// cells whose state grows without bound (ReLU and identity nodes in
	// enas-rnn), as ENAS re-implementations do (norm 25).
	StateClip float64 `json:"state_clip,omitempty" toml:"state_clip"`
	// RewardC is c in the search reward c / validation perplexity (ENAS: 80).
	RewardC  float64 `json:"reward_c" toml:"reward_c"`
	EvalTest bool    `json:"eval_test" toml:"eval_test"`
}

// DefaultLMConfig returns sizes that train on 2 cores: 20 streams of 35
// steps, SGD at 20 annealed by 4, clipping at 0.25 as ENAS, initialisation
// ±0.1, 6 epochs; reward constant 80 (ENAS).
func DefaultLMConfig() LMConfig {
	return LMConfig{Epochs: 6, Batch: 20, EvalBatch: 10, BPTT: 35, LR: 20, Anneal: 4, Clip: 0.25, InitRange: 0.1, RewardC: 80}
}

// Validate names every bad field and its value.
func (c LMConfig) Validate() error {
	var errs []error
	bad := func(field string, v any, why string) {
		errs = append(errs, &arch.FieldError{Path: []string{field}, Msg: fmt.Sprintf("train: lm config %s = %v: %s", field, v, why)})
	}
	pos := func(field string, v int) {
		if v < 1 {
			bad(field, v, "must be ≥ 1")
		}
	}
	if c.Epochs < 0 {
		bad("epochs", c.Epochs, "must be ≥ 0")
	}
	if c.Steps < 0 {
		bad("steps", c.Steps, "must be ≥ 0 (0 = no limit)")
	}
	if c.Epochs == 0 && c.Steps == 0 {
		errs = append(errs, errors.New("train: lm config epochs and steps are both 0: set a budget"))
	}
	pos("batch", c.Batch)
	pos("eval_batch", c.EvalBatch)
	pos("bptt", c.BPTT)
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	if !finite(c.LR) || c.LR <= 0 {
		bad("lr", c.LR, "must be a finite number > 0")
	}
	if !finite(c.Anneal) || c.Anneal < 1 {
		bad("anneal", c.Anneal, "must be ≥ 1 (1 = never)")
	}
	if !finite(c.Clip) || c.Clip < 0 {
		bad("clip", c.Clip, "must be ≥ 0 (0 = off)")
	}
	if !finite(c.InitRange) || c.InitRange <= 0 {
		bad("init_range", c.InitRange, "must be > 0")
	}
	for _, d := range []struct {
		name string
		v    float64
	}{{"drop_embed", c.DropEmbed}, {"drop_out", c.DropOut}} {
		if !finite(d.v) || d.v < 0 || d.v >= 1 {
			bad(d.name, d.v, "must be in [0, 1)")
		}
	}
	if !finite(c.StateClip) || c.StateClip < 0 {
		bad("state_clip", c.StateClip, "must be ≥ 0 (0 = off)")
	}
	if !finite(c.RewardC) || c.RewardC <= 0 {
		bad("reward_c", c.RewardC, "must be > 0")
	}
	return errors.Join(errs...)
}

// LMEpoch is one epoch of language-model training.
type LMEpoch struct {
	Epoch    int     `json:"epoch"`
	TrainPPL float64 `json:"train_ppl"`
	ValPPL   float64 `json:"val_ppl"`
	LR       float64 `json:"lr"`
	Seconds  float64 `json:"seconds"`
}

// LMResult is a trained language model's record.
type LMResult struct {
	Status       string    `json:"status"`
	Reason       string    `json:"reason,omitempty"`
	Epochs       []LMEpoch `json:"epochs"`
	BestValPPL   float64   `json:"best_val_ppl"`
	Reward       float64   `json:"reward"` // RewardC / BestValPPL
	TestPPL      *float64  `json:"test_ppl,omitempty"`
	Params       int       `json:"params"`
	Steps        int       `json:"steps"` // windows trained
	TokensPerSec float64   `json:"tokens_per_sec"`
	WallSeconds  float64   `json:"wall_seconds"`
}

// LMReward is the search reward of a language model: c / perplexity (ENAS
// uses c = 80), so lower perplexity is a higher reward; 0 for a perplexity
// that is not a finite positive number.
func LMReward(c, ppl float64) float64 {
	if !(ppl > 0) || math.IsInf(ppl, 0) {
		return 0
	}
	return c / ppl
}

// LMProgress reports training: after every window, and with EpochDone after
// each epoch's validation.
type LMProgress struct {
	Epoch, Epochs  int
	Window         int
	WindowsInEpoch int
	Loss           float64 // mean NLL per token of the window
	EpochDone      *LMEpoch
}

// lm is the model: one flat parameter buffer [embedding | cell | decoder |
// decoder bias] and its gradient, so clipping and SGD are one loop each.
type lm struct {
	cfg        LMConfig
	vocab      int
	embed, hid int
	spec       cellSpec
	params     []float32
	grads      []float32
	emb, dec   int // offsets; dec == emb when tied
	cell, bias int
	rng        *rand.PCG // dropout masks
}

const (
	saltLMInit = 0x6e617364_6c6d696e // "nasdlmin"
	saltLMDrop = 0x6e617364_6c6d6472 // "nasdlmdr"
)

func newLM(spec cellSpec, vocab, embed, hidden int, cfg LMConfig, seed uint64) (*lm, error) {
	if cfg.Tie && embed != hidden {
		return nil, fmt.Errorf("train: lm: tie needs embed = hidden, have %d and %d", embed, hidden)
	}
	m := &lm{cfg: cfg, vocab: vocab, embed: embed, hid: hidden, spec: spec, rng: rand.NewPCG(mix(seed, saltLMDrop), saltLMDrop)}
	n := vocab * embed
	m.cell = n
	n += spec.nparams
	m.dec = n
	if cfg.Tie {
		m.dec = m.emb
	} else {
		n += vocab * hidden
	}
	m.bias = n
	n += vocab
	m.params, m.grads = make([]float32, n), make([]float32, n)
	r := rand.New(rand.NewPCG(mix(seed, saltLMInit), saltLMInit))
	uniform := func(p []float32, a float64) {
		for i := range p {
			p[i] = float32((r.Float64()*2 - 1) * a)
		}
	}
	uniform(m.params[m.emb:m.emb+vocab*embed], cfg.InitRange)
	uniform(m.params[m.cell:m.cell+spec.nparams], 1/math.Sqrt(float64(hidden)))
	if !cfg.Tie {
		uniform(m.params[m.dec:m.dec+vocab*hidden], cfg.InitRange)
	}
	return m, nil
}

// lmRun holds the buffers of one batch size: a window's activations.
type lmRun struct {
	m        *lm
	batch    int
	cell     *cellExec[float32]
	x        [][]float32 // per step: batch×embed inputs (after dropout)
	xmask    [][]float32 // per step: embedding dropout masks
	hs       []float32   // T·batch×hidden outputs (after dropout), the decoder's input
	hc       [][]float32 // per step: h_t after the state clip (StateClip > 0)
	hscale   [][]float32 // per step and stream: the clip's scale
	hmask    []float32
	logits   []float32 // T·batch×vocab, then its gradient
	dhs      []float32
	h, c     []float32 // state carried between windows
	h0, c0   []float32 // the window's initial state, which the cell's backward reads
	dh, dc   []float32
	dhp, dcp []float32
	dx       []float32
	ids, tgt []int32
	sm       lmSoftmax // the decoder's softmax and loss, rows in parallel
	gb       lmBiasGrad
}

func (m *lm) newRun(batch int) (*lmRun, error) {
	T := m.cfg.BPTT
	e, err := newCellExec(m.spec, batch, T, m.params[m.cell:m.cell+m.spec.nparams], m.grads[m.cell:m.cell+m.spec.nparams])
	if err != nil {
		return nil, err
	}
	r := &lmRun{m: m, batch: batch, cell: e,
		hs: make([]float32, T*batch*m.hid), hmask: make([]float32, T*batch*m.hid), logits: make([]float32, T*batch*m.vocab),
		dhs: make([]float32, T*batch*m.hid), h: make([]float32, batch*m.hid), dh: make([]float32, batch*m.hid),
		dhp: make([]float32, batch*m.hid), dx: make([]float32, batch*m.embed), ids: make([]int32, T*batch), tgt: make([]int32, T*batch),
		h0: make([]float32, batch*m.hid)}
	r.sm.rowNLL = make([]float64, T*batch)
	if m.spec.mem >= 0 {
		r.c, r.dc, r.dcp = make([]float32, batch*m.hid), make([]float32, batch*m.hid), make([]float32, batch*m.hid)
		r.c0 = make([]float32, batch*m.hid)
	}
	for range T {
		r.x = append(r.x, make([]float32, batch*m.embed))
		r.xmask = append(r.xmask, make([]float32, batch*m.embed))
		if m.cfg.StateClip > 0 {
			r.hc = append(r.hc, make([]float32, batch*m.hid))
			r.hscale = append(r.hscale, make([]float32, batch))
		}
	}
	return r, nil
}

// reset zeroes the carried state (a new epoch or split).
func (r *lmRun) reset() {
	clear(r.h)
	clear(r.c)
}

// dropMask fills mask with 0 (probability p) or 1/(1−p) and multiplies v by it.
func (m *lm) dropMask(v, mask []float32, p float64) {
	cut, scale := uint64(p*(1<<53)), float32(1/(1-p))
	for i := range v {
		k := scale
		if m.rng.Uint64()>>11 < cut {
			k = 0
		}
		mask[i] = k
		v[i] *= k
	}
}

// window runs steps T of the streams in r.ids/r.tgt from the carried state,
// carries the state on and returns the summed NLL; with train, it also adds
// the gradient of the mean NLL per token into m.grads.
func (r *lmRun) window(T int, train bool) float64 {
	m, B, E, H, V := r.m, r.batch, r.m.embed, r.m.hid, r.m.vocab
	emb := m.params[m.emb : m.emb+V*E]
	copy(r.h0, r.h)
	copy(r.c0, r.c)
	h, c := r.h0, r.c0
	for t := range T {
		x := r.x[t]
		for b := range B {
			id := int(r.ids[t*B+b])
			copy(x[b*E:(b+1)*E], emb[id*E:(id+1)*E])
		}
		if train && m.cfg.DropEmbed > 0 {
			m.dropMask(x, r.xmask[t], m.cfg.DropEmbed)
		}
		h, c = r.cell.forward(t, x, h, c)
		if m.cfg.StateClip > 0 {
			h = clipRows(r.hc[t], r.hscale[t], h, H, m.cfg.StateClip)
		}
		copy(r.hs[t*B*H:(t+1)*B*H], h)
	}
	copy(r.h, h)
	if c != nil {
		copy(r.c, c)
	}
	N := T * B
	hs := r.hs[:N*H]
	if train && m.cfg.DropOut > 0 {
		m.dropMask(hs, r.hmask[:N*H], m.cfg.DropOut)
	}
	dec, bias := m.params[m.dec:m.dec+V*H], m.params[m.bias:m.bias+V]
	logits := r.logits[:N*V]
	gemm(false, true, N, V, H, 1, hs, H, dec, H, 0, logits, V)
	// With train, logits become dNLL/dlogits (softmax − one-hot) averaged over
	// the N tokens.
	nll := r.sm.run(logits, bias, r.tgt[:N], V, train, float32(1/float64(N)))
	if !train {
		return nll
	}
	gdec, gbias := m.grads[m.dec:m.dec+V*H], m.grads[m.bias:m.bias+V]
	r.gb.run(gbias, logits, N)
	gemm(true, false, V, H, N, 1, logits, V, hs, H, 1, gdec, H)
	dhs := r.dhs[:N*H]
	gemm(false, false, N, H, V, 1, logits, V, dec, H, 0, dhs, H)
	if m.cfg.DropOut > 0 {
		for i, k := range r.hmask[:N*H] {
			dhs[i] *= k
		}
	}
	gemb := m.grads[m.emb : m.emb+V*E]
	clear(r.dh)
	clear(r.dc)
	var dc, dcp []float32
	if r.c != nil {
		dc, dcp = r.dc, r.dcp
	}
	for t := T - 1; t >= 0; t-- {
		addInto(r.dh, dhs[t*B*H:(t+1)*B*H])
		if m.cfg.StateClip > 0 {
			for b, k := range r.hscale[t] {
				for i := b * H; i < (b+1)*H; i++ {
					r.dh[i] *= k
				}
			}
		}
		r.cell.backward(t, r.dh, dc, r.dx, r.dhp, dcp)
		r.dh, r.dhp = r.dhp, r.dh
		if dc != nil {
			dc, dcp = dcp, dc
		}
		if m.cfg.DropEmbed > 0 {
			for i, k := range r.xmask[t] {
				r.dx[i] *= k
			}
		}
		for b := range B {
			id := int(r.ids[t*B+b])
			addInto(gemb[id*E:(id+1)*E], r.dx[b*E:(b+1)*E])
		}
	}
	return nll
}

// clipRows writes h into dst with each row of n scaled to norm at most
// maxNorm, the scales into scale, and returns dst.
func clipRows(dst, scale, h []float32, n int, maxNorm float64) []float32 {
	for b := range scale {
		row := h[b*n : (b+1)*n]
		ss := 0.0
		for _, v := range row {
			ss += float64(v) * float64(v)
		}
		k := float32(1)
		if norm := math.Sqrt(ss); norm > maxNorm {
			k = float32(maxNorm / norm)
		}
		scale[b] = k
		for i, v := range row {
			dst[b*n+i] = v * k
		}
	}
	return dst
}

// lmSoftmax turns the decoder's logits (+ bias) into probabilities in place,
// row by row, and sums the targets' NLL; with grad, the logits become the
// gradient of the NLL averaged over the rows, (softmax − one-hot)·scale. The
// rows run in parallel (it was ~45 % of a window on one thread) and each
// row's NLL is kept apart and summed in row order, so nothing depends on
// the thread count.
type lmSoftmax struct {
	logits, bias []float32
	tgt          []int32
	V            int
	grad         bool
	scale        float32
	rowNLL       []float64
	par          parDone
}

func (s *lmSoftmax) run(logits, bias []float32, tgt []int32, V int, grad bool, scale float32) float64 {
	s.logits, s.bias, s.tgt, s.V, s.grad, s.scale = logits, bias, tgt, V, grad, scale
	parRange(len(tgt), 4*V, s, &s.par)
	nll := 0.0
	for _, v := range s.rowNLL[:len(tgt)] {
		nll += v
	}
	s.logits, s.bias, s.tgt = nil, nil, nil
	return nll
}

func (s *lmSoftmax) runRange(_, lo, hi int) {
	V, bias := s.V, s.bias
	for i := lo; i < hi; i++ {
		y := s.tgt[i]
		row := s.logits[i*V : (i+1)*V]
		mx := float32(math.Inf(-1))
		for j := range row {
			row[j] += bias[j]
			mx = max(mx, row[j])
		}
		sum := 0.0
		zy := float64(row[y] - mx) // from the logit: a float32 probability can underflow to 0
		for j, v := range row {
			e := expNeg32(v - mx)
			row[j] = e
			sum += float64(e)
		}
		s.rowNLL[i] = math.Log(sum) - zy
		if s.grad {
			// ((e·inv) − [j = y])·scale, each step rounded to float32.
			inv, scale := float32(1/sum), s.scale
			py := float32(row[y] * inv)
			for j, v := range row {
				row[j] = float32(float32(v*inv) * scale)
			}
			row[y] = float32(float32(py-1) * scale)
		}
	}
}

// expNeg32 is e^x for x ≤ 0 in float32, within 2 ulp of float32(math.Exp(x))
// (TestExpNeg32), 0 below −87.3 where that would be subnormal: the
// softmax's exponentials, a quarter of an LM window with math.Exp in
// float64. Cody–Waite reduction x = n·ln 2 + r, |r| ≤ ln 2 / 2, then Cephes'
// degree-6 polynomial for e^r; every product is rounded to float32 (no FMA
// fusion), so every machine gives the same bits.
func expNeg32(x float32) float32 {
	if !(x >= -87.33654) { // and NaN
		if x != x {
			return x
		}
		return 0
	}
	const (
		log2e = 1.44269504088896341
		ln2Hi = 0.693359375
		ln2Lo = -2.12194440e-4
	)
	n := float32(math.Floor(float64(float32(x*log2e)) + 0.5))
	r := float32(float32(x-float32(n*ln2Hi)) - float32(n*ln2Lo))
	p := float32(1.9875691500e-4)
	p = float32(float32(p*r) + 1.3981999507e-3)
	p = float32(float32(p*r) + 8.3334519073e-3)
	p = float32(float32(p*r) + 4.1665795894e-2)
	p = float32(float32(p*r) + 1.6666665459e-1)
	p = float32(float32(p*r) + 5.0000001201e-1)
	e := float32(float32(float32(p*float32(r*r))+r) + 1)
	return e * math.Float32frombits(uint32(int32(n)+127)<<23)
}

// lmBiasGrad adds the rows of the logits' gradient into the decoder bias's
// gradient. Threads take ranges of the vocabulary, and each element adds its
// rows in row order, so the sums do not depend on the thread count.
type lmBiasGrad struct {
	gbias, logits []float32
	rows          int
	par           parDone
}

func (g *lmBiasGrad) run(gbias, logits []float32, rows int) {
	g.gbias, g.logits, g.rows = gbias, logits, rows
	parRange(len(gbias), rows, g, &g.par)
	g.gbias, g.logits = nil, nil
}

func (g *lmBiasGrad) runRange(_, lo, hi int) {
	V := len(g.gbias)
	for i := range g.rows {
		addInto(g.gbias[lo:hi], g.logits[i*V+lo:i*V+hi])
	}
}

// clipAndStep clips the gradient to the global norm cfg.Clip and takes an
// SGD step; it returns the norm before clipping.
func (m *lm) clipAndStep(lr float64) float64 {
	norm, scale := clipScale(m.grads, m.cfg.Clip)
	k := float32(lr * scale)
	for i, g := range m.grads {
		m.params[i] -= k * g
	}
	return norm
}

// clipScale returns g's global norm and the factor that brings it down to
// maxNorm (1 when it is within it, or maxNorm is 0).
func clipScale(g []float32, maxNorm float64) (norm, scale float64) {
	ss := 0.0
	for _, v := range g {
		ss += float64(v) * float64(v)
	}
	norm = math.Sqrt(ss)
	if maxNorm > 0 && norm > maxNorm {
		return norm, maxNorm / norm
	}
	return norm, 1
}

// evaluate returns the perplexity of ids with a fresh state.
func (m *lm) evaluate(ctx context.Context, r *lmRun, ids []int32) (float64, error) {
	st, err := dataset.NewStreams(ids, r.batch, m.cfg.BPTT)
	if err != nil {
		return 0, err
	}
	r.reset()
	nll, n := 0.0, 0
	for T := st.Next(r.ids, r.tgt); T > 0; T = st.Next(r.ids, r.tgt) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		nll += r.window(T, false)
		n += T * r.batch
	}
	return math.Exp(nll / float64(n)), nil
}

// TrainLM trains a language model whose recurrent cell is the lowered cell
// graph g (a nas-rnn or enas-rnn architecture, or LSTMCell) on text, and
// scores it by validation perplexity. The same inputs and seed give the same
// result.
func TrainLM(ctx context.Context, g *arch.Graph, text *dataset.Text, cfg LMConfig, seed uint64, progress func(LMProgress)) (LMResult, error) {
	return TrainLMHooked(ctx, g, text, cfg, seed, LMHooks{Progress: progress})
}

// LMHooks are TrainLMHooked's callbacks; nil ones are skipped.
type LMHooks struct {
	Progress func(LMProgress)
	// EpochEnd sees each epoch after its validation; true stops training
	// there with status "stopped" (early stopping).
	EpochEnd func(LMEpoch) (stop bool)
}

// TrainLMHooked is TrainLM with hooks.
func TrainLMHooked(ctx context.Context, g *arch.Graph, text *dataset.Text, cfg LMConfig, seed uint64, hooks LMHooks) (LMResult, error) {
	progress := hooks.Progress
	res := LMResult{Status: StatusError}
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	spec, err := cellSpecOf(g)
	if err != nil {
		return res, err
	}
	m, err := newLM(spec, len(text.Vocab), g.Input.C, g.Hidden, cfg, seed)
	if err != nil {
		return res, err
	}
	res.Params = len(m.params)
	train, err := m.newRun(cfg.Batch)
	if err != nil {
		return res, err
	}
	eval, err := m.newRun(cfg.EvalBatch)
	if err != nil {
		return res, err
	}
	st, err := dataset.NewStreams(text.Train, cfg.Batch, cfg.BPTT)
	if err != nil {
		return res, fmt.Errorf("train: lm: training split: %w", err)
	}
	start := time.Now()
	var trainTime float64
	tokens := 0
	lr := cfg.LR
	best := math.Inf(1)
	finish := func(status, reason string) (LMResult, error) {
		res.Status, res.Reason = status, reason
		res.WallSeconds = time.Since(start).Seconds()
		if trainTime > 0 {
			res.TokensPerSec = float64(tokens) / trainTime
		}
		if len(res.Epochs) > 0 {
			res.BestValPPL = best
			res.Reward = LMReward(cfg.RewardC, best)
		}
		return res, nil
	}
	for epoch := 1; cfg.Epochs == 0 || epoch <= cfg.Epochs; epoch++ {
		t0 := time.Now()
		train.reset()
		nll, n, w := 0.0, 0, 0
		for T := st.Next(train.ids, train.tgt); T > 0; T = st.Next(train.ids, train.tgt) {
			if err := ctx.Err(); err != nil {
				return finish(ctxStatus(err), err.Error())
			}
			s := time.Now()
			clear(m.grads)
			l := train.window(T, true)
			if math.IsNaN(l) || math.IsInf(l, 0) {
				return finish(StatusDiverged, fmt.Sprintf("epoch %d window %d: loss %v", epoch, w+1, l))
			}
			m.clipAndStep(lr)
			trainTime += time.Since(s).Seconds()
			tokens += T * cfg.Batch
			nll += l
			n += T * cfg.Batch
			w++
			res.Steps++
			if progress != nil {
				progress(LMProgress{Epoch: epoch, Epochs: cfg.Epochs, Window: w, WindowsInEpoch: st.WindowsPerEpoch(), Loss: l / float64(T*cfg.Batch)})
			}
			if cfg.Steps > 0 && res.Steps >= cfg.Steps {
				break
			}
		}
		val, err := m.evaluate(ctx, eval, text.Val)
		if err != nil {
			if ctx.Err() != nil {
				return finish(ctxStatus(ctx.Err()), ctx.Err().Error())
			}
			return res, fmt.Errorf("train: lm: validation split: %w", err)
		}
		e := LMEpoch{Epoch: epoch, TrainPPL: math.Exp(nll / float64(max(n, 1))), ValPPL: val, LR: lr, Seconds: time.Since(t0).Seconds()}
		res.Epochs = append(res.Epochs, e)
		if progress != nil {
			progress(LMProgress{Epoch: epoch, Epochs: cfg.Epochs, EpochDone: &e})
		}
		if val < best {
			best = val
		} else {
			lr /= cfg.Anneal
		}
		if hooks.EpochEnd != nil && hooks.EpochEnd(e) {
			return finish(StatusStopped, fmt.Sprintf("stopped after epoch %d", epoch))
		}
		if cfg.Steps > 0 && res.Steps >= cfg.Steps {
			break
		}
	}
	if cfg.EvalTest {
		p, err := m.evaluate(ctx, eval, text.Test)
		if err != nil {
			if ctx.Err() != nil {
				return finish(ctxStatus(ctx.Err()), ctx.Err().Error())
			}
			return res, fmt.Errorf("train: lm: test split: %w", err)
		}
		res.TestPPL = &p
	}
	return finish(StatusOK, "")
}

// ctxStatus names why a context ended.
func ctxStatus(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return StatusTimeout
	}
	return StatusCanceled
}

// cellKinds maps the parameter-free arch primitives to the executor's.
var cellKinds = map[arch.Kind]cellKind{
	arch.KindAdd: cellAdd, arch.KindMul: cellMul, arch.KindMean: cellMean, arch.KindTanh: cellTanh,
	arch.KindSigmoid: cellSigmoid, arch.KindReLU: cellReLU, arch.KindIdentity: cellIdentity,
	arch.KindHighway: cellHighway, arch.KindConcat: cellConcat,
}

// cellSpecOf lowers a cell graph (arch: Graph.Hidden > 0) to the executor's
// nodes, giving each linear node its parameters in order.
func cellSpecOf(g *arch.Graph) (cellSpec, error) {
	stats, err := g.Infer()
	if err != nil {
		return cellSpec{}, err
	}
	if g.Hidden < 1 {
		return cellSpec{}, errors.New("train: lm: the architecture is not a recurrent cell (use the nas-rnn or enas-rnn space, or -cell lstm)")
	}
	spec := cellSpec{out: len(g.Nodes) - 1, mem: -1}
	if g.Memory > 0 {
		spec.mem = g.Memory
	}
	for i, n := range g.Nodes {
		node := cellNode{in: n.Inputs, size: stats[i].Shape.C, w: -1, b: -1}
		switch n.Op.Kind {
		case arch.KindCellInput:
			switch n.Op.Signal {
			case arch.SignalX:
				node.kind = cellX
			case arch.SignalH:
				node.kind = cellH
			default:
				node.kind = cellC
			}
		case arch.KindLinear:
			node.kind = cellLinear
			node.w = spec.nparams
			spec.nparams += stats[n.Inputs[0]].Shape.C * n.Op.Out
			if n.Op.Bias {
				node.b = spec.nparams
				spec.nparams += n.Op.Out
			}
		default:
			k, ok := cellKinds[n.Op.Kind]
			if !ok {
				return cellSpec{}, fmt.Errorf("train: lm: node %d (%s): %s is not a cell primitive", i, n.Layer, n.Op.Kind)
			}
			node.kind = k
		}
		spec.nodes = append(spec.nodes, node)
	}
	return spec, nil
}

// LSTMCell is the standard LSTM (Hochreiter & Schmidhuber 1997, with a
// forget gate) as a cell graph of embed inputs and hidden units: the
// baseline the searched cells are compared with.
func LSTMCell(embed, hidden int) *arch.Graph {
	g := &arch.Graph{Input: arch.Shape{C: embed, H: 1, W: 1}, Hidden: hidden}
	add := func(op arch.Op, layer string, in ...int) int {
		g.Nodes = append(g.Nodes, arch.Node{Op: op, Inputs: in, Layer: layer})
		return len(g.Nodes) - 1
	}
	x := add(arch.Op{Kind: arch.KindCellInput, Signal: arch.SignalX}, "x_t")
	h := add(arch.Op{Kind: arch.KindCellInput, Signal: arch.SignalH}, "h_{t-1}")
	c := add(arch.Op{Kind: arch.KindCellInput, Signal: arch.SignalC}, "c_{t-1}")
	gate := func(name string, act arch.Kind) int {
		s := add(arch.Op{Kind: arch.KindAdd}, name,
			add(arch.Op{Kind: arch.KindLinear, Out: hidden, Bias: true}, name, x),
			add(arch.Op{Kind: arch.KindLinear, Out: hidden}, name, h))
		return add(arch.Op{Kind: act}, name, s)
	}
	i, f := gate("input gate", arch.KindSigmoid), gate("forget gate", arch.KindSigmoid)
	o, u := gate("output gate", arch.KindSigmoid), gate("candidate", arch.KindTanh)
	ct := add(arch.Op{Kind: arch.KindAdd}, "c_t",
		add(arch.Op{Kind: arch.KindMul}, "c_t", f, c), add(arch.Op{Kind: arch.KindMul}, "c_t", i, u))
	g.Memory = ct
	add(arch.Op{Kind: arch.KindMul}, "h_t", o, add(arch.Op{Kind: arch.KindTanh}, "h_t", ct))
	return g
}

// lmString is a one-line description for logs.
func (r LMResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: best validation perplexity %.2f", r.Status, r.BestValPPL)
	if r.TestPPL != nil {
		fmt.Fprintf(&b, ", test %.2f", *r.TestPPL)
	}
	return b.String()
}

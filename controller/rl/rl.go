package rl

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"nasd/arch"
	"nasd/controller/strategy"
)

// Names the strategies are registered under.
const (
	Name             = "rl"
	RandomPolicyName = "random-policy"
)

func init() {
	strategy.Register(Name, func(env strategy.Env) (strategy.Strategy, error) { return New(env) })
	strategy.Register(RandomPolicyName, func(env strategy.Env) (strategy.Strategy, error) { return NewRandomPolicy(env) })
}

// The PCGs' second seed words: fixed constants, so the run seed alone picks
// the sequences. Sampling and initialisation use separate streams.
const (
	sampleStream = 0x6e617364_726c7361 // "nasdrlsa"
	initStream   = 0x6e617364_726c696e // "nasdrlin"
)

// Adam's constants (Kingma & Ba 2015, §2 defaults).
const (
	adamBeta1 = 0.9
	adamBeta2 = 0.999
	adamEps   = 1e-8
)

// UpdateInfo describes the last completed batch, for the loop to log.
type UpdateInfo = strategy.UpdateStats

// Strategy is the NAS controller of Zoph & Le 2017, or with learn false the
// same sampler never updated ("random-policy"). It is a pure state machine:
// all randomness comes from PCGs seeded with Env.Seed. It never waits:
// Propose always returns n trials.
type Strategy struct {
	name  string
	learn bool
	space arch.Space
	seed  uint64
	opt   Options
	m     *model
	w     *work
	pcg   *rand.PCG
	rng   *rand.Rand
	graph *batchGraph

	next     int // number of the next trial
	batch    int // results per update; 0 until the first Propose sets it
	updates  int
	baseline float64
	haveBase bool
	adamM    [][]float64 // per model.params
	adamV    [][]float64
	adamT    int
	pending  map[string]*trialRec
	observed []obsRec // of the current batch, in observation order
	last     UpdateInfo
}

// trialRec is a proposed trial awaiting its result.
type trialRec struct {
	N       int     `json:"n"`
	Actions []int   `json:"actions"`
	At      int     `json:"at"`      // updates done when proposed
	LogP    float64 `json:"logp"`    // under the policy that sampled it
	Entropy float64 `json:"entropy"` // idem
}

// obsRec is an observed trial of the current batch.
type obsRec struct {
	ID        string  `json:"id"`
	trialRec          // fields inlined in JSON
	Reward    float64 `json:"reward"`
	Staleness int     `json:"staleness"`
}

// New makes the "rl" strategy: Zoph & Le's LSTM controller trained with
// REINFORCE.
func New(env strategy.Env) (*Strategy, error) { return newStrategy(Name, true, env) }

// NewRandomPolicy makes "random-policy": the controller at its random
// initialisation, sampled the same way and never updated (Zoph & Le 2017's
// control). It takes the same options.
func NewRandomPolicy(env strategy.Env) (*Strategy, error) {
	return newStrategy(RandomPolicyName, false, env)
}

func newStrategy(name string, learn bool, env strategy.Env) (*Strategy, error) {
	if env.Space == nil {
		return nil, errors.New(name + ": no search space")
	}
	opt, err := ParseOptions(name, env.Options)
	if err != nil {
		return nil, err
	}
	m, err := newModel(env.Space.Decisions(), opt, rand.New(rand.NewPCG(env.Seed, initStream)))
	if err != nil {
		return nil, fmt.Errorf("%s: space %s: %w", name, env.Space.Name(), err)
	}
	pcg := rand.NewPCG(env.Seed, sampleStream)
	s := &Strategy{name: name, learn: learn, space: env.Space, seed: env.Seed, opt: opt, m: m, w: m.newWork(),
		pcg: pcg, rng: rand.New(pcg), next: 1, batch: opt.Batch, pending: map[string]*trialRec{}}
	if learn {
		for _, p := range m.params {
			s.adamM = append(s.adamM, make([]float64, p.size()))
			s.adamV = append(s.adamV, make([]float64, p.size()))
		}
	}
	return s, nil
}

// Name returns "rl" or "random-policy".
func (s *Strategy) Name() string { return s.name }

// Options returns the options in force, defaults filled in.
func (s *Strategy) Options() Options { return s.opt }

// Batch returns the number of results per update; 0 until the first
// Propose fixes it when the batch option is 0.
func (s *Strategy) Batch() int { return s.batch }

// LastUpdate describes the last completed batch; the zero value before the
// first.
func (s *Strategy) LastUpdate() UpdateInfo { return s.last }

// Propose samples n architectures from the controller, IDs in proposal
// order (strategy.TrialID). The first call with n > 0 fixes the batch size
// when the batch option is 0.
func (s *Strategy) Propose(n int) ([]strategy.Trial, error) {
	if n < 0 {
		return nil, fmt.Errorf("%s: Propose(%d): n must be ≥ 0", s.name, n)
	}
	if s.batch == 0 && n > 0 {
		s.batch = n
	}
	out := make([]strategy.Trial, n)
	for i := range out {
		actions, logp, ent := s.m.sample(s.w, s.rng)
		a, err := s.space.Arch(actions)
		if err != nil {
			panic(fmt.Sprintf("%s: sampled an invalid architecture: %v", s.name, err))
		}
		id := strategy.TrialID(s.next)
		s.pending[id] = &trialRec{N: s.next, Actions: actions, At: s.updates, LogP: logp, Entropy: ent}
		s.next++
		out[i] = strategy.Trial{ID: id, Arch: a, Seed: strategy.TrialSeed(s.seed, id)}
	}
	return out, nil
}

// Sample draws n architectures from the current policy without proposing
// trials: nothing awaits a result and no update uses them. ENAS trains its
// shared weights on such children between controller updates (Pham et al.
// 2018, §2.2). The draws advance the sampling stream, which is part of the
// snapshot, so a restored strategy samples what the original would have.
func (s *Strategy) Sample(n int) []arch.Arch {
	out := make([]arch.Arch, max(n, 0))
	for i := range out {
		actions, _, _ := s.m.sample(s.w, s.rng)
		a, err := s.space.Arch(actions)
		if err != nil {
			panic(fmt.Sprintf("%s: sampled an invalid architecture: %v", s.name, err))
		}
		out[i] = a
	}
	return out
}

// reward is the reward REINFORCE uses for r: the worker's for "ok" and
// "stopped" (early-stopped; computed over the epochs run), failure_reward
// for any other status or a non-finite reward.
func (s *Strategy) reward(r strategy.Result) float64 {
	if (r.Status == "ok" || r.Status == "stopped") && !math.IsNaN(r.Reward) && !math.IsInf(r.Reward, 0) {
		return r.Reward
	}
	return s.opt.FailureReward
}

// Observe records the result of a proposed trial; the batch-th result since
// the last update triggers the next update.
func (s *Strategy) Observe(r strategy.Result) error {
	rec, ok := s.pending[r.TrialID]
	if !ok {
		return fmt.Errorf("%s: Observe: trial %q was not proposed or was already observed", s.name, r.TrialID)
	}
	delete(s.pending, r.TrialID)
	s.observed = append(s.observed, obsRec{ID: r.TrialID, trialRec: *rec, Reward: s.reward(r), Staleness: s.updates - rec.At})
	if s.batch > 0 && len(s.observed) >= s.batch {
		return s.update()
	}
	return nil
}

// update makes one REINFORCE step on the observed batch (Zoph & Le 2017,
// eq. 2): ∇ −(1/m)Σ_k (R_k − b)·log P(a_k) − β·(1/m)Σ_k H_k, clipped to
// the global norm grad_clip, then Adam. The baseline b is the EMA of the
// rewards before this batch (the batch's mean for the first batch); it then
// takes in this batch's rewards one by one.
func (s *Strategy) update() error {
	batch := s.observed
	n := len(batch)
	info := UpdateInfo{Updates: s.updates + 1, Batch: n}
	seqs := make([][]int, n)
	wAdv := make([]float64, n)
	wEnt := make([]float64, n)
	for _, o := range batch {
		info.MeanReward += o.Reward / float64(n)
		info.MaxStaleness = max(info.MaxStaleness, o.Staleness)
	}
	if !s.haveBase {
		s.baseline, s.haveBase = info.MeanReward, true
	}
	info.Baseline = s.baseline
	for i, o := range batch {
		seqs[i] = o.Actions
		wAdv[i] = (o.Reward - s.baseline) / float64(n)
		wEnt[i] = 1 / float64(n)
	}
	if s.learn {
		rows := graphRows(n)
		if s.graph == nil || s.graph.rows != rows {
			g, err := s.m.buildGraph(rows, s.opt.EntropyWeight)
			if err != nil {
				return fmt.Errorf("%s: update %d: %w", s.name, info.Updates, err)
			}
			s.graph = g
		}
		res, err := s.graph.run(s.m, seqs, wAdv, wEnt)
		if err != nil {
			return fmt.Errorf("%s: update %d: %w", s.name, info.Updates, err)
		}
		if err := s.step(res.grad); err != nil {
			return fmt.Errorf("%s: update %d: %w", s.name, info.Updates, err)
		}
		info.Loss = res.loss
		for _, e := range res.ent {
			info.Entropy += e / float64(n)
		}
	} else {
		// The policy never changes, so the log-probabilities and entropies
		// of sampling time are current.
		for i, o := range batch {
			info.Loss -= wAdv[i]*o.LogP + s.opt.EntropyWeight*wEnt[i]*o.Entropy
			info.Entropy += o.Entropy / float64(n)
		}
	}
	d := s.opt.BaselineDecay
	for _, o := range batch {
		s.baseline = d*s.baseline + (1-d)*o.Reward
	}
	s.updates++
	s.observed = nil
	s.last = info
	return nil
}

// step clips grad to the global norm and applies one Adam step.
func (s *Strategy) step(grad [][]float64) error {
	norm := 0.0
	for _, g := range grad {
		for _, x := range g {
			norm += x * x
		}
	}
	norm = math.Sqrt(norm)
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		return fmt.Errorf("gradient norm is %v", norm)
	}
	scale := 1.0
	if c := s.opt.GradClip; c > 0 && norm > c {
		scale = c / norm
	}
	s.adamT++
	t := float64(s.adamT)
	lr := s.opt.LR * math.Sqrt(1-math.Pow(adamBeta2, t)) / (1 - math.Pow(adamBeta1, t))
	for i, p := range s.m.params {
		m, v := s.adamM[i], s.adamV[i]
		for j, g := range grad[i] {
			g *= scale
			m[j] = adamBeta1*m[j] + (1-adamBeta1)*g
			v[j] = adamBeta2*v[j] + (1-adamBeta2)*g*g
			p.data[j] -= lr * m[j] / (math.Sqrt(v[j]) + adamEps)
		}
	}
	return nil
}

package rl

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"

	"nasd/arch"
)

// Sampler draws architectures from a frozen copy of a policy. ENAS's workers
// hold one between controller updates and each samples its own child every
// shared-weight step, so rank 0 does not sample P children serially per step
// (1–6 ms each with a 35–100 unit LSTM: seconds per step at 512 ranks).
type Sampler struct {
	space arch.Space
	m     *model
	w     *work
}

// samplerState is what a Sampler needs: the network's shape and sampling
// options, and the weights (little-endian float64, so copies are exact).
type samplerState struct {
	Model   string       `json:"model"` // fingerprint: space, decision table, network shape
	Options Options      `json:"options"`
	Params  []tensorSnap `json:"params"`
}

// SamplerState encodes the current policy for NewSampler.
func (s *Strategy) SamplerState() ([]byte, error) {
	st := samplerState{Model: s.fingerprint(), Options: s.opt}
	for _, p := range s.m.params {
		st.Params = append(st.Params, tensorSnap{Name: p.name, W: floatsToBytes(p.data)})
	}
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("%s: sampler state: %w", s.name, err)
	}
	return b, nil
}

// NewSampler rebuilds the policy encoded by SamplerState for space, which
// must be the strategy's space.
func NewSampler(space arch.Space, state []byte) (*Sampler, error) {
	fail := func(format string, args ...any) (*Sampler, error) {
		return nil, fmt.Errorf("rl: sampler: %s", fmt.Sprintf(format, args...))
	}
	var st samplerState
	if err := json.Unmarshal(state, &st); err != nil {
		return fail("%v", err)
	}
	if o := st.Options; o.Layers < 1 || o.Layers > maxLayers || o.Hidden < 2 || o.Hidden > maxHidden ||
		!(o.Temperature > 0 && o.Temperature <= 1e6) || !(o.TanhConstant >= 0 && o.TanhConstant <= 1e6) {
		return fail("options layers %d, hidden %d, temperature %g, tanh_constant %g out of range", o.Layers, o.Hidden, o.Temperature, o.TanhConstant)
	}
	m, err := newModel(space.Decisions(), st.Options, rand.New(rand.NewPCG(0, 0)))
	if err != nil {
		return fail("space %s: %v", space.Name(), err)
	}
	if fp := fingerprint(space, m, st.Options); fp != st.Model {
		return fail("state of controller %q, this space gives %q", st.Model, fp)
	}
	if len(st.Params) != len(m.params) {
		return fail("%d weight tensors, want %d", len(st.Params), len(m.params))
	}
	for i, p := range m.params {
		if st.Params[i].Name != p.name || !bytesToFloats(p.data, st.Params[i].W) {
			return fail("weight tensor %d (%s): want %s with %d values", i, st.Params[i].Name, p.name, p.size())
		}
	}
	return &Sampler{space: space, m: m, w: m.newWork()}, nil
}

// Sample draws one architecture with r.
func (s *Sampler) Sample(r *rand.Rand) (arch.Arch, error) {
	actions, _, _ := s.m.sample(s.w, r)
	return s.space.Arch(actions)
}

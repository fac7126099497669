package rl

import (
	"math/rand/v2"
	"slices"
	"testing"

	"nasd/arch"
	"nasd/controller/strategy"
)

// A Sampler rebuilt from SamplerState draws exactly what the strategy's own
// policy draws with the same generator, after updates too; bad states are
// errors, never panics.
func TestSamplerMatchesPolicy(t *testing.T) {
	space, err := arch.New("enas-macro", arch.Options{Layers: 6, Channels: 8})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(strategy.Env{Space: space, Seed: 3, Options: map[string]any{"hidden": 16, "lr": 0.05, "tanh_constant": 1.5, "temperature": 5.0}})
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		state, err := s.SamplerState()
		if err != nil {
			t.Fatal(err)
		}
		smp, err := NewSampler(space, state)
		if err != nil {
			t.Fatal(err)
		}
		r1, r2 := rand.New(rand.NewPCG(9, uint64(len(when)))), rand.New(rand.NewPCG(9, uint64(len(when))))
		for i := range 20 {
			want, _, _ := s.m.sample(s.m.newWork(), r1)
			got, err := smp.Sample(r2)
			if err != nil || !slices.Equal(got.Decisions, want) {
				t.Fatalf("%s, draw %d: sampler gave %v (%v), the policy %v", when, i, got.Decisions, err, want)
			}
		}
	}
	check("at initialisation")
	trials, err := s.Propose(8)
	if err != nil {
		t.Fatal(err)
	}
	for i, tr := range trials {
		if err := s.Observe(strategy.Result{TrialID: tr.ID, Status: "ok", Reward: float64(tr.Arch.Decisions[0]) + 0.1*float64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if s.LastUpdate().Updates != 1 {
		t.Fatalf("no update after a batch of 8")
	}
	check("after an update")

	state, _ := s.SamplerState()
	other, _ := arch.New("enas-macro", arch.Options{Layers: 5, Channels: 8})
	bad := map[string][]byte{
		"another space": nil,
		"not JSON":      []byte("{"),
		"empty":         []byte("{}"),
		"truncated":     state[:len(state)/2],
	}
	for name, b := range bad {
		sp := space
		if b == nil {
			sp, b = other, state
		}
		if _, err := NewSampler(sp, b); err == nil {
			t.Errorf("%s: NewSampler accepted it", name)
		}
	}
}

package random

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	"nasd/arch"
	"nasd/controller/strategy"
)

// Name is the name the strategy is registered under.
const Name = "random"

func init() { strategy.Register(Name, New) }

// stream is the PCG's second seed word: a fixed constant, so the run seed
// alone picks the sequence.
const stream = 0x6e617364_72616e64 // "nasdrand"

// Strategy samples every decision of the space uniformly and independently.
// It never waits: Propose always returns n trials. It is a pure state
// machine; all of its randomness comes from a PCG seeded with Env.Seed.
type Strategy struct {
	space   arch.Space
	seed    uint64
	pcg     *rand.PCG
	rng     *rand.Rand
	next    int             // number of the next trial ID
	pending map[string]bool // proposed, not yet observed
	seen    int             // results observed
	best    *bestResult
}

type bestResult struct {
	Trial  string  `json:"trial"`
	Reward float64 `json:"reward"`
}

// New makes the strategy. It takes no options; any key in env.Options is an
// error naming it.
func New(env strategy.Env) (strategy.Strategy, error) {
	if env.Space == nil {
		return nil, errors.New("random: no search space")
	}
	if len(env.Options) > 0 {
		keys := make([]string, 0, len(env.Options))
		for k := range env.Options {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		quoted := make([]string, len(keys))
		for i, k := range keys {
			quoted[i] = fmt.Sprintf("%q", k)
		}
		// The field of the message is its first key (a config file points there).
		return nil, &arch.FieldError{Path: []string{keys[0]},
			Msg: fmt.Sprintf("random: unknown option %s (random takes no options)", strings.Join(quoted, ", "))}
	}
	pcg := rand.NewPCG(env.Seed, stream)
	return &Strategy{space: env.Space, seed: env.Seed, pcg: pcg, rng: rand.New(pcg), next: 1, pending: map[string]bool{}}, nil
}

// Name returns "random".
func (s *Strategy) Name() string { return Name }

// ID returns the ID of the n-th proposed trial (1-based): t000001, t000002,
// ... It is strategy.TrialID, kept here for the tests that name it so.
func ID(n int) string { return strategy.TrialID(n) }

// Propose returns n new trials, IDs in proposal order.
func (s *Strategy) Propose(n int) ([]strategy.Trial, error) {
	if n < 0 {
		return nil, fmt.Errorf("random: Propose(%d): n must be ≥ 0", n)
	}
	out := make([]strategy.Trial, n)
	for i := range out {
		id := ID(s.next)
		s.next++
		out[i] = strategy.Trial{ID: id, Arch: s.space.Sample(s.rng), Seed: strategy.TrialSeed(s.seed, id)}
		s.pending[id] = true
	}
	return out, nil
}

// Observe records a result; the best ok result is kept only for Snapshot's
// readers (random search does not learn).
func (s *Strategy) Observe(r strategy.Result) error {
	if !s.pending[r.TrialID] {
		return fmt.Errorf("random: Observe: trial %q was not proposed or was already observed", r.TrialID)
	}
	delete(s.pending, r.TrialID)
	s.seen++
	if r.Status == "ok" && (s.best == nil || r.Reward > s.best.Reward) {
		s.best = &bestResult{Trial: r.TrialID, Reward: r.Reward}
	}
	return nil
}

// snapshot is the strategy's state. Its size is bounded by the trials in
// flight, not by the trials run.
type snapshot struct {
	Version  int         `json:"version"`
	Seed     uint64      `json:"seed"`
	PCG      []byte      `json:"pcg"` // rand.PCG.MarshalBinary
	Next     int         `json:"next"`
	Pending  []string    `json:"pending,omitempty"`
	Observed int         `json:"observed"`
	Best     *bestResult `json:"best,omitempty"`
}

const snapshotVersion = 1

// Snapshot encodes the generator's state, the next ID, the trials in flight
// and the best result so far.
func (s *Strategy) Snapshot() ([]byte, error) {
	pcg, err := s.pcg.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("random: snapshot: %w", err)
	}
	pending := make([]string, 0, len(s.pending))
	for id := range s.pending {
		pending = append(pending, id)
	}
	slices.Sort(pending)
	return json.Marshal(snapshot{Version: snapshotVersion, Seed: s.seed, PCG: pcg, Next: s.next,
		Pending: pending, Observed: s.seen, Best: s.best})
}

// Restore continues from a Snapshot of a strategy made with the same seed.
func (s *Strategy) Restore(b []byte) error {
	var st snapshot
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("random: restore: %w", err)
	}
	if st.Version != snapshotVersion {
		return fmt.Errorf("random: restore: snapshot version %d, this build reads %d", st.Version, snapshotVersion)
	}
	if st.Seed != s.seed {
		return fmt.Errorf("random: restore: snapshot of a run with seed %d, this one has seed %d", st.Seed, s.seed)
	}
	if st.Next < 1 {
		return fmt.Errorf("random: restore: next trial number %d: must be ≥ 1", st.Next)
	}
	pcg := &rand.PCG{}
	if err := pcg.UnmarshalBinary(st.PCG); err != nil {
		return fmt.Errorf("random: restore: generator state: %w", err)
	}
	s.pcg, s.rng = pcg, rand.New(pcg)
	s.next, s.seen, s.best = st.Next, st.Observed, st.Best
	s.pending = make(map[string]bool, len(st.Pending))
	for _, id := range st.Pending {
		s.pending[id] = true
	}
	return nil
}

package evolution

import (
	"fmt"

	"nasd/controller/strategy"
)

// NameAging is the name regularized (aging) evolution is registered under.
const NameAging = "aging-evolution"

// agingStream is aging evolution's PCG second seed word.
const agingStream = 0x6e617364_61676531 // "nasdage1"

// Defaults of aging evolution's options (Real et al. 2019 use P = 100,
// S = 25 in their CIFAR-10 experiments, §4).
const (
	DefaultAgingPopulation = 100
	DefaultSample          = 25
)

type agingConfig struct {
	Population int `json:"population"`
	Sample     int `json:"sample"`
	common
}

// Aging is regularized evolution. See the package documentation.
type Aging struct {
	core
	cfg     agingConfig
	pop     []*member          // joining order: pop[0] is the oldest
	pending map[string]*member // proposed, not observed, by trial ID
}

// NewAging makes the "aging-evolution" strategy from env; see the package
// documentation for its options. Every bad or unknown option is reported at
// once.
func NewAging(env strategy.Env) (strategy.Strategy, error) {
	p := &parser{name: NameAging, opts: env.Options}
	cfg := agingConfig{common: p.common()}
	cfg.Population = p.int("population", DefaultAgingPopulation, 2, maxPopulation)
	cfg.Sample = p.int("sample", min(DefaultSample, cfg.Population), 1, maxPopulation)
	if cfg.Sample > cfg.Population {
		p.add("sample", "option sample = %d: must be ≤ population (%d)", cfg.Sample, cfg.Population)
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	c, err := newCore(NameAging, env, agingStream, cfg.common)
	if err != nil {
		return nil, err
	}
	return &Aging{core: c, cfg: cfg, pending: map[string]*member{}}, nil
}

// Name returns "aging-evolution".
func (s *Aging) Name() string { return NameAging }

// Population returns the evaluated population, oldest first.
func (s *Aging) Population() []Member {
	out := make([]Member, len(s.pop))
	for i, m := range s.pop {
		out[i] = m.export()
	}
	return out
}

// Propose returns n trials: the first population trials are random, every
// later one a mutant of the best of `sample` members drawn uniformly (with
// replacement, as in Algorithm 1) from the population as it is now. Before
// any result has arrived there is no population, and the child is random.
func (s *Aging) Propose(n int) ([]strategy.Trial, error) {
	if n < 0 {
		return nil, fmt.Errorf("%s: Propose(%d): n must be ≥ 0", s.name, n)
	}
	return s.proposeOnDemand(n, s.cfg.Population, s.pop, s.pending, func() []int { return s.mutateOne(s.parent().D) })
}

// parent returns the fittest of `sample` members drawn uniformly with
// replacement; a tie goes to the one drawn first.
func (s *Aging) parent() *member { return s.fittestOf(s.pop, s.cfg.Sample) }

// Observe adds the child to the population as its youngest member; over
// population, the oldest member (the first to join) leaves, however fit.
func (s *Aging) Observe(r strategy.Result) error {
	m, err := s.take(s.pending, r)
	if err != nil {
		return err
	}
	s.pop = append(s.pop, m)
	if len(s.pop) > s.cfg.Population {
		s.pop[0] = nil
		s.pop = s.pop[1:]
	}
	return nil
}

// Snapshot encodes the whole state: options, generator, next trial number,
// the population in joining order, the trials in flight, the best result and
// the dedupe hashes.
func (s *Aging) Snapshot() ([]byte, error) {
	return s.encode(s.cfg, snapshot{Population: toSnap(s.pop), Pending: toSnap(sortedPending(s.pending))})
}

// Restore continues from a Snapshot of an "aging-evolution" strategy made
// with the same seed, options and space.
func (s *Aging) Restore(b []byte) error {
	r, err := decode(&s.core, b, s.cfg)
	if err != nil {
		return err
	}
	if len(r.pop) > s.cfg.Population {
		return fmt.Errorf("%s: restore: population of %d, over %d", s.name, len(r.pop), s.cfg.Population)
	}
	for i, m := range r.pop {
		if m.state != done || m.N == 0 {
			return fmt.Errorf("%s: restore: population[%d]: not an evaluated member", s.name, i)
		}
	}
	for i, m := range r.pend {
		if m.state != pending {
			return fmt.Errorf("%s: restore: pending[%d]: state %d", s.name, i, m.state)
		}
	}
	s.commit(r)
	s.pop, s.pending = r.pop, pendingMap(r.pend)
	return nil
}

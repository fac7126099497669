package evolution

import (
	"cmp"
	"fmt"
	"slices"

	"nasd/controller/strategy"
)

// NameGA is the name the genetic algorithm is registered under.
const NameGA = "ga"

// gaStream is the GA's PCG second seed word, so that "ga" and other
// strategies draw different sequences from one run seed.
const gaStream = 0x6e617364_67612d31 // "nasdga-1"

// Defaults of the GA's options.
const (
	DefaultGAPopulation  = 20
	DefaultTournament    = 3
	DefaultCrossoverRate = 0.5
	DefaultElite         = 2
)

type gaConfig struct {
	Population    int     `json:"population"`
	Tournament    int     `json:"tournament"`
	CrossoverRate float64 `json:"crossover_rate"`
	MutationRate  float64 `json:"mutation_rate"`
	Elite         int     `json:"elite"`
	SteadyState   bool    `json:"steady_state"`
	common
}

// GA is the genetic algorithm. See the package documentation.
type GA struct {
	core
	cfg gaConfig
	// Generational: gen is the current generation in breeding order (the
	// elites first), each member todo, pending or done; nil before the
	// first Propose.
	gen        []*member
	generation int
	// Steady state: pop is the evaluated population in joining order.
	pop     []*member
	pending map[string]*member // proposed, not observed, by trial ID
}

func init() {
	strategy.Register(NameGA, NewGA)
	strategy.Register(NameAging, NewAging)
}

// NewGA makes the "ga" strategy from env; see the package documentation for
// its options. Every bad or unknown option is reported at once.
func NewGA(env strategy.Env) (strategy.Strategy, error) {
	p := &parser{name: NameGA, opts: env.Options}
	cfg := gaConfig{common: p.common()}
	cfg.Population = p.int("population", DefaultGAPopulation, 2, maxPopulation)
	cfg.Tournament = p.int("tournament", min(DefaultTournament, cfg.Population), 1, maxPopulation)
	cfg.CrossoverRate = p.float("crossover_rate", DefaultCrossoverRate, 0, 1, false)
	cfg.MutationRate = p.float("mutation_rate", 0, 0, 1, true) // 0: 1/len(decisions), below
	cfg.SteadyState = p.bool("steady_state", false)
	eliteSet := p.has("elite")
	cfg.Elite = p.int("elite", min(DefaultElite, cfg.Population-1), 0, maxPopulation)
	if cfg.Tournament > cfg.Population {
		p.add("tournament", "option tournament = %d: must be ≤ population (%d)", cfg.Tournament, cfg.Population)
	}
	switch {
	case cfg.SteadyState && eliteSet:
		p.add("elite", "option elite: not used with steady_state = true (replacing the worst keeps the best)")
	case cfg.SteadyState:
		cfg.Elite = 0
	case cfg.Elite >= cfg.Population:
		p.add("elite", "option elite = %d: must be < population (%d)", cfg.Elite, cfg.Population)
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	c, err := newCore(NameGA, env, gaStream, cfg.common)
	if err != nil {
		return nil, err
	}
	if cfg.MutationRate == 0 {
		cfg.MutationRate = 1 / float64(max(1, len(c.mutable)))
	}
	return &GA{core: c, cfg: cfg, pending: map[string]*member{}}, nil
}

// Name returns "ga".
func (s *GA) Name() string { return NameGA }

// Generation returns the number of generations bred after the random first
// one (0 in the steady-state variant).
func (s *GA) Generation() int { return s.generation }

// Population returns the evaluated members: of the current generation
// (elites included) in breeding order, or in the steady-state variant the
// whole population in joining order.
func (s *GA) Population() []Member {
	var out []Member
	src := s.pop
	if !s.cfg.SteadyState {
		src = s.gen
	}
	for _, m := range src {
		if m.state == done {
			out = append(out, m.export())
		}
	}
	return out
}

// Propose returns up to n new trials. Generational: the members of the
// current generation not yet proposed, fewer than n (even none) while the
// generation waits for results; the next generation is bred once every
// member has a result. Steady state: n children bred from the population
// now (random ones for the first population trials).
func (s *GA) Propose(n int) ([]strategy.Trial, error) {
	if n < 0 {
		return nil, fmt.Errorf("%s: Propose(%d): n must be ≥ 0", s.name, n)
	}
	if n == 0 {
		return []strategy.Trial{}, nil
	}
	if s.cfg.SteadyState {
		return s.proposeSteady(n)
	}
	if err := s.advance(); err != nil {
		return nil, err
	}
	out := make([]strategy.Trial, 0, min(n, len(s.gen)))
	for _, m := range s.gen {
		if len(out) == n {
			break
		}
		if m.state != todo {
			continue
		}
		t := s.trial(m)
		m.state = pending
		s.pending[t.ID] = m
		out = append(out, t)
	}
	return out, nil
}

// advance draws the first generation, or breeds the next once every member
// of the current one has a result.
func (s *GA) advance() error {
	if s.gen == nil {
		gen := make([]*member, s.cfg.Population)
		for i := range gen {
			d, err := s.random()
			if err != nil {
				return err
			}
			gen[i] = &member{D: d, state: todo}
		}
		s.gen = gen
		return nil
	}
	for _, m := range s.gen {
		if m.state != done {
			return nil
		}
	}
	// Elitism: the best carry over with their fitness and are not run again.
	ranked := slices.Clone(s.gen)
	slices.SortStableFunc(ranked, func(a, b *member) int { return cmp.Compare(b.F, a.F) })
	next := make([]*member, 0, s.cfg.Population)
	for _, m := range ranked[:s.cfg.Elite] {
		next = append(next, &member{N: m.N, D: m.D, F: m.F, state: done})
	}
	for len(next) < s.cfg.Population {
		d, err := s.child(func() []int { return s.offspring(s.gen) })
		if err != nil {
			return err
		}
		next = append(next, &member{D: d, state: todo})
	}
	s.gen = next
	s.generation++
	return nil
}

func (s *GA) proposeSteady(n int) ([]strategy.Trial, error) {
	return s.proposeOnDemand(n, s.cfg.Population, s.pop, s.pending, func() []int { return s.offspring(s.pop) })
}

// offspring breeds one child from pop: a tournament winner, crossed over
// with a second one with probability crossover_rate, then mutated.
func (s *GA) offspring(pop []*member) []int {
	p := s.tournament(pop)
	d := p.D
	if s.rng.Float64() < s.cfg.CrossoverRate {
		d = s.crossover(d, s.tournament(pop).D)
	}
	return s.mutate(d, s.cfg.MutationRate)
}

// tournament returns the fittest of `tournament` members drawn uniformly
// with replacement; a tie goes to the one drawn first.
func (s *GA) tournament(pop []*member) *member { return s.fittestOf(pop, s.cfg.Tournament) }

// Observe records a result. Generational: the member gets its fitness.
// Steady state: the child joins the population and, over population, the
// worst member leaves (a tie: the oldest of them; the child itself if it is
// the worst).
func (s *GA) Observe(r strategy.Result) error {
	m, err := s.take(s.pending, r)
	if err != nil {
		return err
	}
	if s.cfg.SteadyState {
		s.pop = append(s.pop, m)
		if len(s.pop) > s.cfg.Population {
			worst := 0
			for i, x := range s.pop {
				if x.F < s.pop[worst].F {
					worst = i
				}
			}
			s.pop = slices.Delete(s.pop, worst, worst+1)
		}
	}
	return nil
}

// Snapshot encodes the whole state: options, generator, next trial number,
// the generation (or population and trials in flight), the best result and
// the dedupe hashes.
func (s *GA) Snapshot() ([]byte, error) {
	st := snapshot{Generation: s.generation, Started: s.gen != nil}
	if s.cfg.SteadyState {
		st.Population, st.Pending = toSnap(s.pop), toSnap(sortedPending(s.pending))
	} else {
		st.Population = toSnap(s.gen)
	}
	return s.encode(s.cfg, st)
}

// Restore continues from a Snapshot of a "ga" strategy made with the same
// seed, options and space.
func (s *GA) Restore(b []byte) error {
	r, err := decode(&s.core, b, s.cfg)
	if err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: restore: "+format, append([]any{s.name}, args...)...)
	}
	if s.cfg.SteadyState {
		if len(r.pop) > s.cfg.Population {
			return bad("population of %d, over %d", len(r.pop), s.cfg.Population)
		}
		for i, m := range r.pop {
			if m.state != done || m.N == 0 {
				return bad("population[%d]: not an evaluated member", i)
			}
		}
		for i, m := range r.pend {
			if m.state != pending {
				return bad("pending[%d]: state %d", i, m.state)
			}
		}
		s.commit(r)
		s.pop, s.gen, s.generation = r.pop, nil, 0
		s.pending = pendingMap(r.pend)
		return nil
	}
	if len(r.pend) > 0 {
		return bad("pending trials outside the generation")
	}
	if !r.Started && len(r.pop) > 0 || r.Started && len(r.pop) != s.cfg.Population {
		return bad("generation of %d members, population is %d", len(r.pop), s.cfg.Population)
	}
	for i, m := range r.pop {
		if (m.state == todo) != (m.N == 0) {
			return bad("population[%d]: state %d with trial number %d", i, m.state, m.N)
		}
	}
	s.commit(r)
	s.gen, s.pop, s.generation = nil, nil, r.Generation
	if r.Started {
		s.gen = r.pop
	}
	s.pending = pendingMap(s.gen)
	return nil
}

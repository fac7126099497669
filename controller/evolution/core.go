package evolution

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"nasd/arch"
	"nasd/controller/strategy"
)

// Bounds of the search for a child. A child that fails arch.Validate is bred
// again, up to breedTries times in all, then replaced by a random sample;
// random samples are drawn up to sampleTries times before Propose gives up
// with an error (the budget admits almost nothing). With dedupe, a child
// that repeats a remembered architecture is bred again too, but after
// dedupeTries repeats (for breeding: once the tries are used up) the first
// repeat is taken: a small or converged space may have nothing new near the
// parents, and stalling is worse than running an architecture twice.
const (
	breedTries  = 32
	sampleTries = 1000
	dedupeTries = 32
)

// Member is one evaluated architecture of a population.
type Member struct {
	ID        string  // trial ID, strategy.TrialID(Born)
	Born      int     // the trial's number: 1 for the first trial proposed
	Decisions []int   // one choice index per decision of the space
	Fitness   float64 // the result's reward, or failure_reward
}

// member is the internal record: N is the trial number (0 while a bred
// child of a generation is not yet proposed), state its place in a
// generational GA's generation.
type member struct {
	N     int
	D     []int
	F     float64
	state state
}

type state uint8

const (
	todo    state = iota // bred, not yet proposed
	pending              // proposed, no result yet
	done                 // result observed (or carried over as an elite)
)

func (m *member) export() Member {
	return Member{ID: strategy.TrialID(m.N), Born: m.N, Decisions: slices.Clone(m.D), Fitness: m.F}
}

// core is what both strategies share: the space and its decision table, the
// generator, trial numbering, validity, dedupe and the variation operators.
type core struct {
	name    string
	space   arch.Space
	seed    uint64
	opt     common
	pcg     *rand.PCG
	rng     *rand.Rand
	choices []int   // number of choices of each decision
	mutable []int   // decisions with at least two choices
	groups  [][]int // crossover groups: whole layers, or single decisions
	next    int     // number of the next trial
	seen    ring    // hashes of recently proposed architectures
	obs     int     // results observed
	best    *member // best result so far
}

func newCore(name string, env strategy.Env, stream uint64, opt common) (core, error) {
	if env.Space == nil {
		return core{}, errors.New(name + ": no search space")
	}
	ds := env.Space.Decisions()
	c := core{name: name, space: env.Space, seed: env.Seed, opt: opt, next: 1, groups: layerGroups(ds)}
	for i, d := range ds {
		c.choices = append(c.choices, len(d.Choices))
		if len(d.Choices) > 1 {
			c.mutable = append(c.mutable, i)
		}
	}
	c.pcg = rand.NewPCG(env.Seed, stream)
	c.rng = rand.New(c.pcg)
	c.seen = newRing(opt.DedupeWindow)
	return c, nil
}

// layerGroups groups the decisions by layer for crossover: the decisions
// named "layer <i> ..." form group i, in order of first appearance; any
// other decision is a group of its own. Without at least two layers there
// is no layer structure to exchange and every decision is its own group
// (uniform crossover).
func layerGroups(ds []arch.Decision) [][]int {
	var groups [][]int
	at := map[int]int{} // layer number → index in groups
	for i, d := range ds {
		l, ok := layerOf(d.Name)
		if !ok {
			groups = append(groups, []int{i})
			continue
		}
		if k, seen := at[l]; seen {
			groups[k] = append(groups[k], i)
			continue
		}
		at[l] = len(groups)
		groups = append(groups, []int{i})
	}
	if len(at) < 2 {
		groups = groups[:0]
		for i := range ds {
			groups = append(groups, []int{i})
		}
	}
	return groups
}

// layerOf parses "layer <i>" or "layer <i> <anything>".
func layerOf(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "layer ")
	if !ok {
		return 0, false
	}
	num, _, _ := strings.Cut(rest, " ")
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// trial makes the trial of member m, numbering it.
func (c *core) trial(m *member) strategy.Trial {
	a, err := c.space.Arch(m.D)
	if err != nil { // the operators keep every index in range
		panic(c.name + ": internal error: bred an architecture outside the space: " + err.Error())
	}
	m.N = c.next
	c.next++
	id := strategy.TrialID(m.N)
	return strategy.Trial{ID: id, Arch: a, Seed: strategy.TrialSeed(c.seed, id)}
}

// valid checks d with arch.Validate against the budget.
func (c *core) valid(d []int) error {
	a, err := c.space.Arch(d)
	if err != nil {
		return err
	}
	return arch.Validate(c.space, a, c.opt.Budget)
}

// draw calls gen up to tries times and returns the first valid child that
// is new; with dedupe, after dedupeTries repeats it returns the first repeat
// (a remembered architecture was proposed, so it is valid). It returns nil
// and the last validation error if no child was valid.
func (c *core) draw(gen func() []int, tries int) ([]int, error) {
	var repeat []int
	repeats := 0
	var last error
	for range tries {
		d := gen()
		if c.opt.Dedupe && c.seen.has(hashOf(d)) {
			if repeat == nil {
				repeat = d
			}
			if repeats++; repeats >= dedupeTries {
				break
			}
			continue
		}
		if err := c.valid(d); err != nil {
			last = err
			continue
		}
		return d, nil
	}
	if repeat != nil {
		return repeat, nil
	}
	return nil, last
}

// child breeds a valid child with breed, falling back to a random sample,
// and remembers it for dedupe.
func (c *core) child(breed func() []int) ([]int, error) {
	d, _ := c.draw(breed, breedTries)
	if d == nil {
		return c.random()
	}
	c.seen.add(hashOf(d))
	return d, nil
}

// random draws a valid random architecture and remembers it for dedupe.
func (c *core) random() ([]int, error) {
	d, err := c.draw(func() []int { return c.space.Sample(c.rng).Decisions }, sampleTries)
	if d == nil {
		return nil, fmt.Errorf("%s: no valid architecture of space %s within the budget in %d random samples; the last: %w",
			c.name, c.space.Name(), sampleTries, err)
	}
	c.seen.add(hashOf(d))
	return d, nil
}

// other returns a choice of decision i other than cur, uniformly.
func (c *core) other(i, cur int) int {
	k := c.rng.IntN(c.choices[i] - 1)
	if k >= cur {
		k++
	}
	return k
}

// mutateOne returns p with one decision, chosen uniformly, changed to
// another choice, chosen uniformly: one of p's neighbours (Space.Neighbours).
// A space whose decisions all have one choice has no neighbours: p is
// returned unchanged.
func (c *core) mutateOne(p []int) []int {
	d := slices.Clone(p)
	if len(c.mutable) == 0 {
		return d
	}
	i := c.mutable[c.rng.IntN(len(c.mutable))]
	d[i] = c.other(i, d[i])
	return d
}

// mutate changes each decision with probability rate to another choice; if
// none changed, one decision chosen uniformly is changed, so the child always
// differs from p (in a space with more than one architecture).
func (c *core) mutate(p []int, rate float64) []int {
	d := slices.Clone(p)
	changed := false
	for _, i := range c.mutable {
		if c.rng.Float64() < rate {
			d[i] = c.other(i, d[i])
			changed = true
		}
	}
	if !changed && len(c.mutable) > 0 {
		i := c.mutable[c.rng.IntN(len(c.mutable))]
		d[i] = c.other(i, d[i])
	}
	return d
}

// crossover takes each group (a whole layer, or one decision) from a or b
// with equal probability.
func (c *core) crossover(a, b []int) []int {
	d := slices.Clone(a)
	for _, g := range c.groups {
		if c.rng.IntN(2) == 1 {
			for _, i := range g {
				d[i] = b[i]
			}
		}
	}
	return d
}

// fitness is the reward of an "ok" or "stopped" result; a failed trial, or a
// reward that is not finite, counts failure_reward.
func (c *core) fitness(r strategy.Result) float64 {
	if (r.Status == "ok" || r.Status == "stopped") && !math.IsNaN(r.Reward) && !math.IsInf(r.Reward, 0) {
		return r.Reward
	}
	return c.opt.FailureReward
}

// observed counts a result and keeps the best.
func (c *core) observed(m *member) {
	c.obs++
	if c.best == nil || m.F > c.best.F {
		c.best = &member{N: m.N, D: m.D, F: m.F, state: done}
	}
}

// Best returns the best evaluated architecture so far (ties: the earliest
// observed), and false before any result.
func (c *core) Best() (Member, bool) {
	if c.best == nil {
		return Member{}, false
	}
	return c.best.export(), true
}

// hashOf is a 64-bit hash of a decision sequence (FNV-1a over 4 bytes per
// decision, then SplitMix64's finaliser). The space is fixed within a run, so
// the decisions alone identify an architecture; a collision (about 1 in 10¹⁵
// per pair at the default window) only costs a re-breed.
func hashOf(d []int) uint64 {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	var b [4]byte
	for _, x := range d {
		binary.LittleEndian.PutUint32(b[:], uint32(x))
		for _, y := range b {
			h ^= uint64(y)
			h *= prime64
		}
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}

// ring remembers the last max hashes added, oldest first, with a count per
// hash for lookups. It is what keeps the snapshot bounded: dedupe forgets
// architectures proposed more than max trials ago.
type ring struct {
	max   int
	buf   []uint64
	head  int // index of the oldest once buf is full
	count map[uint64]int
}

func newRing(max int) ring { return ring{max: max, count: map[uint64]int{}} }

func (r *ring) has(h uint64) bool { return r.count[h] > 0 }

func (r *ring) add(h uint64) {
	if len(r.buf) < r.max {
		r.buf = append(r.buf, h)
	} else {
		old := r.buf[r.head]
		if r.count[old]--; r.count[old] == 0 {
			delete(r.count, old)
		}
		r.buf[r.head] = h
		r.head = (r.head + 1) % r.max
	}
	r.count[h]++
}

// bytes encodes the hashes oldest first, 8 bytes each, little-endian.
func (r *ring) bytes() []byte {
	out := make([]byte, 0, 8*len(r.buf))
	for i := range r.buf {
		out = binary.LittleEndian.AppendUint64(out, r.buf[(r.head+i)%len(r.buf)])
	}
	return out
}

// setBytes replaces the ring's content with an encoding made by bytes.
func (r *ring) setBytes(b []byte) error {
	if len(b)%8 != 0 {
		return fmt.Errorf("dedupe hashes: %d bytes, not a multiple of 8", len(b))
	}
	if len(b)/8 > r.max {
		return fmt.Errorf("dedupe hashes: %d, more than dedupe_window %d", len(b)/8, r.max)
	}
	*r = newRing(r.max)
	for i := 0; i < len(b); i += 8 {
		r.add(binary.LittleEndian.Uint64(b[i:]))
	}
	return nil
}

// idOf is the trial ID of a proposed member.
func idOf(m *member) string { return strategy.TrialID(m.N) }

// fittestOf returns the fittest of k members of pop drawn uniformly with
// replacement; a tie goes to the one drawn first. It is both the GA's
// tournament and aging evolution's sample.
func (c *core) fittestOf(pop []*member, k int) *member {
	best := pop[c.rng.IntN(len(pop))]
	for range k - 1 {
		if m := pop[c.rng.IntN(len(pop))]; m.F > best.F {
			best = m
		}
	}
	return best
}

// take removes the trial of r from pending, gives its member r's fitness and
// returns it; a trial not in flight is an error.
func (c *core) take(pending map[string]*member, r strategy.Result) (*member, error) {
	m, ok := pending[r.TrialID]
	if !ok {
		return nil, fmt.Errorf("%s: Observe: trial %q was not proposed or was already observed", c.name, r.TrialID)
	}
	delete(pending, r.TrialID)
	m.F, m.state = c.fitness(r), done
	c.observed(m)
	return m, nil
}

// proposeOnDemand returns n trials bred at once: random while fewer than
// population trials exist or nothing has been observed, then breed's child.
// It is aging evolution's Propose and the steady-state GA's.
func (c *core) proposeOnDemand(n, population int, pop []*member, inFlight map[string]*member, breed func() []int) ([]strategy.Trial, error) {
	out := make([]strategy.Trial, 0, min(n, 1024))
	for range n {
		var d []int
		var err error
		if c.next <= population || len(pop) == 0 {
			d, err = c.random()
		} else {
			d, err = c.child(breed)
		}
		if err != nil {
			return nil, err
		}
		m := &member{D: d, state: pending}
		t := c.trial(m)
		inFlight[t.ID] = m
		out = append(out, t)
	}
	return out, nil
}

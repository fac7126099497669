package evolution

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// snapshot is the state of either strategy. Its size is bounded by the
// population (and the trials in flight) plus dedupe_window hashes of 8 bytes,
// never by the number of trials run.
type snapshot struct {
	Version  int             `json:"version"`
	Strategy string          `json:"strategy"`
	Seed     uint64          `json:"seed"`
	Space    string          `json:"space"`     // its name
	Size     int             `json:"decisions"` // its number of decisions
	Options  json.RawMessage `json:"options"`   // the options in force, defaults filled
	PCG      []byte          `json:"pcg"`       // rand.PCG.MarshalBinary
	Next     int             `json:"next"`      // number of the next trial
	Observed int             `json:"observed"`
	// Generation counts the generations bred after the random first one
	// (generational GA); Started says the first one was drawn.
	Generation int  `json:"generation,omitempty"`
	Started    bool `json:"started,omitempty"`
	// Population: the generational GA's current generation in breeding
	// order, with each member's state; otherwise the evaluated population
	// in joining order (oldest first).
	Population []snapMember `json:"population"`
	// Pending: trials in flight, by number (steady-state GA, aging).
	Pending []snapMember `json:"pending,omitempty"`
	Best    *snapMember  `json:"best,omitempty"`
	Seen    []byte       `json:"seen,omitempty"` // dedupe hashes, oldest first, 8 bytes each
}

type snapMember struct {
	N int     `json:"n,omitempty"` // trial number; 0: bred, not proposed yet
	D []int   `json:"d"`
	F float64 `json:"f"`
	S state   `json:"s,omitempty"` // todo 0, pending 1, done 2
}

const snapshotVersion = 1

func toSnap(ms []*member) []snapMember {
	out := make([]snapMember, len(ms))
	for i, m := range ms {
		out[i] = snapMember{N: m.N, D: m.D, F: m.F, S: m.state}
	}
	return out
}

// sortedPending returns the trials in flight by number.
func sortedPending(p map[string]*member) []*member {
	out := make([]*member, 0, len(p))
	for _, m := range p {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *member) int { return a.N - b.N })
	return out
}

// encode writes the shared part of a snapshot plus the strategy's own.
func (c *core) encode(opts any, st snapshot) ([]byte, error) {
	pcg, err := c.pcg.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("%s: snapshot: %w", c.name, err)
	}
	o, err := json.Marshal(opts)
	if err != nil {
		return nil, fmt.Errorf("%s: snapshot: %w", c.name, err)
	}
	st.Version, st.Strategy, st.Seed, st.Options, st.PCG = snapshotVersion, c.name, c.seed, o, pcg
	st.Space, st.Size = c.space.Name(), len(c.choices)
	st.Next, st.Observed, st.Seen = c.next, c.obs, c.seen.bytes()
	if c.best != nil {
		b := toSnap([]*member{c.best})[0]
		st.Best = &b
	}
	return json.Marshal(st)
}

// restored is a decoded, checked snapshot, ready to commit.
type restored struct {
	snapshot
	pcg  *rand.PCG
	seen ring
	pop  []*member
	pend []*member
	best *member
}

// decode parses and checks b against this strategy's name, seed, space and
// options (cfg, of the strategy's config type). Nothing is changed; commit
// applies the shared part.
func decode[C comparable](c *core, b []byte, cfg C) (*restored, error) {
	fail := func(format string, args ...any) (*restored, error) {
		return nil, fmt.Errorf(c.name+": restore: "+format, args...)
	}
	var st snapshot
	if err := json.Unmarshal(b, &st); err != nil {
		return fail("%w", err)
	}
	if st.Version != snapshotVersion {
		return fail("snapshot version %d, this build reads %d", st.Version, snapshotVersion)
	}
	if st.Strategy != c.name {
		return fail("snapshot of strategy %q", st.Strategy)
	}
	if st.Seed != c.seed {
		return fail("snapshot of a run with seed %d, this one has seed %d", st.Seed, c.seed)
	}
	if st.Space != c.space.Name() || st.Size != len(c.choices) {
		return fail("snapshot of space %s with %d decisions, this one is %s with %d", st.Space, st.Size, c.space.Name(), len(c.choices))
	}
	var got C
	dec := json.NewDecoder(bytes.NewReader(st.Options))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil || got != cfg {
		want, _ := json.Marshal(cfg)
		return fail("snapshot of a run with options %s, this one has %s", st.Options, want)
	}
	if st.Next < 1 || st.Observed < 0 {
		return fail("next trial %d, observed %d: must be ≥ 1 and ≥ 0", st.Next, st.Observed)
	}
	r := &restored{snapshot: st, pcg: &rand.PCG{}, seen: newRing(c.opt.DedupeWindow)}
	if err := r.pcg.UnmarshalBinary(st.PCG); err != nil {
		return fail("generator state: %w", err)
	}
	if err := r.seen.setBytes(st.Seen); err != nil {
		return fail("%w", err)
	}
	numbers := map[int]bool{}
	conv := func(what string, sm []snapMember, mayBeNew bool) ([]*member, error) {
		out := make([]*member, len(sm))
		for i, m := range sm {
			if err := c.checkDecisions(m.D); err != nil {
				return nil, fmt.Errorf("%s[%d]: %w", what, i, err)
			}
			if math.IsNaN(m.F) || math.IsInf(m.F, 0) {
				return nil, fmt.Errorf("%s[%d]: fitness %v", what, i, m.F)
			}
			if m.S > done {
				return nil, fmt.Errorf("%s[%d]: state %d", what, i, m.S)
			}
			switch {
			case m.N == 0 && !mayBeNew:
				return nil, fmt.Errorf("%s[%d]: no trial number", what, i)
			case m.N < 0 || m.N >= st.Next:
				return nil, fmt.Errorf("%s[%d]: trial number %d not in 1..%d", what, i, m.N, st.Next-1)
			case m.N > 0 && numbers[m.N] && what != "best":
				return nil, fmt.Errorf("%s[%d]: trial number %d repeated", what, i, m.N)
			}
			if what != "best" {
				numbers[m.N] = m.N > 0
			}
			out[i] = &member{N: m.N, D: m.D, F: m.F, state: m.S}
		}
		return out, nil
	}
	var err error
	if r.pop, err = conv("population", st.Population, true); err != nil {
		return fail("%w", err)
	}
	if r.pend, err = conv("pending", st.Pending, false); err != nil {
		return fail("%w", err)
	}
	if st.Best != nil {
		bs, err := conv("best", []snapMember{*st.Best}, false)
		if err != nil {
			return fail("%w", err)
		}
		r.best = bs[0]
	}
	return r, nil
}

// checkDecisions checks d's length and every choice index against the space.
func (c *core) checkDecisions(d []int) error {
	if len(d) != len(c.choices) {
		return fmt.Errorf("%d decisions, the space has %d", len(d), len(c.choices))
	}
	for i, x := range d {
		if x < 0 || x >= c.choices[i] {
			return fmt.Errorf("decision %d = %d: want 0..%d", i, x, c.choices[i]-1)
		}
	}
	return nil
}

// commit applies the shared part of r.
func (c *core) commit(r *restored) {
	c.pcg, c.rng = r.pcg, rand.New(r.pcg)
	c.next, c.obs, c.seen, c.best = r.Next, r.Observed, r.seen, r.best
}

// pendingMap indexes the members in flight by trial ID.
func pendingMap(ms []*member) map[string]*member {
	out := map[string]*member{}
	for _, m := range ms {
		if m.state == pending {
			out[idOf(m)] = m
		}
	}
	return out
}

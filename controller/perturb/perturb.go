package perturb

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"nasd/arch"
	"nasd/controller/strategy"
)

// Name is the name the strategy is registered under.
const Name = "perturb"

func init() { strategy.Register(Name, New) }

// Defaults of the options.
const (
	DefaultRepeats          = 5
	DefaultNeighbourRepeats = 1
)

// maxTrials bounds the list: a stray repeats = 1e12 is a mistake, not a plan.
const maxTrials = 10_000_000

// stream is the sample's PCG second seed word, so the run seed alone picks it.
const stream = 0x6e617364_70657274 // "nasdpert"

// Options are the strategy's options.
type Options struct {
	Arch             []int // the base architecture's decisions (required)
	Repeats          int   // trainings of the base (≥ 1)
	NeighbourRepeats int   // trainings of each neighbour (≥ 1)
	Sample           int   // 0: every neighbour; else at most this many, drawn with the run seed
}

// Plan is the list of trials the strategy will propose, in order.
type Plan struct {
	Base       arch.Arch
	Neighbours []arch.Arch // the valid neighbours kept (all, or the sample), in decision order
	Valid      int         // valid neighbours before sampling
	Invalid    int         // neighbours the space rejects, skipped
	Repeats    int         // trainings of Base, first
	NRepeats   int         // trainings of each neighbour, in a row
}

// Len is the number of trials: Repeats + len(Neighbours) × NRepeats.
func (p *Plan) Len() int { return p.Repeats + len(p.Neighbours)*p.NRepeats }

// At returns the architecture of trial i (0-based). The list is not
// materialised: repeats × (architecture with its options) would cost memory
// for nothing.
func (p *Plan) At(i int) arch.Arch {
	if i < p.Repeats {
		return p.Base
	}
	return p.Neighbours[(i-p.Repeats)/p.NRepeats]
}

// ParseOptions reads the options as decoded from a config file (TOML's
// int64, JSON's float64) and reports every bad or unknown one by name.
func ParseOptions(opts map[string]any) (Options, error) {
	o := Options{Repeats: DefaultRepeats, NeighbourRepeats: DefaultNeighbourRepeats}
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &arch.FieldError{Path: []string{key}, Msg: "perturb: " + fmt.Sprintf(format, args...)})
	}
	known := []string{"arch", "neighbour_repeats", "repeats", "sample"}
	var unknown []string
	for k := range opts {
		if !slices.Contains(known, k) {
			unknown = append(unknown, fmt.Sprintf("%q", k))
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		bad(strings.Trim(unknown[0], `"`), "unknown option %s (known: %s)", strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	v, ok := opts["arch"]
	if !ok {
		bad("arch", "option arch: missing: the base architecture's decisions, e.g. arch = [0, 2, 1] (nasd perturb writes it)")
	} else if d, msg := intList(v); msg != "" {
		bad("arch", "option arch = %v: %s", v, msg)
	} else {
		o.Arch = d
	}
	readInt := func(key string, dst *int, lo int) {
		v, ok := opts[key]
		if !ok {
			return
		}
		n, isInt := strategy.AsInt(v)
		switch {
		case !isInt:
			bad(key, "option %s = %v: must be an integer", key, v)
		case n < int64(lo) || n > maxTrials:
			bad(key, "option %s = %d: must be in %d..%d", key, n, lo, maxTrials)
		default:
			*dst = int(n)
		}
	}
	readInt("repeats", &o.Repeats, 1)
	readInt("neighbour_repeats", &o.NeighbourRepeats, 1)
	readInt("sample", &o.Sample, 0)
	return o, errors.Join(errs...)
}

// intList converts a decoded list of integers.
func intList(v any) ([]int, string) {
	switch x := v.(type) {
	case []int:
		return slices.Clone(x), ""
	case []any:
		out := make([]int, len(x))
		for i, e := range x {
			n, ok := strategy.AsInt(e)
			if !ok || n < 0 || n > math.MaxInt32 {
				return nil, fmt.Sprintf("element %d (%v) is not a choice index ≥ 0", i, e)
			}
			out[i] = int(n)
		}
		return out, ""
	case []int64:
		out := make([]int, len(x))
		for i, n := range x {
			if n < 0 || n > math.MaxInt32 {
				return nil, fmt.Sprintf("element %d (%d) is not a choice index ≥ 0", i, n)
			}
			out[i] = int(n)
		}
		return out, ""
	}
	return nil, "must be a list of choice indices"
}

// NewPlan builds the list of trials from the options, the space and the run
// seed (which picks the sample). The same inputs give the same plan, which
// is what lets a resumed run continue it.
func NewPlan(space arch.Space, o Options, seed uint64) (*Plan, error) {
	if space == nil {
		return nil, errors.New("perturb: no search space")
	}
	base, err := space.Arch(o.Arch)
	if err != nil {
		return nil, &arch.FieldError{Path: []string{"arch"}, Msg: fmt.Sprintf("perturb: option arch = %v: %v", o.Arch, err)}
	}
	if err := arch.Validate(space, base, arch.Budget{}); err != nil {
		return nil, &arch.FieldError{Path: []string{"arch"}, Msg: fmt.Sprintf("perturb: option arch = %v: %v", o.Arch, err)}
	}
	p := &Plan{Base: base, Repeats: o.Repeats, NRepeats: o.NeighbourRepeats}
	for _, n := range space.Neighbours(base) {
		if arch.Validate(space, n, arch.Budget{}) != nil {
			p.Invalid++
			continue
		}
		p.Neighbours = append(p.Neighbours, n)
	}
	p.Valid = len(p.Neighbours)
	if o.Sample > 0 && o.Sample < len(p.Neighbours) {
		// A seeded partial shuffle picks the sample; sorting the picked
		// indices keeps decision order.
		r := rand.New(rand.NewPCG(seed, stream))
		idx := make([]int, len(p.Neighbours))
		for i := range idx {
			idx[i] = i
		}
		for i := 0; i < o.Sample; i++ {
			j := i + r.IntN(len(idx)-i)
			idx[i], idx[j] = idx[j], idx[i]
		}
		idx = idx[:o.Sample]
		slices.Sort(idx)
		kept := make([]arch.Arch, len(idx))
		for i, k := range idx {
			kept[i] = p.Neighbours[k]
		}
		p.Neighbours = kept
	}
	total := int64(o.Repeats) + int64(len(p.Neighbours))*int64(o.NeighbourRepeats)
	if total > maxTrials {
		return nil, &arch.FieldError{Path: []string{"neighbour_repeats"},
			Msg: fmt.Sprintf("perturb: %d trials (%d repeats + %d neighbours × %d): more than %d", total, o.Repeats, len(p.Neighbours), o.NeighbourRepeats, maxTrials)}
	}
	return p, nil
}

// Strategy proposes a Plan's trials in order. It is a pure state machine:
// its state is the position in the plan and the trials in flight.
type Strategy struct {
	seed    uint64
	plan    *Plan
	next    int             // index in the plan of the next proposal
	pending map[string]bool // proposed, not yet observed
	seen    int
}

// New makes the strategy; every bad option is reported by name.
func New(env strategy.Env) (strategy.Strategy, error) {
	if env.Space == nil {
		return nil, errors.New("perturb: no search space")
	}
	o, err := ParseOptions(env.Options)
	if err != nil {
		return nil, err
	}
	p, err := NewPlan(env.Space, o, env.Seed)
	if err != nil {
		return nil, err
	}
	return &Strategy{seed: env.Seed, plan: p, pending: map[string]bool{}}, nil
}

// Name returns "perturb".
func (s *Strategy) Name() string { return Name }

// Plan returns the list the strategy proposes (not to be modified).
func (s *Strategy) Plan() *Plan { return s.plan }

// Propose returns the next up to n trials of the plan; none once it is exhausted.
func (s *Strategy) Propose(n int) ([]strategy.Trial, error) {
	if n < 0 {
		return nil, fmt.Errorf("perturb: Propose(%d): n must be ≥ 0", n)
	}
	n = min(n, s.plan.Len()-s.next)
	out := make([]strategy.Trial, n)
	for i := range out {
		s.next++
		id := strategy.TrialID(s.next)
		a := s.plan.At(s.next - 1)
		a.Decisions = slices.Clone(a.Decisions)
		out[i] = strategy.Trial{ID: id, Arch: a, Seed: strategy.TrialSeed(s.seed, id)}
		s.pending[id] = true
	}
	return out, nil
}

// Observe records that a proposed trial is done; the strategy does not learn.
func (s *Strategy) Observe(r strategy.Result) error {
	if !s.pending[r.TrialID] {
		return fmt.Errorf("perturb: Observe: trial %q was not proposed or was already observed", r.TrialID)
	}
	delete(s.pending, r.TrialID)
	s.seen++
	return nil
}

// Done says whether every trial of the plan has been proposed and observed.
func (s *Strategy) Done() bool { return s.next == s.plan.Len() && len(s.pending) == 0 }

type snapshot struct {
	Version  int      `json:"version"`
	Seed     uint64   `json:"seed"`
	Base     string   `json:"base"`   // the base's hash: the plan must be the same one
	Trials   int      `json:"trials"` // the plan's length
	Next     int      `json:"next"`
	Pending  []string `json:"pending,omitempty"`
	Observed int      `json:"observed"`
}

const snapshotVersion = 1

// Snapshot encodes the position in the plan; the plan itself is rebuilt
// from the options, so the snapshot's size is bounded by the trials in flight.
func (s *Strategy) Snapshot() ([]byte, error) {
	pending := make([]string, 0, len(s.pending))
	for id := range s.pending {
		pending = append(pending, id)
	}
	slices.Sort(pending)
	return json.Marshal(snapshot{Version: snapshotVersion, Seed: s.seed, Base: s.plan.Base.Hash(),
		Trials: s.plan.Len(), Next: s.next, Pending: pending, Observed: s.seen})
}

// Restore continues from a Snapshot of a strategy with the same options and seed.
func (s *Strategy) Restore(b []byte) error {
	var st snapshot
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("perturb: restore: %w", err)
	}
	switch {
	case st.Version != snapshotVersion:
		return fmt.Errorf("perturb: restore: snapshot version %d, this build reads %d", st.Version, snapshotVersion)
	case st.Seed != s.seed:
		return fmt.Errorf("perturb: restore: snapshot of a run with seed %d, this one has seed %d", st.Seed, s.seed)
	case st.Base != s.plan.Base.Hash():
		return fmt.Errorf("perturb: restore: snapshot of another base architecture (%.12s, this one %.12s)", st.Base, s.plan.Base.Hash())
	case st.Trials != s.plan.Len():
		return fmt.Errorf("perturb: restore: snapshot of a plan of %d trials, this one has %d (other options?)", st.Trials, s.plan.Len())
	case st.Next < 0 || st.Next > s.plan.Len():
		return fmt.Errorf("perturb: restore: position %d: must be in 0..%d", st.Next, s.plan.Len())
	case st.Observed < 0 || st.Observed+len(st.Pending) != st.Next:
		return fmt.Errorf("perturb: restore: %d observed + %d pending ≠ %d proposed", st.Observed, len(st.Pending), st.Next)
	}
	pending := make(map[string]bool, len(st.Pending))
	for _, id := range st.Pending {
		pending[id] = true
	}
	s.next, s.seen, s.pending = st.Next, st.Observed, pending
	return nil
}

package rl

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"nasd/arch"
	"slices"
)

// snapshot is the strategy's whole state as JSON. Weights and Adam moments
// are little-endian float64 bytes (base64 in JSON), so they round-trip
// exactly. Its size is bounded by the weights plus the trials of one batch
// and those in flight, not by the length of the run.
type snapshot struct {
	Version  int           `json:"version"`
	Strategy string        `json:"strategy"`
	Seed     uint64        `json:"seed"`
	Model    string        `json:"model"` // space, decision table and network shape
	PCG      []byte        `json:"pcg"`   // rand.PCG.MarshalBinary
	Next     int           `json:"next"`
	Batch    int           `json:"batch"`
	Updates  int           `json:"updates"`
	Baseline *float64      `json:"baseline,omitempty"`
	AdamT    int           `json:"adam_t,omitempty"`
	Params   []tensorSnap  `json:"params"`
	Pending  []pendingSnap `json:"pending,omitempty"`
	Observed []obsRec      `json:"observed,omitempty"`
	Last     UpdateInfo    `json:"last"`
}

type tensorSnap struct {
	Name string `json:"name"`
	W    []byte `json:"w"`
	M    []byte `json:"m,omitempty"` // Adam's first moment ("rl" only)
	V    []byte `json:"v,omitempty"` // Adam's second moment
}

type pendingSnap struct {
	ID string `json:"id"`
	trialRec
}

const snapshotVersion = 1

func floatsToBytes(xs []float64) []byte {
	if xs == nil {
		return nil
	}
	b := make([]byte, 8*len(xs))
	for i, x := range xs {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return b
}

func bytesToFloats(dst []float64, b []byte) bool {
	if len(b) != 8*len(dst) {
		return false
	}
	for i := range dst {
		dst[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return true
}

// fingerprint names what a snapshot's weights fit: the space, its decision
// table and the network's shape.
func (s *Strategy) fingerprint() string { return fingerprint(s.space, s.m, s.opt) }

func fingerprint(space arch.Space, m *model, opt Options) string {
	h := fnv.New64a()
	for _, d := range m.decisions {
		fmt.Fprintf(h, "%q", d.Name)
		for _, c := range d.Choices {
			fmt.Fprintf(h, " %q", c)
		}
		h.Write([]byte{0})
	}
	return fmt.Sprintf("%s %016x layers=%d hidden=%d share_heads=%v", space.Name(), h.Sum64(), opt.Layers, opt.Hidden, opt.ShareHeads)
}

// Snapshot encodes the whole state: weights, Adam's moments and step, the
// baseline, the generator, the next ID, the trials in flight and the
// observed part of the current batch with their actions, the update count.
// The encoding is deterministic.
func (s *Strategy) Snapshot() ([]byte, error) {
	pcg, err := s.pcg.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("%s: snapshot: %w", s.name, err)
	}
	st := snapshot{Version: snapshotVersion, Strategy: s.name, Seed: s.seed, Model: s.fingerprint(), PCG: pcg,
		Next: s.next, Batch: s.batch, Updates: s.updates, AdamT: s.adamT, Observed: s.observed, Last: s.last}
	if s.haveBase {
		b := s.baseline
		st.Baseline = &b
	}
	for i, p := range s.m.params {
		ts := tensorSnap{Name: p.name, W: floatsToBytes(p.data)}
		if s.learn {
			ts.M, ts.V = floatsToBytes(s.adamM[i]), floatsToBytes(s.adamV[i])
		}
		st.Params = append(st.Params, ts)
	}
	for id, rec := range s.pending {
		st.Pending = append(st.Pending, pendingSnap{ID: id, trialRec: *rec})
	}
	slices.SortFunc(st.Pending, func(a, b pendingSnap) int { return a.N - b.N })
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("%s: snapshot: %w", s.name, err)
	}
	return b, nil
}

// Restore continues from a Snapshot of a strategy of the same name, seed,
// space and network shape. Learning-rate and the other hyperparameters are
// taken from this strategy's options; the batch size from the snapshot
// unless the batch option sets it. On error the strategy is unchanged.
func (s *Strategy) Restore(b []byte) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s: restore: %s", s.name, fmt.Sprintf(format, args...))
	}
	var st snapshot
	if err := json.Unmarshal(b, &st); err != nil {
		return fail("%v", err)
	}
	switch {
	case st.Version != snapshotVersion:
		return fail("snapshot version %d, this build reads %d", st.Version, snapshotVersion)
	case st.Strategy != s.name:
		return fail("snapshot of strategy %q", st.Strategy)
	case st.Seed != s.seed:
		return fail("snapshot of a run with seed %d, this one has seed %d", st.Seed, s.seed)
	case st.Model != s.fingerprint():
		return fail("snapshot of controller %q, this one is %q", st.Model, s.fingerprint())
	case st.Next < 1 || st.Batch < 0 || st.Updates < 0 || st.AdamT < 0:
		return fail("corrupt counters (next %d, batch %d, updates %d, adam_t %d)", st.Next, st.Batch, st.Updates, st.AdamT)
	case len(st.Params) != len(s.m.params):
		return fail("%d weight tensors, want %d", len(st.Params), len(s.m.params))
	}
	pcg := &rand.PCG{}
	if err := pcg.UnmarshalBinary(st.PCG); err != nil {
		return fail("generator state: %v", err)
	}
	weights := make([][]float64, len(s.m.params))
	var ms, vs [][]float64
	for i, p := range s.m.params {
		ts := st.Params[i]
		weights[i] = make([]float64, p.size())
		if ts.Name != p.name || !bytesToFloats(weights[i], ts.W) {
			return fail("weight tensor %d: %s of %d bytes, want %s of %d", i, ts.Name, len(ts.W), p.name, 8*p.size())
		}
		if s.learn {
			m, v := make([]float64, p.size()), make([]float64, p.size())
			if !bytesToFloats(m, ts.M) || !bytesToFloats(v, ts.V) {
				return fail("Adam moments of %s: wrong size", p.name)
			}
			ms, vs = append(ms, m), append(vs, v)
		}
	}
	checkActions := func(id string, a []int) error {
		if _, err := s.space.Arch(a); err != nil {
			return fail("trial %s: %v", id, err)
		}
		return nil
	}
	pending := make(map[string]*trialRec, len(st.Pending))
	for _, p := range st.Pending {
		if err := checkActions(p.ID, p.Actions); err != nil {
			return err
		}
		rec := p.trialRec
		pending[p.ID] = &rec
	}
	for _, o := range st.Observed {
		if err := checkActions(o.ID, o.Actions); err != nil {
			return err
		}
	}

	for i, p := range s.m.params {
		copy(p.data, weights[i]) // in place: the graph is bound to these slices
	}
	if s.learn {
		s.adamM, s.adamV = ms, vs
	}
	s.pcg, s.rng = pcg, rand.New(pcg)
	s.next, s.updates, s.adamT = st.Next, st.Updates, st.AdamT
	if s.opt.Batch == 0 {
		s.batch = st.Batch
	}
	s.haveBase, s.baseline = st.Baseline != nil, 0
	if st.Baseline != nil {
		s.baseline = *st.Baseline
	}
	s.pending = pending
	s.observed = st.Observed
	s.last = st.Last
	return nil
}

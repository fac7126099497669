package analyze

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"nasd/arch"
	"nasd/journal"
)

// Trial is one trial of a run: its last dispatch and its result.
type Trial struct {
	ID         string
	Arch       arch.Arch
	Hash       string
	Seed       uint64
	Status     string
	Reason     string
	Reward     float64
	ValAcc     []float64
	BestValAcc float64
	TestAcc    float64 // NaN: not measured
	ValPPL     []float64
	TestPPL    float64 // NaN: not measured
	Params     int64
	FLOPs      int64
	Rank       int
	Host       string
	Start, End time.Time // on the worker's clock
	Seconds    float64
	Dispatched time.Time // rank 0's clock, the last dispatch (zero for rejected trials)
	Logged     time.Time // rank 0's clock, when the result was logged
	Order      int       // 0-based position among the results
	Segment    int       // 0-based segment (job) that logged the result
}

// OK reports whether the trial trained to the end.
func (t *Trial) OK() bool { return t.Status == "ok" }

// Segment is one job's part of a run.
type Segment struct {
	Start       time.Time
	End         time.Time // the last event's time
	Resumed     bool
	Reason      string // run_end's reason; "" when the segment was killed (no run_end)
	Interrupted bool
	Workers     int
	Hosts       []string
}

// Update is a strategy_update: the search's progress after an observation.
type Update struct {
	Time       time.Time
	Trials     int
	OK         int
	BestReward float64 // NaN before the first ok result
	Updates    int     // learning strategies: updates so far (0: none in this event)
	MeanReward float64
	Baseline   float64
	Entropy    float64
	Loss       float64
}

// Run is what a run directory's event log says.
type Run struct {
	Dir       string
	Schema    int
	Mode      string
	Strategy  string
	Seed      uint64
	Workers   int
	Space     arch.Space // nil when no trial named it
	Config    json.RawMessage
	Segments  []Segment
	Trials    []Trial // in the order their results were logged
	Updates   []Update
	Warnings  []string // warning events, and cuts of the log (killed segments)
	Proposed  int      // trials proposed (strategy_propose ids)
	FirstTime time.Time
	LastTime  time.Time
}

// Read reads the run in dir from its event log: every schema version, cut
// tails of killed segments included (they become warnings).
func Read(dir string) (*Run, error) {
	r := &Run{Dir: dir}
	dispatched := map[string]time.Time{}
	var spaceErr error
	truncated, err := journal.ReadEvents(dir, func(e journal.Event) error {
		if r.FirstTime.IsZero() {
			r.FirstTime = e.Time
		}
		r.LastTime = e.Time
		if n := len(r.Segments); n > 0 {
			r.Segments[n-1].End = e.Time
		}
		switch e.Kind {
		case "run_start":
			var f struct {
				Schema   int             `json:"schema"`
				Mode     string          `json:"mode"`
				Strategy string          `json:"strategy"`
				Seed     uint64          `json:"seed"`
				Workers  int             `json:"workers"`
				Resumed  bool            `json:"resumed"`
				Hosts    []string        `json:"hosts"`
				Config   json.RawMessage `json:"config"`
			}
			if err := json.Unmarshal(e.Raw, &f); err != nil {
				return fmt.Errorf("analyze: %s: run_start %d: %w", dir, e.Seq, err)
			}
			r.Schema, r.Mode, r.Strategy, r.Seed, r.Workers = f.Schema, f.Mode, f.Strategy, f.Seed, f.Workers
			if len(f.Config) > 0 {
				r.Config = f.Config
			}
			r.Segments = append(r.Segments, Segment{Start: e.Time, End: e.Time, Resumed: f.Resumed, Workers: f.Workers, Hosts: f.Hosts})
		case "run_end":
			var f struct {
				Reason      string `json:"reason"`
				Interrupted bool   `json:"interrupted"`
			}
			json.Unmarshal(e.Raw, &f)
			if n := len(r.Segments); n > 0 {
				r.Segments[n-1].Reason, r.Segments[n-1].Interrupted = f.Reason, f.Interrupted
			}
		case "strategy_propose":
			var f struct {
				IDs []string `json:"ids"`
			}
			json.Unmarshal(e.Raw, &f)
			r.Proposed += len(f.IDs)
		case "trial_dispatched":
			var f struct {
				Trial string `json:"trial"`
			}
			json.Unmarshal(e.Raw, &f)
			dispatched[f.Trial] = e.Time
		case "trial_result":
			t, err := readTrial(e)
			if err != nil {
				return fmt.Errorf("analyze: %s: trial_result %d: %w", dir, e.Seq, err)
			}
			t.Dispatched = dispatched[t.ID]
			t.Order, t.Segment = len(r.Trials), max(len(r.Segments)-1, 0)
			if r.Space == nil && spaceErr == nil && t.Arch.Space != "" {
				r.Space, spaceErr = arch.New(t.Arch.Space, t.Arch.Options)
			}
			r.Trials = append(r.Trials, t)
		case "strategy_update":
			var f struct {
				Trials     int      `json:"trials"`
				OK         int      `json:"ok"`
				BestReward *float64 `json:"best_reward"`
				Updates    int      `json:"updates"`
				MeanReward float64  `json:"mean_reward"`
				Baseline   float64  `json:"baseline"`
				Entropy    float64  `json:"entropy"`
				Loss       float64  `json:"loss"`
			}
			json.Unmarshal(e.Raw, &f)
			u := Update{Time: e.Time, Trials: f.Trials, OK: f.OK, BestReward: math.NaN(), Updates: f.Updates,
				MeanReward: f.MeanReward, Baseline: f.Baseline, Entropy: f.Entropy, Loss: f.Loss}
			if f.BestReward != nil {
				u.BestReward = *f.BestReward
			}
			r.Updates = append(r.Updates, u)
		case "warning":
			var f struct {
				Message string `json:"message"`
			}
			json.Unmarshal(e.Raw, &f)
			r.Warnings = append(r.Warnings, f.Message)
		}
		return nil
	})
	r.Warnings = append(r.Warnings, truncated...)
	if err != nil {
		return r, err
	}
	if len(r.Segments) == 0 && len(r.Trials) == 0 {
		return r, fmt.Errorf("analyze: %s: no events (is it a run directory?)", dir)
	}
	if spaceErr != nil {
		r.Warnings = append(r.Warnings, fmt.Sprintf("the trials' space: %v", spaceErr))
	}
	return r, nil
}

func readTrial(e journal.Event) (Trial, error) {
	var f struct {
		Trial      string          `json:"trial"`
		Arch       json.RawMessage `json:"arch"`
		Hash       string          `json:"arch_hash"`
		Seed       uint64          `json:"seed"`
		Status     string          `json:"status"`
		Reason     string          `json:"reason"`
		Reward     float64         `json:"reward"`
		ValAcc     []float64       `json:"val_acc"`
		BestValAcc float64         `json:"best_val_acc"`
		TestAcc    *float64        `json:"test_acc"`
		ValPPL     []float64       `json:"val_ppl"`
		TestPPL    *float64        `json:"test_ppl"`
		Params     int64           `json:"params"`
		FLOPs      int64           `json:"flops"`
		Rank       int             `json:"rank"`
		Host       string          `json:"host"`
		Start      time.Time       `json:"start"`
		End        time.Time       `json:"end"`
		Seconds    float64         `json:"seconds"`
	}
	if err := json.Unmarshal(e.Raw, &f); err != nil {
		return Trial{}, err
	}
	t := Trial{ID: f.Trial, Hash: f.Hash, Seed: f.Seed, Status: f.Status, Reason: f.Reason, Reward: f.Reward,
		ValAcc: f.ValAcc, BestValAcc: f.BestValAcc, TestAcc: math.NaN(), ValPPL: f.ValPPL, TestPPL: math.NaN(),
		Params: f.Params, FLOPs: f.FLOPs, Rank: f.Rank, Host: f.Host, Start: f.Start, End: f.End, Seconds: f.Seconds,
		Logged: e.Time}
	if f.TestAcc != nil {
		t.TestAcc = *f.TestAcc
	}
	if f.TestPPL != nil {
		t.TestPPL = *f.TestPPL
	}
	if len(f.Arch) > 0 {
		if err := json.Unmarshal(f.Arch, &t.Arch); err != nil {
			return t, fmt.Errorf("trial %s: arch: %w", f.Trial, err)
		}
	}
	if t.ID == "" {
		return t, errors.New("a trial_result without a trial id")
	}
	return t, nil
}

// Best returns the ok trials by reward, best first (earlier first on ties).
func (r *Run) Best() []*Trial {
	var ok []*Trial
	for i := range r.Trials {
		if r.Trials[i].OK() {
			ok = append(ok, &r.Trials[i])
		}
	}
	slices.SortStableFunc(ok, func(a, b *Trial) int { return cmp.Compare(b.Reward, a.Reward) })
	return ok
}

// DecisionNames names the space's decisions ("layer 1 filter height", ...),
// or "d0", "d1", ... when the space is unknown.
func (r *Run) DecisionNames() []string {
	n := 0
	for _, t := range r.Trials {
		n = max(n, len(t.Arch.Decisions))
	}
	names := make([]string, n)
	var ds []arch.Decision
	if r.Space != nil {
		ds = r.Space.Decisions()
	}
	for i := range names {
		if i < len(ds) {
			names[i] = ds[i].Name
		} else {
			names[i] = fmt.Sprintf("d%d", i)
		}
	}
	return names
}

// Choice is decision i's choice c as the space names it.
func (r *Run) Choice(i, c int) string {
	if r.Space != nil {
		if ds := r.Space.Decisions(); i < len(ds) && c >= 0 && c < len(ds[i].Choices) {
			return ds[i].Choices[c]
		}
	}
	return fmt.Sprint(c)
}

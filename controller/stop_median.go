package controller

import (
	"encoding/json"
	"fmt"
	"sort"
)

// StopperMedian is the median stopping rule.
const StopperMedian = "median"

// Median stopping rule defaults.
const (
	DefaultMedianMinTrials   = 5
	DefaultMedianGraceEpochs = 1
)

// median is the median stopping rule of Golovin et al. 2017 ("Google
// Vizier: A Service for Black-Box Optimization", §3.2.2): a trial is
// stopped after epoch e when its best validation accuracy so far is
// strictly below the median, over the finished trials that ran at least e
// epochs, of their running average of validation accuracy over epochs 1..e
// (option statistic = "best": their best accuracy over 1..e instead).
// Finished trials are those that ran to the end or were stopped; failed,
// diverged, timed-out and rejected ones do not count.
//
// Options: min_trials (default 5): the rule acts at epoch e only when at
// least that many finished trials reached e; grace_epochs (default 1): no
// trial is stopped before it has run that many epochs; statistic ("mean",
// the default, or "best").
//
// Bounded state: the statistics of each epoch are
// kept exactly up to 2·SketchSize finished trials, then in a sketch of at
// most 2·SketchSize centroids whose median is within a quantile of
// 2/SketchSize of the exact one (see sketch).
//
// Its state is bounded: per epoch at most 2·SketchSize+1 numbers and as
// many weights, plus one number per running trial.
type median struct {
	minTrials, grace int
	stat             string
	size             int
	st               medianState
}

type medianState struct {
	Version int `json:"version"`
	// ByEpoch[e-1]: the statistic at epoch e of each finished trial that
	// ran at least e epochs.
	ByEpoch []sketch `json:"by_epoch"`
	// Best: the best validation accuracy each running trial reported so far.
	Best map[string]float64 `json:"best"`
}

// medianStateVersion 2: ByEpoch holds sketches. Version 1 (sorted lists of
// every value) is still read.
const medianStateVersion = 2

// medianStateV1 is the state version 1 wrote.
type medianStateV1 struct {
	ByEpoch [][]float64        `json:"by_epoch"`
	Best    map[string]float64 `json:"best"`
}

func newMedian(env StopperEnv) (Stopper, error) {
	o := &options{stopper: StopperMedian, m: env.Options}
	m := &median{
		minTrials: o.int("min_trials", DefaultMedianMinTrials),
		grace:     o.int("grace_epochs", DefaultMedianGraceEpochs),
		stat:      o.str("statistic", "mean"),
		size:      sketchSize,
		st:        medianState{Version: medianStateVersion, Best: map[string]float64{}},
	}
	if m.minTrials < 1 {
		o.bad("min_trials", m.minTrials, "must be ≥ 1")
	}
	if m.grace < 1 {
		o.bad("grace_epochs", m.grace, "must be ≥ 1")
	}
	if m.stat != "mean" && m.stat != "best" {
		o.bad("statistic", fmt.Sprintf("%q", m.stat), `must be "mean" (running average, as in Vizier) or "best"`)
	}
	if err := o.err(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *median) Name() string { return StopperMedian }

func (m *median) Report(trial string, epoch int, valAcc float64) bool {
	best, ok := m.st.Best[trial]
	if !ok || valAcc > best {
		best = valAcc
	}
	m.st.Best[trial] = best
	if epoch < m.grace || epoch > len(m.st.ByEpoch) {
		return false
	}
	vals := &m.st.ByEpoch[epoch-1]
	if vals.N < m.minTrials {
		return false
	}
	return best < vals.median()
}

// medianOf returns the median of sorted, non-empty vals: the middle value,
// or the mean of the two middle ones.
func medianOf(vals []float64) float64 {
	n := len(vals)
	if n%2 == 1 {
		return vals[n/2]
	}
	return (vals[n/2-1] + vals[n/2]) / 2
}

func (m *median) Finished(trial, status string, valAcc []float64) {
	delete(m.st.Best, trial)
	if !countsOf(status) {
		return
	}
	sum, best := 0.0, 0.0
	for i, v := range valAcc {
		sum += v
		best = max(best, v)
		x := sum / float64(i+1)
		if m.stat == "best" {
			x = best
		}
		if i == len(m.st.ByEpoch) {
			m.st.ByEpoch = append(m.st.ByEpoch, sketch{})
		}
		m.st.ByEpoch[i].add(x, m.size)
	}
}

func (m *median) Forget(trial string) { delete(m.st.Best, trial) }

func (m *median) Snapshot() ([]byte, error) { return json.Marshal(&m.st) }

func (m *median) Restore(b []byte) error {
	var v struct {
		Version int `json:"version"`
	}
	if err := restoreJSON(StopperMedian, b, &v); err != nil {
		return err
	}
	var st medianState
	switch v.Version {
	case 1:
		var old medianStateV1
		if err := restoreJSON(StopperMedian, b, &old); err != nil {
			return err
		}
		st = medianState{Version: medianStateVersion, Best: old.Best}
		for _, col := range old.ByEpoch {
			if !sort.Float64sAreSorted(col) {
				return fmt.Errorf("controller: stopper median: Restore: by_epoch is not sorted")
			}
			var sk sketch
			for _, x := range col {
				sk.add(x, m.size)
			}
			st.ByEpoch = append(st.ByEpoch, sk)
		}
	case medianStateVersion:
		if err := restoreJSON(StopperMedian, b, &st); err != nil {
			return err
		}
		for e := range st.ByEpoch {
			if err := st.ByEpoch[e].check(); err != nil {
				return fmt.Errorf("controller: stopper median: Restore: by_epoch[%d]: %v", e, err)
			}
		}
	default:
		return fmt.Errorf("controller: stopper median: Restore: state version %d, this build reads versions 1 and %d", v.Version, medianStateVersion)
	}
	if st.Best == nil {
		st.Best = map[string]float64{}
	}
	m.st = st
	return nil
}

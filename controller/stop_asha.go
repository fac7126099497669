package controller

import (
	"encoding/json"
	"fmt"
	"slices"
)

// StopperASHA is asynchronous successive halving as an early stopper.
const StopperASHA = "asha"

// ASHA defaults.
const (
	DefaultASHAEta       = 4
	DefaultASHAMinEpochs = 1
)

// asha is asynchronous successive halving (Li et al. 2020, "A System for
// Massively Parallel Hyperparameter Tuning", Algorithm 2) used to stop
// trials rather than to promote them: rungs sit at min_epochs·η^k epochs for
// k = 0, 1, ... below the trials' epoch budget. A trial that completes a
// rung's epoch records its validation accuracy there and continues only if
// it is in the top 1/η of the values recorded at that rung so far, itself
// included: with n values there, it continues when fewer than ⌈n/η⌉ of them
// are strictly greater than its own (so the first trial at a rung always
// continues, and ties favour the trial). Otherwise it stops.
//
// Options: eta (η, default 4), min_epochs (default 1); the top rung is below
// StopperEnv.Epochs, which must be known. A trial that finishes without
// running to the end or being stopped (failed, diverged, timed out) leaves
// the rungs; so does one forgotten on resume.
//
// Bounded state: the values of finished trials at
// each rung are kept exactly up to 2·SketchSize of them, then in a sketch
// of at most 2·SketchSize centroids, where "strictly greater" counts are
// within 2/SketchSize of n of the exact ones (see sketch). Values of
// running trials are kept exactly, by trial, until they finish.
//
// Its state is bounded: per rung at most 2·SketchSize+1 numbers and as
// many weights, plus one value per running trial that reached it.
type asha struct {
	eta, minEpochs, size int
	st                   ashaState
}

type ashaState struct {
	Version int   `json:"version"`
	Rungs   []int `json:"rungs"` // their epochs, ascending
	// Live[k]: the validation accuracy of each trial that reached rung k
	// and has not finished.
	Live []map[string]float64 `json:"live"`
	// Done[k]: the values at rung k of the finished trials that reached it.
	Done []sketch `json:"done"`
}

// ashaStateVersion 2: finished trials' values in sketches. Version 1 (a
// map of every trial per rung) is still read: its values count as live.
const ashaStateVersion = 2

// ashaStateV1 is the state version 1 wrote.
type ashaStateV1 struct {
	Rungs    []int                `json:"rungs"`
	Recorded []map[string]float64 `json:"recorded"`
}

func newASHA(env StopperEnv) (Stopper, error) {
	o := &options{stopper: StopperASHA, m: env.Options}
	a := &asha{eta: o.int("eta", DefaultASHAEta), minEpochs: o.int("min_epochs", DefaultASHAMinEpochs),
		size: sketchSize}
	if a.eta < 2 {
		o.bad("eta", a.eta, "must be ≥ 2")
	}
	if a.minEpochs < 1 {
		o.bad("min_epochs", a.minEpochs, "must be ≥ 1")
	}
	if err := o.err(); err != nil {
		return nil, err
	}
	if env.Epochs <= 0 {
		return nil, fmt.Errorf("controller: stopper %s: the trials' epoch budget is unknown (Config.Epochs = %d): it sets the top rung", StopperASHA, env.Epochs)
	}
	if a.minEpochs >= env.Epochs {
		return nil, fmt.Errorf("controller: stopper %s: option min_epochs = %d: must be below the trials' %d epochs (a rung at the last epoch saves nothing)", StopperASHA, a.minEpochs, env.Epochs)
	}
	a.st = ashaState{Version: ashaStateVersion, Rungs: ashaRungs(a.minEpochs, a.eta, env.Epochs)}
	a.st.Live = make([]map[string]float64, len(a.st.Rungs))
	for k := range a.st.Live {
		a.st.Live[k] = map[string]float64{}
	}
	a.st.Done = make([]sketch, len(a.st.Rungs))
	return a, nil
}

// ashaRungs returns min·η^k for k = 0, 1, ... while below max.
func ashaRungs(minEpochs, eta, maxEpochs int) []int {
	var rungs []int
	for r := minEpochs; r < maxEpochs; r *= eta {
		rungs = append(rungs, r)
	}
	return rungs
}

func (a *asha) Name() string { return StopperASHA }

func (a *asha) Report(trial string, epoch int, valAcc float64) bool {
	k := slices.Index(a.st.Rungs, epoch)
	if k < 0 {
		return false
	}
	live := a.st.Live[k]
	live[trial] = valAcc
	done := &a.st.Done[k]
	n := len(live) + done.N
	keep := (n + a.eta - 1) / a.eta // ⌈n/η⌉
	above := done.above(valAcc)
	for _, v := range live {
		if v > valAcc {
			above++
		}
	}
	return above >= keep
}

func (a *asha) Finished(trial, status string, valAcc []float64) {
	if !countsOf(status) {
		a.Forget(trial)
		return
	}
	// A result replayed on resume brings the values its reports recorded.
	for k, r := range a.st.Rungs {
		v, ok := a.st.Live[k][trial]
		if ok {
			delete(a.st.Live[k], trial)
		} else if r <= len(valAcc) {
			v, ok = valAcc[r-1], true
		}
		if ok {
			a.st.Done[k].add(v, a.size)
		}
	}
}

func (a *asha) Forget(trial string) {
	for _, live := range a.st.Live {
		delete(live, trial)
	}
}

func (a *asha) Snapshot() ([]byte, error) { return json.Marshal(&a.st) }

func (a *asha) Restore(b []byte) error {
	var v struct {
		Version int `json:"version"`
	}
	if err := restoreJSON(StopperASHA, b, &v); err != nil {
		return err
	}
	var st ashaState
	switch v.Version {
	case 1:
		var old ashaStateV1
		if err := restoreJSON(StopperASHA, b, &old); err != nil {
			return err
		}
		st = ashaState{Version: ashaStateVersion, Rungs: old.Rungs, Live: old.Recorded}
		if len(old.Recorded) == len(old.Rungs) {
			st.Done = make([]sketch, len(old.Rungs))
		}
	case ashaStateVersion:
		if err := restoreJSON(StopperASHA, b, &st); err != nil {
			return err
		}
	default:
		return fmt.Errorf("controller: stopper asha: Restore: state version %d, this build reads versions 1 and %d", v.Version, ashaStateVersion)
	}
	if !slices.Equal(st.Rungs, a.st.Rungs) || len(st.Live) != len(st.Rungs) || len(st.Done) != len(st.Rungs) {
		return fmt.Errorf("controller: stopper asha: Restore: the checkpoint's rungs are at epochs %v, this run's at %v (eta, min_epochs or epochs changed)", st.Rungs, a.st.Rungs)
	}
	for k := range st.Live {
		if st.Live[k] == nil {
			st.Live[k] = map[string]float64{}
		}
		if err := st.Done[k].check(); err != nil {
			return fmt.Errorf("controller: stopper asha: Restore: done[%d]: %v", k, err)
		}
	}
	a.st = st
	return nil
}

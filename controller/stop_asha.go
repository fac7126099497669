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
// Its state grows by one value per rung each trial reaches.
type asha struct {
	eta, minEpochs int
	st             ashaState
}

type ashaState struct {
	Version int   `json:"version"`
	Rungs   []int `json:"rungs"` // their epochs, ascending
	// Recorded[k]: the validation accuracy of each trial that reached rung k.
	Recorded []map[string]float64 `json:"recorded"`
}

const ashaStateVersion = 1

func newASHA(env StopperEnv) (Stopper, error) {
	o := &options{stopper: StopperASHA, m: env.Options}
	a := &asha{eta: o.int("eta", DefaultASHAEta), minEpochs: o.int("min_epochs", DefaultASHAMinEpochs)}
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
	a.st.Recorded = make([]map[string]float64, len(a.st.Rungs))
	for k := range a.st.Recorded {
		a.st.Recorded[k] = map[string]float64{}
	}
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
	rec := a.st.Recorded[k]
	rec[trial] = valAcc
	keep := (len(rec) + a.eta - 1) / a.eta // ⌈n/η⌉
	above := 0
	for _, v := range rec {
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
		if r <= len(valAcc) {
			if _, ok := a.st.Recorded[k][trial]; !ok {
				a.st.Recorded[k][trial] = valAcc[r-1]
			}
		}
	}
}

func (a *asha) Forget(trial string) {
	for _, rec := range a.st.Recorded {
		delete(rec, trial)
	}
}

func (a *asha) Snapshot() ([]byte, error) { return json.Marshal(&a.st) }

func (a *asha) Restore(b []byte) error {
	var st ashaState
	if err := restoreJSON(StopperASHA, b, &st); err != nil {
		return err
	}
	if st.Version != ashaStateVersion {
		return fmt.Errorf("controller: stopper asha: Restore: state version %d, this build reads %d", st.Version, ashaStateVersion)
	}
	if !slices.Equal(st.Rungs, a.st.Rungs) || len(st.Recorded) != len(st.Rungs) {
		return fmt.Errorf("controller: stopper asha: Restore: the checkpoint's rungs are at epochs %v, this run's at %v (eta, min_epochs or epochs changed)", st.Rungs, a.st.Rungs)
	}
	for k := range st.Recorded {
		if st.Recorded[k] == nil {
			st.Recorded[k] = map[string]float64{}
		}
	}
	a.st = st
	return nil
}

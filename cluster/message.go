package cluster

import "nasd/controller/strategy"

// Trial is one architecture to train, as a task carries it: the record the
// strategy proposes (strategy.Trial), so nothing converts between the two.
type Trial = strategy.Trial

// Result statuses beyond train's (ok, diverged, timeout, canceled, error);
// strategy.StatusFailed etc. documents each.
const (
	StatusFailed   = strategy.StatusFailed
	StatusStopped  = strategy.StatusStopped
	StatusRejected = strategy.StatusRejected
)

// Progress is a worker's report of one epoch of a trial that reports
// (Trial.Report); rank 0 answers with a Decision.
type Progress struct {
	TrialID string  `json:"trial"`
	Epoch   int     `json:"epoch"` // 1-based: epochs completed
	ValAcc  float64 `json:"val_acc"`
}

// Decision is rank 0's answer to a Progress: go on with the next epoch, or
// stop the trial now (it then reports status "stopped").
type Decision struct {
	TrialID string `json:"trial"`
	Stop    bool   `json:"stop"`
}

// Result is what a worker reports for a trial: the record the strategy
// observes (strategy.Result).
type Result = strategy.Result

package cluster

import (
	"time"

	"nasd/arch"
)

// Trial is one architecture to train: the unit the strategy proposes and a
// worker executes. Its result depends only on (Arch, Seed, Epochs), never on
// the rank that ran it.
type Trial struct {
	ID     string    `json:"id"` // made by the strategy, unique within a run
	Arch   arch.Arch `json:"arch"`
	Seed   uint64    `json:"seed"`             // derived from (run seed, ID)
	Epochs int       `json:"epochs,omitempty"` // budget override; 0 = the run's
	// Report asks the worker to send rank 0 a Progress after each epoch
	// but the last and to wait for its Decision before going on (early
	// stopping, async mode only). Rank 0 sets it when the run has a stopper.
	Report bool `json:"report,omitempty"`
}

// Result statuses beyond train's (ok, diverged, timeout, canceled, error).
const (
	StatusFailed = "failed" // the worker could not train the child (panic, bad input, out of memory)
	// StatusStopped: rank 0's stopper ended the trial at an epoch boundary;
	// the result covers the epochs run (ValAcc) and its reward is computed
	// over them.
	StatusStopped = "stopped"
	// StatusRejected: rank 0 never sent the trial to a worker, because its
	// architecture is over the run's static budget (Reason says which);
	// its reward is 0.
	StatusRejected = "rejected"
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

// Result is what a worker reports for a trial.
type Result struct {
	TrialID    string    `json:"trial"`
	Status     string    `json:"status"` // "ok", "diverged", "timeout", "failed", ...
	Reason     string    `json:"reason,omitempty"`
	Reward     float64   `json:"reward"`
	ValAcc     []float64 `json:"val_acc,omitempty"` // per epoch
	BestValAcc float64   `json:"best_val_acc"`
	TestAcc    *float64  `json:"test_acc,omitempty"`
	Params     int       `json:"params"`
	FLOPs      int64     `json:"flops"`
	Rank       int       `json:"rank"`
	Host       string    `json:"host"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	ImgPerSec  float64   `json:"img_per_sec,omitempty"`
}

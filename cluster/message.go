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
}

// Result statuses beyond train's (ok, diverged, timeout, canceled, error).
const (
	StatusFailed = "failed" // the worker could not train the child (panic, bad input, out of memory)
)

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

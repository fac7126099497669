package cluster

import (
	"encoding/json"
	"fmt"
)

// The ENAS protocol (Pham et al. 2018, trained across ranks). Rank 0 drives
// it: before each collective step it broadcasts an ENASPlan (Bcast from 0),
// and then every rank makes the calls the plan's Op names, in this order:
//
//	policy the plan carries the policy's sampler state (Policy); workers
//	       keep it to sample their own children until the next policy plan
//	train  workers Step their child on their minibatch: Children[rank-1]
//	       when the plan lists children, else one they sample from the
//	       policy with the generator PCG(SampleSeed, rank);
//	       every rank: AllreduceBuckets of the gradient (rank 0 adds nothing);
//	       workers apply SGD; if Check, Gather of each rank's weight checksum
//	eval   workers score their share of Children (child i on rank
//	       1 + i mod workers) on validation batch Batch (-1: the whole
//	       split); Gather of each worker's accuracies (ENASScores)
//	stats  Gather of each worker's ENASStats since the last stats
//	save   Gather: rank 1 sends its supernet state, the others nothing
//	load   Bcast from rank 0 of a supernet state every worker loads
//	stop   workers return
//
// Before the first plan every rank calls Gather once: each worker sends its
// ENASInfo, so rank 0 learns the layout and the data sizes.
type ENASPlan struct {
	Op       string  `json:"op"`
	Epoch    int     `json:"epoch,omitempty"`
	Step     int     `json:"step,omitempty"` // within the epoch
	LR       float64 `json:"lr,omitempty"`
	Children [][]int `json:"children,omitempty"` // decision lists
	// SampleSeed seeds the workers' own child draws of a train plan
	// without Children.
	SampleSeed uint64 `json:"sample_seed,omitempty"`
	Policy     []byte `json:"policy,omitempty"` // policy plan: the sampler state
	Batch      int    `json:"batch,omitempty"`
	Check      bool   `json:"check,omitempty"`
}

// ENAS plan ops.
const (
	ENASPolicy  = "policy"
	ENASTrain   = "train"
	ENASEval    = "eval"
	ENASStatsOp = "stats"
	ENASSave    = "save"
	ENASLoad    = "load"
	ENASStop    = "stop"
)

// ENASInfo is what a worker tells rank 0 before the first plan.
type ENASInfo struct {
	Size          int      `json:"size"` // floats in the shared weights
	Buckets       []Bucket `json:"buckets"`
	TrainExamples int      `json:"train_examples"`
	ValExamples   int      `json:"val_examples"`
	Batch         int      `json:"batch"`           // training minibatch per worker
	StepsPerEpoch int      `json:"steps_per_epoch"` // one pass over the training split by all workers
	ValBatches    int      `json:"val_batches"`     // validation minibatches of Batch examples
}

// ENASStats is a worker's shared-weight training since the last stats plan.
type ENASStats struct {
	Steps   int     `json:"steps"`
	LossSum float64 `json:"loss_sum"` // Σ of the steps' mean minibatch losses
	Correct int     `json:"correct"`  // training examples classified right (in the step's forward pass)
	Seen    int     `json:"seen"`
	// Diverged counts steps whose loss was not finite: they added no gradient.
	Diverged int `json:"diverged,omitempty"`
	// Wall-clock seconds summed over train plans: the child's forward and
	// backward pass (StepS) and AllreduceBuckets (AllreduceS, waiting for
	// the slowest rank included).
	StepS      float64 `json:"step_s,omitempty"`
	AllreduceS float64 `json:"allreduce_s,omitempty"`
}

// ENASScores is a worker's answer to an eval plan: the accuracies of its
// share of the children, in plan order.
type ENASScores struct {
	Acc []float64 `json:"acc"`
}

// EncodeENAS and DecodeENAS carry the ENAS messages as JSON: they travel
// only between ranks of one job, which run one binary.
func EncodeENAS(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("cluster: ENAS message: %w", err)
	}
	return b, nil
}

// DecodeENAS decodes b, sent by rank from, into v.
func DecodeENAS(from int, b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("cluster: ENAS message from rank %d: %w", from, err)
	}
	return nil
}

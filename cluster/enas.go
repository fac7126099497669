package cluster

import (
	"encoding/binary"
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
	// Task is "" for images and "lm" for language models, whose examples
	// are tokens, whose minibatches are windows of Batch streams (the
	// validation windows of the evaluation streams) and whose scores are
	// c / perplexity.
	Task string `json:"task,omitempty"`
	// RankState: each worker has state of its own that a checkpoint must
	// keep (a language model's carried hidden state); a save plan then
	// gathers it after the shared weights.
	RankState bool `json:"rank_state,omitempty"`
}

// TaskLM is ENASInfo.Task of a language-model search.
const TaskLM = "lm"

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

// ENASScores is a worker's answer to an eval plan: the scores of its share
// of the children, in plan order: accuracies, or for language models
// c / perplexity with the perplexities in PPL.
type ENASScores struct {
	Acc []float64 `json:"acc"`
	PPL []float64 `json:"ppl,omitempty"`
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

// AppendRankFrames appends the rank states of ranks 1..len(states)−1
// (states[0], rank 0's, is skipped), each as a little-endian uint64 length
// and its bytes: how a checkpoint keeps them after the shared weights.
func AppendRankFrames(b []byte, states [][]byte) []byte {
	for _, s := range states[1:] {
		b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// RankFrame returns rank's state from frames AppendRankFrames wrote.
func RankFrame(frames []byte, rank int) ([]byte, error) {
	if rank < 1 {
		return nil, fmt.Errorf("cluster: rank %d has no rank state", rank)
	}
	for r := 1; ; r++ {
		if len(frames) < 8 {
			return nil, fmt.Errorf("cluster: rank states end before rank %d's", rank)
		}
		n := binary.LittleEndian.Uint64(frames)
		if n > uint64(len(frames)-8) {
			return nil, fmt.Errorf("cluster: rank %d's state says %d bytes, %d are left", r, n, len(frames)-8)
		}
		if r == rank {
			return frames[8 : 8+n], nil
		}
		frames = frames[8+n:]
	}
}

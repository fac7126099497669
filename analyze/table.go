package analyze

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// Columns are the trial table's fixed columns, before one per decision.
var Columns = []string{"trial", "order", "segment", "status", "reason", "reward", "best_val_acc", "test_acc",
	"best_val_ppl", "test_ppl", "epochs", "params", "flops", "seconds", "rank", "host", "seed", "arch_hash",
	"dispatched", "start", "end"}

// Row is one trial's cells, the fixed columns then its choice of each
// decision by name; empty where unknown.
func (r *Run) Row(t *Trial) []string {
	num := func(v float64) string {
		if math.IsNaN(v) {
			return ""
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	ts := func(v time.Time) string {
		if v.IsZero() {
			return ""
		}
		return v.UTC().Format(time.RFC3339Nano)
	}
	bestPPL := math.NaN()
	for _, p := range t.ValPPL {
		if math.IsNaN(bestPPL) || p < bestPPL {
			bestPPL = p
		}
	}
	row := []string{t.ID, strconv.Itoa(t.Order), strconv.Itoa(t.Segment), t.Status, t.Reason, num(t.Reward),
		num(t.BestValAcc), num(t.TestAcc), num(bestPPL), num(t.TestPPL), strconv.Itoa(len(t.ValAcc)),
		strconv.FormatInt(t.Params, 10), strconv.FormatInt(t.FLOPs, 10), num(t.Seconds), strconv.Itoa(t.Rank), t.Host,
		strconv.FormatUint(t.Seed, 10), t.Hash, ts(t.Dispatched), ts(t.Start), ts(t.End)}
	for i := range r.DecisionNames() {
		cell := ""
		if i < len(t.Arch.Decisions) {
			cell = r.Choice(i, t.Arch.Decisions[i])
		}
		row = append(row, cell)
	}
	return row
}

// Header is the trial table's header: the fixed columns, then each
// decision's name.
func (r *Run) Header() []string {
	return append(append([]string(nil), Columns...), r.DecisionNames()...)
}

// WriteCSV writes the trial table, one row per trial in log order.
func (r *Run) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write(r.Header())
	for i := range r.Trials {
		cw.Write(r.Row(&r.Trials[i]))
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("analyze: csv: %w", err)
	}
	return nil
}

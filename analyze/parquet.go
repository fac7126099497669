package analyze

import (
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/parquet-go/parquet-go"
)

// parquetKinds types the fixed columns; the rest (and every decision) are
// strings.
var parquetKinds = map[string]string{
	"order": "int", "segment": "int", "epochs": "int", "params": "int", "flops": "int", "rank": "int", "seed": "uint",
	"reward": "float", "best_val_acc": "float", "test_acc": "float", "best_val_ppl": "float", "test_ppl": "float", "seconds": "float",
}

// WriteParquet writes the trial table (WriteCSV's columns, numbers typed,
// missing values null) as one Parquet file, for pandas, DuckDB or Spark.
// Parquet orders a group's columns by name.
func (r *Run) WriteParquet(w io.Writer) error {
	header := r.Header()
	group := parquet.Group{}
	for _, h := range header {
		switch parquetKinds[h] {
		case "int":
			group[h] = parquet.Optional(parquet.Int(64))
		case "uint":
			group[h] = parquet.Optional(parquet.Uint(64))
		case "float":
			group[h] = parquet.Optional(parquet.Leaf(parquet.DoubleType))
		default:
			group[h] = parquet.Optional(parquet.String())
		}
	}
	if len(group) != len(header) {
		return fmt.Errorf("analyze: parquet: two columns share a name (%d names for %d columns)", len(group), len(header))
	}
	schema := parquet.NewSchema("trial", group)
	pw := parquet.NewWriter(w, schema)
	for i := range r.Trials {
		cells := r.Row(&r.Trials[i])
		row := map[string]any{}
		for j, h := range header {
			c := cells[j]
			if c == "" {
				row[h] = nil
				continue
			}
			switch parquetKinds[h] {
			case "int":
				v, err := strconv.ParseInt(c, 10, 64)
				if err != nil {
					return fmt.Errorf("analyze: parquet: %s = %q: %w", h, c, err)
				}
				row[h] = v
			case "uint":
				v, err := strconv.ParseUint(c, 10, 64)
				if err != nil {
					return fmt.Errorf("analyze: parquet: %s = %q: %w", h, c, err)
				}
				row[h] = v
			case "float":
				v, err := strconv.ParseFloat(c, 64)
				if err != nil || math.IsNaN(v) {
					row[h] = nil
					continue
				}
				row[h] = v
			default:
				row[h] = c
			}
		}
		if err := pw.Write(row); err != nil {
			return fmt.Errorf("analyze: parquet: trial %s: %w", r.Trials[i].ID, err)
		}
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("analyze: parquet: %w", err)
	}
	return nil
}

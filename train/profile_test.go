package train

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"nasd/arch"
)

// BenchmarkProfileOps prints where a training step of each benchmark net
// goes: wall time per op kind and output shape, at batch 64 (docs/performance.md,
// "Where a step goes"). Run with -benchtime Nx and GOMAXPROCS pinned.
func BenchmarkProfileOps(b *testing.B) {
	for _, c := range []struct {
		name string
		g    *arch.Graph
	}{{"reference-cnn", ReferenceCNN()}, {"enas-child", enasChild(b)}} {
		b.Run("net="+c.name, func(b *testing.B) {
			const batch = 64
			cfg := Config{Epochs: 1, BatchSize: batch, Optimizer: "sgd", LR: 0.01, Momentum: 0.9, Schedule: "constant"}
			t := newTrainer(c.g, cfg.withDefaults(), 1)
			defer t.close()
			xs, ys := benchData(b, c.g, batch)
			if _, _, err := t.step(xs[0], ys[0], cfg.LR); err != nil {
				b.Fatal(err)
			}
			n, err := t.net(batch, true)
			if err != nil {
				b.Fatal(err)
			}
			n.ProfileOps(true)
			defer n.ProfileOps(false)
			start := time.Now()
			measure(b, batch, func() {
				k := b.N % len(xs)
				if _, _, err := t.step(xs[k], ys[k], cfg.LR); err != nil {
					b.Fatal(err)
				}
			})
			if b.N > 1 { // go test's first, 1-step round says little
				printOpTimes(os.Stdout, c.name, n.OpTimes(), time.Since(start), b.N)
			}
		})
	}
}

// printOpTimes writes the table of op times, largest first, with each op's
// share of the whole step (the rest is the optimizer and the harness).
func printOpTimes(w *os.File, name string, ts []OpTime, wall time.Duration, runs int) {
	ts = slices.Clone(ts)
	slices.SortFunc(ts, func(a, b OpTime) int { return int(b.Time - a.Time) })
	byOp := map[string]time.Duration{}
	var sum time.Duration
	for _, t := range ts {
		byOp[t.Op] += t.Time
		sum += t.Time
	}
	fmt.Fprintf(w, "%s: %d runs, %.2f ms per step, ops %.1f%% of it\n", name, runs, ms(wall)/float64(runs), 100*float64(sum)/float64(wall))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tshape\tsteps\tms/run\t% of step\t")
	for _, t := range ts {
		if float64(t.Time) < 0.005*float64(sum) {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.3f\t%.1f\t\n", t.Op, t.Shape, t.Steps, ms(t.Time)/float64(runs), 100*float64(t.Time)/float64(wall))
	}
	ops := make([]string, 0, len(byOp))
	for op := range byOp {
		ops = append(ops, op)
	}
	slices.SortFunc(ops, func(a, b string) int { return int(byOp[b] - byOp[a]) })
	var line []string
	for _, op := range ops {
		line = append(line, fmt.Sprintf("%s %.1f%%", op, 100*float64(byOp[op])/float64(wall)))
	}
	tw.Flush()
	fmt.Fprintf(w, "by op: %s\n", strings.Join(line, ", "))
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// TestProfileOps checks the per-op profile: every conv of the reference CNN
// appears with its three directions, the times are positive and add up to
// no more than the runs' wall time, and switching it off forgets them.
func TestProfileOps(t *testing.T) {
	n, err := Build(ReferenceCNN(), NewWeights(dtypeOf[float32](), 1), BuildOptions{Batch: 4, Train: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	x := make([]float32, 4*28*28)
	y := []int32{1, 2, 3, 4}
	n.ProfileOps(true)
	start := time.Now()
	const runs = 3
	for range runs {
		if _, _, err := n.Run(x, y); err != nil {
			t.Fatal(err)
		}
	}
	wall := time.Since(start)
	steps := map[string]int{}
	var sum time.Duration
	for _, o := range n.OpTimes() {
		if o.Time <= 0 {
			t.Errorf("%s %s: time %v", o.Op, o.Shape, o.Time)
		}
		steps[o.Op] += o.Steps
		sum += o.Time
	}
	// Three convs, each fused with the ReLU after it: forward, ReLU's
	// gradient and dW each; dX for the two whose input is not the image. The
	// one ReLU left is the dense layer's.
	if fuseConvReLUs && (steps["conv_relu"] != 3 || steps["conv_relu_dz"] != 3 || steps["conv_dw"] != 3 || steps["conv_dx"] != 2 ||
		steps["conv"] != 0 || steps["relu"] != 1) {
		t.Errorf("steps %v, want conv_relu 3, conv_relu_dz 3, conv_dw 3, conv_dx 2, conv 0, relu 1", steps)
	}
	if sum > wall {
		t.Errorf("ops took %v of %v", sum, wall)
	}
	n.ProfileOps(false)
	if ts := n.OpTimes(); len(ts) != 0 {
		t.Errorf("profile off, still %d entries", len(ts))
	}
}

package train

import (
	"fmt"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"nasd/arch"
)

// tapeRunner runs a net's graph on Gorgonia's TapeMachine instead of the
// package's program: the peer of BenchmarkExecutor.
type tapeRunner struct{ vm G.VM }

func (r tapeRunner) run() error {
	r.vm.Reset()
	return r.vm.RunAll()
}

func (r tapeRunner) value(nd *G.Node) G.Value { return nd.Value() }
func (r tapeRunner) profile(bool)             {}
func (r tapeRunner) opTimes() []OpTime        { return nil }

// BenchmarkExecutor compares the package's executor (program) with Gorgonia's
// TapeMachine on the same nets, training steps at batch 64: img/s and bytes
// allocated per step.
func BenchmarkExecutor(b *testing.B) {
	for _, net := range []struct {
		name string
		g    *arch.Graph
	}{{"reference-cnn", ReferenceCNN()}, {"enas-child", enasChild(b)}} {
		for _, exec := range []string{"program", "tape"} {
			b.Run(fmt.Sprintf("net=%s/exec=%s", net.name, exec), func(b *testing.B) {
				const batch = 64
				n, err := Build(net.g, NewWeights(tensor.Float32, 1), BuildOptions{Batch: batch, Train: true})
				if err != nil {
					b.Fatal(err)
				}
				if exec == "tape" {
					vm := G.NewTapeMachine(n.g)
					defer vm.Close()
					n.prog = tapeRunner{vm}
				}
				cfg := Config{Optimizer: "sgd", LR: 0.01, Momentum: 0.9}.withDefaults()
				opt := newOptimizer(cfg)
				x, y := randomBatch(batch, net.g.Input.Elems(), net.g.Classes)
				step := func() {
					if _, _, err := n.Run(x, y); err != nil {
						b.Fatal(err)
					}
					opt.update(n, cfg.LR)
				}
				step()
				measure(b, batch, step)
			})
		}
	}
}

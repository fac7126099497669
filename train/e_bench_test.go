package train

import (
	"fmt"
	"testing"

	"nasd/arch"
)

// enasMacro is an ENAS-macro-like child (Pham et al. 2018, §2.3) on 32×32×3:
// layers of conv / separable conv / 3×3 stride-1 max and avg pools, each
// followed by BN and ReLU (pools: BN only), skip connections summed with add
// and concatenated, one 2×2 reduction, global average pooling, dense.
func enasMacro(ch int) *arch.Graph {
	b := newGraph(3, 32, 32, 10)
	s := b.convBNReLU(3, ch, 1) // stem
	l1 := b.sepConv(3, ch, s)
	p1 := b.add(poolOp(arch.KindMaxPool, 3, 1, 1), l1)
	a1 := b.add(arch.Op{Kind: arch.KindAdd}, p1, s, l1)
	l2 := b.convBNReLU(3, ch, 1, a1)
	p2 := b.add(poolOp(arch.KindAvgPool, 3, 1, 1), l2)
	b.add(bnOp, p2)
	cat := b.add(arch.Op{Kind: arch.KindConcat}, b.last(), l1)
	b.convBNReLU(1, ch, 1, cat)
	r := b.add(poolOp(arch.KindMaxPool, 2, 2, 0))
	l3 := b.sepConv(5, 2*ch, r)
	p3 := b.add(poolOp(arch.KindAvgPool, 2, 2, 0), a1)
	l4 := b.convBNReLU(1, 2*ch, 1, p3)
	a2 := b.add(arch.Op{Kind: arch.KindAdd}, l3, l4)
	b.add(poolOp(arch.KindMaxPool, 3, 1, 1), a2)
	b.add(bnOp)
	b.add(reluOp)
	b.add(gapOp)
	b.add(denseOp(10))
	return b.g
}

// BenchmarkTrainEnasMacro: throughput and bytes/step of enasMacro training,
// SGD Nesterov momentum with weight decay, batch 64.
func BenchmarkTrainEnasMacro(b *testing.B) {
	for _, opt := range []string{"sgd", "adam"} {
		b.Run(fmt.Sprintf("opt=%s", opt), func(b *testing.B) {
			cfg := Config{Epochs: 1, BatchSize: 64, Optimizer: opt, LR: 0.01, Momentum: 0.9, Nesterov: opt == "sgd",
				WeightDecay: 1e-4, Schedule: "constant"}
			t := newTrainer(enasMacro(16), cfg.withDefaults(), 1)
			defer t.close()
			x, y := randomBatch(64, 3*32*32, 10)
			if _, _, err := t.step(x, y, cfg.LR); err != nil {
				b.Fatal(err)
			}
			measure(b, 64, func() {
				if _, _, err := t.step(x, y, cfg.LR); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

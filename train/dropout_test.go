package train

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The op keeps each element with probability 1−rate, scaled by 1/(1−rate),
// passes the gradient through the same mask, and draws a new mask each pass.
func TestDropoutOp(t *testing.T) {
	const n, rate = 100000, 0.3
	g := G.NewGraph()
	shape := tensor.Shape{n, 1, 1, 1}
	x := G.NewTensor(g, tensor.Float64, 4, G.WithShape(shape...), G.WithName("x"))
	y, err := buildDropout[float64](nil, x, rate, rand.NewPCG(1, 2))
	if err != nil {
		t.Fatal(err)
	}
	fwd := y.Op().(*op)
	ones := make([]float64, n)
	for i := range ones {
		ones[i] = 1
	}
	out, err := fwd.Do(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(ones)))
	if err != nil {
		t.Fatal(err)
	}
	mask := append([]float64(nil), out.Data().([]float64)...)
	zeros := 0
	for _, v := range mask {
		switch {
		case v == 0:
			zeros++
		case math.Abs(v-1/(1-rate)) > 1e-12:
			t.Fatalf("kept element = %v, want %v", v, 1/(1-rate))
		}
	}
	if d := math.Abs(float64(zeros) - rate*n); d > 6*math.Sqrt(n*rate*(1-rate)) { // 6σ of Binomial(n, rate)
		t.Fatalf("%d of %d dropped, want ≈ %v", zeros, n, rate*n)
	}

	grad := G.NewTensor(g, tensor.Float64, 4, G.WithShape(shape...), G.WithName("dy"))
	dxs, err := fwd.diff(G.Nodes{x}, y, grad)
	if err != nil {
		t.Fatal(err)
	}
	dyv := make([]float64, n)
	for i := range dyv {
		dyv[i] = float64(i%7) - 3
	}
	dx, err := dxs[0].Op().(*op).Do(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(dyv)))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range dx.Data().([]float64) {
		if want := dyv[i] * mask[i]; v != want {
			t.Fatalf("dx[%d] = %v, want dy·mask = %v", i, v, want)
		}
	}

	out2, _ := fwd.Do(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(ones)))
	same := true
	for i, v := range out2.Data().([]float64) {
		same = same && v == mask[i]
	}
	if same {
		t.Fatal("two forward passes drew the same mask")
	}
	if _, err := buildDropout[float64](nil, x, 1, rand.NewPCG(1, 2)); err == nil {
		t.Fatal("dropout rate 1 accepted")
	}
}

// Training with dropout is reproducible from the seed, differs from training
// without it, and still learns; evaluation is deterministic (no mask).
func TestTrainDropout(t *testing.T) {
	data := syntheticSplits(37, 13, 11, 1, 9, 7, 3, 0.5)
	g := enasLike(1, 9, 7, 3, 4)
	cfg := Config{Epochs: 10, BatchSize: 8, LR: 0.05, Momentum: 0.9, EvalTest: true, Dropout: 0.5}
	a, err := Train(context.Background(), g, data, cfg, 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Train(context.Background(), g, data, cfg, 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !sameMetrics(a, b) {
		t.Fatalf("same seed with dropout, different results:\n%+v\n%+v", a.Epochs, b.Epochs)
	}
	cfg.Dropout = 0
	c, err := Train(context.Background(), g, data, cfg, 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sameMetrics(a, c) {
		t.Fatal("dropout 0.5 trained exactly as no dropout")
	}
	if a.Status != StatusOK || a.BestValAcc < 0.8 {
		t.Fatalf("with dropout: status %s, best val %.3f; want ok and ≥ 0.8", a.Status, a.BestValAcc)
	}
	cfg.Dropout = 1
	if err := cfg.Validate(); err == nil {
		t.Fatal("Validate accepted dropout 1")
	}
}

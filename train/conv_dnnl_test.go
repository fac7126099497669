package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestDNNLConvMatchesGemm runs each convolution shape of the spaces (kernels
// 1, 3, 5 and 3×1; strides 1 and 2; one input channel; bias or not; batches
// that split into unequal parts; with and without a fused ReLU) through
// oneDNN's primitives and through im2col + GEMM, and requires the same
// output and gradients to float32 rounding. With ReLU, the output must also
// be max(the convolution's, 0).
func TestDNNLConvMatchesGemm(t *testing.T) {
	if !dnnlConvBuilt {
		t.Skip("this build has no oneDNN (-tags dnnl)")
	}
	cases := []struct{ b, c, h, w, o, kh, kw, s int }{
		{64, 32, 28, 28, 32, 3, 3, 1},
		{13, 1, 28, 28, 32, 3, 3, 1},
		{9, 24, 14, 14, 24, 5, 5, 1},
		{10, 24, 7, 7, 24, 1, 1, 1},
		{8, 16, 15, 13, 20, 3, 3, 2},
		{3, 6, 9, 9, 5, 3, 1, 1},
		{5, 8, 8, 8, 12, 1, 1, 2},
		// Small images under large kernels and strides (the nas space on small inputs).
		{2, 1, 9, 7, 2, 5, 5, 2},
		{2, 3, 2, 2, 4, 5, 5, 1},
		{2, 3, 1, 1, 4, 7, 7, 2},
		{2, 2, 3, 2, 3, 7, 7, 1},
	}
	defer func(v bool) { useDNNLConv = v }(useDNNLConv)
	for i, c := range cases {
		for _, v := range []struct{ bias, relu bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
			bias, relu := v.bias, v.relu
			name := fmt.Sprintf("%d×%d×%d×%d_o%d_k%dx%d_s%d_bias%v_relu%v", c.b, c.c, c.h, c.w, c.o, c.kh, c.kw, c.s, bias, relu)
			t.Run(name, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(i), 7))
				xs, ws := tensor.Shape{c.b, c.c, c.h, c.w}, tensor.Shape{c.o, c.c, c.kh, c.kw}
				x, w, b := randTensor32(rng, xs...), randTensor32(rng, ws...), randTensor32(rng, c.o)
				// run returns y, dW, dX, dB (bias) and dZ (relu), named by what.
				run := func(dnnl, relu bool) (out map[string][]float32, impl string) {
					useDNNLConv = dnnl
					k := newConv2d[float32](nil, xs, ws, bias, c.s, true, relu)
					if dnnl {
						if k.dn == nil {
							// Kernels larger than the image: oneDNN has no JIT
							// convolution for them, and the GEMM path runs them.
							if c.kh <= c.h && c.kw <= c.w {
								t.Fatal("oneDNN refused the shape")
							}
							impl = "none (im2col + GEMM)"
						} else {
							impl = k.dn[0].impl
						}
					} else if k.dn != nil {
						t.Fatal("oneDNN used with useDNNLConv off")
					}
					in := []G.Value{x, w}
					if bias {
						in = append(in, b)
					}
					must := func(v G.Value, err error) G.Value {
						if err != nil {
							t.Fatal(err)
						}
						return v
					}
					yv := must(k.forward(in))
					out = map[string][]float32{"y": clone32(yv)}
					var dy G.Value = randTensor32(rand.New(rand.NewPCG(99, 1)), yv.Shape()...)
					if relu {
						dy = must(k.gradZ([]G.Value{yv, dy}))
						out["dZ"] = clone32(dy)
					}
					out["dW"] = clone32(must(k.gradW([]G.Value{x, dy})))
					out["dX"] = clone32(must(k.gradX([]G.Value{dy, w})))
					if bias && relu {
						out["dB"] = clone32(must(k.copyDB([]G.Value{dy})))
					} else if bias {
						out["dB"] = clone32(must(k.gradB([]G.Value{dy})))
					}
					return out, impl
				}
				want, _ := run(false, relu)
				got, impl := run(true, relu)
				t.Logf("oneDNN forward: %s", impl)
				for _, what := range []string{"y", "dZ", "dW", "dX", "dB"} {
					closeEnough(t, what, got[what], want[what])
				}
				if relu {
					plain, _ := run(false, false)
					for j, v := range plain["y"] {
						plain["y"][j] = max(v, 0)
					}
					closeEnough(t, "y against max(conv, 0)", got["y"], plain["y"])
				}
			})
		}
	}
}

func randTensor32(rng *rand.Rand, shape ...int) *tensor.Dense {
	v := make([]float32, tensor.Shape(shape).TotalSize())
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
}

func clone32(v G.Value) []float32 { return append([]float32(nil), raw[float32](v)...) }

// closeEnough compares with a tolerance relative to the values' scale: the
// two paths sum in different orders.
func closeEnough(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	var scale float64
	for _, v := range want {
		scale = max(scale, math.Abs(float64(v)))
	}
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-5*scale+1e-6 || math.IsNaN(float64(got[i])) {
			t.Fatalf("%s[%d] = %g, want %g (scale %g)", what, i, got[i], want[i], scale)
		}
	}
}

package train

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BatchNorm constants, PyTorch's defaults: running = (1−m)·running + m·batch.
const (
	bnEpsilon  = 1e-5
	bnMomentum = 0.1
)

// batchNorm normalises each channel of [B, C, H, W] and applies γ, β [C].
// Training mode uses the batch's mean and biased variance and updates the
// running mean and unbiased variance; evaluation mode uses the running
// statistics. Forward inputs: x, γ, β.
//
// Stock Gorgonia 0.9.18's BatchNorm is unusable here: SetTraining(true) resets
// the running statistics to 0 and 1 (so alternating training and evaluation
// forgets them, and NewTapeMachine calls it), γ and β default to clock-seeded
// tensors of the full input shape rather than [C], and its evaluation-mode
// gradient for [B, N] inputs reads the running variance as the mean.
type batchNorm[T Float] struct {
	b, c, n         int // n = H·W
	train           bool
	runMean, runVar []T
	xhat            []T       // training: normalised input, private
	invStd          []float64 // training: 1/sqrt(var+eps) per channel
	y, dx           *tensor.Dense
	sums            *tensor.Dense // [2, C]: Σ dY, Σ dY·x̂
	dGamma, dBeta   *tensor.Dense
}

func buildBatchNorm[T Float](x, gamma, beta *G.Node, runMean, runVar []T, train bool) (*G.Node, error) {
	xs := x.Shape()
	if xs.Dims() != 4 || !gamma.Shape().Eq(tensor.Shape{xs[1]}) || !beta.Shape().Eq(tensor.Shape{xs[1]}) ||
		len(runMean) != xs[1] || len(runVar) != xs[1] {
		return nil, fmt.Errorf("train: batchnorm: input %v, γ %v, β %v, running stats %d, %d",
			xs, gamma.Shape(), beta.Shape(), len(runMean), len(runVar))
	}
	k := &batchNorm[T]{b: xs[0], c: xs[1], n: xs[2] * xs[3], train: train, runMean: runMean, runVar: runVar}
	k.y = newDense[T](xs...)
	if train {
		k.xhat = make([]T, xs.TotalSize())
		k.invStd = make([]float64, k.c)
		k.dx = newDense[T](xs...)
		k.sums = newDense[T](2, k.c)
		k.dGamma = newDense[T](k.c)
		k.dBeta = newDense[T](k.c)
	}
	fwd := newOp("batchnorm", k.y.Shape(), []int{4, 1, 1}, k.forward)
	fwd.wrt = []bool{true, true, true}
	fwd.diff = func(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
		if !train {
			return nil, fmt.Errorf("train: batchnorm in evaluation mode is not differentiable")
		}
		sums, err := G.ApplyOp(newOp("batchnorm_sums", k.sums.Shape(), []int{4, 4}, k.gradSums), output, grad)
		if err != nil {
			return nil, err
		}
		out := make(G.Nodes, 3)
		if out[0], err = G.ApplyOp(newOp("batchnorm_dx", k.dx.Shape(), []int{2, 4, 1}, k.gradX), sums, grad, inputs[1]); err != nil {
			return nil, err
		}
		if out[1], err = G.ApplyOp(newOp("batchnorm_dgamma", k.dGamma.Shape(), []int{2}, k.row(1, k.dGamma)), sums); err != nil {
			return nil, err
		}
		if out[2], err = G.ApplyOp(newOp("batchnorm_dbeta", k.dBeta.Shape(), []int{2}, k.row(0, k.dBeta)), sums); err != nil {
			return nil, err
		}
		return out, nil
	}
	return G.ApplyOp(fwd, x, gamma, beta)
}

func (k *batchNorm[T]) forward(in []G.Value) (G.Value, error) {
	x, gamma, beta, y := raw[T](in[0]), raw[T](in[1]), raw[T](in[2]), raw[T](k.y)
	n := k.b * k.n
	parFor(k.c, 3*n, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			var mean, invStd float64
			if k.train {
				var s float64
				for i := range k.b {
					for _, v := range x[(i*k.c+c)*k.n : (i*k.c+c+1)*k.n] {
						s += float64(v)
					}
				}
				mean = s / float64(n)
				var ss float64
				for i := range k.b {
					for _, v := range x[(i*k.c+c)*k.n : (i*k.c+c+1)*k.n] {
						d := float64(v) - mean
						ss += d * d
					}
				}
				variance := ss / float64(n)
				invStd = 1 / math.Sqrt(variance+bnEpsilon)
				k.invStd[c] = invStd
				unbiased := variance
				if n > 1 {
					unbiased = ss / float64(n-1)
				}
				k.runMean[c] = T((1-bnMomentum)*float64(k.runMean[c]) + bnMomentum*mean)
				k.runVar[c] = T((1-bnMomentum)*float64(k.runVar[c]) + bnMomentum*unbiased)
			} else {
				mean = float64(k.runMean[c])
				invStd = 1 / math.Sqrt(float64(k.runVar[c])+bnEpsilon)
			}
			g, bt := float64(gamma[c]), float64(beta[c])
			for i := range k.b {
				off := (i*k.c + c) * k.n
				xs, ys := x[off:off+k.n], y[off:off+k.n]
				for j, v := range xs {
					h := (float64(v) - mean) * invStd
					if k.train {
						k.xhat[off+j] = T(h)
					}
					ys[j] = T(g*h + bt)
				}
			}
		}
	})
	return k.y, nil
}

// gradSums: inputs Y (for ordering), dY → [Σ dY; Σ dY·x̂] per channel.
func (k *batchNorm[T]) gradSums(in []G.Value) (G.Value, error) {
	dy, s := raw[T](in[1]), raw[T](k.sums)
	parFor(k.c, 2*k.b*k.n, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			var s0, s1 float64
			for i := range k.b {
				off := (i*k.c + c) * k.n
				for j, g := range dy[off : off+k.n] {
					s0 += float64(g)
					s1 += float64(g) * float64(k.xhat[off+j])
				}
			}
			s[c], s[k.c+c] = T(s0), T(s1)
		}
	})
	return k.sums, nil
}

// gradX: inputs sums, dY, γ; dX = γ·invstd/N · (N·dY − Σ dY − x̂·Σ dY·x̂).
func (k *batchNorm[T]) gradX(in []G.Value) (G.Value, error) {
	s, dy, gamma, dx := raw[T](in[0]), raw[T](in[1]), raw[T](in[2]), raw[T](k.dx)
	n := float64(k.b * k.n)
	parFor(k.c, 2*k.b*k.n, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			scale := float64(gamma[c]) * k.invStd[c] / n
			s0, s1 := float64(s[c]), float64(s[k.c+c])
			for i := range k.b {
				off := (i*k.c + c) * k.n
				for j, g := range dy[off : off+k.n] {
					dx[off+j] = T(scale * (n*float64(g) - s0 - float64(k.xhat[off+j])*s1))
				}
			}
		}
	})
	return k.dx, nil
}

// row returns a Do that copies row r of the [2, C] sums into out.
func (k *batchNorm[T]) row(r int, out *tensor.Dense) func([]G.Value) (G.Value, error) {
	return func(in []G.Value) (G.Value, error) {
		copy(raw[T](out), raw[T](in[0])[r*k.c:(r+1)*k.c])
		return out, nil
	}
}

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

	// per call (parRange arguments)
	par          parDone
	phase        int // bnForward, bnSums, bnGradX
	x, g, bt, yv []T // forward: X, γ, β, Y; gradients: dY in x, γ in g
	sv, dxv      []T
}

const (
	bnForward = iota
	bnSums
	bnGradX
)

func buildBatchNorm[T Float](a *Buffers, x, gamma, beta *G.Node, runMean, runVar []T, train bool) (*G.Node, error) {
	xs := x.Shape()
	if xs.Dims() != 4 || !gamma.Shape().Eq(tensor.Shape{xs[1]}) || !beta.Shape().Eq(tensor.Shape{xs[1]}) ||
		len(runMean) != xs[1] || len(runVar) != xs[1] {
		return nil, fmt.Errorf("train: batchnorm: input %v, γ %v, β %v, running stats %d, %d",
			xs, gamma.Shape(), beta.Shape(), len(runMean), len(runVar))
	}
	k := newBatchNorm(a, xs[0], xs[1], xs[2], xs[3], runMean, runVar, train)
	fwd := newOp("batchnorm", k.y.Shape(), []int{4, 1, 1}, k.forward).returns(k.y)
	fwd.wrt = []bool{true, true, true}
	fwd.diff = func(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
		if !train {
			return nil, fmt.Errorf("train: batchnorm in evaluation mode is not differentiable")
		}
		sums, err := G.ApplyOp(newOp("batchnorm_sums", k.sums.Shape(), []int{4}, k.gradSums).returns(k.sums), grad)
		if err != nil {
			return nil, err
		}
		out := make(G.Nodes, 3)
		if out[0], err = G.ApplyOp(newOp("batchnorm_dx", k.dx.Shape(), []int{2, 4, 1}, k.gradX).returns(k.dx), sums, grad, inputs[1]); err != nil {
			return nil, err
		}
		if out[1], err = G.ApplyOp(newOp("batchnorm_dgamma", k.dGamma.Shape(), []int{2}, k.row(1, k.dGamma)).returns(k.dGamma), sums); err != nil {
			return nil, err
		}
		if out[2], err = G.ApplyOp(newOp("batchnorm_dbeta", k.dBeta.Shape(), []int{2}, k.row(0, k.dBeta)).returns(k.dBeta), sums); err != nil {
			return nil, err
		}
		return out, nil
	}
	return G.ApplyOp(fwd, x, gamma, beta)
}

func newBatchNorm[T Float](a *Buffers, b, c, h, w int, runMean, runVar []T, train bool) *batchNorm[T] {
	k := &batchNorm[T]{b: b, c: c, n: h * w, train: train, runMean: runMean, runVar: runVar}
	k.y = newOutput[T](a, b, c, h, w)
	if train {
		k.xhat = newSlice[T](a, b*c*h*w)
		k.invStd = make([]float64, c)
		k.dx = newOutput[T](a, b, c, h, w)
		k.sums = newOutput[T](a, 2, c)
		k.dGamma = newOutput[T](a, c)
		k.dBeta = newOutput[T](a, c)
	}
	return k
}

func (k *batchNorm[T]) forward(in []G.Value) (G.Value, error) {
	k.x, k.g, k.bt, k.yv, k.phase = raw[T](in[0]), raw[T](in[1]), raw[T](in[2]), raw[T](k.y), bnForward
	parRange(k.c, 3*k.b*k.n, k, &k.par)
	return k.y, nil
}

// gradSums: input dY → [Σ dY; Σ dY·x̂] per channel. dY is computed from Y
// (through the loss), which orders it after the forward op that wrote x̂;
// Y itself is not an input, so that its memory can be shared once the
// forward ops that read it have run.
func (k *batchNorm[T]) gradSums(in []G.Value) (G.Value, error) {
	k.x, k.sv, k.phase = raw[T](in[0]), raw[T](k.sums), bnSums
	parRange(k.c, 2*k.b*k.n, k, &k.par)
	return k.sums, nil
}

// gradX: inputs sums, dY, γ; dX = γ·invstd/N · (N·dY − Σ dY − x̂·Σ dY·x̂).
func (k *batchNorm[T]) gradX(in []G.Value) (G.Value, error) {
	k.sv, k.x, k.g, k.dxv, k.phase = raw[T](in[0]), raw[T](in[1]), raw[T](in[2]), raw[T](k.dx), bnGradX
	parRange(k.c, 2*k.b*k.n, k, &k.par)
	return k.dx, nil
}

// runRange does channels [lo, hi) of the current phase. Statistics are
// summed in float64 (per plane in T); the element-wise passes run in T.
func (k *batchNorm[T]) runRange(_, lo, hi int) {
	st := k.c * k.n // from one plane of a channel to the next image's
	for c := lo; c < hi; c++ {
		off := c * k.n
		switch k.phase {
		case bnForward:
			k.forwardChannel(c)
		case bnSums:
			s0, s1 := bnSumDot(k.x[off:], k.xhat[off:], k.b, st, k.n)
			k.sv[c], k.sv[k.c+c] = T(s0), T(s1)
		case bnGradX:
			n := float64(k.b * k.n)
			scale := float64(k.g[c]) * k.invStd[c] / n
			a := T(scale * n)
			b0 := T(-scale * float64(k.sv[c]))
			b1 := T(-scale * float64(k.sv[k.c+c]))
			bnDX(k.x[off:], k.xhat[off:], k.dxv[off:], k.b, st, k.n, a, b0, b1)
		}
	}
}

func (k *batchNorm[T]) forwardChannel(c int) {
	x, y := k.x[c*k.n:], k.yv[c*k.n:]
	st := k.c * k.n
	n := k.b * k.n
	var mean, invStd float64
	var xh []T
	if k.train {
		mean = bnSum(x, k.b, st, k.n) / float64(n)
		ss := bnSqDev(x, k.b, st, k.n, T(mean))
		variance := ss / float64(n)
		invStd = 1 / math.Sqrt(variance+bnEpsilon)
		k.invStd[c] = invStd
		unbiased := variance
		if n > 1 {
			unbiased = ss / float64(n-1)
		}
		k.runMean[c] = T((1-bnMomentum)*float64(k.runMean[c]) + bnMomentum*mean)
		k.runVar[c] = T((1-bnMomentum)*float64(k.runVar[c]) + bnMomentum*unbiased)
		xh = k.xhat[c*k.n:]
	} else {
		mean = float64(k.runMean[c])
		invStd = 1 / math.Sqrt(float64(k.runVar[c])+bnEpsilon)
	}
	// y = γ·x̂ + β = a·x + b; x̂ = (x − mean)·invStd
	g := float64(k.g[c])
	a, b := T(g*invStd), T(float64(k.bt[c])-g*invStd*mean)
	bnNorm(x, y, xh, k.b, st, k.n, a, b, T(invStd), T(-mean*invStd))
}

// row returns a Do that copies row r of the [2, C] sums into out.
func (k *batchNorm[T]) row(r int, out *tensor.Dense) func([]G.Value) (G.Value, error) {
	return func(in []G.Value) (G.Value, error) {
		copy(raw[T](out), raw[T](in[0])[r*k.c:(r+1)*k.c])
		return out, nil
	}
}

// sum4 returns Σ x with four interleaved accumulators (a fixed order, so the
// result is deterministic) to hide the add latency.
func sum4[T Float](x []T) T {
	var a0, a1, a2, a3 T
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		a0 += v[0]
		a1 += v[1]
		a2 += v[2]
		a3 += v[3]
	}
	for ; i < len(x); i++ {
		a0 += x[i]
	}
	return (a0 + a1) + (a2 + a3)
}

// sqDev4 returns Σ (x − m)², as sum4.
func sqDev4[T Float](x []T, m T) T {
	var a0, a1, a2, a3 T
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		d0, d1, d2, d3 := v[0]-m, v[1]-m, v[2]-m, v[3]-m
		a0 += d0 * d0
		a1 += d1 * d1
		a2 += d2 * d2
		a3 += d3 * d3
	}
	for ; i < len(x); i++ {
		d := x[i] - m
		a0 += d * d
	}
	return (a0 + a1) + (a2 + a3)
}

// sumDot returns Σ g and Σ g·h (len(h) ≥ len(g)), as sum4.
func sumDot[T Float](g, h []T) (T, T) {
	var a0, a1, b0, b1 T
	h = h[:len(g)]
	i := 0
	for ; i+2 <= len(g); i += 2 {
		u, w := g[i:i+2:i+2], h[i:i+2:i+2]
		a0 += u[0]
		a1 += u[1]
		b0 += u[0] * w[0]
		b1 += u[1] * w[1]
	}
	for ; i < len(g); i++ {
		a0 += g[i]
		b0 += g[i] * h[i]
	}
	return a0 + a1, b0 + b1
}

// The Go loops of one channel: planes x[i·st : i·st+n] for i < b. bnSum,
// bnSqDev, bnNorm, bnSumDot and bnDX run float32 in C in the cgo builds.

// bnSumGo returns Σ x, each plane by sum4 and the planes added in float64.
func bnSumGo[T Float](x []T, b, st, n int) float64 {
	var s float64
	for i := range b {
		s += float64(sum4(x[i*st : i*st+n]))
	}
	return s
}

// bnSqDevGo returns Σ (x − m)², as bnSumGo.
func bnSqDevGo[T Float](x []T, b, st, n int, m T) float64 {
	var s float64
	for i := range b {
		s += float64(sqDev4(x[i*st:i*st+n], m))
	}
	return s
}

// bnNormGo writes y = x·a + bb and, unless xh is nil, x̂ = x·is + nm.
func bnNormGo[T Float](x, y, xh []T, b, st, n int, a, bb, is, nm T) {
	for i := range b {
		xs, ys := x[i*st:i*st+n], y[i*st:i*st+n]
		ys = ys[:len(xs)]
		if xh != nil {
			xhs := xh[i*st : i*st+n]
			xhs = xhs[:len(xs)]
			for j, v := range xs {
				xhs[j] = T(v*is) + nm // T(): never fused into an FMA, as in C
				ys[j] = T(v*a) + bb
			}
			continue
		}
		for j, v := range xs {
			ys[j] = T(v*a) + bb
		}
	}
}

// bnSumDotGo returns Σ dy and Σ dy·x̂, per plane by sumDot in T, then in float64.
func bnSumDotGo[T Float](dy, xh []T, b, st, n int) (float64, float64) {
	var s0, s1 float64
	for i := range b {
		a0, a1 := sumDot(dy[i*st:i*st+n], xh[i*st:i*st+n])
		s0 += float64(a0)
		s1 += float64(a1)
	}
	return s0, s1
}

// bnDXGo writes dx = a·dy + b0 + b1·x̂.
func bnDXGo[T Float](dy, xh, dx []T, b, st, n int, a, b0, b1 T) {
	for i := range b {
		g, h, d := dy[i*st:i*st+n], xh[i*st:i*st+n], dx[i*st:i*st+n]
		h, d = h[:len(g)], d[:len(g)]
		for j, v := range g {
			d[j] = T(a*v) + b0 + T(b1*h[j])
		}
	}
}

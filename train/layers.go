package train

import (
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
	"math/rand/v2"
)

// kernels makes the Gorgonia nodes of each primitive, one method per
// arch.Kind. It is the only place that picks implementations: a faster CPU
// backend (cgo BLAS, fused kernels) or a CUDA one implements this interface
// and Build selects it; the builder and the trainer do not change. Tensors are
// NCHW; every activation, including dense outputs and logits, is
// [B, C, H, W] (H = W = 1 after gap, flatten and dense).
//
// needDX is false when the input depends on no parameter (the image), so its
// gradient is never needed.
type kernels interface {
	// Conv: b may be nil; relu applies a ReLU to the output (one fused node).
	Conv(x, w, b *G.Node, kh, kw, stride int, needDX, relu bool) (*G.Node, error)
	DepthwiseConv(x, w *G.Node, kh, kw, stride int, needDX bool) (*G.Node, error)
	MaxPool(x *G.Node, kh, kw, stride, pad int) (*G.Node, error)
	AvgPool(x *G.Node, kh, kw, stride, pad int) (*G.Node, error)
	BatchNorm(x, gamma, beta *G.Node, runMean, runVar *tensor.Dense, train bool) (*G.Node, error)
	ReLU(x *G.Node) (*G.Node, error)
	Concat(xs []*G.Node) (*G.Node, error)
	Add(xs []*G.Node) (*G.Node, error)
	GlobalAvgPool(x *G.Node) (*G.Node, error)
	Flatten(x *G.Node) (*G.Node, error)
	Dense(x, w, b *G.Node, needDX bool) (*G.Node, error)
	Shift(x *G.Node) (*G.Node, error)
	// Dropout zeroes each element with probability rate and scales the rest
	// by 1/(1−rate), a fresh mask from rng every forward pass.
	Dropout(x *G.Node, rate float64, rng *rand.PCG) (*G.Node, error)
	// SoftmaxCE returns the scalar mean loss node and the head through which
	// labels go in and loss and accuracy come out.
	SoftmaxCE(logits *G.Node) (*G.Node, lossHead, error)
}

// lossHead feeds labels to the loss op and reads its results after a run.
type lossHead interface {
	Set(labels []int32) // rows ≥ len(labels) are padding and ignored
	Loss() float64      // mean over the labelled rows of the last run
	Correct() int       // correct argmax predictions in the last run
}

// goKernels is the pure-Go implementation of every primitive.
type goKernels[T Float] struct{ buf *Buffers } // buf: nil for private buffers

func (k goKernels[T]) Conv(x, w, b *G.Node, kh, kw, stride int, needDX, relu bool) (*G.Node, error) {
	return buildConv[T](k.buf, x, w, b, kh, kw, stride, needDX, relu)
}

func (k goKernels[T]) DepthwiseConv(x, w *G.Node, kh, kw, stride int, needDX bool) (*G.Node, error) {
	return buildDepthwise[T](k.buf, x, w, kh, kw, stride, needDX)
}

func (k goKernels[T]) MaxPool(x *G.Node, kh, kw, stride, pad int) (*G.Node, error) {
	return buildPool[T](k.buf, x, kh, kw, stride, pad, true)
}

func (k goKernels[T]) AvgPool(x *G.Node, kh, kw, stride, pad int) (*G.Node, error) {
	return buildPool[T](k.buf, x, kh, kw, stride, pad, false)
}

func (k goKernels[T]) BatchNorm(x, gamma, beta *G.Node, runMean, runVar *tensor.Dense, train bool) (*G.Node, error) {
	return buildBatchNorm[T](k.buf, x, gamma, beta, raw[T](runMean), raw[T](runVar), train)
}

func (k goKernels[T]) ReLU(x *G.Node) (*G.Node, error)      { return buildReLU[T](k.buf, x) }
func (k goKernels[T]) Concat(xs []*G.Node) (*G.Node, error) { return buildConcat[T](k.buf, xs) }
func (k goKernels[T]) Add(xs []*G.Node) (*G.Node, error)    { return buildAdd[T](k.buf, xs) }
func (k goKernels[T]) GlobalAvgPool(x *G.Node) (*G.Node, error) {
	return buildGlobalAvgPool[T](k.buf, x)
}

func (k goKernels[T]) Dropout(x *G.Node, rate float64, rng *rand.PCG) (*G.Node, error) {
	return buildDropout[T](k.buf, x, rate, rng)
}

func (k goKernels[T]) Flatten(x *G.Node) (*G.Node, error) {
	s := x.Shape()
	return buildReshape[T](k.buf, x, tensor.Shape{s[0], s.TotalSize() / s[0], 1, 1})
}

func (k goKernels[T]) Dense(x, w, b *G.Node, needDX bool) (*G.Node, error) {
	return buildDense[T](k.buf, x, w, b, needDX)
}

func (k goKernels[T]) Shift(x *G.Node) (*G.Node, error) { return buildShift[T](k.buf, x) }

func (k goKernels[T]) SoftmaxCE(logits *G.Node) (*G.Node, lossHead, error) {
	n, h, err := buildSoftmaxCE[T](k.buf, logits)
	return n, h, err
}

func (k *softmaxCE[T]) Loss() float64 { return k.lossSum / float64(max(k.valid, 1)) }
func (k *softmaxCE[T]) Correct() int  { return k.correct }

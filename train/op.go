package train

import (
	"fmt"
	"hash"
	"hash/fnv"
	"runtime/debug"
	"sync/atomic"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Float is the element type of a network: float32 for training, float64 for
// gradient checks. Every kernel is written once for both.
type Float interface{ float32 | float64 }

// op is a Gorgonia operation whose behaviour is given by closures. It
// implements G.Op and G.SDOp (DiffWRT + SymDiff), which is all that G.Grad
// needs (reference/gorgonia-fastops/NOTES.md); the package's executor
// (exec.go) runs it.
//
// Rules every op in this package follows:
//   - Do returns a tensor the op owns and reuses every step: no allocation
//     per step.
//   - Do rewrites every element of its output, and every buffer it reads, on
//     every call before reading it: nets sharing a Buffers hand the same
//     memory to each other's ops (TestSharedBuffers checks it).
//   - Hidden state shared with backward ops (argmax, normalised activations,
//     softmax) is written by the forward op in the same run, and the backward
//     op takes the forward output (or something computed from it) as an
//     input, so the executor's topological order runs it after the forward
//     op. Hidden state is never an output (newOutput): the program shares an
//     output's memory once its last graph reader has run, and scratch
//     (newScratch) is shared by all ops, so neither may carry data from one
//     call to another.
//   - Do recovers panics into errors: a failing kernel fails its trial, not
//     the process.
//   - Every instance hashes differently, so Gorgonia never merges two ops.
type op struct {
	name  string
	id    uint64
	arity int
	typ   hm.Type
	shape tensor.Shape
	do    func(in []G.Value) (G.Value, error)
	wrt   []bool
	diff  func(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error)
	out   *tensor.Dense // the tensor Do returns, when from newOutput (placed by liveness)
	// kernel is the state behind do (a *conv2d[T], ...), for the builder's
	// passes across ops (linkBlocked); nil when none needs it.
	kernel any
}

// kernelOf returns the kernel of the op that computes n, if it is a K.
func kernelOf[K any](n *G.Node) (K, bool) {
	o, ok := n.Op().(*op)
	if !ok {
		var zero K
		return zero, false
	}
	k, ok := o.kernel.(K)
	return k, ok
}

// returns declares the tensor o's Do returns every call and returns o. An
// op returning a tensor from newOutput must declare it (the program checks).
func (o *op) returns(t *tensor.Dense) *op {
	o.out = t
	return o
}

var opSeq atomic.Uint64

// newOp returns an op taking inputs of the given tensor ranks (0 = scalar) and
// returning a value of rank len(shape).
func newOp(name string, shape tensor.Shape, inDims []int, do func([]G.Value) (G.Value, error)) *op {
	ts := make([]hm.Type, 0, len(inDims)+1)
	for _, d := range inDims {
		ts = append(ts, tensorType(d))
	}
	ts = append(ts, tensorType(shape.Dims()))
	return &op{name: name, id: opSeq.Add(1), arity: len(inDims), typ: hm.NewFnType(ts...), shape: shape.Clone(), do: do}
}

var tvA = hm.TypeVariable('a')

func tensorType(dims int) hm.Type {
	if dims == 0 {
		return tvA
	}
	return G.TensorType{Dims: dims, Of: tvA}
}

func (o *op) Arity() int    { return o.arity }
func (o *op) Type() hm.Type { return o.typ }
func (o *op) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	if len(ds) != o.arity {
		return nil, fmt.Errorf("train: op %s: %d inputs, want %d", o.name, len(ds), o.arity)
	}
	return o.shape.Clone(), nil
}

func (o *op) Do(in ...G.Value) (v G.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("train: op %s panicked: %v\n%s", o.name, r, debug.Stack())
		}
	}()
	if len(in) != o.arity {
		return nil, fmt.Errorf("train: op %s: %d inputs, want %d", o.name, len(in), o.arity)
	}
	return o.do(in)
}

func (o *op) ReturnsPtr() bool      { return false }
func (o *op) CallsExtern() bool     { return false }
func (o *op) OverwritesInput() int  { return -1 }
func (o *op) WriteHash(h hash.Hash) { fmt.Fprintf(h, "nasd/train.%s#%d", o.name, o.id) }
func (o *op) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}
func (o *op) String() string { return fmt.Sprintf("%s#%d", o.name, o.id) }

func (o *op) DiffWRT(n int) []bool {
	if o.wrt == nil {
		return make([]bool, n)
	}
	return o.wrt
}

func (o *op) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if o.diff == nil {
		return nil, fmt.Errorf("train: op %s is not differentiable", o.name)
	}
	return o.diff(inputs, output, grad)
}

// ---- values

// dtypeOf is the Gorgonia dtype of T.
func dtypeOf[T Float]() tensor.Dtype {
	var z T
	if _, ok := any(z).(float32); ok {
		return tensor.Float32
	}
	return tensor.Float64
}

// raw returns the backing slice of a tensor of T.
func raw[T Float](v G.Value) []T {
	d, ok := v.(*tensor.Dense)
	if !ok {
		panic(fmt.Sprintf("train: value %T is not a dense tensor", v))
	}
	var z T
	if _, ok := any(z).(float32); ok {
		return any(d.Float32s()).([]T)
	}
	return any(d.Float64s()).([]T)
}

// scalarOf reads a scalar value of either float type.
func scalarOf[T Float](v G.Value) T {
	switch s := v.(type) {
	case *G.F32:
		return T(*s)
	case *G.F64:
		return T(*s)
	case *tensor.Dense:
		return raw[T](s)[0]
	}
	panic(fmt.Sprintf("train: value %T is not a scalar", v))
}

// scalar is an owned scalar value of T, reused every step.
type scalar[T Float] struct {
	v32 *G.F32
	v64 *G.F64
}

func newScalar[T Float]() *scalar[T] {
	if dtypeOf[T]() == tensor.Float32 {
		return &scalar[T]{v32: G.NewF32(0)}
	}
	return &scalar[T]{v64: G.NewF64(0)}
}

func (s *scalar[T]) set(x float64) G.Value {
	if s.v32 != nil {
		*s.v32 = G.F32(x)
		return s.v32
	}
	*s.v64 = G.F64(x)
	return s.v64
}

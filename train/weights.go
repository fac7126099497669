package train

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"

	"gorgonia.org/tensor"
)

// initKind says how a parameter starts.
type initKind int

// Initialisers. None reads the clock: every value is a function of the store's
// seed and the parameter's name.
const (
	// initHe draws U(−b, b) with b = sqrt(6/fanIn): He et al. 2015
	// ("Delving deep into rectifiers", §2.2) in its uniform form, PyTorch's
	// kaiming_uniform_(nonlinearity="relu").
	initHe initKind = iota
	initZeros
	initOnes
)

// Param is one named tensor of a Weights store.
type Param struct {
	Name      string
	Shape     []int
	Trainable bool // false for batch-norm running statistics
	Value     *tensor.Dense
}

// Weights is a store of named parameters, separate from any graph: a graph
// built by Build reads and trains the store's tensors in place, so several
// graphs (batch sizes, training and evaluation, or — for ENAS — different
// architectures) can share one store. Names are paths such as
// "node7/conv/W"; a parameter is created on first use, initialised from
// (seed, name) alone, so it does not depend on which other parameters exist
// or the order they were created in. A Weights is not safe for concurrent use.
type Weights struct {
	dtype  tensor.Dtype
	seed   uint64
	params map[string]*Param
	order  []string
}

// NewWeights returns an empty store of float32 or float64 tensors.
func NewWeights(dtype tensor.Dtype, seed uint64) *Weights {
	if dtype != tensor.Float32 && dtype != tensor.Float64 {
		panic(fmt.Sprintf("train: NewWeights: dtype %v: want float32 or float64", dtype))
	}
	return &Weights{dtype: dtype, seed: seed, params: map[string]*Param{}}
}

// Dtype returns the element type of the store's tensors.
func (w *Weights) Dtype() tensor.Dtype { return w.dtype }

// Get returns the named parameter, or nil.
func (w *Weights) Get(name string) *Param { return w.params[name] }

// Names returns the parameter names in creation order.
func (w *Weights) Names() []string { return slices.Clone(w.order) }

// Count returns the number of trainable scalars in the store.
func (w *Weights) Count() int {
	n := 0
	for _, p := range w.params {
		if p.Trainable {
			n += p.Value.Shape().TotalSize()
		}
	}
	return n
}

// param returns the named parameter, creating it if it is new. An existing
// parameter of another shape is an error: two ops disagree about a name.
func (w *Weights) param(name string, shape []int, init initKind, fanIn int, trainable bool) (*Param, error) {
	if p, ok := w.params[name]; ok {
		if !slices.Equal(p.Shape, shape) || p.Trainable != trainable {
			return nil, fmt.Errorf("train: parameter %s exists with shape %v, requested %v", name, p.Shape, shape)
		}
		return p, nil
	}
	n := tensor.Shape(shape).TotalSize()
	vals := make([]float64, n)
	switch init {
	case initOnes:
		for i := range vals {
			vals[i] = 1
		}
	case initHe:
		if fanIn < 1 {
			return nil, fmt.Errorf("train: parameter %s: fan-in %d", name, fanIn)
		}
		bound := math.Sqrt(6 / float64(fanIn))
		r := rand.New(rand.NewPCG(w.seed, nameHash(name)))
		for i := range vals {
			// 53 random bits → [0, 1), written out so the draw never depends
			// on math/rand's Float64 algorithm.
			u := float64(r.Uint64()>>11) * 0x1p-53
			vals[i] = (2*u - 1) * bound
		}
	}
	p := &Param{Name: name, Shape: slices.Clone(shape), Trainable: trainable}
	if w.dtype == tensor.Float32 {
		v := make([]float32, n)
		for i, x := range vals {
			v[i] = float32(x)
		}
		p.Value = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
	} else {
		p.Value = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(vals))
	}
	w.params[name] = p
	w.order = append(w.order, name)
	return p, nil
}

func nameHash(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

// mix derives an independent seed from a seed and a salt (SplitMix64's finaliser).
func mix(seed, salt uint64) uint64 {
	z := seed + salt*0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

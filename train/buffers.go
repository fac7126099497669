package train

import (
	"math/bits"
	"unsafe"

	"gorgonia.org/tensor"
)

// Buffers is memory for the activations, gradients and im2col/normalisation
// buffers of the nets built with it (BuildOptions.Buffers). Each build takes
// its buffers from the start of the same memory, so the nets share it: it is
// as large as the largest net, not the sum of all. That is sound because no
// op keeps data in these buffers from one run to the next (every run rewrites
// each before reading it; TestSharedBuffers poisons them between runs to
// check), and it means that nets sharing a Buffers must not run concurrently,
// and a net's gradients are valid only until another of them runs. A trainer
// shares one between its training and evaluation nets; a NetCache between
// all its children. A Buffers is not safe for concurrent use.
type Buffers struct {
	f32 arena[float32]
	f64 arena[float64]
	i32 arena[int32] // max-pooling argmax
}

// NewBuffers returns empty shared memory for nets.
func NewBuffers() *Buffers { return &Buffers{} }

// Bytes returns the memory held.
func (b *Buffers) Bytes() int { return b.f32.size*4 + b.f64.size*8 + b.i32.size*4 }

// begin starts a build: its buffers are taken from the start again.
func (b *Buffers) begin() {
	clear(b.f32.used)
	clear(b.f64.used)
	clear(b.i32.used)
}

// arena hands out buffers by size class: a build's k-th buffer of a class is
// the class's k-th buffer, made on first use and reused by every later build.
// Children of one space ask for nearly the same sizes in nearly the same
// order, so the memory held stays close to that of the largest net (rounding
// to a class wastes at most a quarter of a buffer).
type arena[T any] struct {
	classes map[int][][]T // class size → buffers
	used    map[int]int   // class size → buffers taken by this build
	size    int           // elements held
}

func (a *arena[T]) take(n int) []T {
	if a.classes == nil {
		a.classes, a.used = map[int][][]T{}, map[int]int{}
	}
	c := sizeClass(n)
	i := a.used[c]
	a.used[c]++
	if i == len(a.classes[c]) {
		a.classes[c] = append(a.classes[c], make([]T, c))
		a.size += c
	}
	return a.classes[c][i][:n:n]
}

// sizeClass rounds n up to a multiple of an eighth of the next power of two.
func sizeClass(n int) int {
	if n <= 64 {
		return 64
	}
	step := 1 << max(bits.Len(uint(n-1))-3, 0)
	return (n + step - 1) / step * step
}

// newSlice returns n elements of T: from b when it is set, else fresh.
func newSlice[T Float](b *Buffers, n int) []T {
	if b == nil {
		return make([]T, n)
	}
	var z T
	if unsafe.Sizeof(z) == 4 {
		return any(b.f32.take(n)).([]T)
	}
	return any(b.f64.take(n)).([]T)
}

// newInt32s returns n int32s: from b when it is set, else fresh.
func newInt32s(b *Buffers, n int) []int32 {
	if b == nil {
		return make([]int32, n)
	}
	return b.i32.take(n)
}

// newTensor returns a tensor of T with the given shape, its backing from b
// when it is set (with stale contents), else fresh and zeroed.
func newTensor[T Float](b *Buffers, shape ...int) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(newSlice[T](b, tensor.Shape(shape).TotalSize())))
}

package train

import (
	"math/bits"
	"unsafe"
	"weak"

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
//
// Within one net, op outputs (activations, gradients) and per-call scratch
// (im2col columns, partial weight gradients) are not given a buffer each: the
// program places them by liveness (plan.go), so memory that is dead at a step
// is shared.
type Buffers struct {
	f32 arena[float32]
	f64 arena[float64]
	i32 arena[int32] // max-pooling argmax
	p32 planArena[float32]
	p64 planArena[float64]
}

// NewBuffers returns empty shared memory for nets.
func NewBuffers() *Buffers { return &Buffers{} }

// Bytes returns the memory held.
func (b *Buffers) Bytes() int {
	return (b.f32.size+b.i32.size+len(b.p32.slab)+len(b.p32.scr))*4 + (b.f64.size+len(b.p64.slab)+len(b.p64.scr))*8
}

// begin starts a build: its buffers are taken from the start again.
func (b *Buffers) begin() {
	clear(b.f32.used)
	clear(b.f64.used)
	clear(b.i32.used)
	b.p32.outs, b.p32.scratch = nil, nil
	b.p64.outs, b.p64.scratch = nil, nil
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

// planArena is planned memory (plan.go), shared by every net built on a
// Buffers: slab holds op outputs at offsets planned by liveness, scr the
// per-call scratch (every op's from its start). Both only grow, so every
// plan made earlier still fits, and the plans still alive move to the grown
// ones at once (weak pointers: a dropped net is not kept), so the old ones
// are freed.
type planArena[T Float] struct {
	slab, scr []T
	outs      []*tensor.Dense // this build's op outputs, to be planned
	scratch   []scratchUse[T] // this build's scratch
	plans     []weak.Pointer[memPlan[T]]
}

// grow returns s if it has n elements, else a new slice of at least n
// (rounded to a size class, so that a run of slightly larger nets does not
// reallocate each time).
func grow[T any](s []T, n int) []T {
	if len(s) >= n {
		return s
	}
	return make([]T, sizeClass(n))
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

// planOf returns b's planned memory for T.
func planOf[T Float](b *Buffers) *planArena[T] {
	var z T
	if unsafe.Sizeof(z) == 4 {
		return any(&b.p32).(*planArena[T])
	}
	return any(&b.p64).(*planArena[T])
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

// newOutput returns a tensor an op returns from Do: fresh when b is nil, else
// placed in b's slab by the program's liveness plan (plan.go; until then it
// points at the slab's start). The op must declare it with op.returns.
func newOutput[T Float](b *Buffers, shape ...int) *tensor.Dense {
	if b == nil {
		return newTensor[T](nil, shape...)
	}
	a := planOf[T](b)
	n := tensor.Shape(shape).TotalSize()
	a.slab = grow(a.slab, n)
	d := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(a.slab[:n:n]))
	a.outs = append(a.outs, d)
	return d
}

// newScratch returns one slice per size, for use only inside one call of an
// op's Do (never kept from one call to the next): fresh when b is nil, else
// disjoint slices of b's scratch region, which every op's scratch overlaps.
func newScratch[T Float](b *Buffers, sizes ...int) [][]T {
	s := make([][]T, len(sizes))
	if b == nil {
		for i, n := range sizes {
			s[i] = make([]T, n)
		}
		return s
	}
	a := planOf[T](b)
	u := scratchUse[T]{s: s, sizes: sizes}
	a.scr = grow(a.scr, u.total())
	u.bind(a.scr)
	a.scratch = append(a.scratch, u)
	return s
}

// scratchUse is one op's scratch: slices s of the given sizes, laid out from
// the start of the scratch region.
type scratchUse[T any] struct {
	s     [][]T
	sizes []int
}

// planAlign aligns every planned buffer to 64 bytes or more.
const planAlign = 16

func alignUp(n int) int { return (n + planAlign - 1) / planAlign * planAlign }

func (u scratchUse[T]) total() int {
	t := 0
	for _, n := range u.sizes {
		t += alignUp(n)
	}
	return t
}

// bind points u's slices into region (the op holds the same outer slice, so
// it sees the change).
func (u scratchUse[T]) bind(region []T) {
	off := 0
	for i, n := range u.sizes {
		u.s[i] = region[off : off+n : off+n]
		off += alignUp(n)
	}
}

package train

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

// TestDNNLConvReproducible: oneDNN's convolutions give bit-identical results
// whichever instance runs them, whatever OpenMP thread count the creating OS
// thread had, wherever the caller's buffers start, and whatever the scratch
// held before. (An instance built on a thread with OpenMP's default count
// once summed in another order: worker.TestENASTwoRanksEqualAccumulation.)
func TestDNNLConvReproducible(t *testing.T) {
	if !dnnlConvBuilt {
		t.Skip("this build has no oneDNN (-tags dnnl)")
	}
	cases := []struct{ b, c, h, w, o, k, s int }{
		{32, 1, 28, 28, 8, 3, 1},
		{32, 8, 28, 28, 8, 3, 1},
		{32, 8, 28, 28, 8, 5, 1},
		{32, 8, 28, 28, 8, 1, 1},
		{32, 36, 14, 14, 36, 3, 1},
		{32, 36, 7, 7, 36, 5, 1},
		{32, 16, 28, 28, 16, 3, 2},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			wd := newWindow(c.h, c.w, c.k, c.k, c.s, (c.k-1)/2, (c.k-1)/2)
			// Each instance is built on a locked OS thread whose OpenMP
			// count is set first, as a fresh thread of a 1-, 2- or 8-core
			// machine would have it.
			build := func(threads int) *dnnlConv {
				ch := make(chan *dnnlConv)
				go func() {
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					setOMPThreads(threads)
					d, err := newDNNLConv(c.b, c.c, c.h, c.w, c.o, wd, true, true, false)
					if err != nil {
						t.Error(err)
					}
					ch <- d
				}()
				return <-ch
			}
			rng := rand.New(rand.NewPCG(1, 2))
			gen := func(n int) []float32 {
				v := make([]float32, n)
				for i := range v {
					v[i] = float32(rng.NormFloat64())
				}
				return v
			}
			nx, nw, ny := c.b*c.c*c.h*c.w, c.o*c.c*c.k*c.k, c.b*c.o*wd.Ho*wd.Wo
			x, w, b, dy := gen(nx), gen(nw), gen(c.o), gen(ny)
			// at copies v to a buffer starting off floats past a fresh allocation.
			at := func(v []float32, off int) []float32 {
				buf := make([]float32, len(v)+16)
				copy(buf[off:], v)
				return buf[off : off+len(v)]
			}
			var ref [3][]float32
			for i, threads := range []int{1, 2, 8, 1, 2} {
				d := build(threads)
				if d == nil {
					return
				}
				if i == 0 {
					t.Log(d.impl)
				}
				off := (5 * i) % 16
				s := at(gen(d.scratch), off) // garbage in the scratch
				y, dw, dx := at(make([]float32, ny), off), at(make([]float32, nw), off), at(make([]float32, nx), off)
				d.forward(at(x, off), at(w, off), at(b, off), y, s)
				d.gradW(at(x, off), at(dy, off), dw, s)
				d.gradX(at(dy, off), at(w, off), dx, s)
				got := [3][]float32{y, dw, dx}
				if i == 0 {
					ref = got
					continue
				}
				for j, name := range []string{"y", "dW", "dX"} {
					n := 0
					for k := range got[j] {
						if got[j][k] != ref[j][k] {
							n++
						}
					}
					if n > 0 {
						t.Errorf("instance built with %d OpenMP threads, buffers at +%d floats: %s differs in %d of %d values", threads, off, name, n, len(got[j]))
					}
				}
			}
		})
	}
}

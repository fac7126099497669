package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Forward checks: each op's output, in float32 and float64, against a naive
// implementation written here from the definition (direct loops, no im2col).
// Tolerance: float64 1e-12 and float32 1e-5, relative to the largest
// reference magnitude (float32's ε is 1.2e-7; sums here have < 300 terms).

// tensor4 is a naive NCHW tensor for the references.
type tensor4 struct {
	b, c, h, w int
	v          []float64
}

func (t *tensor4) at(b, c, y, x int) float64 { return t.v[((b*t.c+c)*t.h+y)*t.w+x] }

func newT4(b, c, h, w int) *tensor4 { return &tensor4{b, c, h, w, make([]float64, b*c*h*w)} }

func (t *tensor4) set(b, c, y, x int, v float64) { t.v[((b*t.c+c)*t.h+y)*t.w+x] = v }

func refConv(x *tensor4, w []float64, o, kh, kw, s int, bias []float64, depthwise bool) *tensor4 {
	ph, pw := (kh-1)/2, (kw-1)/2
	ho, wo := (x.h+2*ph-kh)/s+1, (x.w+2*pw-kw)/s+1
	if depthwise {
		o = x.c
	}
	y := newT4(x.b, o, ho, wo)
	for b := range x.b {
		for oc := range o {
			for oy := range ho {
				for ox := range wo {
					sum := 0.0
					if bias != nil {
						sum = bias[oc]
					}
					cs := []int{oc}
					if !depthwise {
						cs = cs[:0]
						for c := range x.c {
							cs = append(cs, c)
						}
					}
					for _, c := range cs {
						for ky := range kh {
							for kx := range kw {
								iy, ix := oy*s-ph+ky, ox*s-pw+kx
								if iy < 0 || iy >= x.h || ix < 0 || ix >= x.w {
									continue
								}
								wi := ((oc*x.c+c)*kh+ky)*kw + kx
								if depthwise {
									wi = (oc*kh+ky)*kw + kx
								}
								sum += w[wi] * x.at(b, c, iy, ix)
							}
						}
					}
					y.set(b, oc, oy, ox, sum)
				}
			}
		}
	}
	return y
}

func refPool(x *tensor4, k, s, p int, isMax bool) *tensor4 {
	ho, wo := (x.h+2*p-k)/s+1, (x.w+2*p-k)/s+1
	y := newT4(x.b, x.c, ho, wo)
	for b := range x.b {
		for c := range x.c {
			for oy := range ho {
				for ox := range wo {
					m, sum, n := math.Inf(-1), 0.0, 0
					for ky := range k {
						for kx := range k {
							iy, ix := oy*s-p+ky, ox*s-p+kx
							if iy < 0 || iy >= x.h || ix < 0 || ix >= x.w {
								continue // padding: never the max, not counted
							}
							v := x.at(b, c, iy, ix)
							m = math.Max(m, v)
							sum += v
							n++
						}
					}
					if isMax {
						y.set(b, c, oy, ox, m)
					} else {
						y.set(b, c, oy, ox, sum/float64(n))
					}
				}
			}
		}
	}
	return y
}

func refBatchNorm(x *tensor4, gamma, beta, mean, variance []float64) *tensor4 {
	y := newT4(x.b, x.c, x.h, x.w)
	for c := range x.c {
		m, v := 0.0, 0.0
		if mean != nil {
			m, v = mean[c], variance[c]
		} else {
			n := 0.0
			for b := range x.b {
				for i := range x.h * x.w {
					m += x.v[(b*x.c+c)*x.h*x.w+i]
					n++
				}
			}
			m /= n
			for b := range x.b {
				for i := range x.h * x.w {
					d := x.v[(b*x.c+c)*x.h*x.w+i] - m
					v += d * d
				}
			}
			v /= n
		}
		for b := range x.b {
			for i := range x.h * x.w {
				j := (b*x.c+c)*x.h*x.w + i
				y.v[j] = gamma[c]*(x.v[j]-m)/math.Sqrt(v+bnEpsilon) + beta[c]
			}
		}
	}
	return y
}

func refConcat(xs []*tensor4) *tensor4 {
	c, h, w := 0, 0, 0
	for _, x := range xs {
		c, h, w = c+x.c, max(h, x.h), max(w, x.w)
	}
	y := newT4(xs[0].b, c, h, w)
	off := 0
	for _, x := range xs {
		for b := range x.b {
			for ci := range x.c {
				for yy := range x.h {
					for xx := range x.w {
						y.set(b, off+ci, yy, xx, x.at(b, ci, yy, xx))
					}
				}
			}
		}
		off += x.c
	}
	return y
}

func refDense(x *tensor4, w, bias []float64, out int) *tensor4 {
	in := x.c * x.h * x.w
	y := newT4(x.b, out, 1, 1)
	for b := range x.b {
		for o := range out {
			s := bias[o]
			for i := range in {
				s += w[o*in+i] * x.v[b*in+i]
			}
			y.v[b*out+o] = s
		}
	}
	return y
}

// fwdCase builds an op from inputs of the given shapes and states the
// reference output.
type fwdCase struct {
	name   string
	shapes [][]int
	ref    func(in [][]float64) []float64
	build  func(k kernels, xs []*G.Node) (*G.Node, error)
}

// refShift is arch.KindShift: y[b,c,i,j] = x[b,c,i+1,j+1], 0 past the edge.
func refShift(x *tensor4) *tensor4 {
	y := newT4(x.b, x.c, x.h, x.w)
	for b := range x.b {
		for c := range x.c {
			for i := range x.h - 1 {
				for j := range x.w - 1 {
					y.set(b, c, i, j, x.at(b, c, i+1, j+1))
				}
			}
		}
	}
	return y
}

func t4(v []float64, s []int) *tensor4 { return &tensor4{s[0], s[1], s[2], s[3], v} }

func runForward[T Float](t *testing.T, c fwdCase, in [][]float64) []float64 {
	g := G.NewGraph()
	var xs []*G.Node
	for i, s := range c.shapes {
		v := make([]T, len(in[i]))
		for j, x := range in[i] {
			v[j] = T(x)
		}
		xs = append(xs, G.NewTensor(g, dtypeOf[T](), len(s), G.WithShape(s...), G.WithName(fmt.Sprint("in", i)),
			G.WithValue(tensor.New(tensor.WithShape(s...), tensor.WithBacking(v)))))
	}
	y, err := c.build(goKernels[T]{}, xs)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	out := raw[T](y.Value())
	res := make([]float64, len(out))
	for i, v := range out {
		res[i] = float64(v)
	}
	return res
}

func TestForwardReference(t *testing.T) {
	convOn := func(x []int, kh, kw, s int, bias bool) fwdCase {
		shapes := [][]int{x, {4, x[1], kh, kw}}
		if bias {
			shapes = append(shapes, []int{4})
		}
		return fwdCase{
			name:   fmt.Sprintf("conv %d×%d s%d bias %v on %v", kh, kw, s, bias, x),
			shapes: shapes,
			ref: func(in [][]float64) []float64 {
				var b []float64
				if bias {
					b = in[2]
				}
				return refConv(t4(in[0], shapes[0]), in[1], 4, kh, kw, s, b, false).v
			},
			build: func(k kernels, xs []*G.Node) (*G.Node, error) {
				var b *G.Node
				if bias {
					b = xs[2]
				}
				return k.Conv(xs[0], xs[1], b, kh, kw, s, true, false)
			},
		}
	}
	conv := func(kh, kw, s int, bias bool) fwdCase { return convOn([]int{2, 3, 7, 6}, kh, kw, s, bias) }
	dw := func(kh, kw, s int) fwdCase {
		shapes := [][]int{{2, 3, 7, 6}, {3, 1, kh, kw}}
		return fwdCase{
			name:   fmt.Sprintf("depthwise %d×%d s%d", kh, kw, s),
			shapes: shapes,
			ref:    func(in [][]float64) []float64 { return refConv(t4(in[0], shapes[0]), in[1], 0, kh, kw, s, nil, true).v },
			build: func(k kernels, xs []*G.Node) (*G.Node, error) {
				return k.DepthwiseConv(xs[0], xs[1], kh, kw, s, true)
			},
		}
	}
	pool := func(isMax bool, kk, s, p int) fwdCase {
		shapes := [][]int{{2, 3, 7, 5}}
		return fwdCase{
			name:   fmt.Sprintf("pool max=%v %d×%d s%d p%d", isMax, kk, kk, s, p),
			shapes: shapes,
			ref:    func(in [][]float64) []float64 { return refPool(t4(in[0], shapes[0]), kk, s, p, isMax).v },
			build: func(k kernels, xs []*G.Node) (*G.Node, error) {
				if isMax {
					return k.MaxPool(xs[0], kk, kk, s, p)
				}
				return k.AvgPool(xs[0], kk, kk, s, p)
			},
		}
	}
	bnShape := []int{3, 4, 3, 5}
	runMean, runVar := []float64{0.5, -1, 0, 2}, []float64{1, 0.25, 4, 0.5}
	bn := func(train bool) fwdCase {
		return fwdCase{
			name:   fmt.Sprintf("batchnorm train=%v", train),
			shapes: [][]int{bnShape, {4}, {4}},
			ref: func(in [][]float64) []float64 {
				if train {
					return refBatchNorm(t4(in[0], bnShape), in[1], in[2], nil, nil).v
				}
				return refBatchNorm(t4(in[0], bnShape), in[1], in[2], runMean, runVar).v
			},
			build: func(k kernels, xs []*G.Node) (*G.Node, error) {
				m, v := tensor.New(tensor.Of(xs[0].Dtype()), tensor.WithShape(4)), tensor.New(tensor.Of(xs[0].Dtype()), tensor.WithShape(4))
				for i := range 4 {
					m.SetAt(castTo(xs[0].Dtype(), runMean[i]), i)
					v.SetAt(castTo(xs[0].Dtype(), runVar[i]), i)
				}
				return k.BatchNorm(xs[0], xs[1], xs[2], m, v, train)
			},
		}
	}
	catShapes := [][]int{{2, 2, 5, 5}, {2, 3, 3, 4}, {2, 1, 5, 3}}
	shift := func(s []int) fwdCase {
		return fwdCase{name: fmt.Sprintf("shift %v", s), shapes: [][]int{s},
			ref:   func(in [][]float64) []float64 { return refShift(t4(in[0], s)).v },
			build: func(k kernels, xs []*G.Node) (*G.Node, error) { return k.Shift(xs[0]) }}
	}
	cases := []fwdCase{
		// 1-pixel-high or -wide maps shift to all zeros.
		shift([]int{2, 3, 5, 4}), shift([]int{1, 2, 2, 2}), shift([]int{2, 2, 1, 3}), shift([]int{2, 1, 4, 1}),
		conv(3, 3, 1, true), conv(3, 5, 2, false), conv(1, 1, 1, true), conv(5, 1, 2, true), conv(7, 7, 1, false),
		// Kernels larger than the image (the nas space samples them): the
		// first taps have no output at all.
		convOn([]int{2, 3, 1, 1}, 5, 5, 1, true), convOn([]int{2, 2, 2, 2}, 7, 7, 2, false),
		convOn([]int{2, 2, 1, 1}, 7, 7, 2, true), convOn([]int{1, 2, 2, 3}, 7, 5, 1, false),
		dw(3, 3, 1), dw(5, 5, 2), dw(3, 1, 1),
		pool(true, 3, 1, 1), pool(true, 2, 2, 0), pool(false, 3, 1, 1), pool(false, 2, 2, 0), pool(false, 5, 2, 2),
		bn(true), bn(false),
		{name: "relu", shapes: [][]int{{2, 3, 4, 5}},
			ref: func(in [][]float64) []float64 {
				y := make([]float64, len(in[0]))
				for i, v := range in[0] {
					y[i] = math.Max(v, 0)
				}
				return y
			},
			build: func(k kernels, xs []*G.Node) (*G.Node, error) { return k.ReLU(xs[0]) }},
		{name: "concat", shapes: catShapes,
			ref: func(in [][]float64) []float64 {
				return refConcat([]*tensor4{t4(in[0], catShapes[0]), t4(in[1], catShapes[1]), t4(in[2], catShapes[2])}).v
			},
			build: func(k kernels, xs []*G.Node) (*G.Node, error) { return k.Concat(xs) }},
		{name: "add", shapes: [][]int{{2, 3, 2, 2}, {2, 3, 2, 2}},
			ref: func(in [][]float64) []float64 {
				y := make([]float64, len(in[0]))
				for i := range y {
					y[i] = in[0][i] + in[1][i]
				}
				return y
			},
			build: func(k kernels, xs []*G.Node) (*G.Node, error) { return k.Add(xs) }},
		{name: "gap", shapes: [][]int{{2, 3, 5, 3}},
			ref: func(in [][]float64) []float64 {
				y := make([]float64, 6)
				for i, v := range in[0] {
					y[i/15] += v / 15
				}
				return y
			},
			build: func(k kernels, xs []*G.Node) (*G.Node, error) { return k.GlobalAvgPool(xs[0]) }},
		{name: "flatten", shapes: [][]int{{2, 3, 5, 3}},
			ref:   func(in [][]float64) []float64 { return in[0] },
			build: func(k kernels, xs []*G.Node) (*G.Node, error) { return k.Flatten(xs[0]) }},
		{name: "dense", shapes: [][]int{{3, 2, 2, 2}, {5, 8}, {5}},
			ref: func(in [][]float64) []float64 { return refDense(t4(in[0], []int{3, 2, 2, 2}), in[1], in[2], 5).v },
			build: func(k kernels, xs []*G.Node) (*G.Node, error) {
				f, err := k.Flatten(xs[0])
				if err != nil {
					return nil, err
				}
				return k.Dense(f, xs[1], xs[2], true)
			}},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range cases {
		in := make([][]float64, len(c.shapes))
		for i, s := range c.shapes {
			in[i] = randVals(r, tensor.Shape(s).TotalSize())
		}
		want := c.ref(in)
		for _, dt := range []struct {
			name string
			tol  float64
			run  func(*testing.T, fwdCase, [][]float64) []float64
		}{{"float64", 1e-12, runForward[float64]}, {"float32", 1e-5, runForward[float32]}} {
			got := dt.run(t, c, in)
			if len(got) != len(want) {
				t.Errorf("%s %s: %d outputs, want %d", c.name, dt.name, len(got), len(want))
				continue
			}
			scale := 1.0
			for _, v := range want {
				scale = max(scale, math.Abs(v))
			}
			for i := range got {
				if d := math.Abs(got[i] - want[i]); d > dt.tol*scale {
					t.Errorf("%s %s: output %d = %.9g, want %.9g", c.name, dt.name, i, got[i], want[i])
					break
				}
			}
		}
	}
}

func castTo(dt tensor.Dtype, v float64) any {
	if dt == tensor.Float32 {
		return float32(v)
	}
	return v
}

// TestPoolPadding pins the padding semantics on hand-made inputs: padding
// never wins a max (an all-negative image keeps negative maxima at the
// border), and average pooling divides by the in-image count (a constant
// image stays constant, where count_include_pad=True would give 4/9 in the
// corners).
func TestPoolPadding(t *testing.T) {
	neg := []float64{-5, -4, -3, -2, -6, -7, -8, -9, -1}
	c := fwdCase{name: "maxpool", shapes: [][]int{{1, 1, 3, 3}},
		build: func(k kernels, xs []*G.Node) (*G.Node, error) { return k.MaxPool(xs[0], 3, 3, 1, 1) }}
	got := runForward[float32](t, c, [][]float64{neg})
	want := []float64{-2, -2, -3, -2, -1, -1, -2, -1, -1}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("max pool of a negative image: %v, want %v", got, want)
		}
	}
	ones := []float64{1, 1, 1, 1, 1, 1, 1, 1, 1}
	c = fwdCase{name: "avgpool", shapes: [][]int{{1, 1, 3, 3}},
		build: func(k kernels, xs []*G.Node) (*G.Node, error) { return k.AvgPool(xs[0], 3, 3, 1, 1) }}
	for i, v := range runForward[float64](t, c, [][]float64{ones}) {
		if v != 1 {
			t.Fatalf("avg pool of a constant image: output %d = %v, want 1", i, v)
		}
	}
}

// TestBatchNormRunningStats checks the running statistics after one training
// forward pass: running = 0.9·running + 0.1·batch, with the unbiased variance
// (PyTorch's convention), and that evaluation mode then uses them.
func TestBatchNormRunningStats(t *testing.T) {
	x := []float64{1, 2, 3, 4, 10, 20, 30, 40} // [2, 2, 1, 2]: channel 0 = 1,2,10,20; channel 1 = 3,4,30,40
	g := G.NewGraph()
	xn := G.NewTensor(g, tensor.Float64, 4, G.WithShape(2, 2, 1, 2), G.WithName("x"), G.WithValue(tensor.New(tensor.WithShape(2, 2, 1, 2), tensor.WithBacking(x))))
	gamma := G.NewTensor(g, tensor.Float64, 1, G.WithShape(2), G.WithName("g"), G.WithValue(tensor.New(tensor.WithBacking([]float64{1, 1}))))
	beta := G.NewTensor(g, tensor.Float64, 1, G.WithShape(2), G.WithName("b"), G.WithValue(tensor.New(tensor.WithBacking([]float64{0, 0}))))
	mean, variance := []float64{0, 0}, []float64{1, 1}
	if _, err := (goKernels[float64]{}).BatchNorm(xn, gamma, beta, tensor.New(tensor.WithBacking(mean)), tensor.New(tensor.WithBacking(variance)), true); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	m0, m1 := (1+2+10+20)/4.0, (3+4+30+40)/4.0
	v0 := (sq(1-m0) + sq(2-m0) + sq(10-m0) + sq(20-m0)) / 3
	v1 := (sq(3-m1) + sq(4-m1) + sq(30-m1) + sq(40-m1)) / 3
	wantM, wantV := []float64{0.1 * m0, 0.1 * m1}, []float64{0.9 + 0.1*v0, 0.9 + 0.1*v1}
	for c := range 2 {
		if math.Abs(mean[c]-wantM[c]) > 1e-12 || math.Abs(variance[c]-wantV[c]) > 1e-12 {
			t.Errorf("channel %d: running mean %v var %v, want %v %v", c, mean[c], variance[c], wantM[c], wantV[c])
		}
	}
}

func sq(x float64) float64 { return x * x }

// TestMatchesStockGorgonia: where Gorgonia 0.9.18 has a correct stock op
// (Conv2d, MaxPool2D), ours gives the same outputs and gradients; ours are
// used for speed (owned buffers, no per-step allocation), not correctness.
func TestMatchesStockGorgonia(t *testing.T) {
	// run builds op(x[, w]), L = Σ R ⊙ y, and returns y, dL/dx and dL/dw.
	run := func(build func(x, w *G.Node) (*G.Node, error), xs, ws []int) (y, dx, dw []float64) {
		g := G.NewGraph()
		x := G.NewTensor(g, tensor.Float64, 4, G.WithShape(xs...), G.WithName("x"), G.WithValue(randTensor(rand.New(rand.NewPCG(3, 4)), xs...)))
		wrt := G.Nodes{x}
		var w *G.Node
		if ws != nil {
			w = G.NewTensor(g, tensor.Float64, 4, G.WithShape(ws...), G.WithName("w"), G.WithValue(randTensor(rand.New(rand.NewPCG(5, 6)), ws...)))
			wrt = append(wrt, w)
		}
		yn, err := build(x, w)
		if err != nil {
			t.Fatal(err)
		}
		R := G.NewTensor(g, tensor.Float64, 4, G.WithShape(yn.Shape()...), G.WithName("R"), G.WithValue(randTensor(rand.New(rand.NewPCG(7, 8)), yn.Shape()...)))
		grads, err := G.Grad(G.Must(G.Sum(G.Must(G.HadamardProd(yn, R)))), wrt...)
		if err != nil {
			t.Fatal(err)
		}
		vm := G.NewTapeMachine(g)
		defer vm.Close()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		y = append(y, raw[float64](yn.Value())...)
		dx = append(dx, raw[float64](grads[0].Value())...)
		if w != nil {
			dw = append(dw, raw[float64](grads[1].Value())...)
		}
		return y, dx, dw
	}
	same := func(name string, a, b []float64) {
		if len(a) != len(b) {
			t.Fatalf("%s: %d vs %d values", name, len(a), len(b))
		}
		for i := range a {
			if math.Abs(a[i]-b[i]) > 1e-12*max(1, math.Abs(a[i])) {
				t.Fatalf("%s: element %d: stock %v, ours %v", name, i, a[i], b[i])
			}
		}
	}
	var k k64
	for _, c := range []struct{ kh, kw, s int }{{3, 3, 1}, {3, 5, 2}, {5, 1, 2}, {1, 1, 1}} {
		xs, ws := []int{2, 3, 7, 6}, []int{4, 3, c.kh, c.kw}
		name := fmt.Sprintf("conv %d×%d s%d", c.kh, c.kw, c.s)
		y1, dx1, dw1 := run(func(x, w *G.Node) (*G.Node, error) {
			return G.Conv2d(x, w, tensor.Shape{c.kh, c.kw}, []int{(c.kh - 1) / 2, (c.kw - 1) / 2}, []int{c.s, c.s}, nil)
		}, xs, ws)
		y2, dx2, dw2 := run(func(x, w *G.Node) (*G.Node, error) { return k.Conv(x, w, nil, c.kh, c.kw, c.s, true, false) }, xs, ws)
		same(name+" y", y1, y2)
		same(name+" dx", dx1, dx2)
		same(name+" dw", dw1, dw2)
	}
	for _, c := range []struct{ kk, s, p int }{{3, 1, 1}, {2, 2, 0}, {3, 2, 1}} {
		xs := []int{2, 3, 7, 5}
		name := fmt.Sprintf("maxpool %d×%d s%d p%d", c.kk, c.kk, c.s, c.p)
		y1, dx1, _ := run(func(x, _ *G.Node) (*G.Node, error) {
			return G.MaxPool2D(x, tensor.Shape{c.kk, c.kk}, []int{c.p, c.p}, []int{c.s, c.s})
		}, xs, nil)
		y2, dx2, _ := run(func(x, _ *G.Node) (*G.Node, error) { return k.MaxPool(x, c.kk, c.kk, c.s, c.p) }, xs, nil)
		same(name+" y", y1, y2)
		same(name+" dx", dx1, dx2)
	}
}

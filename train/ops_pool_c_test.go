package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
)

// Pooling's float32 path (C in the cgo builds, c_pool.c) against the Go loops
// and a float64 reference written from the definition.
//
// Tolerances: against the Go loops, none — the C kernels add the same terms
// in the same order and compare the same way, so values, argmax and
// gradients must be bit-identical. Against the float64 reference: max values
// and argmax exact (the first maximum in row-major window order); average
// values and all gradients within 1e-6 of the largest magnitude (≤ 20
// float32 terms, each rounding ≤ 6e-8 relative).

// poolWindows are the spaces' windows (kh, kw, stride, pad) plus generic ones:
// overlapping, non-square, strided with gaps, 1×1.
var poolWindows = [][4]int{
	{3, 3, 1, 1}, {2, 2, 2, 0}, // the child's
	{3, 3, 2, 1}, {5, 3, 2, 1}, {2, 2, 1, 0}, {3, 2, 2, 0}, {2, 2, 3, 0}, {1, 1, 1, 0}, {5, 5, 1, 2},
}

var poolPlanes = [][2]int{{1, 1}, {1, 2}, {2, 1}, {2, 2}, {1, 7}, {2, 5}, {3, 3}, {5, 7}, {7, 7}, {14, 14}, {13, 9}, {28, 28}}

// poolInput fills x: normal values, ReLU'd normal (half zeros: ties), or
// small integers (ties everywhere).
func poolInput(r *rand.Rand, x []float32, kind int) {
	for i := range x {
		switch kind {
		case 0:
			x[i] = float32(r.NormFloat64())
		case 1:
			x[i] = max(float32(r.NormFloat64()), 0)
		default:
			x[i] = float32(r.IntN(3))
		}
	}
}

// refPoolPlane is the float64 reference of one plane: y, the first maximum's
// index in row-major window order, and dx from dy.
func refPoolPlane(x, dy []float64, wd window, isMax bool) (y []float64, arg []int, dx []float64) {
	y, arg, dx = make([]float64, wd.Ho*wd.Wo), make([]int, wd.Ho*wd.Wo), make([]float64, wd.H*wd.W)
	for oy := range wd.Ho {
		for ox := range wd.Wo {
			o := oy*wd.Wo + ox
			var in []int
			for ky := range wd.KH {
				for kx := range wd.KW {
					iy, ix := oy*wd.S-wd.PH+ky, ox*wd.S-wd.PW+kx
					if iy >= 0 && iy < wd.H && ix >= 0 && ix < wd.W {
						in = append(in, iy*wd.W+ix)
					}
				}
			}
			best, sum := in[0], 0.0
			for _, i := range in {
				if x[i] > x[best] {
					best = i
				}
				sum += x[i]
			}
			if isMax {
				y[o], arg[o] = x[best], best
				dx[best] += dy[o]
				continue
			}
			y[o] = sum / float64(len(in))
			for _, i := range in {
				dx[i] += dy[o] / float64(len(in))
			}
		}
	}
	return y, arg, dx
}

func TestPoolKernelsMatchGoAndReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	cases := 0
	for _, wn := range poolWindows {
		kh, kw, s, p := wn[0], wn[1], wn[2], wn[3]
		for _, hw := range poolPlanes {
			h, w := hw[0], hw[1]
			if wd := newWindow(h, w, kh, kw, s, p, p); wd.Ho < 1 || wd.Wo < 1 {
				// arch rejects a window larger than the padded plane; where
				// the op still has outputs (2×2 stride 2 on 1-wide planes),
				// it must handle them.
				continue
			}
			for _, isMax := range []bool{true, false} {
				for _, bc := range [][2]int{{1, 3}, {3, 5}} {
					kind := cases % 3
					cases++
					name := fmt.Sprintf("max=%v/win=%dx%ds%dp%d/hw=%dx%d/bc=%v/input=%d", isMax, kh, kw, s, p, h, w, bc, kind)
					checkPoolCase(t, r, name, bc[0], bc[1], h, w, kh, kw, s, p, isMax, kind)
				}
			}
		}
	}
	t.Logf("%d cases (C kernels: %v)", cases, poolBNInC)
}

func checkPoolCase(t *testing.T, r *rand.Rand, name string, b, c, h, w, kh, kw, s, p int, isMax bool, kind int) {
	t.Helper()
	kc := newPool2d[float32](nil, b, c, h, w, kh, kw, s, p, isMax)
	kg := newPool2d[float32](nil, b, c, h, w, kh, kw, s, p, isMax)
	wd, planes := kc.wd, b*c
	hw, howo := h*w, wd.Ho*wd.Wo
	x, dy := make([]float32, planes*hw), make([]float32, planes*howo)
	poolInput(r, x, kind)
	poolInput(r, dy, 0)
	// Stale values must be overwritten.
	yc, yg := raw[float32](kc.y), raw[float32](kg.y)
	for i := range yc {
		yc[i], yg[i] = 99, -99
	}
	for i, dc, dg := 0, raw[float32](kc.dx), raw[float32](kg.dx); i < len(dc); i++ {
		dc[i], dg[i] = 7, -7
	}
	kc.x, kc.yv, kc.dy, kc.dxv = x, yc, dy, raw[float32](kc.dx)
	kg.x, kg.yv, kg.dy, kg.dxv = x, yg, dy, raw[float32](kg.dx)
	kc.scratch()
	kg.scratch()
	poolForward(kc, 0, 0, planes)
	kg.forwardGo(0, 0, planes)
	poolBackward(kc, 0, 0, planes)
	kg.backwardGo(0, 0, planes)
	if !sameBits(yc, yg) || !slices.Equal(kc.arg, kg.arg) || !sameBits(kc.dxv, kg.dxv) {
		t.Fatalf("%s: C and Go differ: y %v, arg %v, dx %v", name,
			sameBits(yc, yg), slices.Equal(kc.arg, kg.arg), sameBits(kc.dxv, kg.dxv))
	}
	var xm, gm float64
	for _, v := range x {
		xm = max(xm, math.Abs(float64(v)))
	}
	for _, v := range dy {
		gm = max(gm, math.Abs(float64(v)))
	}
	for pl := range planes {
		ry, rarg, rdx := refPoolPlane(f64s(x[pl*hw:(pl+1)*hw]), f64s(dy[pl*howo:(pl+1)*howo]), wd, isMax)
		for o, want := range ry {
			got := float64(yc[pl*howo+o])
			if isMax && (got != want || int(kc.arg[pl*howo+o]) != rarg[o]) {
				t.Fatalf("%s: plane %d output %d: max %v at %d, want %v at %d", name, pl, o, got, kc.arg[pl*howo+o], want, rarg[o])
			}
			if math.Abs(got-want) > 1e-6*xm {
				t.Fatalf("%s: plane %d output %d: %v, want %v", name, pl, o, got, want)
			}
		}
		for i, want := range rdx {
			if got := float64(kc.dxv[pl*hw+i]); math.Abs(got-want) > 1e-6*gm {
				t.Fatalf("%s: plane %d dx[%d] = %v, want %v", name, pl, i, got, want)
			}
		}
	}
}

func f64s(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// TestPoolThreadsBitIdentical runs the ops (parRange over planes) with
// GOMAXPROCS 1 and 2: identical bits, argmax included.
func TestPoolThreadsBitIdentical(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	r := rand.New(rand.NewPCG(3, 5))
	for _, wn := range [][4]int{{3, 3, 1, 1}, {2, 2, 2, 0}, {3, 3, 2, 1}} {
		for _, isMax := range []bool{true, false} {
			const b, c, h, w = 4, 6, 28, 28
			x := newTensor[float32](nil, b, c, h, w)
			poolInput(r, raw[float32](x), 1)
			var ys, dxs [2][]float32
			var args [2][]int32
			for i, procs := range []int{1, 2} {
				runtime.GOMAXPROCS(procs)
				k := newPool2d[float32](nil, b, c, h, w, wn[0], wn[1], wn[2], wn[3], isMax)
				if parts(b*c, k.wd.Ho*k.wd.Wo*k.wd.KH*k.wd.KW) != procs {
					t.Fatalf("%v: %d parts, want %d", wn, parts(b*c, k.wd.Ho*k.wd.Wo*k.wd.KH*k.wd.KW), procs)
				}
				y, err := k.forward([]G.Value{x})
				if err != nil {
					t.Fatal(err)
				}
				dy := newTensor[float32](nil, b, c, k.wd.Ho, k.wd.Wo)
				poolInput(rand.New(rand.NewPCG(1, 2)), raw[float32](dy), 0)
				dx, err := k.backward([]G.Value{dy})
				if err != nil {
					t.Fatal(err)
				}
				ys[i], dxs[i], args[i] = slices.Clone(raw[float32](y)), slices.Clone(raw[float32](dx)), k.arg
			}
			if !sameBits(ys[0], ys[1]) || !sameBits(dxs[0], dxs[1]) || !slices.Equal(args[0], args[1]) {
				t.Errorf("window %v max=%v: GOMAXPROCS 1 and 2 differ", wn, isMax)
			}
		}
	}
}

// TestPoolBNKernelsNoAlloc: after a warm-up step, pooling and batch norm
// allocate nothing per call, on one thread or two.
func TestPoolBNKernelsNoAlloc(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	const b, c, h, w = 4, 6, 14, 14
	r := rand.New(rand.NewPCG(1, 1))
	x := newTensor[float32](nil, b, c, h, w)
	poolInput(r, raw[float32](x), 0)
	gamma, beta := newTensor[float32](nil, c), newTensor[float32](nil, c)
	for i := range c {
		raw[float32](gamma)[i] = 1
	}
	var steps []func()
	for _, wn := range poolWindows[:4] {
		for _, isMax := range []bool{true, false} {
			k := newPool2d[float32](nil, b, c, h, w, wn[0], wn[1], wn[2], wn[3], isMax)
			fwd, bwd := []G.Value{x}, []G.Value{newTensor[float32](nil, b, c, k.wd.Ho, k.wd.Wo)}
			steps = append(steps, func() {
				k.forward(fwd)
				k.backward(bwd)
			})
		}
	}
	for _, train := range []bool{true, false} {
		k := newBatchNorm(nil, b, c, h, w, make([]float32, c), make([]float32, c), train)
		fwd, sums, dx := []G.Value{x, gamma, beta}, []G.Value{x}, []G.Value{k.sums, x, gamma}
		steps = append(steps, func() {
			k.forward(fwd)
			if train {
				k.gradSums(sums)
				k.gradX(dx)
			}
		})
	}
	for _, procs := range []int{1, 2} {
		runtime.GOMAXPROCS(procs)
		for i, step := range steps {
			step() // warm-up: per-part scratch, workers
			if a := testing.AllocsPerRun(5, step); a != 0 {
				t.Errorf("GOMAXPROCS=%d: step %d allocates %v times per call", procs, i, a)
			}
		}
	}
}

// BenchmarkPoolKernels: forward + backward of B=64, C=24 planes on one
// thread, through the Go loops (impl=go) and the float32 path (impl=c: C in
// the cgo builds), in the same binary.
func BenchmarkPoolKernels(b *testing.B) {
	cases := []struct {
		name  string
		win   [4]int
		isMax bool
	}{
		{"max3x3s1p1", [4]int{3, 3, 1, 1}, true},
		{"avg3x3s1p1", [4]int{3, 3, 1, 1}, false},
		{"max2x2s2", [4]int{2, 2, 2, 0}, true},
		{"avg2x2s2", [4]int{2, 2, 2, 0}, false},
		{"max5x5s1p2", [4]int{5, 5, 1, 2}, true}, // enas-macro's maxpool5x5
		{"avg5x5s1p2", [4]int{5, 5, 1, 2}, false},
		{"max3x3s2p1", [4]int{3, 3, 2, 1}, true}, // no space's; the direct loops
		{"avg3x3s2p1", [4]int{3, 3, 2, 1}, false},
	}
	impls := []string{"go"}
	if poolBNInC {
		impls = append(impls, "c")
	}
	for _, cs := range cases {
		for _, hw := range []int{28, 14, 7} {
			for _, impl := range impls {
				b.Run(fmt.Sprintf("case=%s/hw=%d/impl=%s", cs.name, hw, impl), func(b *testing.B) {
					const bs, c = 64, 24
					k := newPool2d[float32](nil, bs, c, hw, hw, cs.win[0], cs.win[1], cs.win[2], cs.win[3], cs.isMax)
					r := rand.New(rand.NewPCG(1, 2))
					x, dy := make([]float32, bs*c*hw*hw), make([]float32, bs*c*k.wd.Ho*k.wd.Wo)
					poolInput(r, x, 1)
					poolInput(r, dy, 0)
					k.x, k.yv, k.dy, k.dxv = x, raw[float32](k.y), dy, raw[float32](k.dx)
					k.scratch()
					planes := bs * c
					b.SetBytes(int64(4 * (2*len(x) + 2*len(dy))))
					for b.Loop() {
						if impl == "go" {
							k.forwardGo(0, 0, planes)
							k.backwardGo(0, 0, planes)
						} else {
							poolForward(k, 0, 0, planes)
							poolBackward(k, 0, 0, planes)
						}
					}
				})
			}
		}
	}
}

// TestMaxHalf2Blocked: 2×2 stride-2 max pooling on oneDNN's channel-blocked
// layout (blocks of 16 and 8; output blocked or NCHW) against the NCHW
// pooling of the same tensor: the same values, winners and input gradients,
// bit for bit, with ties (ReLU'd and integer inputs) and odd planes. The C
// kernels and the Go loops must agree bit for bit too.
func TestMaxHalf2Blocked(t *testing.T) {
	const b, c = 3, 32
	for _, plane := range [][2]int{{2, 2}, {7, 6}, {14, 14}, {5, 9}} {
		for _, blk := range []int{16, 8} {
			for kind := range 3 {
				for _, plainOut := range []bool{false, true} {
					h, w := plane[0], plane[1]
					t.Run(fmt.Sprintf("%dx%d/blk%d/input%d/nchw-out=%v", h, w, blk, kind, plainOut), func(t *testing.T) {
						r := rand.New(rand.NewPCG(uint64(h*w+blk), uint64(kind)))
						wd := newWindow(h, w, 2, 2, 2, 0, 0)
						hw, howo := h*w, wd.Ho*wd.Wo
						x := make([]float32, b*c*hw)
						poolInput(r, x, kind)
						dy := make([]float32, b*c*howo)
						poolInput(r, dy, 0)
						// block[i] is the blocked index of NCHW element i.
						block := func(i, n int) int {
							img, ch, p := i/(c*n), i/n%c, i%n
							return ((img*(c/blk)+ch/blk)*n+p)*blk + ch%blk
						}
						xb, dyb := make([]float32, len(x)), make([]float32, len(dy))
						for i, v := range x {
							xb[block(i, hw)] = v
						}
						yIdx := func(i int) int { return block(i, howo) }
						cOut := 0
						if plainOut {
							yIdx, cOut = func(i int) int { return i }, c
						}
						for i, v := range dy {
							dyb[yIdx(i)] = v
						}
						// NCHW reference: the pooling op's own float32 path.
						ref := newPool2d[float32](nil, b, c, h, w, 2, 2, 2, 0, true)
						ref.x, ref.yv, ref.bwd = x, raw[float32](ref.y), false
						ref.runRange(0, 0, b*c)
						ref.dy, ref.dxv, ref.bwd = dy, raw[float32](ref.dx), true
						ref.runRange(0, 0, b*c)
						groups := b * c / blk
						for _, impl := range []struct {
							name     string
							fwd, bwd func(x, y, dy, dx []float32, arg []int32)
						}{
							{"kernel", func(x, y, _, _ []float32, arg []int32) { maxHalf2Blocked(x, y, arg, 0, groups, wd, blk, cOut) },
								func(_, _, dy, dx []float32, arg []int32) {
									maxHalf2BlockedBackward(dy, dx, arg, 0, groups, wd, blk, cOut)
								}},
							{"go", func(x, y, _, _ []float32, arg []int32) { maxHalf2BlockedGo(x, y, arg, 0, groups, wd, blk, cOut) },
								func(_, _, dy, dx []float32, arg []int32) {
									maxHalf2BlockedBackwardGo(dy, dx, arg, 0, groups, wd, blk, cOut)
								}},
						} {
							y, arg := make([]float32, len(dy)), make([]int32, len(dy))
							dx := make([]float32, len(x))
							for i := range dx {
								dx[i] = float32(math.NaN()) // every element must be written
							}
							impl.fwd(xb, y, nil, nil, arg)
							impl.bwd(nil, nil, dyb, dx, arg)
							for i, v := range raw[float32](ref.y) {
								if math.Float32bits(y[yIdx(i)]) != math.Float32bits(v) {
									t.Fatalf("%s: y[%d] = %v, NCHW pooling %v", impl.name, i, y[yIdx(i)], v)
								}
								pl := i / howo // the winner, as a blocked index within its group
								if want := block(pl*hw+int(ref.arg[i]), hw) - block(pl*hw, hw) + pl%c%blk; int(arg[yIdx(i)]) != want {
									t.Fatalf("%s: arg[%d] = %d, NCHW pooling's winner is %d in the group", impl.name, i, arg[yIdx(i)], want)
								}
							}
							for i, v := range raw[float32](ref.dx) {
								if math.Float32bits(dx[block(i, hw)]) != math.Float32bits(v) {
									t.Fatalf("%s: dx[%d] = %v, NCHW pooling %v", impl.name, i, dx[block(i, hw)], v)
								}
							}
						}
					})
				}
			}
		}
	}
}

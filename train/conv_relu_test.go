package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gorgonia.org/tensor"

	"nasd/arch"
)

// TestConvReLUFusion builds nets three ways: each convolution that only a
// ReLU reads fused with it, and a fused one that only a convolution or a
// 2×2 stride-2 max pooling reads sharing oneDNN's blocked layout with it
// (and such a pooling with the convolution reading it; the default); fused only
// (NASD_FUSE=relu); neither (NASD_FUSE=off). Fused and unfused must give the
// same loss and gradients bit for bit: the fused forward applies the same
// max(·, 0), and the fused backward takes the same mask and sums the bias
// gradient in the same order. Linked must too, except the bias gradient of a
// linked convolution, summed in another order (to float32 rounding). A
// convolution another node also reads stays unfused.
func TestConvReLUFusion(t *testing.T) {
	shared := newGraph(3, 12, 11, 4) // conv 1 is read by a ReLU and by the add
	shared.add(arch.Op{Kind: arch.KindConv, KH: 3, KW: 3, Stride: 1, Out: 16, Bias: true})
	shared.add(reluOp)
	shared.add(arch.Op{Kind: arch.KindAdd}, 1, 2)
	shared.add(arch.Op{Kind: arch.KindConv, KH: 1, KW: 1, Stride: 2, Out: 16}) // no bias, stride 2: fused
	shared.add(reluOp)
	shared.add(arch.Op{Kind: arch.KindConv, KH: 3, KW: 3, Stride: 1, Out: 16, Bias: true}) // linked to node 4
	shared.add(reluOp)
	shared.add(arch.Op{Kind: arch.KindMaxPool, KH: 2, KW: 2, Stride: 2})       // linked to node 6
	shared.add(arch.Op{Kind: arch.KindConv, KH: 3, KW: 3, Stride: 1, Out: 16}) // linked to node 8
	shared.add(arch.Op{Kind: arch.KindGlobalAvgPool})
	shared.add(arch.Op{Kind: arch.KindDense, Out: 4})
	defer func(f, l bool) { fuseConvReLUs, linkConvReLUs = f, l }(fuseConvReLUs, linkConvReLUs)
	fuseConvReLUs, linkConvReLUs = true, true
	fused, linked := convFusions(shared.g)
	if want := []bool{false, false, false, false, false, true, false, true, false, false, false, false}; !slices.Equal(fused[:len(want)], want) {
		t.Fatalf("fused %v, want %v", fused, want)
	}
	if want := []bool{false, false, false, false, false, false, true, false, true, true, false, false}; !slices.Equal(linked, want) {
		t.Fatalf("linked %v, want %v", linked, want)
	}
	dnnl := dnnlConvBuilt && useDNNLConv
	for _, c := range []struct {
		name   string
		g      *arch.Graph
		dtype  tensor.Dtype
		fused  int      // conv_relu ops when fusing
		links  int      // convolutions whose output is linked to the next op, on oneDNN
		linked []string // their biases
	}{{"reference-cnn/float32", ReferenceCNN(), tensor.Float32, 3, 3, []string{"node1/conv/b", "node3/conv/b", "node6/conv/b"}},
		{"reference-cnn/float64", ReferenceCNN(), tensor.Float64, 3, 0, nil},
		{"shared/float32", shared.g, tensor.Float32, 2, 2, []string{"node6/conv/b"}}} {
		t.Run(c.name, func(t *testing.T) {
			const batch = 16
			x, y := randomData(rand.New(rand.NewPCG(3, 4)), batch, c.g.Input.Elems(), c.g.Classes)
			run := func(fuse, link bool) (float64, map[string][]float64, int, int) {
				fuseConvReLUs, linkConvReLUs = fuse, link
				n, err := Build(c.g, NewWeights(c.dtype, 7), BuildOptions{Batch: batch, Train: true})
				if err != nil {
					t.Fatal(err)
				}
				n.ProfileOps(true)
				loss, _, err := n.Run(x, y)
				if err != nil {
					t.Fatal(err)
				}
				grads := map[string][]float64{}
				for i, p := range n.params {
					switch g := n.gradOf(i).(type) {
					case []float32:
						for _, v := range g {
							grads[p.Name] = append(grads[p.Name], float64(v))
						}
					case []float64:
						grads[p.Name] = slices.Clone(g)
					}
				}
				ops, links := 0, 0
				for _, o := range n.OpTimes() {
					if o.Op == "conv_relu" {
						ops += o.Steps
					}
				}
				for _, nd := range n.g.AllNodes() {
					if k, ok := kernelOf[*conv2d[float32]](nd); ok && k.outBlk > 0 {
						links++
					}
				}
				return loss, grads, ops, links
			}
			loss0, g0, ops0, _ := run(false, false)
			loss1, g1, ops1, _ := run(true, false)
			loss2, g2, ops2, links := run(true, true)
			if ops0 != 0 || ops1 != c.fused || ops2 != c.fused {
				t.Errorf("conv_relu ops: %d unfused, %d fused, %d linked; want 0, %d, %d", ops0, ops1, ops2, c.fused, c.fused)
			}
			wantLinks := 0
			if dnnl {
				wantLinks = c.links
			}
			if links != wantLinks {
				t.Errorf("%d linked convolutions, want %d", links, wantLinks)
			}
			for _, l := range []float64{loss1, loss2} {
				if math.Float64bits(l) != math.Float64bits(loss0) || math.IsNaN(loss0) {
					t.Errorf("loss %v unfused, %v fused, %v linked", loss0, loss1, loss2)
				}
			}
			if len(g1) != len(g0) || len(g2) != len(g0) || len(g0) == 0 {
				t.Fatalf("%d gradients unfused, %d fused, %d linked", len(g0), len(g1), len(g2))
			}
			for name, want := range g0 {
				for _, v := range []struct {
					how   string
					got   []float64
					exact bool
				}{{"fused", g1[name], true}, {"linked", g2[name], wantLinks == 0 || !slices.Contains(c.linked, name)}} {
					if len(v.got) != len(want) {
						t.Fatalf("%s %s: %d values, want %d", v.how, name, len(v.got), len(want))
					}
					var scale float64
					for _, w := range want {
						scale = max(scale, math.Abs(w))
					}
					for i, w := range want {
						if v.exact && math.Float64bits(v.got[i]) != math.Float64bits(w) ||
							!v.exact && math.Abs(v.got[i]-w) > 1e-5*scale {
							t.Fatalf("%s: %s gradient[%d] = %v, unfused %v", name, v.how, i, v.got[i], w)
						}
					}
				}
			}
		})
	}
}

// TestReluGradSumsBlocked: ReLU's gradient and its channel sums on a
// channel-blocked tensor (blocks of 16 and 8) against the NCHW loop on the
// same values: dZ bit for bit (−0 in Y, as oneDNN's fused ReLU writes, passes
// no gradient), sums to float32 rounding; the C kernel and the Go loop bit
// for bit.
func TestReluGradSumsBlocked(t *testing.T) {
	const b, c, n = 5, 32, 7 * 9
	r := rand.New(rand.NewPCG(5, 6))
	y, dy := make([]float32, b*c*n), make([]float32, b*c*n)
	for i := range y {
		y[i], dy[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
		switch r.IntN(4) {
		case 0:
			y[i] = 0
		case 1:
			y[i] = float32(math.Copysign(0, -1))
		}
	}
	dz, s := make([]float32, len(y)), make([]float32, c)
	reluGradSumsGo(y, dy, dz, b, c, n, 0, c, s)
	for _, blk := range []int{16, 8} {
		block := func(i int) int {
			img, ch, p := i/(c*n), i/n%c, i%n
			return ((img*(c/blk)+ch/blk)*n+p)*blk + ch%blk
		}
		yb, dyb := make([]float32, len(y)), make([]float32, len(y))
		for i := range y {
			yb[block(i)], dyb[block(i)] = y[i], dy[i]
		}
		var got [2][]float32
		var sums [2][]float32
		for k := range 2 {
			got[k], sums[k] = make([]float32, len(y)), make([]float32, c)
			if k == 0 {
				reluGradSumsBlocked(yb, dyb, got[k], b, c, n, blk, 0, c/blk, sums[k])
			} else {
				reluGradSumsBlockedGo(yb, dyb, got[k], b, c, n, blk, 0, c/blk, sums[k])
			}
		}
		if !sameBits(got[0], got[1]) || !sameBits(sums[0], sums[1]) {
			t.Fatalf("blk %d: the C kernel and the Go loop differ", blk)
		}
		for i, v := range dz {
			if math.Float32bits(got[0][block(i)]) != math.Float32bits(v) {
				t.Fatalf("blk %d: dz[%d] = %v, NCHW %v (y %v)", blk, i, got[0][block(i)], v, y[i])
			}
		}
		closeEnough(t, fmt.Sprintf("blk %d sums", blk), sums[0], s)
	}
}

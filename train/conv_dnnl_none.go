//go:build !(dnnl && cgo)

package train

import "errors"

const dnnlConvBuilt = false

// dnnlConv stands in for oneDNN's convolution in builds without it.
type dnnlConv struct {
	impl    string
	scratch int
}

func newDNNLConv(mb, c, h, w, o int, wd window, bias, needDX, relu bool) (*dnnlConv, error) {
	return nil, errors.New("train: this build has no oneDNN (build with -tags dnnl)")
}

func (d *dnnlConv) blocked(out bool) int            { return 0 }
func (d *dnnlConv) setBlocked(out bool)             {}
func (d *dnnlConv) forward(x, w, b, y, s []float32) {}
func (d *dnnlConv) gradW(x, dy, dw, s []float32)    {}
func (d *dnnlConv) gradX(dy, w, dx, s []float32)    {}

func setOMPThreads(n int) {}

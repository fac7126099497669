package analyze

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// The report's plots are SVG written by hand rather than with gonum/plot:
// the same log gives the same bytes (no fonts embedded, no floating-point
// layout from a library's version), the plots are small, and the report
// needs no renderer. A plot is a frame with axes and "nice" ticks in data
// coordinates, and marks drawn in them.

const (
	plotW, plotH                       = 560, 320
	marginL, marginR, marginT, marginB = 64, 16, 28, 44
)

// Colours: one per status, and the marks'.
const (
	colMark  = "#1f77b4"
	colBest  = "#d62728"
	colFaint = "#9aa5b1"
	colFront = "#2ca02c"
)

var statusColour = map[string]string{"ok": colMark, "stopped": "#ff7f0e", "rejected": "#8c564b"}

func statusCol(s string) string {
	if c, ok := statusColour[s]; ok {
		return c
	}
	return colBest
}

type plot struct {
	id, title, xlabel, ylabel string
	x0, x1, y0, y1            float64
	logX                      bool
	intX, intY                bool   // whole-number ticks only (epochs, ranks)
	xTicks                    []tick // categorical axes set their own
	b                         strings.Builder
}

type tick struct {
	v     float64
	label string
}

// newPlot makes a plot whose axes cover xs and ys (NaNs ignored).
func newPlot(id, title, xlabel, ylabel string, xs, ys []float64, logX bool) *plot {
	p := &plot{id: id, title: title, xlabel: xlabel, ylabel: ylabel, logX: logX}
	p.x0, p.x1 = span(xs, logX)
	p.y0, p.y1 = span(ys, false)
	return p
}

func span(vs []float64, log bool) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range vs {
		if math.IsNaN(v) || (log && v <= 0) {
			continue
		}
		if log {
			v = math.Log10(v)
		}
		lo, hi = min(lo, v), max(hi, v)
	}
	if math.IsInf(lo, 1) {
		return 0, 1
	}
	if hi-lo < 1e-12 {
		pad := math.Max(math.Abs(lo)*0.05, 0.5)
		if log {
			pad = 0.5
		}
		return lo - pad, hi + pad
	}
	pad := (hi - lo) * 0.04
	return lo - pad, hi + pad
}

func (p *plot) px(v float64) float64 {
	if p.logX {
		v = math.Log10(v)
	}
	return marginL + (v-p.x0)/(p.x1-p.x0)*(plotW-marginL-marginR)
}

func (p *plot) py(v float64) float64 {
	return plotH - marginB - (v-p.y0)/(p.y1-p.y0)*(plotH-marginT-marginB)
}

func f2(v float64) string { return fmt.Sprintf("%.2f", v) }

func (p *plot) circle(x, y, r float64, col, title string) {
	if math.IsNaN(x) || math.IsNaN(y) || (p.logX && x <= 0) {
		return
	}
	fmt.Fprintf(&p.b, `<circle cx="%s" cy="%s" r="%s" fill="%s" fill-opacity="0.7">`, f2(p.px(x)), f2(p.py(y)), f2(r), col)
	if title != "" {
		fmt.Fprintf(&p.b, "<title>%s</title>", html.EscapeString(title))
	}
	p.b.WriteString("</circle>\n")
}

// polyline joins the points in order; step draws a staircase (best so far).
func (p *plot) polyline(xs, ys []float64, col string, width float64, step bool) {
	var pts []string
	prevY := math.NaN()
	for i := range xs {
		if math.IsNaN(ys[i]) || (p.logX && xs[i] <= 0) {
			continue
		}
		if step && !math.IsNaN(prevY) {
			pts = append(pts, f2(p.px(xs[i]))+","+f2(p.py(prevY)))
		}
		pts = append(pts, f2(p.px(xs[i]))+","+f2(p.py(ys[i])))
		prevY = ys[i]
	}
	if len(pts) == 0 {
		return
	}
	fmt.Fprintf(&p.b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="%s"/>`+"\n", strings.Join(pts, " "), col, f2(width))
}

func (p *plot) rect(x0, y0, x1, y1 float64, col, title string) {
	ax, bx := p.px(x0), p.px(x1)
	ay, by := p.py(y1), p.py(y0)
	fmt.Fprintf(&p.b, `<rect x="%s" y="%s" width="%s" height="%s" fill="%s">`, f2(ax), f2(ay), f2(math.Max(bx-ax, 0.5)), f2(math.Max(by-ay, 0.5)), col)
	if title != "" {
		fmt.Fprintf(&p.b, "<title>%s</title>", html.EscapeString(title))
	}
	p.b.WriteString("</rect>\n")
}

// niceTicks returns about n round values in [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, v)
	}
	return out
}

func tickLabel(v float64) string {
	a := math.Abs(v)
	switch {
	case v == 0:
		return "0"
	case a >= 1e6 || a < 1e-3:
		return fmt.Sprintf("%.0e", v)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}

// svg is the finished plot.
func (p *plot) svg() string {
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" id="%s" class="plot" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n",
		p.id, plotW, plotH, plotW, plotH)
	fmt.Fprintf(&s, `<text x="%d" y="17" font-size="13" font-weight="bold">%s</text>`+"\n", marginL, html.EscapeString(p.title))
	fx0, fx1, fy0, fy1 := float64(marginL), float64(plotW-marginR), float64(marginT), float64(plotH-marginB)
	fmt.Fprintf(&s, `<rect x="%s" y="%s" width="%s" height="%s" fill="none" stroke="#444"/>`+"\n", f2(fx0), f2(fy0), f2(fx1-fx0), f2(fy1-fy0))
	xt := p.xTicks
	if xt == nil && p.logX {
		for _, m := range []float64{1, 2, 5} {
			for e := math.Floor(p.x0); e <= p.x1; e++ {
				if v := math.Log10(m) + e; v >= p.x0 && v <= p.x1 {
					xt = append(xt, tick{math.Pow(10, v), tickLabel(math.Pow(10, v))})
				}
			}
			if len(xt) >= 3 {
				break
			}
		}
	}
	if xt == nil {
		for _, v := range niceTicks(p.x0, p.x1, 6) {
			if !p.intX || v == math.Trunc(v) {
				xt = append(xt, tick{v, tickLabel(v)})
			}
		}
	}
	for _, t := range xt {
		x := p.px(t.v)
		fmt.Fprintf(&s, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#444"/><text x="%s" y="%s" text-anchor="middle">%s</text>`+"\n",
			f2(x), f2(fy1), f2(x), f2(fy1+4), f2(x), f2(fy1+16), html.EscapeString(t.label))
	}
	for _, v := range niceTicks(p.y0, p.y1, 5) {
		if p.intY && v != math.Trunc(v) {
			continue
		}
		y := p.py(v)
		fmt.Fprintf(&s, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#444"/><line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#eee"/><text x="%s" y="%s" text-anchor="end">%s</text>`+"\n",
			f2(fx0-4), f2(y), f2(fx0), f2(y), f2(fx0), f2(y), f2(fx1), f2(y), f2(fx0-6), f2(y+4), tickLabel(v))
	}
	fmt.Fprintf(&s, `<text x="%s" y="%d" text-anchor="middle">%s</text>`+"\n", f2((fx0+fx1)/2), plotH-8, html.EscapeString(p.xlabel))
	fmt.Fprintf(&s, `<text transform="translate(14 %s) rotate(-90)" text-anchor="middle">%s</text>`+"\n", f2((fy0+fy1)/2), html.EscapeString(p.ylabel))
	s.WriteString(`<g clip-path="none">` + "\n")
	s.WriteString(p.b.String())
	s.WriteString("</g>\n</svg>\n")
	return s.String()
}

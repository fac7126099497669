package train

// Pure-Go kernels shared by the ops. Determinism: no kernel's result depends
// on the number of threads. Work is split (e_par.go) either so that every
// output element is written by one goroutine, or into a fixed number of parts
// whose partial sums are added in part order (gonum's GEMM is deterministic
// too: it splits C into blocks and runs each block's k loop sequentially).

// minParallel is the work (in element-operations) below which a loop runs on
// the calling goroutine: spawning goroutines costs more than it saves.
const minParallel = 1 << 14

// window describes a 2-D sliding window over an H×W plane: kernel KH×KW,
// stride S, padding PH, PW before each axis, output Ho×Wo.
type window struct {
	H, W, KH, KW, S, PH, PW, Ho, Wo int
}

func newWindow(h, w, kh, kw, s, ph, pw int) window {
	return window{H: h, W: w, KH: kh, KW: kw, S: s, PH: ph, PW: pw,
		Ho: (h+2*ph-kh)/s + 1, Wo: (w+2*pw-kw)/s + 1}
}

// span returns the output range [lo, hi) along one axis whose input index
// o·s − p + k lies inside [0, n).
func span(n, outN, s, p, k int) (lo, hi int) {
	// o·s − p + k ≥ 0  ⇔  o ≥ ceil((p−k)/s)
	lo = 0
	if p-k > 0 {
		lo = (p - k + s - 1) / s
	}
	// o·s − p + k ≤ n−1  ⇔  o ≤ floor((n−1+p−k)/s)
	hi = outN
	if t := n - 1 + p - k; t < 0 {
		hi = 0
	} else if t/s+1 < hi {
		hi = t/s + 1
	}
	// A kernel wider than the image leaves no output for its first taps:
	// the range is empty, and both ends stay within [0, outN].
	lo = min(lo, outN)
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

// im2colGo writes col[(c,ky,kx), (oy,ox)] = x[c, oy·S−PH+ky, ox·S−PW+kx] (0
// outside the image) for one C×H×W image.
func im2colGo[T Float](x []T, c int, wd window, col []T) {
	hw, howo := wd.H*wd.W, wd.Ho*wd.Wo
	r := 0
	for ci := range c {
		xc := x[ci*hw : (ci+1)*hw]
		for ky := range wd.KH {
			ylo, yhi := span(wd.H, wd.Ho, wd.S, wd.PH, ky)
			for kx := range wd.KW {
				xlo, xhi := span(wd.W, wd.Wo, wd.S, wd.PW, kx)
				row := col[r*howo : (r+1)*howo]
				r++
				clear(row[:ylo*wd.Wo])
				clear(row[yhi*wd.Wo:])
				for oy := ylo; oy < yhi; oy++ {
					dst := row[oy*wd.Wo : (oy+1)*wd.Wo]
					src := xc[(oy*wd.S-wd.PH+ky)*wd.W:]
					clear(dst[:xlo])
					clear(dst[xhi:])
					if wd.S == 1 {
						if off := kx - wd.PW; xlo < xhi {
							copy(dst[xlo:xhi], src[xlo+off:xhi+off])
						}
						continue
					}
					for ox := xlo; ox < xhi; ox++ {
						dst[ox] = src[ox*wd.S-wd.PW+kx]
					}
				}
			}
		}
	}
}

// col2imGo adds col (laid out as by im2col) back into the C×H×W image dx, which
// the caller has zeroed.
func col2imGo[T Float](col []T, c int, wd window, dx []T) {
	hw, howo := wd.H*wd.W, wd.Ho*wd.Wo
	r := 0
	for ci := range c {
		xc := dx[ci*hw : (ci+1)*hw]
		for ky := range wd.KH {
			ylo, yhi := span(wd.H, wd.Ho, wd.S, wd.PH, ky)
			for kx := range wd.KW {
				xlo, xhi := span(wd.W, wd.Wo, wd.S, wd.PW, kx)
				row := col[r*howo : (r+1)*howo]
				r++
				for oy := ylo; oy < yhi; oy++ {
					src := row[oy*wd.Wo : (oy+1)*wd.Wo]
					dst := xc[(oy*wd.S-wd.PH+ky)*wd.W:]
					if wd.S == 1 {
						if xlo == xhi {
							continue
						}
						off := kx - wd.PW
						d := dst[xlo+off : xhi+off]
						for i, v := range src[xlo:xhi] {
							d[i] += v
						}
						continue
					}
					for ox := xlo; ox < xhi; ox++ {
						dst[ox*wd.S-wd.PW+kx] += src[ox]
					}
				}
			}
		}
	}
}

// addBiasGo adds b[r] to row r of y, rows of n elements.
func addBiasGo[T Float](y, b []T, n int) {
	for r, br := range b {
		row := y[r*n : (r+1)*n]
		for j := range row {
			row[j] += br
		}
	}
}

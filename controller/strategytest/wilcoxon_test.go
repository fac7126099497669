package strategytest

import (
	"math"
	"slices"
	"sort"
	"testing"
)

// signedRank is the result of a one-sided Wilcoxon signed-rank test of "x
// tends to be larger than y" on paired samples.
type signedRank struct {
	N      int     // pairs with a non-zero difference: the test's n
	Zeros  int     // pairs with a zero difference, dropped
	WPlus  float64 // sum of the (mid)ranks of |xᵢ − yᵢ| over positive differences
	WMinus float64 // the same over negative differences; WPlus + WMinus = N(N+1)/2
	P      float64 // P(W+ ≥ observed W+) under H₀ (differences symmetric about 0)
	Exact  bool    // P is exact, not the normal approximation
}

// rankBiserial is the matched-pairs rank-biserial correlation (W+ − W−) /
// (W+ + W−), in [−1, 1]: the effect size that goes with the signed-rank
// test, +1 when every non-zero difference is positive (Reference: Kerby
// 2014, "The simple difference formula: an approach to teaching
// nonparametric correlation", Comprehensive Psychology 3:11.IT.3.1). 0 when
// every difference is zero.
func (r signedRank) rankBiserial() float64 {
	if r.N == 0 {
		return 0
	}
	return (r.WPlus - r.WMinus) / (r.WPlus + r.WMinus)
}

// signedRankExactMax is the largest n whose p-value is exact; beyond it the
// normal approximation is used (its error is then below ~10⁻³ in p).
const signedRankExactMax = 25

// wilcoxon is the one-sided Wilcoxon signed-rank test of "x tends to be
// larger than y" for paired samples (xᵢ, yᵢ) (Reference: Wilcoxon 1945,
// "Individual comparisons by ranking methods", Biometrics Bulletin
// 1(6):80–83; Hollander & Wolfe 1999, "Nonparametric Statistical Methods",
// 2nd ed., §3.1). Under H₀ each difference dᵢ = xᵢ − yᵢ is as likely
// positive as negative given |dᵢ|; W+ is the sum of the ranks of |dᵢ| over
// the positive dᵢ, and P = P(W+ ≥ observed) under H₀.
//
// Zero differences follow Wilcoxon's convention (R's and scipy's default):
// they are dropped and n counts the non-zero ones. A pair where both arms
// did equally well carries no evidence of a direction; dropping it only
// lowers n, so the test stays conservative. (Pratt's 1959 alternative ranks
// the zeros with the rest and then ignores their ranks; it is not used.)
// When every difference is zero P is 1.
//
// Ties among |dᵢ| get midranks. For n ≤ signedRankExactMax, P is exact:
// the distribution of W+ over the 2ⁿ equally likely sign assignments given
// the midranks, counted by dynamic programming over (doubled) rank sums;
// without ties this is the classical null distribution, with ties the
// conditional one (Hollander & Wolfe 1999, §3.1, "Ties"). Beyond, P is the
// normal approximation with mean n(n+1)/4, variance n(n+1)(2n+1)/24 −
// Σ(t³ − t)/48 over groups of t tied |dᵢ|, and a continuity correction of
// ½ (Hollander & Wolfe 1999, §3.1, "Large-sample approximation").
func wilcoxon(x, y []float64) signedRank {
	if len(x) != len(y) {
		panic("strategytest: wilcoxon: samples of different lengths")
	}
	var abs, sign []float64
	r := signedRank{}
	for i := range x {
		d := x[i] - y[i]
		if d == 0 {
			r.Zeros++
			continue
		}
		abs = append(abs, math.Abs(d))
		sign = append(sign, math.Copysign(1, d))
	}
	r.N = len(abs)
	if r.N == 0 {
		r.P, r.Exact = 1, true
		return r
	}
	ranks := doubledMidranks(abs)
	w2 := 0 // doubled W+
	for i, rk := range ranks {
		if sign[i] > 0 {
			w2 += rk
		} else {
			r.WMinus += float64(rk) / 2
		}
	}
	r.WPlus = float64(w2) / 2
	if r.N <= signedRankExactMax {
		r.P, r.Exact = signedRankExactP(ranks, w2), true
		return r
	}
	n := float64(r.N)
	mean := n * (n + 1) / 4
	variance := n * (n + 1) * (2*n + 1) / 24
	for _, t := range tieSizes(abs) {
		variance -= float64(t*t*t-t) / 48
	}
	z := (r.WPlus - mean - 0.5) / math.Sqrt(variance)
	r.P = 0.5 * math.Erfc(z/math.Sqrt2) // upper tail of N(0, 1)
	return r
}

// signedRankExactP is P(W+ ≥ w2/2) over the 2ⁿ sign assignments of the
// doubled ranks.
func signedRankExactP(ranks []int, w2 int) float64 {
	c := signedRankCounts(ranks)
	ge := 0.0
	for s := w2; s < len(c); s++ {
		ge += c[s]
	}
	return ge / math.Exp2(float64(len(ranks)))
}

// signedRankCounts returns, for each s, the number of subsets of ranks
// (the ranks given a + sign) whose sum is s. float64 counts are exact up to
// 2⁵³ subsets.
func signedRankCounts(ranks []int) []float64 {
	total := 0
	for _, r := range ranks {
		total += r
	}
	c := make([]float64, total+1)
	c[0] = 1
	for _, r := range ranks {
		for s := total; s >= r; s-- {
			c[s] += c[s-r]
		}
	}
	return c
}

// doubledMidranks returns 2× the midrank of each value (1-based ranks; tied
// values share the mean of their ranks), so every rank is an integer.
func doubledMidranks(v []float64) []int {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return v[idx[a]] < v[idx[b]] })
	r := make([]int, len(v))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && v[idx[j+1]] == v[idx[i]] {
			j++
		}
		for k := i; k <= j; k++ {
			r[idx[k]] = (i + 1) + (j + 1) // 2 × mean of ranks i+1..j+1
		}
		i = j + 1
	}
	return r
}

// tieSizes returns the sizes of the groups of equal values in v (groups of
// one included).
func tieSizes(v []float64) []int {
	s := slices.Clone(v)
	slices.Sort(s)
	var out []int
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[i] {
			j++
		}
		out = append(out, j-i+1)
		i = j + 1
	}
	return out
}

// ranks1 is 1..n doubled: the ranks of n distinct values.
func ranks1(n int) []int {
	r := make([]int, n)
	for i := range r {
		r[i] = 2 * (i + 1)
	}
	return r
}

// The null distribution of W+ for n = 4 is 1, 1, 1, 2, 2, 2, 2, 2, 1, 1, 1
// (W+ = 0..10) out of 2⁴ = 16 (Reference: Hollander & Wolfe 1999, §3.1,
// the enumeration for n = 4; it is the number of subsets of {1, 2, 3, 4}
// with each sum). The DP also equals the recurrence
// u_n(s) = u_{n−1}(s) + u_{n−1}(s − n) (rank n is negative or positive) for
// every n ≤ 20. Exact: integer counts compared with ==.
func TestSignedRankNullDistribution(t *testing.T) {
	c := signedRankCounts(ranks1(4))
	var got []float64
	for s := 0; s < len(c); s += 2 { // doubled sums: only even ones occur
		got = append(got, c[s])
	}
	if want := []float64{1, 1, 1, 2, 2, 2, 2, 2, 1, 1, 1}; !slices.Equal(got, want) {
		t.Fatalf("n = 4: %v, want %v", got, want)
	}
	u := []float64{1} // n = 0
	for n := 1; n <= 20; n++ {
		next := make([]float64, len(u)+n)
		for s := range next {
			if s < len(u) {
				next[s] += u[s]
			}
			if s-n >= 0 && s-n < len(u) {
				next[s] += u[s-n]
			}
		}
		u = next
		c := signedRankCounts(ranks1(n))
		for s := range u {
			if c[2*s] != u[s] {
				t.Fatalf("n = %d, W+ = %d: DP %v, recurrence %v", n, s, c[2*s], u[s])
			}
		}
	}
}

// One-sided critical values of the signed-rank statistic: the largest t
// with P(W ≤ t) ≤ α under H₀ (by symmetry the same as P(W+ ≥ n(n+1)/2 − t)),
// for n = 5..25 ("−1": none, the smallest p exceeds α). Reference: the
// standard table (Wilcoxon, Katti & Wilcox 1970, "Critical values and
// probability levels for the Wilcoxon rank sum test and the Wilcoxon
// signed rank test", Selected Tables in Mathematical Statistics 1:171–259;
// reproduced in most statistics texts). Cross-checked: scipy 1.10.1,
// scipy.stats._morestats._get_wilcoxon_distr(n), gives the same values.
func TestSignedRankCriticalValues(t *testing.T) {
	crit := map[float64][]int{ // index n − 5
		0.05: {0, 2, 3, 5, 8, 10, 13, 17, 21, 25, 30, 35, 41, 47, 53, 60, 67, 75, 83, 91, 100},
		0.01: {-1, -1, 0, 1, 3, 5, 7, 9, 12, 15, 19, 23, 27, 32, 37, 43, 49, 55, 62, 69, 76},
	}
	for alpha, tab := range crit {
		for i, want := range tab {
			n := i + 5
			c := signedRankCounts(ranks1(n))
			all, cum, got := math.Exp2(float64(n)), 0.0, -1
			for s := 0; s < len(c); s += 2 {
				cum += c[s]
				if cum/all > alpha {
					break
				}
				got = s / 2
			}
			if got != want {
				t.Errorf("α = %v, n = %d: critical value %d, table %d", alpha, n, got, want)
			}
		}
	}
}

// A worked example: Hamilton depression scale factor of 9 patients at the
// first (x) and second (y) visit after the start of a therapy. W+ = 40 and
// the exact one-sided p = P(W+ ≥ 40) = 10/512 = 0.01953 (Reference:
// Hollander & Wolfe 1999, Example 3.1; the same data and result in R's
// ?wilcox.test example: "V = 40, p-value = 0.01953"; scipy 1.10.1
// wilcoxon(x, y, alternative='greater', method='exact') gives statistic
// 40.0, pvalue 0.01953125). Exact ratio: tolerance 1e-15.
func TestWilcoxonWorkedExample(t *testing.T) {
	x := []float64{1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30}
	y := []float64{0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29}
	r := wilcoxon(x, y)
	if r.N != 9 || r.WPlus != 40 || r.WMinus != 5 || !r.Exact || math.Abs(r.P-10.0/512) > 1e-15 {
		t.Fatalf("got %+v, want n 9, W+ 40, W− 5, exact p 10/512 = 0.01953", r)
	}
	if got, want := r.rankBiserial(), (40.0-5)/45; math.Abs(got-want) > 1e-15 {
		t.Errorf("rank-biserial %v, want %v", got, want)
	}
	// The other direction: P(W+ ≥ 5) = 1 − P(W+ ≤ 4) = 1 − 7/512.
	if r := wilcoxon(y, x); r.WPlus != 5 || math.Abs(r.P-(1-7.0/512)) > 1e-15 {
		t.Errorf("reversed: %+v, want W+ 5, p 505/512", r)
	}
}

// Ties and zeros, exact: differences 2, 0, 4, −1, 3, 3, 0, 3, −2, 3, 4, 3,
// −2, 3 (two zeros, dropped: n = 12; midranks for the ties). W+ = 71, p =
// 0.00341796875 = 56/16384. Reference: scipy 1.10.1
// permutation_test((x, y), W+, permutation_type='samples',
// alternative='greater', n_resamples=inf), i.e. every one of the 2¹⁴ swaps
// within pairs; "less" gives 0.997314453125. The DP also equals brute-force
// enumeration of the 2¹² sign assignments here. Tolerance 1e-15.
func TestWilcoxonTiesAndZerosExact(t *testing.T) {
	x := []float64{12, 9, 15, 11, 10, 14, 8, 13, 10, 12, 16, 9, 11, 14}
	y := []float64{10, 9, 11, 12, 7, 11, 8, 10, 12, 9, 12, 6, 13, 11}
	r := wilcoxon(x, y)
	if r.N != 12 || r.Zeros != 2 || r.WPlus != 71 || !r.Exact || math.Abs(r.P-0.00341796875) > 1e-15 {
		t.Fatalf("got %+v, want n 12, 2 zeros, W+ 71, exact p 0.00341796875", r)
	}
	if rev := wilcoxon(y, x); math.Abs(rev.P-0.997314453125) > 1e-15 {
		t.Errorf("reversed: p %v, want 0.997314453125", rev.P)
	}
	// Brute force over the sign assignments of the non-zero |d|.
	var abs []float64
	for i := range x {
		if d := x[i] - y[i]; d != 0 {
			abs = append(abs, math.Abs(d))
		}
	}
	ranks := doubledMidranks(abs)
	ge := 0
	for mask := 0; mask < 1<<len(ranks); mask++ {
		s := 0
		for i, rk := range ranks {
			if mask&(1<<i) != 0 {
				s += rk
			}
		}
		if float64(s)/2 >= r.WPlus {
			ge++
		}
	}
	if want := float64(ge) / float64(int(1)<<len(ranks)); r.P != want {
		t.Errorf("p %v, enumeration %v", r.P, want)
	}
}

// The normal approximation, n > signedRankExactMax. Reference: scipy 1.10.1
// wilcoxon(x, y, zero_method='wilcox', correction=True, method='approx'):
//   - 40 pairs of integers with 3 zero differences and many ties:
//     statistic 486.5, p 0.02109600799877592 ("greater"),
//     0.9796575132530493 ("less");
//   - differences ±1..±30 without ties, every third negative: statistic 320,
//     p 0.03677154667265899; the exact p (method='exact') is
//     0.036622037179768085, which signedRankExactP also gives.
//
// Tolerance 1e-12: the same formula, in another order of operations.
func TestWilcoxonNormalApproximation(t *testing.T) {
	x := []float64{18, 12, 13, 17, 11, 15, 16, 4, 1, 6, 5, 17, 18, 0, 9, 16, 2, 15, 2, 9, 16, 6, 6, 5, 14, 5, 19, 8, 9, 10, 11, 11, 10, 19, 16, 15, 14, 12, 6, 19}
	y := []float64{8, 3, 15, 2, 15, 11, 2, 0, 8, 0, 2, 9, 17, 8, 14, 16, 14, 11, 7, 9, 4, 8, 6, 4, 17, 0, 1, 3, 17, 12, 15, 3, 12, 6, 8, 0, 11, 14, 11, 2}
	r := wilcoxon(x, y)
	if r.N != 37 || r.Zeros != 3 || r.WPlus != 486.5 || r.Exact || math.Abs(r.P-0.02109600799877592) > 1e-12 {
		t.Errorf("40 pairs: got %+v, want n 37, 3 zeros, W+ 486.5, approximate p 0.02109600799877592", r)
	}
	if rev := wilcoxon(y, x); math.Abs(rev.P-0.9796575132530493) > 1e-12 {
		t.Errorf("40 pairs reversed: p %v, want 0.9796575132530493", rev.P)
	}

	x, y = make([]float64, 30), make([]float64, 30)
	for i := range x {
		x[i] = float64(i + 1)
		if i%3 == 0 {
			x[i] = -x[i]
		}
	}
	r = wilcoxon(x, y)
	if r.N != 30 || r.WPlus != 320 || r.Exact || math.Abs(r.P-0.03677154667265899) > 1e-12 {
		t.Errorf("30 pairs: got %+v, want W+ 320, approximate p 0.03677154667265899", r)
	}
	if p := signedRankExactP(ranks1(30), 2*320); math.Abs(p-0.036622037179768085) > 1e-12 {
		t.Errorf("30 pairs, exact: p %v, want 0.036622037179768085", p)
	}
}

// Degenerate inputs: no pairs, or only zero differences, give p = 1 and no
// effect; n = 1 with a positive difference gives p = ½.
func TestWilcoxonDegenerate(t *testing.T) {
	if r := wilcoxon(nil, nil); r.P != 1 || r.N != 0 || r.rankBiserial() != 0 {
		t.Errorf("no pairs: %+v", r)
	}
	if r := wilcoxon([]float64{1, 2}, []float64{1, 2}); r.P != 1 || r.Zeros != 2 || r.rankBiserial() != 0 {
		t.Errorf("zero differences: %+v", r)
	}
	if r := wilcoxon([]float64{2}, []float64{1}); r.P != 0.5 || r.rankBiserial() != 1 {
		t.Errorf("one positive difference: %+v", r)
	}
}

package strategytest

import (
	"math"
	"slices"
	"sort"
	"testing"
)

// mannWhitney is the one-sided Mann–Whitney U test of "x tends to be larger
// than y". U counts the pairs (xᵢ, yⱼ) with xᵢ > yⱼ, ties counting ½; p is
// P(U ≥ observed U) when x and y come from one distribution.
//
// p is exact: the permutation distribution of U given the pooled sample,
// counted over all C(m+n, m) ways to pick which m of the pooled values are
// x's, by dynamic programming over (doubled) midranks. Without ties this is
// Mann & Whitney's exact null distribution (Reference: Mann & Whitney 1947,
// "On a test of whether one of two random variables is stochastically larger
// than the other", Ann. Math. Statist. 18(1):50–60, §3, the recurrence for
// p̄_{n,m}(U), tabulated in their Table I); with ties it is the conditional
// distribution given the midranks, the usual exact treatment of ties
// (Reference: Lehmann 1975, "Nonparametrics: Statistical Methods Based on
// Ranks", ch. 1, §4). No normal approximation is used: float64 counts are
// exact for the sample sizes here (C(40, 20) < 2⁵³).
func mannWhitney(x, y []float64) (u, p float64) {
	m, n := len(x), len(y)
	if m == 0 || n == 0 {
		return 0, 1
	}
	for _, a := range x {
		for _, b := range y {
			switch {
			case a > b:
				u++
			case a == b:
				u += 0.5
			}
		}
	}
	ranks := doubledMidranks(append(slices.Clone(x), y...))
	w := 0 // doubled rank sum of x
	for _, r := range ranks[:m] {
		w += r
	}
	count := rankSumCounts(ranks, m)
	ge, all := 0.0, 0.0
	for s, c := range count {
		all += c
		if s >= w {
			ge += c
		}
	}
	return u, ge / all
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

// rankSumCounts returns, for each s, the number of m-subsets of ranks whose
// sum is s.
func rankSumCounts(ranks []int, m int) []float64 {
	total := 0
	for _, r := range ranks {
		total += r
	}
	// c[k][s]: k-subsets of the ranks seen so far summing to s.
	c := make([][]float64, m+1)
	for k := range c {
		c[k] = make([]float64, total+1)
	}
	c[0][0] = 1
	for i, r := range ranks {
		for k := min(i+1, m); k >= 1; k-- {
			for s := total; s >= r; s-- {
				c[k][s] += c[k-1][s-r]
			}
		}
	}
	return c[m]
}

// uCounts is Mann & Whitney's recurrence for the number of arrangements of m
// x's and n y's (no ties) with statistic U = u, u = 0..mn:
// c(u; m, n) = c(u−n; m−1, n) + c(u; m, n−1) (the largest value is an x,
// beating all n y's, or a y). Reference: Mann & Whitney 1947, eq. (2.2)
// written in counts instead of probabilities.
func uCounts(m, n int) []float64 {
	memo := map[[3]int]float64{}
	var c func(u, m, n int) float64
	c = func(u, m, n int) float64 {
		if u < 0 || u > m*n {
			return 0
		}
		if m == 0 || n == 0 {
			if u == 0 {
				return 1
			}
			return 0
		}
		k := [3]int{u, m, n}
		if v, ok := memo[k]; ok {
			return v
		}
		v := c(u-n, m-1, n) + c(u, m, n-1)
		memo[k] = v
		return v
	}
	out := make([]float64, m*n+1)
	for u := range out {
		out[u] = c(u, m, n)
	}
	return out
}

// The distribution of U for m = n = 3 is 1, 1, 2, 3, 3, 3, 3, 2, 1, 1 out
// of C(6, 3) = 20 (Mann & Whitney 1947, Table I, n = m = 3); the DP over
// ranks 1..m+n gives the same counts as the recurrence for every m, n ≤ 8.
// Exact: counts are integers, compared with ==.
func TestRankSumCountsMatchMannWhitney(t *testing.T) {
	want := []float64{1, 1, 2, 3, 3, 3, 3, 2, 1, 1}
	if got := uCounts(3, 3); !slices.Equal(got, want) {
		t.Fatalf("recurrence m=n=3: %v, want %v", got, want)
	}
	for m := 1; m <= 8; m++ {
		for n := 1; n <= 8; n++ {
			ranks := make([]int, m+n)
			for i := range ranks {
				ranks[i] = 2 * (i + 1)
			}
			dp := rankSumCounts(ranks, m)
			// Doubled rank sum W = 2U + m(m+1).
			rec := uCounts(m, n)
			for u, c := range rec {
				if dp[2*u+m*(m+1)] != c {
					t.Fatalf("m=%d n=%d U=%d: DP %v, recurrence %v", m, n, u, dp[2*u+m*(m+1)], c)
				}
			}
		}
	}
}

// Published values: for m = n = 5, P(U ≤ 4) = 12/252 = 0.0476 and
// P(U ≤ 5) = 19/252 = 0.0754, so U ≤ 4 is the one-sided 5% critical value
// (Mann & Whitney 1947, Table I, n = m = 5). By symmetry P(U ≥ 21) = 0.0476.
// Tolerance 1e-12: p is a ratio of exact integer counts.
func TestMannWhitneyKnownValues(t *testing.T) {
	x := []float64{6, 7, 8, 9, 10}
	y := []float64{1, 2, 3, 4, 5}
	u, p := mannWhitney(x, y)
	if u != 25 || math.Abs(p-1.0/252) > 1e-12 {
		t.Errorf("complete separation 5 vs 5: U=%v p=%v, want 25 and 1/252", u, p)
	}
	x = []float64{5.5, 6, 7, 8, 4.5} // beats y in 24 pairs: U ≥ 24 has 2/252
	u, p = mannWhitney(x, y)
	if u != 24 || math.Abs(p-2.0/252) > 1e-12 {
		t.Errorf("U=%v p=%v, want 24 and 2/252", u, p)
	}
	x = []float64{1.5, 6, 7, 8, 9} // beats y in 1+5+5+5+5 = 21 pairs
	u, p = mannWhitney(x, y)
	if u != 21 || math.Abs(p-12.0/252) > 1e-12 {
		t.Errorf("U=%v p=%v, want 21 and 12/252 = 0.0476", u, p)
	}
	x = []float64{0.5, 6, 7, 8, 9} // 20 pairs: U ≥ 20 has 19/252
	u, p = mannWhitney(x, y)
	if u != 20 || math.Abs(p-19.0/252) > 1e-12 {
		t.Errorf("U=%v p=%v, want 20 and 19/252 = 0.0754", u, p)
	}
	// Identical samples: U = mn/2 and p > ½.
	if u, p := mannWhitney(y, y); u != 12.5 || p <= 0.5 {
		t.Errorf("identical samples: U=%v p=%v", u, p)
	}
}

// With ties the DP over midranks equals brute-force enumeration of every
// split of the pooled sample (exact, compared to 1e-12).
func TestMannWhitneyTiesMatchEnumeration(t *testing.T) {
	x := []float64{0.9, 0.95, 0.95, 0.8, 0.95, 0.7}
	y := []float64{0.7, 0.8, 0.8, 0.6, 0.95}
	u, p := mannWhitney(x, y)
	pool := append(slices.Clone(x), y...)
	m, N := len(x), len(pool)
	ge, all := 0, 0
	for mask := 0; mask < 1<<N; mask++ {
		if popcount(mask) != m {
			continue
		}
		var a, b []float64
		for i, v := range pool {
			if mask&(1<<i) != 0 {
				a = append(a, v)
			} else {
				b = append(b, v)
			}
		}
		all++
		if mannWhitneyU(a, b) >= u {
			ge++
		}
	}
	if want := float64(ge) / float64(all); math.Abs(p-want) > 1e-12 {
		t.Fatalf("p = %v, enumeration %d/%d = %v", p, ge, all, want)
	}
	t.Logf("U = %v, p = %.4f", u, p)
}

// mannWhitneyU counts U directly.
func mannWhitneyU(x, y []float64) float64 {
	u := 0.0
	for _, a := range x {
		for _, b := range y {
			if a > b {
				u++
			} else if a == b {
				u += 0.5
			}
		}
	}
	return u
}

func popcount(v int) int {
	c := 0
	for ; v != 0; v &= v - 1 {
		c++
	}
	return c
}

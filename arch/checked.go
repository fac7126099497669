package arch

import (
	"math"
	"strconv"
	"strings"
)

// Checked int64 arithmetic for the static costs: a large input with large
// filters (the options allow 65536×65536 images and 65536 filters) passes
// int64 in FLOPs, and a wrapped, negative count would pass every budget.

// mul64 returns the product of xs and whether it fits in an int64.
func mul64(xs ...int64) (int64, bool) {
	p := int64(1)
	for _, x := range xs {
		if x == 0 {
			return 0, true // 0 times anything fits, whatever came before
		}
	}
	for _, x := range xs {
		q := p * x
		if q/x != p || (p == -1 && x == math.MinInt64) || (x == -1 && p == math.MinInt64) {
			return 0, false
		}
		p = q
	}
	return p, true
}

// add64 returns a+b and whether it fits in an int64.
func add64(a, b int64) (int64, bool) {
	c := a + b
	if (a > 0 && b > 0 && c < 0) || (a < 0 && b < 0 && c >= 0) {
		return 0, false
	}
	return c, true
}

// factors writes xs as "2×3×5" for an overflow message.
func factors(xs []int64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.FormatInt(x, 10)
	}
	return strings.Join(s, "×")
}

// sat64 returns a+b, or math.MaxInt64 when the sum passes it (a, b ≥ 0).
func sat64(a, b int64) int64 {
	if v, ok := add64(a, b); ok {
		return v
	}
	return math.MaxInt64
}

// satInt is sat64 bounded by math.MaxInt, for params.
func satInt(a, b int64) int {
	v := sat64(a, b)
	if v > math.MaxInt {
		return math.MaxInt
	}
	return int(v)
}

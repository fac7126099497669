package arch

import (
	"math"
	"testing"
)

func TestCheckedArithmetic(t *testing.T) {
	for _, tc := range []struct {
		xs   []int64
		want int64
		ok   bool
	}{
		{nil, 1, true},
		{[]int64{2, 3, 5}, 30, true},
		{[]int64{math.MaxInt64, 1}, math.MaxInt64, true},
		{[]int64{math.MaxInt64, 2}, 0, false},
		{[]int64{1 << 32, 1 << 30}, 1 << 62, true},
		{[]int64{1 << 32, 1 << 31}, 0, false}, // 2^63
		{[]int64{1 << 32, 1 << 32}, 0, false},
		{[]int64{1 << 40, 1 << 40, 0}, 0, true}, // a zero factor makes anything fit
		{[]int64{-1, math.MinInt64}, 0, false},
		{[]int64{math.MinInt64, -1}, 0, false},
		{[]int64{-3, 4}, -12, true},
		{[]int64{2, 99, 99, 1, 65536, 65536, 65536}, 2 * 99 * 99 * (1 << 48), true},
		{[]int64{2, 99, 99, 65536, 65536, 65536, 65536}, 0, false},
	} {
		if got, ok := mul64(tc.xs...); ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("mul64(%v) = %d, %v; want %d, %v", tc.xs, got, ok, tc.want, tc.ok)
		}
	}
	for _, tc := range []struct {
		a, b, want int64
		ok         bool
	}{
		{1, 2, 3, true},
		{math.MaxInt64, 0, math.MaxInt64, true},
		{math.MaxInt64, 1, 0, false},
		{math.MinInt64, -1, 0, false},
		{math.MinInt64, math.MaxInt64, -1, true},
		{5518316918412410880, 5517472493482278912, 0, false},
	} {
		if got, ok := add64(tc.a, tc.b); ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("add64(%d, %d) = %d, %v; want %d, %v", tc.a, tc.b, got, ok, tc.want, tc.ok)
		}
	}
	if got := sat64(math.MaxInt64-1, 5); got != math.MaxInt64 {
		t.Errorf("sat64 = %d, want MaxInt64", got)
	}
}

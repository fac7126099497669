package controller

import (
	"fmt"
	"math"
	"slices"
	"sort"
)

// SketchSize is the stoppers' sketch size: a sketch is exact up to
// 2·SketchSize values and holds at most 2·SketchSize centroids after that.
const SketchSize = 1024

// sketchSize is the size new stoppers use (tests lower it).
var sketchSize = SketchSize

// sketch is a bounded summary of a multiset of numbers, used by the
// stoppers for the values of finished trials. It is exact (every value
// kept, sorted, weight 1) while it holds at most 2·Size values. Past that
// it compacts: adjacent centroids (sorted by value) merge into their
// weighted mean while their combined weight stays ≤ ⌈2N/Size⌉ (N: values
// added), which leaves at most Size+1 centroids, each of weight ≤
// ⌈2N/Size⌉. A rank or median read from it is then off by at most that
// weight: a quantile error ≤ 2/Size (0.2% at the default size).
//
// It is deterministic (no randomness), and its JSON is its state.
type sketch struct {
	// Values, ascending: the centroids' values (the values themselves
	// while exact).
	Values []float64 `json:"v"`
	// Weights[i]: the number of values Values[i] stands for; nil while
	// every weight is 1 (exact).
	Weights []int `json:"w,omitempty"`
	N       int   `json:"n"` // values added
}

func (s *sketch) exact() bool { return s.Weights == nil }

// add inserts x; size is the sketch size.
func (s *sketch) add(x float64, size int) {
	j := sort.SearchFloat64s(s.Values, x)
	s.Values = slices.Insert(s.Values, j, x)
	if s.Weights != nil {
		s.Weights = slices.Insert(s.Weights, j, 1)
	}
	s.N++
	if len(s.Values) > 2*size {
		s.compact(size)
	}
}

// compact merges adjacent centroids greedily, left to right, while their
// combined weight is at most ⌈2N/size⌉.
func (s *sketch) compact(size int) {
	if s.Weights == nil {
		s.Weights = make([]int, len(s.Values))
		for i := range s.Weights {
			s.Weights[i] = 1
		}
	}
	limit := (2*s.N + size - 1) / size
	out := 0
	for i := range s.Values {
		if i > 0 && s.Weights[out]+s.Weights[i] <= limit {
			w := s.Weights[out] + s.Weights[i]
			s.Values[out] = (s.Values[out]*float64(s.Weights[out]) + s.Values[i]*float64(s.Weights[i])) / float64(w)
			s.Weights[out] = w
			continue
		}
		if i > 0 {
			out++
		}
		s.Values[out], s.Weights[out] = s.Values[i], s.Weights[i]
	}
	s.Values, s.Weights = slices.Clip(s.Values[:out+1]), slices.Clip(s.Weights[:out+1])
}

// median returns the median: exact while the sketch is (the middle value,
// or the mean of the two middle ones), otherwise the centroid holding the
// middle rank. The sketch must not be empty.
func (s *sketch) median() float64 {
	if s.exact() {
		return medianOf(s.Values)
	}
	half := (s.N + 1) / 2 // 1-based rank of the (lower) middle value
	cum := 0
	for i, w := range s.Weights {
		cum += w
		if cum >= half {
			return s.Values[i]
		}
	}
	return s.Values[len(s.Values)-1]
}

// above returns how many values are strictly greater than x (for a
// compacted sketch: the weight of the centroids above x).
func (s *sketch) above(x float64) int {
	j := sort.Search(len(s.Values), func(i int) bool { return s.Values[i] > x })
	if s.exact() {
		return len(s.Values) - j
	}
	n := 0
	for _, w := range s.Weights[j:] {
		n += w
	}
	return n
}

// check validates a decoded sketch.
func (s *sketch) check() error {
	if !sort.Float64sAreSorted(s.Values) {
		return fmt.Errorf("values are not sorted")
	}
	for _, v := range s.Values {
		if math.IsNaN(v) {
			return fmt.Errorf("a value is NaN")
		}
	}
	if s.Weights == nil {
		if s.N != len(s.Values) {
			return fmt.Errorf("n = %d, but %d values and no weights", s.N, len(s.Values))
		}
		return nil
	}
	if len(s.Weights) != len(s.Values) {
		return fmt.Errorf("%d weights for %d values", len(s.Weights), len(s.Values))
	}
	sum := 0
	for _, w := range s.Weights {
		if w < 1 {
			return fmt.Errorf("a weight is %d", w)
		}
		sum += w
	}
	if sum != s.N {
		return fmt.Errorf("weights sum to %d, n = %d", sum, s.N)
	}
	return nil
}

package dataset

import (
	"fmt"
	"slices"
)

// Set is a labelled image set held in memory. Images holds Len() examples of
// C*H*W float32 values each, in C, H, W order; Labels[i] in [0, Classes) is the
// class of example i and ClassNames[Labels[i]] its name.
type Set struct {
	Images     []float32
	Labels     []int32
	C, H, W    int
	Classes    int
	ClassNames []string
}

// Len returns the number of examples.
func (s *Set) Len() int { return len(s.Labels) }

// Size returns the number of values in one example, C*H*W.
func (s *Set) Size() int { return s.C * s.H * s.W }

// Image returns example i's values. The slice aliases s.Images (capacity capped,
// so an append cannot overwrite example i+1).
func (s *Set) Image(i int) []float32 {
	sz := s.Size()
	return s.Images[i*sz : (i+1)*sz : (i+1)*sz]
}

// Subset returns a new Set holding copies of the examples idx, in that order.
// An index out of range is a programming error and panics.
func (s *Set) Subset(idx []int) *Set {
	sz := s.Size()
	out := &Set{
		Images:     make([]float32, len(idx)*sz),
		Labels:     make([]int32, len(idx)),
		C:          s.C,
		H:          s.H,
		W:          s.W,
		Classes:    s.Classes,
		ClassNames: slices.Clone(s.ClassNames),
	}
	for j, i := range idx {
		if i < 0 || i >= s.Len() {
			panic(fmt.Sprintf("dataset: Subset: index %d out of range [0, %d)", i, s.Len()))
		}
		copy(out.Images[j*sz:(j+1)*sz], s.Images[i*sz:(i+1)*sz])
		out.Labels[j] = s.Labels[i]
	}
	return out
}

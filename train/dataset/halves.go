package dataset

import "math/rand/v2"

// Halves returns n 1×6×6 images of two classes, "left" and "right": that half
// of the image is bright (+1), plus Gaussian noise (σ = 0.3). A tiny network
// learns it in a few steps, so examples and tests train real networks on it
// in milliseconds. The set is a function of n and seed.
func Halves(n int, seed uint64) *Set {
	r := rand.New(rand.NewPCG(seed, 0))
	s := &Set{C: 1, H: 6, W: 6, Classes: 2, ClassNames: []string{"left", "right"},
		Images: make([]float32, n*36), Labels: make([]int32, n)}
	for i := range n {
		k := r.IntN(2)
		s.Labels[i] = int32(k)
		for p := range 36 {
			v := 0.3 * r.NormFloat64()
			if (p%6 < 3) == (k == 0) {
				v++
			}
			s.Images[i*36+p] = float32(v)
		}
	}
	return s
}

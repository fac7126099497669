package dataset

import (
	"math/bits"
	"math/rand/v2"
)

// Stream salts keep the split, the test subset, the per-epoch shuffles and the
// augmentation draws independent although they all flow from one Spec.Seed.
const (
	saltSplit   = 0x6e617364_73706c74 // "nasdsplt"
	saltTest    = 0x6e617364_74657374 // "nasdtest"
	saltEpoch   = 0x6e617364_65706f63 // "nasdepoc"
	saltAugment = 0x6e617364_61756720 // "nasdaug "
)

// mix64 is the SplitMix64 finaliser: a bijection that spreads nearby seeds
// (0, 1, 2, ...) to unrelated 64-bit values.
func mix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// seedPCG seeds p for the stream (seed, salt, k).
func seedPCG(p *rand.PCG, seed, salt, k uint64) {
	p.Seed(mix64(seed^salt), mix64(salt+mix64(k)))
}

// uintn returns a uniform value in [0, n), n > 0, by Lemire's multiply-and-reject
// method. It is written out here rather than taken from rand.Rand so that a split
// made from a seed stays the same across Go releases (only PCG itself is specified).
func uintn(p *rand.PCG, n uint64) uint64 {
	hi, lo := bits.Mul64(p.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(p.Uint64(), n)
		}
	}
	return hi
}

// shuffle permutes idx in place (Fisher–Yates).
func shuffle(p *rand.PCG, idx []int) {
	for i := len(idx) - 1; i > 0; i-- {
		j := int(uintn(p, uint64(i+1)))
		idx[i], idx[j] = idx[j], idx[i]
	}
}

// identity fills idx with 0, 1, 2, ...
func identity(idx []int) {
	for i := range idx {
		idx[i] = i
	}
}

package strategy

import "fmt"

// TrialSeed derives a trial's seed from the run's seed and the trial's ID:
//
//	h = FNV-1a-64(id)
//	TrialSeed = mix(h ^ mix(runSeed))
//
// where mix is SplitMix64's output function (Steele, Lea & Flood 2014,
// "Fast splittable pseudorandom number generators": add 0x9e3779b97f4a7c15,
// then xor-shift-multiply by 0xbf58476d1ce4e5b9 and 0x94d049bb133111eb). FNV
// spreads IDs that differ in one character; mixing the run seed first keeps
// nearby run seeds (1, 2, ...) from cancelling against nearby ID hashes, and
// the final mix makes every input bit affect every output bit. The function
// is part of the run format: a resumed or re-run search depends on it giving
// the same values forever (the tests pin golden values).
func TrialSeed(runSeed uint64, trialID string) uint64 {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	for i := 0; i < len(trialID); i++ {
		h ^= uint64(trialID[i])
		h *= prime64
	}
	return splitMix64(h ^ splitMix64(runSeed))
}

// splitMix64 is SplitMix64's step and output function on x.
func splitMix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// TrialID returns the ID of the n-th trial a strategy proposes (1-based):
// t000001, t000002, ... Every strategy of the project numbers its trials
// this way, in proposal order.
func TrialID(n int) string { return fmt.Sprintf("t%06d", n) }

package strategy_test

import (
	"strings"
	"testing"

	"nasd/controller/strategy"
)

// TestTrialSeedGolden pins TrialSeed: resumed and repeated runs depend on it
// never changing. The values were checked against an independent Python
// implementation of the documented formula.
func TestTrialSeedGolden(t *testing.T) {
	for _, c := range []struct {
		seed uint64
		id   string
		want uint64
	}{
		{0, "", 6566800829925814604},
		{0, "t000001", 13317811482607822857},
		{1, "t000001", 15970411904913852585},
		{1, "t000002", 2603710773095482543},
		{2, "t000001", 8962504012876969066},
		{42, "t999999", 12249539076020888917},
		{18446744073709551615, "gen-3/child-17", 11562796362419101075},
	} {
		if got := strategy.TrialSeed(c.seed, c.id); got != c.want {
			t.Errorf("TrialSeed(%d, %q) = %d, want %d", c.seed, c.id, got, c.want)
		}
	}
}

// TestTrialSeedSpread: neighbouring seeds and IDs give unrelated values
// (about half of the 64 bits differ).
func TestTrialSeedSpread(t *testing.T) {
	pop := func(x uint64) (n int) {
		for ; x != 0; x &= x - 1 {
			n++
		}
		return n
	}
	total, pairs := 0, 0
	for s := uint64(0); s < 16; s++ {
		for i := 1; i < 64; i++ {
			a := strategy.TrialSeed(s, strings.Repeat("x", i))
			total += pop(a ^ strategy.TrialSeed(s+1, strings.Repeat("x", i)))
			total += pop(a ^ strategy.TrialSeed(s, strings.Repeat("x", i+1)))
			pairs += 2
		}
	}
	if mean := float64(total) / float64(pairs); mean < 30 || mean > 34 {
		t.Fatalf("neighbours differ in %.1f bits on average, want about 32", mean)
	}
}

// TestTrialID pins the trial-ID format: IDs are part of the event log and
// of checkpoints.
func TestTrialID(t *testing.T) {
	for n, want := range map[int]string{1: "t000001", 42: "t000042", 999999: "t999999", 1000000: "t1000000"} {
		if got := strategy.TrialID(n); got != want {
			t.Errorf("TrialID(%d) = %q, want %q", n, got, want)
		}
	}
}

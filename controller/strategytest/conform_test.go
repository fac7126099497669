package strategytest_test

import (
	"os"
	"slices"
	"testing"

	"nasd/controller"
	_ "nasd/controller/evolution"
	_ "nasd/controller/random"
	_ "nasd/controller/rl"
	"nasd/controller/strategytest"
)

// conform runs the suite on name once per set of options, each a subtest,
// or skips if no imported package registers name. The options are the
// defaults (nil) and those the learning test uses, plus a variant that
// takes another code path where a strategy has one.
func conform(t *testing.T, name string, variants map[string]map[string]any) {
	t.Helper()
	if !slices.Contains(controller.Names(), name) {
		t.Skipf("strategy %q is not registered (known: %v): its package has not landed or is not imported here", name, controller.Names())
	}
	t.Parallel()
	for label, opts := range variants {
		t.Run(label, func(t *testing.T) { strategytest.Run(t, name, opts) })
	}
}

func TestRandomConforms(t *testing.T) {
	conform(t, "random", map[string]map[string]any{"default": nil})
}

// TestRLConforms runs the learning test's options too only with NASD_LONG:
// each update is a Gorgonia backward pass, so the suite costs rl ~9 CPU
// seconds a variant, and those options share every code path with the
// defaults but the batch size (the learning test drives them, every proposal
// checked).
func TestRLConforms(t *testing.T) {
	variants := map[string]map[string]any{"default": nil}
	if os.Getenv("NASD_LONG") != "" {
		variants["learning"] = map[string]any{"batch": int64(10), "lr": 0.02}
	}
	conform(t, "rl", variants)
}

func TestRandomPolicyConforms(t *testing.T) {
	conform(t, "random-policy", map[string]map[string]any{"default": nil})
}

func TestGAConforms(t *testing.T) {
	conform(t, "ga", map[string]map[string]any{
		"default":      nil,
		"steady_state": {"population": int64(10), "steady_state": true},
		"no_dedupe":    {"population": int64(10), "dedupe": false, "elite": int64(0)},
	})
}

func TestAgingEvolutionConforms(t *testing.T) {
	conform(t, "aging-evolution", map[string]map[string]any{
		"default":  nil,
		"learning": {"population": int64(20), "sample": int64(5)},
	})
}

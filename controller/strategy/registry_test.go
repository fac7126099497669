package strategy_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"nasd/arch"
	"nasd/controller/strategy"
)

func TestRegistry(t *testing.T) {
	const name = "strategy-test-registry"
	errBad := errors.New("bad options")
	strategy.Register(name, func(env strategy.Env) (strategy.Strategy, error) {
		if env.Seed != 7 {
			return nil, errBad
		}
		return nil, nil
	})
	if names := strategy.Names(); !slices.Contains(names, name) || !slices.IsSorted(names) {
		t.Fatalf("Names() = %v, want it sorted and holding %q", names, name)
	}
	space, _ := arch.New("nas", arch.Options{})
	if _, err := strategy.New(name, strategy.Env{Space: space, Seed: 7}); err != nil {
		t.Fatalf("New(%q): %v", name, err)
	}
	if _, err := strategy.New(name, strategy.Env{Space: space, Seed: 1}); err != errBad {
		t.Fatalf("New(%q) with bad options: %v, want the factory's own error", name, err)
	}
	_, err := strategy.New("no-such", strategy.Env{Space: space})
	if err == nil || !strings.Contains(err.Error(), `strategy "no-such": unknown (known: `) || !strings.Contains(err.Error(), name) {
		t.Fatalf("unknown strategy: %v, want an error naming it and listing %s", err, name)
	}

	panics := func(what string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s does not panic", what)
			}
		}()
		f()
	}
	nop := func(strategy.Env) (strategy.Strategy, error) { return nil, nil }
	panics("registering a name twice", func() { strategy.Register(name, nop) })
	panics("registering an empty name", func() { strategy.Register("", nop) })
	panics("registering a nil factory", func() { strategy.Register(name+"-nil", nil) })
}

package strategy

import (
	"fmt"
	"strings"

	"nasd/controller/internal/registry"
)

// The messages keep the "controller:" prefix they had before the registry
// moved here: users meet them as the controller's.
var strategies = registry.New[Factory]("controller", "strategy")

// Register makes a strategy available to New under name. It is meant for
// package init functions; registering a name twice, an empty name or a nil
// factory is a programming error and panics.
func Register(name string, f Factory) {
	if name == "" || f == nil {
		panic("controller: Register: empty name or nil factory")
	}
	strategies.Add("Register", name, f)
}

// New makes the named strategy. An unknown name is an error that lists the
// known ones; the factory's own errors (bad options) are returned as they are.
func New(name string, env Env) (Strategy, error) {
	f, ok := strategies.Get(name)
	if !ok {
		known := Names()
		list := strings.Join(known, ", ")
		if len(known) == 0 {
			list = "none; import a strategy package such as nasd/controller/random"
		}
		return nil, fmt.Errorf("controller: strategy %q: unknown (known: %s)", name, list)
	}
	return f(env)
}

// Names lists the registered strategies, sorted.
func Names() []string { return strategies.Names() }

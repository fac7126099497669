package controller

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

var registry = struct {
	sync.RWMutex
	m map[string]Factory
}{m: map[string]Factory{}}

// Register makes a strategy available to New under name. It is meant for
// package init functions; registering a name twice, an empty name or a nil
// factory is a programming error and panics.
func Register(name string, f Factory) {
	if name == "" || f == nil {
		panic("controller: Register: empty name or nil factory")
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.m[name]; dup {
		panic("controller: Register: strategy " + name + " registered twice")
	}
	registry.m[name] = f
}

// New makes the named strategy. An unknown name is an error that lists the
// known ones; the factory's own errors (bad options) are returned as they are.
func New(name string, env Env) (Strategy, error) {
	registry.RLock()
	f, ok := registry.m[name]
	registry.RUnlock()
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
func Names() []string {
	registry.RLock()
	defer registry.RUnlock()
	names := make([]string, 0, len(registry.m))
	for n := range registry.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

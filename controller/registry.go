package controller

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// registry maps names to factories; strategies and stoppers have one each.
type registry[F any] struct {
	kind string // "strategy", "stopper": for messages
	mu   sync.RWMutex
	m    map[string]F
}

func newRegistry[F any](kind string) *registry[F] {
	return &registry[F]{kind: kind, m: map[string]F{}}
}

// add registers f under name; a second registration of a name panics (a
// programming error, found at init).
func (r *registry[F]) add(caller, name string, f F) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.m[name]; dup {
		panic("controller: " + caller + ": " + r.kind + " " + name + " registered twice")
	}
	r.m[name] = f
}

func (r *registry[F]) get(name string) (F, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f, ok := r.m[name]
	return f, ok
}

// names returns the registered names and extra, sorted.
func (r *registry[F]) names(extra ...string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := append(make([]string, 0, len(r.m)+len(extra)), extra...)
	for n := range r.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

var strategies = newRegistry[Factory]("strategy")

// Register makes a strategy available to New under name. It is meant for
// package init functions; registering a name twice, an empty name or a nil
// factory is a programming error and panics.
func Register(name string, f Factory) {
	if name == "" || f == nil {
		panic("controller: Register: empty name or nil factory")
	}
	strategies.add("Register", name, f)
}

// New makes the named strategy. An unknown name is an error that lists the
// known ones; the factory's own errors (bad options) are returned as they are.
func New(name string, env Env) (Strategy, error) {
	f, ok := strategies.get(name)
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
func Names() []string { return strategies.names() }

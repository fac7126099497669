package registry

import (
	"sort"
	"sync"
)

// Registry maps names to factories of type F.
type Registry[F any] struct {
	prefix string // "controller": the package the messages name
	kind   string // "strategy", "stopper": for messages
	mu     sync.RWMutex
	m      map[string]F
}

// New returns an empty registry whose panics read "prefix: caller: kind
// name registered twice".
func New[F any](prefix, kind string) *Registry[F] {
	return &Registry[F]{prefix: prefix, kind: kind, m: map[string]F{}}
}

// Add registers f under name; a second registration of a name panics (a
// programming error, found at init).
func (r *Registry[F]) Add(caller, name string, f F) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.m[name]; dup {
		panic(r.prefix + ": " + caller + ": " + r.kind + " " + name + " registered twice")
	}
	r.m[name] = f
}

// Get returns the factory registered under name.
func (r *Registry[F]) Get(name string) (F, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f, ok := r.m[name]
	return f, ok
}

// Names returns the registered names and extra, sorted.
func (r *Registry[F]) Names(extra ...string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := append(make([]string, 0, len(r.m)+len(extra)), extra...)
	for n := range r.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

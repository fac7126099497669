package train

import (
	"container/list"
	"fmt"

	"nasd/arch"
)

// NetCache keeps built nets, each with its compiled program, by architecture,
// batch size and mode, all reading one Weights store and sharing one Buffers
// (so the cache's activation memory is that of its largest net, and its nets
// must run one at a time). A weight-sharing search (ENAS) that switches
// children every step builds each child once and then switches by a map
// lookup (BenchmarkNetSwitch measures both). It holds at most max nets and
// drops the least recently used beyond that. A NetCache is not safe for
// concurrent use.
type NetCache struct {
	w      *Weights
	prefix func(i int, n arch.Node) string
	max    int
	lru    *list.List // of *cachedNet, most recent first
	byKey  map[netCacheKey]*list.Element
	kern   kernels
	buf    *Buffers // shared by every net held

	Hits, Builds int // lookups served from the cache and nets built
}

type netCacheKey struct {
	arch  string
	batch int
	train bool
}

type cachedNet struct {
	key netCacheKey
	net *Net
}

// NewNetCache returns a cache of at most max nets (≥ 1) over w; prefix names
// parameters as in BuildOptions (nil: each architecture its own weights).
func NewNetCache(w *Weights, max int, prefix func(i int, n arch.Node) string) (*NetCache, error) {
	if max < 1 {
		return nil, fmt.Errorf("train: net cache of %d nets: must hold at least 1", max)
	}
	return &NetCache{w: w, prefix: prefix, max: max, lru: list.New(), byKey: map[netCacheKey]*list.Element{}, buf: NewBuffers()}, nil
}

// Get returns the net of g for batch and mode, building it on first use. key
// identifies g (an arch.Arch's Hash, say): the cache does not hash the graph
// on every switch, so a key must never name two different graphs.
func (c *NetCache) Get(key string, g *arch.Graph, batch int, train bool) (*Net, error) {
	k := netCacheKey{key, batch, train}
	if e, ok := c.byKey[k]; ok {
		c.lru.MoveToFront(e)
		c.Hits++
		return e.Value.(*cachedNet).net, nil
	}
	n, err := buildWith(g, c.w, BuildOptions{Batch: batch, Train: train, Prefix: c.prefix, Buffers: c.buf}, c.kern)
	if err != nil {
		return nil, err
	}
	c.Builds++
	c.byKey[k] = c.lru.PushFront(&cachedNet{key: k, net: n})
	for c.lru.Len() > c.max {
		old := c.lru.Remove(c.lru.Back()).(*cachedNet)
		delete(c.byKey, old.key)
		old.net.Close()
	}
	return n, nil
}

// Bytes returns the memory of the buffers the nets share.
func (c *NetCache) Bytes() int { return c.buf.Bytes() }

// Len returns the number of nets held.
func (c *NetCache) Len() int { return c.lru.Len() }

// Close closes every net held and empties the cache.
func (c *NetCache) Close() error {
	for e := c.lru.Front(); e != nil; e = e.Next() {
		e.Value.(*cachedNet).net.Close()
	}
	c.lru.Init()
	clear(c.byKey)
	return nil
}

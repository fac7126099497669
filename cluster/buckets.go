package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math/bits"
	"slices"
	"strings"
)

// Bucket is one named group of parameters in a flat weight vector: in ENAS,
// the parameters of one (layer, op) pair, buf[Off : Off+Len].
type Bucket struct {
	Name     string
	Off, Len int
}

// Buckets is a validated layout of buckets over a weight vector of Size()
// floats: no bucket reaches past the end, none overlap. It is read-only and
// may be shared between goroutines.
type Buckets struct {
	size int
	list []Bucket
	fp   uint64 // fingerprint of the layout, to catch ranks that disagree
}

// NewBuckets checks list against a weight vector of size floats and reports
// every problem at once. Buckets need not cover the vector: elements outside
// every bucket never travel.
func NewBuckets(size int, list []Bucket) (*Buckets, error) {
	var errs []error
	if size < 0 {
		errs = append(errs, fmt.Errorf("cluster: buckets over %d floats: size must be ≥ 0", size))
	}
	names := make(map[string]int, len(list))
	for i, b := range list {
		switch {
		case b.Name == "":
			errs = append(errs, fmt.Errorf("cluster: bucket %d: empty name", i))
		case names[b.Name] > 0:
			errs = append(errs, fmt.Errorf("cluster: bucket %d (%s): name used by bucket %d too", i, b.Name, names[b.Name]-1))
		default:
			names[b.Name] = i + 1
		}
		if b.Off < 0 || b.Len < 0 || b.Off > size-b.Len {
			errs = append(errs, fmt.Errorf("cluster: bucket %d (%s): [%d, %d+%d) does not fit %d floats", i, b.Name, b.Off, b.Off, b.Len, size))
		}
	}
	order := make([]int, len(list))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return list[a].Off - list[b].Off })
	last := -1 // the bucket reaching furthest so far; empty ones hold nothing
	for _, k := range order {
		b := list[k]
		if b.Len == 0 {
			continue
		}
		if last >= 0 {
			if a := list[last]; a.Off+a.Len > b.Off {
				errs = append(errs, fmt.Errorf("cluster: buckets %s [%d, %d) and %s [%d, %d) overlap",
					a.Name, a.Off, a.Off+a.Len, b.Name, b.Off, b.Off+b.Len))
			}
		}
		if last < 0 || b.Off+b.Len > list[last].Off+list[last].Len {
			last = k
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	h := fnv.New64a()
	var w [8]byte
	put := func(x int) {
		binary.LittleEndian.PutUint64(w[:], uint64(x))
		h.Write(w[:])
	}
	put(size)
	for _, b := range list {
		put(b.Off)
		put(b.Len)
	}
	return &Buckets{size: size, list: slices.Clone(list), fp: h.Sum64()}, nil
}

// Size returns the length of the weight vector the layout is for.
func (bs *Buckets) Size() int { return bs.size }

// Len returns the number of buckets.
func (bs *Buckets) Len() int { return len(bs.list) }

// Bucket returns bucket i.
func (bs *Buckets) Bucket(i int) Bucket { return bs.list[i] }

// NewMask returns an empty mask with a bit for every bucket.
func (bs *Buckets) NewMask() Mask { return make(Mask, maskWords(len(bs.list))) }

// Floats returns how many floats the buckets in m hold.
func (bs *Buckets) Floats(m Mask) int {
	n := 0
	for i, b := range bs.list {
		if m.Has(i) {
			n += b.Len
		}
	}
	return n
}

func maskWords(n int) int { return (n + 63) / 64 }

// Mask is a set of bucket indices, 64 to a word.
type Mask []uint64

// Set adds bucket i.
func (m Mask) Set(i int) { m[i/64] |= 1 << (i % 64) }

// Has reports whether bucket i is in m; indices past m's words are not.
func (m Mask) Has(i int) bool { return i/64 < len(m) && m[i/64]&(1<<(i%64)) != 0 }

// Count returns the number of buckets in m.
func (m Mask) Count() int {
	n := 0
	for _, w := range m {
		n += bits.OnesCount64(w)
	}
	return n
}

// AllreduceBuckets sums, over every rank of t, the buckets of buf that some
// rank used this step, and returns their union; only those buckets travel.
// Every rank calls it with the same layout, as a collective. It runs two
// collectives: an AllreduceOr of the used masks (with a layout fingerprint
// and a bit per rank that has bad arguments, so a caller's mistake fails
// every rank instead of leaving them waiting), then one AllreduceFloat32 of
// the union's buckets packed in bucket order, where a rank contributes its
// buf for the buckets it used and zeros for the others.
//
// Afterwards buf holds the same values on every rank in every bucket: the
// rank-ordered sum of the ranks that used it, and zero in the buckets no rank
// used. Elements outside every bucket are left alone. On error buf is
// unchanged.
//
// Bytes sent per rank with the MPI transport, for P ranks, B buckets and m
// floats in the union's buckets: the mask allreduce of 8·(⌈B/64⌉ + 2 +
// ⌈P/64⌉) bytes (MPI's algorithm for tiny messages: a few log₂P-step
// exchanges), then AllreduceBytes(P, m); each collective first allgathers an
// 8-byte length.
func AllreduceBuckets(ctx context.Context, t Transport, buf []float32, bs *Buckets, used Mask) (Mask, error) {
	w, p, me := maskWords(len(bs.list)), t.Size(), t.Rank()
	// [used words][fingerprint][^fingerprint][a bit per rank with bad arguments]
	or := make([]uint64, w+2+maskWords(p))
	var bad error
	switch {
	case len(buf) != bs.size:
		bad = fmt.Errorf("cluster: rank %d: AllreduceBuckets: buf has %d floats, the layout %d", me, len(buf), bs.size)
	case len(used) != w:
		bad = fmt.Errorf("cluster: rank %d: AllreduceBuckets: mask of %d words for %d buckets (want %d)", me, len(used), len(bs.list), w)
	case len(bs.list)%64 != 0 && used[w-1]>>(len(bs.list)%64) != 0:
		bad = fmt.Errorf("cluster: rank %d: AllreduceBuckets: mask has bits past bucket %d", me, len(bs.list)-1)
	}
	if bad != nil {
		Mask(or[w+2:]).Set(me)
	} else {
		copy(or, used)
	}
	or[w], or[w+1] = bs.fp, ^bs.fp
	if err := t.AllreduceOr(ctx, or); err != nil {
		return nil, err
	}
	if bad != nil {
		return nil, bad
	}
	if badRanks := Mask(or[w+2:]); badRanks.Count() > 0 {
		var rs []string
		for r := range p {
			if badRanks.Has(r) {
				rs = append(rs, fmt.Sprint(r))
			}
		}
		return nil, fmt.Errorf("cluster: rank %d: AllreduceBuckets: rank(s) %s passed bad arguments (their errors say why)", me, strings.Join(rs, ", "))
	}
	if or[w]&or[w+1] != 0 { // some bit of the fingerprint differs between ranks
		return nil, fmt.Errorf("cluster: rank %d: AllreduceBuckets: the ranks' bucket layouts differ: every rank must pass the same layout", me)
	}
	union := Mask(or[:w:w])
	pack := make([]float32, bs.Floats(union))
	off := 0
	for i, b := range bs.list {
		if union.Has(i) {
			if used.Has(i) {
				copy(pack[off:off+b.Len], buf[b.Off:])
			}
			off += b.Len
		}
	}
	if err := t.AllreduceFloat32(ctx, pack); err != nil {
		return nil, err
	}
	off = 0
	for i, b := range bs.list {
		if union.Has(i) {
			off += copy(buf[b.Off:b.Off+b.Len], pack[off:])
		} else {
			clear(buf[b.Off : b.Off+b.Len])
		}
	}
	return union, nil
}

// AllreduceBytes returns the bytes each rank sends in an AllreduceFloat32 of
// n floats over p ranks with the MPI transport (Ialltoall, then Iallgather,
// of ⌈n/p⌉-float blocks): 2(p−1)·⌈n/p⌉·4, the bandwidth term of a ring
// allreduce, plus 8 bytes to each other rank for the length check, which is
// not counted here.
func AllreduceBytes(p, n int) int {
	if p <= 1 || n == 0 {
		return 0
	}
	return 2 * (p - 1) * ((n + p - 1) / p) * 4
}

// AllreduceBucketsBytes returns the bytes each rank sends in an
// AllreduceBuckets over p ranks of a layout of b buckets whose union holds n
// floats: AllreduceBytes(p, n) plus the mask allreduce's message counted
// once (MPI's exchanges of it, and the length checks, are not counted).
func AllreduceBucketsBytes(p, b, n int) int {
	if p <= 1 {
		return 0
	}
	return 8*(maskWords(b)+2+maskWords(p)) + AllreduceBytes(p, n)
}

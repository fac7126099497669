package cluster_test

// collectiveSuite checks the ENAS collectives (AllreduceFloat32, AllreduceOr,
// AllreduceBuckets) on one rank of a job; every rank runs it, in-process
// (TestCollectiveSuite) and under mpirun (TestMPITransport). Each rank can
// compute every rank's inputs, so each checks its result bit for bit against
// a serial sum in rank order; a hash gathered to rank 0 checks that the
// ranks agree.

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"time"
	"unsafe"

	"nasd/cluster"
)

// input returns rank q's element i of case seed: values spread over many
// binades, so that the order of the additions shows in the low bits.
func input(seed, q, i int) float32 {
	x := uint64(seed)*0x9e3779b97f4a7c15 ^ uint64(q+1)*0xbf58476d1ce4e5b9 ^ uint64(i+1)*0x94d049bb133111eb
	x ^= x >> 31
	x *= 0xd6e8feb86659d39b
	x ^= x >> 29
	m := float32(x&0xffffff)/float32(1<<24) - 0.5
	return m * float32(math.Ldexp(1, int(x>>40)%24-12))
}

// serialSum is element i of the rank-ordered sum over p ranks, where rank q
// contributes v(q).
func serialSum(p int, v func(q int) float32) float32 {
	s := v(0)
	for q := 1; q < p; q++ {
		s += v(q)
	}
	return s
}

func hashFloats(x []float32) uint64 {
	h := fnv.New64a()
	if len(x) > 0 {
		h.Write(unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 4*len(x)))
	}
	return h.Sum64()
}

// sameOnAll returns an error on every rank unless every rank passed the same h.
func sameOnAll(ctx context.Context, tr cluster.Transport, what string, h uint64) error {
	b := fmt.Appendf(nil, "%016x", h)
	all, err := tr.Gather(ctx, 0, b)
	if err != nil {
		return err
	}
	var verdict []byte
	if tr.Rank() == 0 {
		for r, x := range all {
			if string(x) != string(b) {
				verdict = fmt.Appendf(verdict, "%s: rank %d has hash %s, rank 0 %s; ", what, r, x, b)
			}
		}
	}
	verdict, err = tr.Bcast(ctx, 0, verdict)
	if err != nil {
		return err
	}
	if len(verdict) > 0 {
		return errors.New(string(verdict))
	}
	return nil
}

func collectiveSuite(ctx context.Context, tr cluster.Transport) error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("rank %d: "+format, append([]any{tr.Rank()}, args...)...))
	}
	p, me := tr.Size(), tr.Rank()

	// Sum: against the serial sum, bit for bit, on every rank; rank 0
	// contributing zeros (the ω phase) in odd cases.
	for seed, n := range []int{0, 1, p - 1, p + 1, 1000, 100003} {
		v := func(q, i int) float32 {
			if seed%2 == 1 && q == 0 {
				return 0
			}
			return input(seed, q, i)
		}
		x := make([]float32, n)
		for i := range x {
			x[i] = v(me, i)
		}
		if err := tr.AllreduceFloat32(ctx, x); err != nil {
			return errors.Join(append(errs, err)...)
		}
		bad := 0
		for i := range x {
			want := serialSum(p, func(q int) float32 { return v(q, i) })
			if math.Float32bits(x[i]) != math.Float32bits(want) {
				if bad++; bad <= 3 {
					fail("AllreduceFloat32 of %d: element %d = %g (%08x), serial sum %g (%08x)",
						n, i, x[i], math.Float32bits(x[i]), want, math.Float32bits(want))
				}
			}
		}
		if err := sameOnAll(ctx, tr, fmt.Sprintf("AllreduceFloat32 of %d", n), hashFloats(x)); err != nil {
			errs = append(errs, err)
		}
		// Determinism: the same inputs give the same bits every time.
		for range 3 {
			y := make([]float32, n)
			for i := range y {
				y[i] = v(me, i)
			}
			if err := tr.AllreduceFloat32(ctx, y); err != nil {
				return errors.Join(append(errs, err)...)
			}
			if hashFloats(y) != hashFloats(x) {
				fail("AllreduceFloat32 of %d: a repeated call gave other bits", n)
			}
		}
	}

	// Mask union: rank q sets bits q and 64+3q; rank 0 also 127.
	bits := make([]uint64, 3)
	bits[0] |= 1 << (me % 64)
	cluster.Mask(bits).Set(64 + 3*me%128)
	if me == 0 {
		cluster.Mask(bits).Set(127)
	}
	if err := tr.AllreduceOr(ctx, bits); err != nil {
		return errors.Join(append(errs, err)...)
	}
	want := cluster.Mask(make([]uint64, 3))
	want.Set(127)
	for q := range p {
		want[0] |= 1 << (q % 64)
		want.Set(64 + 3*q%128)
	}
	if fmt.Sprint(bits) != fmt.Sprint(want) {
		fail("AllreduceOr: %x, want %x", bits, want)
	}

	if err := bucketChecks(ctx, tr, fail); err != nil {
		return errors.Join(append(errs, err)...)
	}

	// A length that differs between ranks is an error on every rank, and
	// the ranks stay in step.
	if p > 1 {
		if err := tr.AllreduceFloat32(ctx, make([]float32, 10+me)); err == nil {
			fail("AllreduceFloat32 with lengths 10..%d: no error", 10+p-1)
		}
		if err := tr.AllreduceOr(ctx, make([]uint64, 1+me)); err == nil {
			fail("AllreduceOr with lengths 1..%d: no error", p)
		}
		one := []float32{1}
		if err := tr.AllreduceFloat32(ctx, one); err != nil || one[0] != float32(p) {
			fail("AllreduceFloat32 after the mismatch: %v, %v", one, err)
		}
	}

	// Cancellation: the others give up waiting for the last rank, buf
	// unchanged; the late rank still gets the sum (every part was in), and
	// the next call finds the ranks in step.
	if p > 1 {
		x := []float32{float32(me + 1)}
		if me == p-1 {
			time.Sleep(300 * time.Millisecond)
			if err := tr.AllreduceFloat32(ctx, x); err != nil || x[0] != float32(p*(p+1)/2) {
				fail("late rank's AllreduceFloat32: %v, %v", x, err)
			}
		} else {
			short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			err := tr.AllreduceFloat32(short, x)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) || x[0] != float32(me+1) {
				fail("AllreduceFloat32 while the last rank is late: %v, x = %v; want context.DeadlineExceeded, x unchanged", err, x)
			}
		}
		y := []float32{float32(me)}
		if err := tr.AllreduceFloat32(ctx, y); err != nil || y[0] != float32(p*(p-1)/2) {
			fail("AllreduceFloat32 after the cancelled one: %v, %v", y, err)
		}
	}
	return errors.Join(errs...)
}

func bucketChecks(ctx context.Context, tr cluster.Transport, fail func(string, ...any)) error {
	p, me := tr.Size(), tr.Rank()
	// 70 buckets (two mask words) of 0..40 floats with gaps between them.
	var list []cluster.Bucket
	off := 3
	for i := range 70 {
		n := (i * 7) % 41
		list = append(list, cluster.Bucket{Name: fmt.Sprintf("b%d", i), Off: off, Len: n})
		off += n + i%3
	}
	size := off + 5
	bs, err := cluster.NewBuckets(size, list)
	if err != nil {
		return err
	}
	// Rank 0 uses nothing (the controller); rank q uses bucket i when
	// (i+q)%3 == 0 or i == 60+q; buckets 2 mod 3 past 50 stay unused
	// unless picked by the second rule.
	uses := func(q, i int) bool {
		if q == 0 {
			return false
		}
		return ((i+q)%3 == 0 && !(i > 50 && i%3 == 2)) || i == 60+q
	}
	val := func(q, j int) float32 { return input(99, q, j) }
	used := bs.NewMask()
	buf := make([]float32, size)
	for j := range buf {
		buf[j] = 7 // outside every bucket: must stay
	}
	for i, b := range list {
		for j := b.Off; j < b.Off+b.Len; j++ {
			buf[j] = float32(math.NaN()) // stale gradients: must not travel
			if uses(me, i) {
				buf[j] = val(me, j)
			}
		}
		if uses(me, i) {
			used.Set(i)
		}
	}
	union, err := cluster.AllreduceBuckets(ctx, tr, buf, bs, used)
	if err != nil {
		return err
	}
	wantUnion := bs.NewMask()
	inside := make([]bool, size)
	for i, b := range list {
		some := false
		for q := range p {
			some = some || uses(q, i)
		}
		if some {
			wantUnion.Set(i)
		}
		for j := b.Off; j < b.Off+b.Len; j++ {
			inside[j] = true
			want := float32(0)
			if some {
				want = serialSum(p, func(q int) float32 {
					if uses(q, i) {
						return val(q, j)
					}
					return 0
				})
			}
			if math.Float32bits(buf[j]) != math.Float32bits(want) {
				fail("AllreduceBuckets: bucket %d element %d = %g, want %g", i, j, buf[j], want)
				return nil
			}
		}
	}
	for j, in := range inside {
		if !in && buf[j] != 7 {
			fail("AllreduceBuckets: element %d outside every bucket changed to %g", j, buf[j])
			break
		}
	}
	if fmt.Sprint(union) != fmt.Sprint(wantUnion) {
		fail("AllreduceBuckets: union %x, want %x", union, wantUnion)
	}
	if err := sameOnAll(ctx, tr, "AllreduceBuckets", hashFloats(buf)); err != nil {
		fail("%v", err)
	}

	// A rank with bad arguments fails every rank, and they stay in step.
	if p > 1 {
		b := buf
		if me == 1 {
			b = buf[:size-1]
		}
		if _, err := cluster.AllreduceBuckets(ctx, tr, b, bs, used); err == nil {
			fail("AllreduceBuckets with a short buf on rank 1: no error")
		}
		other := bs
		if me == p-1 {
			other, _ = cluster.NewBuckets(size, append(list[:len(list)-1:len(list)-1], cluster.Bucket{Name: "x", Off: size - 1, Len: 1}))
		}
		if _, err := cluster.AllreduceBuckets(ctx, tr, buf, other, used); err == nil {
			fail("AllreduceBuckets with another layout on rank %d: no error", p-1)
		}
		if _, err := cluster.AllreduceBuckets(ctx, tr, buf, bs, used); err != nil {
			fail("AllreduceBuckets after the errors: %v", err)
		}
	}
	return nil
}
